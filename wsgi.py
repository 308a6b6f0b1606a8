"""The entry point for gunicorn: `gunicorn -k gthread -w 1 --threads 100 wsgi:app`.

See docs/deployment.md. Each process sweeps its own live connections for revocations.
"""

from kiosk import create_app
from kiosk.live.sockets import start_sweep

app = create_app()
start_sweep(app)
