"""Kiosk: offline-first patient flow for veterinary hospitals."""

import logging
import os
import secrets
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from .core.files import folder_private, sqlite_file_private
from .extensions import csrf, db, migrate, socketio

ROOT = Path(__file__).resolve().parent.parent
__version__ = "0.1.0"

# KIOSK_* environment variables and the Flask settings they override.
ENV_OVERRIDES = {
    "KIOSK_DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "KIOSK_SECRET_KEY": "SECRET_KEY",
    "KIOSK_TIMEZONE": "KIOSK_TIMEZONE",
    "KIOSK_PHONE_COUNTRY_CODE": "KIOSK_PHONE_COUNTRY_CODE",
    "KIOSK_REDIS_URL": "KIOSK_REDIS_URL",
    "KIOSK_REDIS_CHANNEL": "KIOSK_REDIS_CHANNEL",
    "KIOSK_PROXIES": "KIOSK_PROXIES",
    "KIOSK_SMTP_HOST": "KIOSK_SMTP_HOST",
    "KIOSK_SMTP_PORT": "KIOSK_SMTP_PORT",
    "KIOSK_SMTP_FROM": "KIOSK_SMTP_FROM",
    "KIOSK_SMTP_USER": "KIOSK_SMTP_USER",
    "KIOSK_SMTP_PASSWORD": "KIOSK_SMTP_PASSWORD",
    "KIOSK_SMTP_STARTTLS": "KIOSK_SMTP_STARTTLS",
    "KIOSK_SMTP_CA_FILE": "KIOSK_SMTP_CA_FILE",
    "KIOSK_SMTP_TIMEOUT": "KIOSK_SMTP_TIMEOUT",
    "KIOSK_SMS_URL": "KIOSK_SMS_URL",
    "KIOSK_SMS_ACCOUNT": "KIOSK_SMS_ACCOUNT",
    "KIOSK_SMS_TOKEN": "KIOSK_SMS_TOKEN",
    "KIOSK_SMS_FROM": "KIOSK_SMS_FROM",
    "KIOSK_SMS_TIMEOUT": "KIOSK_SMS_TIMEOUT",
    "KIOSK_VOICE_FROM": "KIOSK_VOICE_FROM",
    "KIOSK_VOICE_LANGUAGE": "KIOSK_VOICE_LANGUAGE",
    "KIOSK_MESSAGE_SENDERS": "KIOSK_MESSAGE_SENDERS",
    "KIOSK_MESSAGE_LEASE_S": "KIOSK_MESSAGE_LEASE_S",
    "KIOSK_WORKER": "KIOSK_WORKER",
    "KIOSK_JOBS_NAME": "KIOSK_JOBS_NAME",
    "KIOSK_DOCUMENTS_WORKER": "KIOSK_DOCUMENTS_WORKER",  # deprecated: KIOSK_WORKER=separate
    "KIOSK_THREADS": "KIOSK_THREADS",
    "KIOSK_DB_POOL_MAX": "KIOSK_DB_POOL_MAX",
    "KIOSK_SIGN_IN_LIMIT": "KIOSK_SIGN_IN_LIMIT",
    "KIOSK_SYNC_CONFIRM_SECONDS": "KIOSK_SYNC_CONFIRM_SECONDS",
    "KIOSK_BILLING_OFFLINE_AFTER_S": "KIOSK_BILLING_OFFLINE_AFTER_S",
    "KIOSK_OUTAGE_DETECT_AFTER_S": "KIOSK_OUTAGE_DETECT_AFTER_S",
    "KIOSK_BILLING_WEBHOOK_TIMEOUT": "KIOSK_BILLING_WEBHOOK_TIMEOUT",
    "KIOSK_PUBLIC_URL": "KIOSK_PUBLIC_URL",
    "KIOSK_MAINTENANCE_PREPARE_S": "KIOSK_MAINTENANCE_PREPARE_S",
    "KIOSK_MAINTENANCE_NOTICE_H": "KIOSK_MAINTENANCE_NOTICE_H",
    "KIOSK_MAINTENANCE_POLL_S": "KIOSK_MAINTENANCE_POLL_S",
    "KIOSK_PORTAL_LIMIT": "KIOSK_PORTAL_LIMIT",
    "KIOSK_STATUS_CHECK_TIMEOUT_S": "KIOSK_STATUS_CHECK_TIMEOUT_S",
    "KIOSK_STATUS_DISK_LOW_MB": "KIOSK_STATUS_DISK_LOW_MB",
    "KIOSK_STATUS_SUBSCRIBE_LIMIT": "KIOSK_STATUS_SUBSCRIBE_LIMIT",
    "KIOSK_BACKUP_DIR": "KIOSK_BACKUP_DIR",
    "KIOSK_BACKUP_KEEP": "KIOSK_BACKUP_KEEP",
}


