"""Settings for the test suite: a throwaway database and a fixed secret."""

TESTING = True
SECRET_KEY = "testing-only-secret"  # noqa: S105
SQLALCHEMY_DATABASE_URI = "sqlite://"
WTF_CSRF_ENABLED = False
