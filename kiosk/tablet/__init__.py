"""Tablets: the setup page, the service worker and the pages a tablet keeps offline."""