def create_app(config_name: str | None = None, overrides: dict | None = None) -> Flask:
    """Build the application: configuration, extensions, features, then the command line."""
    app = Flask(__name__, instance_relative_config=True,
                template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    configure_settings(app, config_name or os.environ.get("KIOSK_ENV", "default"), overrides)
    configure_logging(app)
    configure_files(app)
    configure_database(app)
    configure_extensions(app)
    configure_blueprints(app)
    configure_features(app)
    configure_jobs(app)
    configure_templates(app)
    configure_errors(app)
    return app


def configure_settings(app: Flask, config_name: str, overrides: dict | None) -> None:
    """Defaults, then the named profile, then KIOSK_* variables, then explicit overrides."""
    app.config.from_object("config.default")
    if config_name != "default":
        app.config.from_object(f"config.{config_name}")
    for env_name, key in ENV_OVERRIDES.items():
        if os.environ.get(env_name):
            app.config[key] = os.environ[env_name]
    if overrides:
        app.config.update(overrides)
    folder_private(Path(app.instance_path))
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'kiosk.db'}"
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path) / "secret_key")


def _instance_secret(path: Path) -> str:
    """A random secret kept in the instance folder, made on first start (mode 600)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def configure_logging(app: Flask) -> None:
    """Plain logging to stderr; nothing secret is ever passed to a logger, and what a
    logger is given by others (a failed request's path) is redacted."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # WeasyPrint narrates every step of every PDF at INFO, huey every job it runs.
    for name in ("weasyprint", "fontTools", "huey"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from .core.logredact import redacting_install

    # A failed request's path, and the development server's request lines, may hold a
    # client portal link's token.
    redacting_install(app.logger, logging.getLogger("werkzeug"))


# Threads a server process serves requests and live connections with (`kiosk run`).
DEFAULT_THREADS = 100
# Threads of a server process that use the database besides the requests: the job
# queue's workers (core.jobs.IN_PROCESS_WORKERS), the revocation sweep, and one to spare.
BACKGROUND_THREADS = 4
# PostgreSQL's connections are a shared, costly resource (100 by default for the whole
# server): one process never keeps more than this many, whatever its thread count.
POSTGRESQL_POOL_MAX = 20


def configure_files(app: Flask) -> None:
    """The SQLite file is created mode 600 (its -wal and -shm follow) in the instance
    folder, mode 700, before the first connection: patient data is the server user's only."""
    sqlite_file_private(app.config["SQLALCHEMY_DATABASE_URI"])


def configure_database(app: Flask) -> None:
    """SQLite gets WAL, foreign keys and a busy timeout; PostgreSQL a pre-ping. Neither
    puts a statement's values (notes, names) into error messages, so logs never hold them.

    The pool follows the server's thread count (KIOSK_THREADS). A request holds at most one
    connection at a time (a sync gives its back before queuing for its turn to write, and
    a commit's pokes are worked out before the commit), so with a connection per thread
    nobody waits for the pool on SQLite. PostgreSQL's pool is capped; there two sync
    batches write at a time, so sign-in and pages keep the rest.
    """
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    options.setdefault("hide_parameters", True)
    threads = int(app.config.get("KIOSK_THREADS") or DEFAULT_THREADS)
    app.config["KIOSK_THREADS"] = threads
    if uri.startswith("sqlite"):
        options.setdefault("connect_args", {}).setdefault("timeout", 15)
        if ":memory:" not in uri and "mode=memory" not in uri and uri != "sqlite://":
            options.setdefault("pool_size", threads + BACKGROUND_THREADS)
            options.setdefault("max_overflow", 10)
        writers = 1  # one writer: the turns spare the busy handler's sleeps
    else:
        options.setdefault("pool_pre_ping", True)
        cap = int(app.config.get("KIOSK_DB_POOL_MAX") or POSTGRESQL_POOL_MAX)
        options.setdefault("pool_size", min(threads + BACKGROUND_THREADS, cap))
        options.setdefault("max_overflow", 10)
        # Sync batches are mostly Python work, and one process runs Python on one core at
        # a time: two writing at once keep it busy while the other waits on PostgreSQL;
        # more would only slow each of them down.
        writers = max(1, min(2, options["pool_size"] // 2))
    from .sync.turns import TURNS_EXTENSION, WriteTurns

    app.extensions[TURNS_EXTENSION] = WriteTurns(writers)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL journal and enforced foreign keys on every SQLite connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def configure_extensions(app: Flask) -> None:
    """Bind the database, migrations, CSRF protection, Socket.IO, the sign-in rate limit
    and after-commit events."""
    from .core.events import events_install

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    # Same-origin only (no CORS list); Redis joins several processes when configured.
    socketio.init_app(app, async_mode="threading", client_manager=_redis_manager(app),
                      cors_allowed_origins=None, logger=False, engineio_logger=False)
    if app.config.get("KIOSK_PROXIES"):
        # Behind nginx: trust its X-Forwarded-* (client address, https, host) — outermost,
        # so the Socket.IO same-origin check sees the host the browser used.
        hops = int(app.config["KIOSK_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    from .live import pokes, sockets

    pokes.install()
    sockets.install()
    from .staff import throttle

    throttle.install(app)  # the per-address limit on sign-in and pairing
    events_install(Session)
    from . import models  # noqa: F401  (every table is known to metadata and Alembic)


def _redis_manager(app: Flask):
    """The Redis client manager joining processes, or None for one process.

    Short timeouts: pokes are published from the request that made the change, so a Redis
    host that vanished must cost a second, not the operating system's connect timeout.
    """
    url = app.config.get("KIOSK_REDIS_URL")
    if not url:
        return None
    import socketio as python_socketio

    return python_socketio.RedisManager(
        url, channel=app.config["KIOSK_REDIS_CHANNEL"],
        redis_options={"socket_connect_timeout": 1, "socket_timeout": 2})


def configure_blueprints(app: Flask) -> None:
    """One blueprint per feature."""
    from .admin.views import bp as admin_bp
    from .anaesthesia.views import bp as anaesthesia_bp
    from .billing.admin_views import bp as billing_admin_bp
    from .billing.views import bp as billing_bp
    from .devices.views import bp as devices_bp
    from .discharge.views import bp as discharge_bp
    from .documents.views import bp as documents_bp
    from .flows.timeline_views import bp as flow_timeline_bp
    from .flows.views import bp as flows_bp
    from .forms.views import bp as forms_bp
    from .inbox.views import bp as inbox_bp
    from .intake.views import bp as intake_bp
    from .maintenance.report_views import bp as outages_bp
    from .maintenance.views import bp as maintenance_bp
    from .messaging.callbacks import bp as messaging_callbacks_bp
    from .messaging.views import bp as messaging_bp
    from .owners.views import bp as owners_bp
    from .patients.views import bp as patients_bp
    from .portal.views import bp as portal_bp
    from .staff.views import bp as staff_bp
    from .status.views import bp as status_bp
    from .sync.views import bp as sync_bp
    from .tablet.views import bp as tablet_bp
    from .treatments.views import bp as treatments_bp
    from .whiteboards.views import bp as boards_bp

    for bp in (staff_bp, boards_bp, patients_bp, treatments_bp, admin_bp, intake_bp,
               devices_bp, sync_bp, tablet_bp, anaesthesia_bp, documents_bp, forms_bp,
               discharge_bp, billing_bp, billing_admin_bp, inbox_bp, flows_bp,
               flow_timeline_bp, messaging_bp, messaging_callbacks_bp, owners_bp, portal_bp,
               maintenance_bp, outages_bp, status_bp):
        app.register_blueprint(bp)


def configure_features(app: Flask) -> None:
    """What each feature registers with the layers below it (kiosk.core imports no
    feature): who a session is, upkeep and queue jobs, template globals, what fills the
    boards, and the facts billing charges for."""
    from .billing import hooks as billing_hooks
    from .clinic import templating as clinic_templating
    from .devices import hooks as devices_hooks
    from .discharge import hooks as discharge_hooks
    from .documents import hooks as documents_hooks
    from .flows import hooks as flows_hooks
    from .inbox import hooks as inbox_hooks
    from .maintenance import hooks as maintenance_hooks
    from .messaging import hooks as messaging_hooks
    from .staff import hooks as staff_hooks
    from .status import hooks as status_hooks
    from .treatments import hooks as treatments_hooks

    for install in (clinic_templating.install, staff_hooks.install, devices_hooks.install,
                    treatments_hooks.install, discharge_hooks.install, documents_hooks.install,
                    billing_hooks.install, inbox_hooks.install, messaging_hooks.install,
                    flows_hooks.install, maintenance_hooks.install, status_hooks.install):
        install(app)


def configure_jobs(app: Flask) -> None:
    """The one job queue, with core's hourly upkeep and every job the features registered
    in configure_features, bound to this application (see kiosk.core.jobs)."""
    from .core import upkeep
    from .core.backup import daily as backup_daily
    from .core.jobs import jobs_install

    upkeep.install()
    backup_daily.install(__version__)
    jobs_install(app)


def configure_templates(app: Flask) -> None:
    """Filters and globals the templates share (features add theirs in configure_features);
    per-request caches start empty."""
    from flask import g

    from .core import templating
    from .core.auth import session_keep_alive
    from .core.headers import headers_install

    templating.install(app)
    app.jinja_env.globals["app_version"] = __version__
    headers_install(app)
    app.after_request(session_keep_alive)

    @app.before_request
    def _fresh_request_cache() -> None:
        # g outlives a request when an app context was pushed beforehand (tests, scripts).
        for key in ("user", "display", "tablet", "clinic_settings", "maintenance_banner"):
            g.pop(key, None)


def configure_errors(app: Flask) -> None:
    """HTML error pages that say why."""
    from .core import errorpages

    errorpages.install(app)
