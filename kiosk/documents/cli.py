"""`kiosk documents`: work the documents queue from the command line (cron, a worker)."""

import json

import click
from flask import current_app
from flask.cli import AppGroup

from .worker import documents_work, worker_loop


# An AppGroup (not a bare click group) so its commands run inside the application context:
# a bare group's commands get none, and the worker cannot reach the database.
@click.group("documents", cls=AppGroup)
def documents_command():
    """Archived documents: render queued PDFs and send them on."""


@documents_command.command("work")
@click.option("--loop", is_flag=True, help="Keep working as documents are queued.")
def work_command(loop: bool):
    """Render every due PDF and send every due delivery (once, or for ever with --loop)."""
    if loop:
        worker_loop(current_app._get_current_object())
    totals = {"rendered": 0, "failed": 0, "waiting": 0, "delivered": 0}
    while True:
        done = documents_work()
        for key, value in done.items():
            totals[key] += value
        if not done["rendered"] and not done["delivered"]:
            break
    click.echo(json.dumps(totals))
