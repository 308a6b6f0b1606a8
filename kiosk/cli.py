"""The `kiosk` command: run the server and the job worker, demo data, users, devices,
imports, upkeep."""

import json
import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, routes_command, shell_command
from flask_migrate import upgrade
from sqlalchemy import inspect, select

from . import __version__, create_app
from .core.errors import DomainError
from .core.files import folder_private
from .core.jobs import consumer_run, consumer_start, jobs_run_pending
from .core.upkeep import upkeep_run
from .extensions import db, socketio
from .live.sockets import start_sweep


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False,
             add_version_option=False)
def main():
    """Kiosk: patient flow for veterinary hospitals (configured by KIOSK_* variables)."""


main.add_command(shell_command)
main.add_command(routes_command)


def _feature_commands() -> None:
    from .documents.cli import documents_command
    from .intake.cli import import_command

    main.add_command(import_command)
    main.add_command(documents_command)


_feature_commands()


def _fail(exc: DomainError) -> None:
    db.session.rollback()
    raise click.ClickException(exc.message)


def schema_ensure() -> None:
    """Create or upgrade the schema to the newest migration."""
    upgrade(directory=current_app.extensions["migrate"].directory)


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Create the schema and a demo clinic if empty.")
@click.option("--dev", is_flag=True, help="Werkzeug's development server, reloading when the "
              "code changes (for development only, never for a clinic).")
def run_command(host: str, port: int, demo: bool, dev: bool):
    """Serve the application with live updates (one process; see docs/deployment.md).

    A production server (gunicorn, one worker of KIOSK_THREADS threads: a live connection
    holds a thread), with the job queue's consumer (PDFs, deliveries, hourly upkeep; unless
    KIOSK_WORKER=separate) and the revocation sweep running inside it.
    """
    from .demo import demo_build, demo_summary

    if demo:
        schema_ensure()
        from .patients.models import Patient

        if not db.session.query(Patient.id).first():
            demo_build()
            db.session.commit()
        click.echo(demo_summary(f"http://{host}:{port}"))
    elif not inspect(db.engine).has_table("patients"):
        raise click.ClickException("The database has no tables yet: run `kiosk db upgrade` "
                                   "(or `kiosk run --demo` for a demo clinic).")
    db.session.remove()
    app = current_app._get_current_object()
    if dev:
        _run_development(app, host, port)
    else:
        _run_production(app, host, port)


def background_start(app) -> None:
    """The serving process's own work: the job queue's consumer (unless KIOSK_WORKER=separate:
    `kiosk worker` runs it) and the sweep of revoked devices' live connections."""
    consumer_start(app)
    start_sweep(app)


def _run_development(app, host: str, port: int) -> None:
    # The reloader runs this command again in a child process that serves; only that one
    # does the background work.
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        background_start(app)
    os.environ.pop("FLASK_RUN_FROM_CLI", None)  # Flask refuses app.run() under its CLI otherwise
    socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, use_reloader=True,
                 log_output=False)


def gunicorn_options(app, host: str, port: int) -> dict:
    """gunicorn's settings for `kiosk run`: one gthread worker (Socket.IO keeps a client's
    session in the process that holds it), KIOSK_THREADS threads (the database pool was
    sized from the same number), and a quick stop (open live connections would otherwise
    hold a restart for the whole graceful timeout; clients reconnect by themselves)."""
    threads = int(app.config["KIOSK_THREADS"])
    return {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "workers": 1, "worker_class": "gthread", "threads": threads,
            "worker_connections": max(1000, 2 * threads), "graceful_timeout": 5,
            "accesslog": None, "errorlog": "-", "loglevel": "info",
            "proc_name": "kiosk", "control_socket_disable": True,
            # Whose X-Forwarded-* headers count is KIOSK_PROXIES' decision alone (ProxyFix),
            # as it was before: gunicorn would otherwise believe any local process.
            "forwarded_allow_ips": ""}


