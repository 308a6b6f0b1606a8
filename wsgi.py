"""The entry point for gunicorn: `gunicorn -k gthread -w 1 --threads 100 wsgi:app`.

See docs/deployment.md. Each process sweeps its own live connections for revocations and
runs the job queue's consumer, unless KIOSK_WORKER=separate leaves the jobs to `kiosk worker`
(several consumers share one queue safely: each document is claimed).
"""

from kiosk import create_app
from kiosk.core.jobs import consumer_start
from kiosk.live.sockets import start_sweep

app = create_app()
start_sweep(app)
consumer_start(app)
