"""The entry point for gunicorn and `flask`: `gunicorn -k gthread --threads 50 wsgi:app`."""

from kiosk import create_app

app = create_app()