def _die_with_parent() -> None:
    """Linux: the worker is killed when the `kiosk run` process dies, even by kill -9, so
    `kiosk run` stops as one process (a supervisor restarting it finds the port free)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker notices within a second
        pass


def _run_production(app, host: str, port: int) -> None:
    from gunicorn.app.base import BaseApplication

    # The worker is forked from this process: it must not inherit open database
    # connections, and the background threads must run in it, not here.
    db.engine.dispose()

    class KioskServer(BaseApplication):
        def load_config(self):
            for key, value in gunicorn_options(app, host, port).items():
                if key in self.cfg.settings:  # older gunicorns lack the control socket
                    self.cfg.set(key, value)
            self.cfg.set("post_fork", lambda server, worker: _die_with_parent())
            self.cfg.set("post_worker_init", lambda worker: background_start(app))

        def load(self):
            return app

    KioskServer().run()


@main.command("worker")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Threads running jobs at once.")
def worker_command(workers: int):
    """Run the job queue in this process (PDFs, deliveries, sweeps, upkeep) until stopped:
    for a group whose web processes have KIOSK_WORKER=separate (see docs/deployment.md)."""
    consumer_run(current_app._get_current_object(), workers)


@main.group("jobs")
def jobs_group():
    """The job queue."""


@jobs_group.command("run-once")
def jobs_run_once():
    """Run every job queued now, in this process; the last line is JSON with how many ran."""
    click.echo(json.dumps({"ran": jobs_run_pending()}))


@main.command("demo")
def demo_command():
    """Fill an empty database with the demo clinic."""
    from .demo import demo_build

    schema_ensure()
    demo_build()
    db.session.commit()
    click.echo("Demo clinic created.")


@main.group("users")
def users_group():
    """Staff users."""


@users_group.command("add")
@click.option("--name", required=True)
@click.option("--level", required=True, type=int)
@click.option("--pin", default=None,
              help="4–6 digits (6 for level 5 and 6), for shared tablets.")
@click.option("--username", default=None, help="For password sign-in on desktops.")
@click.option("--password", default=None, help="At least 8 characters (or KIOSK_PASSWORD).",
              envvar="KIOSK_PASSWORD")
@click.option("--ward", "wards", multiple=True,
              help="A ward they work on, by name or code (repeat it); every ward if none.")
def users_add(name, level, pin, username, password, wards):
    """Add a staff user; the last line printed is JSON with its id."""
    from .staff.services import user_create

    try:
        ward_ids = _ward_ids(wards) if wards else None
        user = user_create(name=name, level=level, pin=pin, username=username, password=password,
                           wards=ward_ids)
        db.session.commit()
    except DomainError as exc:
        _fail(exc)
    click.echo(json.dumps({"id": user.public_id, "uid": user.uid, "name": user.name,
                           "level": user.level, "wards": [w.name for w in user.wards]}))


def _ward_ids(names) -> list[int]:
    """The ids of the wards named (by name or code, any case), or DomainError."""
    from .clinic.models import Ward

    by_key = {}
    for ward in db.session.scalars(select(Ward)):  # a clinic has a handful: read them once
        by_key.setdefault(ward.name.lower(), ward.id)
        if ward.code:
            by_key.setdefault(ward.code.lower(), ward.id)
    found = []
    for name in names:
        if name.strip().lower() not in by_key:
            raise DomainError("bad_ward", f"There is no ward {name!r}.", field="wards")
        found.append(by_key[name.strip().lower()])
    return found


@users_group.command("unlock")
@click.argument("user_id")
def users_unlock(user_id):
    """Let a user locked out by wrong passwords or PINs sign in again at once (audited)."""
    from .staff.models import User
    from .staff.services import user_unlock

    number = user_id[2:] if user_id.startswith("u_") else ""
    user = db.session.get(User, int(number)) if number.isdigit() else None
    if user is None:
        raise click.ClickException(f"There is no user {user_id}.")
    # The command line stands in for a manager: the audit entry names no person.
    try:
        user_unlock(user=user, actor=None)
        db.session.commit()
    except DomainError as exc:
        _fail(exc)
    click.echo(f"{user.name} can sign in again.")


@main.group("devices")
def devices_group():
    """Tablets and wall displays."""


@devices_group.command("add")
@click.option("--name", required=True)
@click.option("--colour", required=True)
@click.option("--number", default=None, type=int)
@click.option("--kind", default="tablet", type=click.Choice(["tablet", "display"]))
def devices_add(name, colour, number, kind):
    """Provision a device; the last line is JSON with its id and its token (shown once)."""
    from .devices.services import device_provision

    try:
        device, token = device_provision(name=name, colour=colour, number=number, kind=kind)
        db.session.commit()
    except DomainError as exc:
        _fail(exc)
    click.echo(json.dumps({"id": device.public_id, "name": device.name,
                           "colour": device.colour, "token": token}))


@devices_group.command("list")
def devices_list():
    """Every device: id, kind, name, colour and number, last sync, and whether revoked."""
    from .devices.models import Device

    for device in db.session.scalars(select(Device).order_by(Device.id)):
        state = "revoked" if device.revoked_at else "active"
        seen = device.last_sync_at.isoformat() if device.last_sync_at else "never synced"
        click.echo(f"{device.public_id}\t{device.kind}\t{device.name}\t{device.colour}"
                   f"\t{device.number or ''}\t{state}\tlast_seq {device.last_seq}\t{seen}")


def _device_arg(device_id: str):
    """The device named d_3 (or 3) on the command line, or a ClickException."""
    from .devices.models import Device

    number = device_id[2:] if device_id.startswith("d_") else device_id
    device = db.session.get(Device, int(number)) if number.isdigit() and len(number) < 10 \
        else None
    if device is None:
        raise click.ClickException(f"There is no device {device_id}.")
    return device


@devices_group.command("revoke")
@click.argument("device_id")
def devices_revoke(device_id):
    """Revoke a device (d_3 or 3): its token stops working at once."""
    from .devices.services import device_revoke

    device = _device_arg(device_id)
    try:
        device_revoke(actor=None, device=device, operator=True)
        db.session.commit()
    except DomainError as exc:
        _fail(exc)
    click.echo(json.dumps({"id": device.public_id, "revoked": True}))


@devices_group.command("pair")
@click.argument("device_id")
def devices_pair(device_id):
    """A new one-time pairing code for a device (d_3 or 3); the last line is JSON."""
    from .devices.services import PAIRING_MINUTES, code_display, device_pairing_start

    device = _device_arg(device_id)
    code = device_pairing_start(actor=None, device=device, operator=True)
    db.session.commit()
    click.echo(f"Enter this code on the device's /pair page within {PAIRING_MINUTES} minutes.")
    click.echo(json.dumps({"id": device.public_id, "code": code_display(code),
                           "expires_at": device.pairing_expires_at.isoformat()}))


@main.command("upkeep")
def upkeep_command():
    """Upkeep now: two days of sheet ahead, fresh query statistics (the job queue runs it
    hourly by itself; this is for scripts and cron)."""
    click.echo(json.dumps(upkeep_run()))


@main.command("backup")
@click.option("--to", "folder", default=None, type=click.Path(path_type=Path),
              help="The folder the backup set goes in (default: KIOSK_BACKUP_DIR, else "
              "backups/ in the instance folder).")
def backup_command(folder: Path | None):
    """Back up the database and the files kept beside it into a new backup set, while the
    application runs (see docs/backup.md); the last line is JSON."""
    from .core.backup.sets import backup_make, kept_files

    app = current_app._get_current_object()
    if folder is None and app.config.get("KIOSK_BACKUP_DIR"):
        folder = Path(app.config["KIOSK_BACKUP_DIR"])
    elif folder is None:
        folder = folder_private(Path(app.instance_path) / "backups")
    files = kept_files(app.instance_path, app.config.get("SECRET_KEY"))
    try:
        path, manifest = backup_make(url=app.config["SQLALCHEMY_DATABASE_URI"],
                                     folder=folder, files=files, app_version=__version__)
    except DomainError as exc:
        raise click.ClickException(f"No backup was made. {exc.message}") from None
    rows = sum(manifest["tables"].values())
    click.echo(f"Backup written to {path} ({len(manifest['tables'])} tables, {rows} rows).")
    click.echo(json.dumps({"backup": str(path), "tables": len(manifest["tables"]),
                           "rows": rows, "created_at": manifest["created_at"]}))


@main.command("restore")
@click.argument("backup", type=click.Path(path_type=Path))
@click.option("--database-url", default=None,
              help="The empty database to restore into (default: the configured one, "
              "KIOSK_DATABASE_URL).")
@click.option("--files-to", default=None, type=click.Path(path_type=Path),
              help="Where the kept files (the secret key) go (default: the instance folder "
              "when restoring into the configured database, else nowhere).")
def restore_command(backup: Path, database_url: str | None, files_to: Path | None):
    """Restore a backup set into a new, empty database and check it against the set's
    manifest (stop the server and `kiosk worker` first; see docs/backup.md)."""
    from sqlalchemy.engine import make_url

    from .core.backup.sets import backup_restore, where

    app = current_app._get_current_object()
    configured = app.config["SQLALCHEMY_DATABASE_URI"]
    url = database_url or configured
    if files_to is None and make_url(url) == make_url(configured):
        files_to = Path(app.instance_path)  # this installation's own database: its own files
    try:
        done = backup_restore(backup=backup, url=url, files_to=files_to)
    except DomainError as exc:
        raise click.ClickException(f"Nothing was restored. {exc.message}") from None
    click.echo(f"Restored {done['rows']} rows in {done['tables']} tables into "
               f"{where(make_url(url))}; every table's count matches the backup of "
               f"{done['created_at']}.")
    if files_to is None:
        click.echo("The kept files (the secret key) were checked, not restored: "
                   "give --files-to to restore them.")
    click.echo(json.dumps(done))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
