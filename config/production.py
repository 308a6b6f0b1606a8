"""Settings for a clinic's server behind HTTPS."""

SESSION_COOKIE_SECURE = True
PREFERRED_URL_SCHEME = "https"
# Browsers use HTTPS only for this host (and its subdomains) for a year.
KIOSK_HSTS = True
