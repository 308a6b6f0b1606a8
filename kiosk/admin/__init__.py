"""Admin pages for managers (level 6): settings, staff, wards, whiteboards."""
