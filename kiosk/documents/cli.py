"""`kiosk documents`: work the documents queue once from the command line (cron, scripts)."""

import json

import click
from flask import current_app
from flask.cli import AppGroup

from ..core.jobs import consumer_run
from .worker import documents_work


# An AppGroup (not a bare click group) so its commands run inside the application context:
# a bare group's commands get none, and the worker cannot reach the database.
@click.group("documents", cls=AppGroup)
def documents_command():
    """Archived documents: render queued PDFs and send them on."""


@documents_command.command("work")
@click.option("--loop", is_flag=True, help="Deprecated: run `kiosk worker` instead.")
def work_command(loop: bool):
    """Render every due PDF and send every due delivery once (cron, scripts)."""
    if loop:
        # Deployments that ran the old documents-only worker keep working: the job
        # queue's worker makes the documents now, and everything else with them.
        click.echo("`kiosk documents work --loop` is deprecated: run `kiosk worker`.",
                   err=True)
        consumer_run(current_app._get_current_object())
        return
    totals = {"rendered": 0, "failed": 0, "waiting": 0, "delivered": 0}
    while True:
        done = documents_work()
        for key, value in done.items():
            totals[key] += value
        if not done["rendered"] and not done["delivered"]:
            break
    click.echo(json.dumps(totals))
