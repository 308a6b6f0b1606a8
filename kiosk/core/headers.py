"""Security headers on every response: what a page may load, run and use, and how long
browsers and shared tablets may keep what they were sent."""

from flask import Flask

# Only the app's own files run and style the pages: no inline script, handler or style
# attribute, no eval (htmx is told so through its <meta name="htmx-config">).
# connect-src 'self' also covers the same-origin ws:/wss: of Socket.IO (CSP level 3).
# img-src data: is for signatures, drawn on a canvas and shown back as data: images.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "worker-src": "'self'",
    "manifest-src": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}

# Nothing in the app uses these; a QR pairing code is read by the tablet's own camera app.
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), display-capture=(), geolocation=(), "
                      "gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), "
                      "payment=(), serial=(), usb=()")

HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy() -> str:
    """The Content-Security-Policy header's value."""
    return "; ".join(f"{name} {sources}" for name, sources in CONTENT_SECURITY_POLICY.items())


def headers_install(app: Flask) -> None:
    """Add the security headers to every response of `app` (HSTS when KIOSK_HSTS is on)."""
    policy = content_security_policy()
    hsts = bool(app.config.get("KIOSK_HSTS"))

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if hsts:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if response.mimetype == "application/pdf":
            # Patient records: a shared tablet's browser cache must not keep them (the
            # service worker keeps pages for offline use, never PDFs).
            headers["Cache-Control"] = "no-store"
        return response
