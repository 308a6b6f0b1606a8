"""Settings for the test suite: a throwaway database and a fixed secret."""

TESTING = True
SECRET_KEY = "testing-only-secret"  # noqa: S105
SQLALCHEMY_DATABASE_URI = "sqlite://"
WTF_CSRF_ENABLED = False
# Hashing strength does not matter for throwaway test users; speed does.
KIOSK_PASSWORD_HASH = "pbkdf2:sha256:1000"  # noqa: S105
KIOSK_PIN_VERIFIER_ITERATIONS = 1000
