"""The entry point for gunicorn: `gunicorn -k gthread -w 1 --threads 100 wsgi:app`.

See docs/deployment.md. Each process sweeps its own live connections for revocations and
works the documents queue (several processes share it safely: each document is claimed).
"""

from kiosk import create_app
from kiosk.documents.worker import worker_start
from kiosk.live.sockets import start_sweep

app = create_app()
start_sweep(app)
worker_start(app)
