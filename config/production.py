"""Settings for a clinic's server behind HTTPS."""

SESSION_COOKIE_SECURE = True
PREFERRED_URL_SCHEME = "https"
