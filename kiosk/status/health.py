"""The server's health: the database, Redis (when configured), the job queue and the disk.

Each check runs in a thread of its own and is waited for at most KIOSK_STATUS_CHECK_TIMEOUT_S
(2 s): a database that refuses, or one that accepts and never answers, costs the page two
seconds, never a hung request. A request that comes while another request's check is still
running waits for that same run's answer (until its own deadline) instead of starting
another: two probes at once on a healthy server both get its answer, and a load balancer
polling a dead server does not pile up threads; only a check that takes longer than the
timeout is reported as not answering. A check says ok, degraded or down and a short reason
in plain words: never an address, a password or a stack trace.
"""

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ..core import clock
from ..core.jobs import EXTENSION as JOBS_EXTENSION
from ..extensions import db

log = logging.getLogger(__name__)

OK, DEGRADED, DOWN = "ok", "degraded", "down"
RANK = {OK: 0, DEGRADED: 1, DOWN: 2}
CHECK_TIMEOUT_S = 2.0
DISK_LOW_MB = 1024
HEARTBEAT_KEY = "kiosk.status.heartbeat"
HEARTBEAT_STALE = timedelta(minutes=3)
HEALTH_ENGINE = "kiosk.status.health_engine"
# How many tables the database holds: reading the schema reads the database itself.
TABLES_QUERY = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT count(*) FROM pg_catalog.pg_tables "
                  "WHERE schemaname = current_schema()",
}

WHY_TIMEOUT = "Did not answer within {seconds:g} s."
WHY_STILL_WAITING = "Did not answer: the previous check is still waiting ({seconds:.0f} s)."
WHY_FAILED = "Not reachable ({kind})."
WHY_NO_TABLES = "The database has no tables (kiosk db upgrade not run?)."


@dataclass(frozen=True)
class Check:
    """One check's answer: its state, a short reason, whether the service needs it to
    work at all (`essential`), and how long it took."""

    name: str
    state: str
    reason: str
    essential: bool = False
    ms: int = 0

    def as_dict(self) -> dict:
        """The check for /status.json and /readyz (stable keys)."""
        return asdict(self)


def _timeout_s(app: Flask) -> float:
    return float(app.config.get("KIOSK_STATUS_CHECK_TIMEOUT_S") or CHECK_TIMEOUT_S)


@dataclass
class _Run:
    """One run of a check: its thread, its answer once there is one, and its start."""

    thread: threading.Thread
    started: float
    box: dict = field(default_factory=dict)


# (application id, check name) → the run of that check still going.
_running: dict[tuple[int, str], _Run] = {}
_running_lock = threading.Lock()


def _run_start(app: Flask, name: str, probe: Callable[[], tuple[str, str]]) -> _Run:
    """The run of `probe` going now (another request's), or a new one started in a thread."""
    key = (id(app), name)
    with _running_lock:
        run = _running.get(key)
        if run is not None and run.thread.is_alive():
            return run

        def work() -> None:
            try:
                with app.app_context():
                    run.box["answer"] = probe()
            except Exception as exc:  # noqa: BLE001 - a failed check is an answer: down
                run.box["answer"] = (DOWN, WHY_FAILED.format(kind=type(exc).__name__))
            finally:
                with _running_lock:
                    if _running.get(key) is run:
                        del _running[key]

        run = _Run(threading.Thread(target=work, name=f"health-{name}", daemon=True),
                   time.monotonic())
        _running[key] = run
        run.thread.start()
        return run


def _run_bounded(app: Flask, name: str, probe: Callable[[], tuple[str, str]], *,
                 essential: bool, deadline: float) -> Callable[[], Check]:
    """Start `probe` in a thread, or join the run another request started (so that two
    requests at once both get its answer, and a hung check never piles up threads), and
    return what waits for its answer until `deadline` (time.monotonic())."""
    asked = time.monotonic()
    run = _run_start(app, name, probe)

    def wait() -> Check:
        run.thread.join(max(0.0, deadline - time.monotonic()))
        seconds = time.monotonic() - run.started
        ms = int(seconds * 1000)
        if "answer" in run.box:
            state, reason = run.box["answer"]
            return Check(name, state, reason, essential, ms)
        if run.started < asked:  # another request's run, older than this one's wait
            return Check(name, DOWN, WHY_STILL_WAITING.format(seconds=seconds), essential, ms)
        return Check(name, DOWN, WHY_TIMEOUT.format(seconds=_timeout_s(app)), essential, ms)

    return wait


def _sqlite_file() -> Path | None:
    """The SQLite database's file (as the engine resolved it), or None: a server database,
    or one in memory."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(url.database).resolve()


def _health_engine(app: Flask):
    """The engine the database check uses on a server: one without a pool whose connection
    gives up after the check's timeout (the application's pool would wait for the
    operating system's); the application's own for SQLite in memory."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        return db.engine
    engine = app.extensions.get(HEALTH_ENGINE)
    if engine is None:
        seconds = max(2, int(_timeout_s(app) + 0.999))  # libpq's smallest is 2 s
        engine = create_engine(url, poolclass=NullPool, hide_parameters=True,
                               connect_args={"connect_timeout": seconds})
        app.extensions[HEALTH_ENGINE] = engine
    return engine


def _sqlite_tables(path: Path) -> int:
    """How many tables the SQLite file holds, read through a new read-only connection: a
    pooled one keeps answering from a file deleted or overwritten under it, and the
    read-only mode never makes an empty file where the database is missing."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True,
                           timeout=_timeout_s(current_app))
    try:
        return conn.execute(TABLES_QUERY["sqlite"]).fetchone()[0]
    finally:
        conn.close()


def check_database() -> tuple[str, str]:
    """A query that reads the database's schema (`SELECT 1` reads no page of an SQLite
    file, so a garbage file would still answer it); down when it holds no tables."""
    path = _sqlite_file()
    if path is not None:
        tables = _sqlite_tables(path)
    else:
        with _health_engine(current_app).connect() as connection:
            tables = connection.execute(text(TABLES_QUERY[connection.dialect.name])) \
                .scalar_one()
    if tables == 0:
        return DOWN, WHY_NO_TABLES
    return OK, "Answers."


def check_redis() -> tuple[str, str]:
    """PING to the Redis server that joins the processes."""
    import redis

    client = redis.Redis.from_url(current_app.config["KIOSK_REDIS_URL"],
                                  socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return OK, "Answers."


def heartbeat_stamp() -> str:
    """Write that a job worker ran now (a periodic job): the job queue check reads it."""
    now = clock.utcnow()
    current_app.extensions[JOBS_EXTENSION].huey.put(HEARTBEAT_KEY, now.isoformat())
    return now.isoformat()


def check_jobs() -> tuple[str, str]:
    """The queue's storage answers, how many jobs wait, and whether a worker ran lately."""
    engine = current_app.extensions.get(JOBS_EXTENSION)
    if engine is None:
        return DOWN, "No job queue is set up."
    waiting = engine.huey.pending_count()
    stamp = engine.huey.get(HEARTBEAT_KEY, peek=True)
    jobs = f"{waiting} job{'s' if waiting != 1 else ''} waiting"
    if not stamp:
        return DEGRADED, f"{jobs}; no worker has reported yet."
    age = clock.utcnow() - clock.as_utc(datetime.fromisoformat(stamp))
    if age > HEARTBEAT_STALE:
        minutes = int(age.total_seconds() // 60)
        return DEGRADED, f"{jobs}; the workers last reported {minutes} minutes ago (stale)."
    return OK, f"{jobs}; a worker reported {max(0, int(age.total_seconds()))} s ago."


def _folders(app: Flask) -> list[Path]:
    folders = [Path(app.instance_path)]
    path = _sqlite_file()
    if path is not None and path.parent not in folders:
        folders.append(path.parent)
    return folders


def check_disk() -> tuple[str, str]:
    """Free space where the server writes (its instance folder, an SQLite database's)."""
    low_mb = float(current_app.config.get("KIOSK_STATUS_DISK_LOW_MB") or DISK_LOW_MB)
    free_mb = min(shutil.disk_usage(folder).free for folder in _folders(current_app)) / 2**20
    words = f"{free_mb / 1024:.1f} GB free" if free_mb >= 1024 else f"{free_mb:.0f} MB free"
    if free_mb < low_mb / 10:
        return DOWN, f"{words}: almost full."
    if free_mb < low_mb:
        return DEGRADED, f"{words}: low (below {low_mb:.0f} MB)."
    return OK, f"{words}."


def health_run(app: Flask, *, ready_only: bool = False) -> list[Check]:
    """Run the checks at once, each bounded in time; the answers in a fixed order.
    `ready_only`: only what the service cannot work without (the database, Redis)."""
    deadline = time.monotonic() + _timeout_s(app)
    probes = [("database", check_database, True)]
    if app.config.get("KIOSK_REDIS_URL"):
        probes.append(("redis", check_redis, True))
    if not ready_only:
        probes += [("jobs", check_jobs, False), ("disk", check_disk, False)]
    waits = [_run_bounded(app, name, probe, essential=essential, deadline=deadline)
             for name, probe, essential in probes]
    return [wait() for wait in waits]


def overall(checks: list[Check]) -> str:
    """down when something essential is down, degraded when anything is not ok, else ok."""
    if any(c.essential and c.state == DOWN for c in checks):
        return DOWN
    return DEGRADED if any(c.state != OK for c in checks) else OK
