"""A real Kiosk server for browser, live-update and kill tests, benchmarks and screenshots:
temp SQLite, demo clinic, free port.

    with KioskServer(tmp_dir) as server:
        server.base_url  # http://127.0.0.1:<port>

Several servers may share one database and one secret (live-update tests, benchmarks):

    first = KioskServer(tmp_dir, name="a", env={"KIOSK_REDIS_URL": url, ...})
    second = KioskServer(tmp_dir, name="b", env={**first.shared_env(), ...})
    first.prepare(); first.start(); second.start()

`kiosk run` serves through gunicorn itself (one gthread worker); `gunicorn_threads` starts
gunicorn on wsgi:app instead (`-k gthread -w 1`), as a group of processes runs it.

Also runnable as `python tests/support/server.py crowd <count>` (with KIOSK_DATABASE_URL set)
to add a ward whose board has more patients than a 1080p screen shows at once.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CROWDED_WARD = "Overflow"
START_TIMEOUT = 30.0


def on_the_clock(env: dict[str, str]) -> dict[str, str]:
    """`env` for a process started now, its clock set to this process's clock (which a test
    may hold, or KIOSK_CLOCK_START may have started): the two then agree on the time."""
    from kiosk.core import clock

    return {**env, "KIOSK_CLOCK_START": clock.utcnow_exact().isoformat()}


def kiosk_executable() -> str:
    """The `kiosk` command of this interpreter's environment (else the one on PATH)."""
    beside = Path(sys.executable).parent / "kiosk"
    if beside.exists():
        return str(beside)
    found = shutil.which("kiosk")
    if found is None:
        raise RuntimeError("The `kiosk` command is not installed (pip install -e .).")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def csrf_token_in(html: str) -> str:
    """The CSRF token of a page: its hidden form field, or the header htmx sends."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    if found is None:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


class KioskServer:
    """`kiosk db upgrade`, `kiosk demo`, then `kiosk run` on a free port until stopped
    (`kiosk run` is gunicorn's master and its one worker, which dies with it).

    With `run_demo`, a single `kiosk run --demo` makes the schema and the demo clinic.
    """

    def __init__(self, directory: Path, *, crowded: int = 0, run_demo: bool = False,
                 name: str = "server", env: dict[str, str | None] | None = None,
                 gunicorn_threads: int = 0):
        self.directory = Path(directory)
        self.crowded = crowded
        self.run_demo = run_demo
        self.gunicorn_threads = gunicorn_threads
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.directory / f"{name}.log"
        self.env = {**os.environ,
                    "KIOSK_DATABASE_URL": f"sqlite:///{self.directory / 'e2e.db'}",
                    "KIOSK_SECRET_KEY": secrets.token_urlsafe(32),
                    "KIOSK_TIMEZONE": os.environ.get("KIOSK_E2E_TIMEZONE", "UTC"),
                    # Every browser of a test signs in from 127.0.0.1; the per-address
                    # limit itself is tested in tests/staff/test_guessing.py.
                    "KIOSK_SIGN_IN_LIMIT": "600 per minute",
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("KIOSK_REDIS_URL", None)
        if gunicorn_threads:  # the database pool follows the thread count, as documented
            self.env["KIOSK_THREADS"] = str(gunicorn_threads)
        for key, value in (env or {}).items():  # None removes a variable
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = value
        self.clock = None  # with KIOSK_CLOCK_START: the one clock of this server's processes
        if self.env.get("KIOSK_CLOCK_START", "").strip():
            from kiosk.core.clock import running_from

            start = self.env["KIOSK_CLOCK_START"].strip().replace("Z", "+00:00")
            self.clock = running_from(datetime.fromisoformat(start))
        self.process: subprocess.Popen | None = None

    def now(self) -> datetime:
        """This server's time now (its own clock with KIOSK_CLOCK_START, else the one
        clock), aware, in UTC."""
        from kiosk.core import clock

        return self.clock() if self.clock is not None else clock.utcnow()

    def now_z(self) -> str:
        """This server's time now as YYYY-MM-DDTHH:MM:SSZ: what a tablet would stamp an
        op with."""
        from kiosk.core.clock import format_iso_z

        return format_iso_z(self.now())

    def process_env(self) -> dict[str, str]:
        """The environment of a process started now. With KIOSK_CLOCK_START, the start moves
        on with this server's clock, so the demo, the server and every command read one clock
        begun when this server was made, instead of each process starting over at that
        instant (a demo made after midnight read by a server put back before it)."""
        if self.clock is None:
            return self.env
        return {**self.env, "KIOSK_CLOCK_START": self.clock().isoformat()}

    def shared_env(self) -> dict[str, str]:
        """The variables a second server needs to share this one's database and sessions."""
        shared = {key: self.env[key] for key in
                  ("KIOSK_DATABASE_URL", "KIOSK_SECRET_KEY", "KIOSK_TIMEZONE")}
        if self.clock is not None:  # and its clock
            shared["KIOSK_CLOCK_START"] = self.process_env()["KIOSK_CLOCK_START"]
        return shared

    def database_path(self) -> Path:
        """The SQLite file this server uses."""
        url = self.env["KIOSK_DATABASE_URL"]
        if not url.startswith("sqlite:///"):
            raise RuntimeError(f"not an SQLite database: {url}")
        return Path(url.removeprefix("sqlite:///"))

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows of a read-only query on the server's SQLite file (to pick test data)."""
        import sqlite3

        conn = sqlite3.connect(f"file:{self.database_path()}?mode=ro", uri=True, timeout=15)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def signed_in(self, username: str, password: str):
        """A `requests` session signed in through the password form (with its CSRF token)."""
        import requests

        session = requests.Session()
        page = session.get(f"{self.base_url}/login", timeout=10)
        page.raise_for_status()
        response = session.post(f"{self.base_url}/login", timeout=10, data={
            "csrf_token": csrf_token_in(page.text), "username": username,
            "password": password})
        if response.status_code != 200 or not response.history:
            raise RuntimeError(f"signing in as {username} failed ({response.status_code})")
        session.headers["X-CSRFToken"] = csrf_token_in(response.text)
        return session

    def kiosk(self, *args: str) -> str:
        """Run a `kiosk` command on this server's database; what it printed."""
        return self._command(*args)

    def _server_argv(self) -> list[str]:
        if self.gunicorn_threads:
            if self.run_demo:
                raise RuntimeError("gunicorn cannot make the demo clinic: prepare() it")
            return [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT), "-k", "gthread",
                    "-w", "1", "--threads", str(self.gunicorn_threads),
                    "-b", f"127.0.0.1:{self.port}", *self._gunicorn_own_socket(), "wsgi:app"]
        demo = ["--demo"] if self.run_demo else []
        return [kiosk_executable(), "run", "--host", "127.0.0.1", "--port", str(self.port),
                *demo]

    def _command(self, *args: str) -> str:
        result = subprocess.run([kiosk_executable(), *args], env=self.process_env(),
                                cwd=self.directory, capture_output=True, text=True,
                                timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"`kiosk {' '.join(args)}` failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")
        return result.stdout

    def prepare(self) -> None:
        """The schema, the demo clinic and, when asked, a crowded ward board."""
        if self.run_demo:
            return
        self._command("db", "upgrade")
        self._command("demo")
        if self.crowded:
            result = subprocess.run([sys.executable, __file__, "crowd", str(self.crowded)],
                                    env=self.process_env(), cwd=ROOT, capture_output=True,
                                    text=True, timeout=120, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"adding the crowded ward failed:\n{result.stderr}")

    def _gunicorn_own_socket(self) -> list[str]:
        """Newer gunicorns open a control socket in the home folder; one per server here."""
        from gunicorn.config import KNOWN_SETTINGS

        if any(setting.name == "control_socket" for setting in KNOWN_SETTINGS):
            return ["--control-socket", str(self.log_path.with_suffix(".ctl"))]
        return []

    def start(self) -> None:
        """Start `kiosk run` (or gunicorn) and wait until the sign-in page answers."""
        log = self.log_path.open("w")
        self.process = subprocess.Popen(self._server_argv(), env=self.process_env(),
                                        cwd=self.directory, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n"
                                   + self.log_text())
            try:
                with urllib.request.urlopen(self.base_url + "/login", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer within {START_TIMEOUT:.0f} s:\n"
                           + self.log_text())

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop within ten seconds)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "KioskServer":
        self.prepare()
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def serving(server: KioskServer):
    """For fixtures: prepare and start `server`, yield it, stop it. A server that cannot
    start fails the test, with what it printed."""
    import pytest  # here: benchmarks and screenshots use this module without pytest

    try:
        server.prepare()
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def crowd(count: int) -> None:
    """Add a ward, its board and `count` admitted patients with hourly and 4-hourly orders."""
    sys.path.insert(0, str(ROOT))
    from datetime import timedelta

    from sqlalchemy import select

    from kiosk import create_app
    from kiosk.clinic.models import Ward
    from kiosk.core.clock import hour_floor, utcnow, zone
    from kiosk.extensions import db
    from kiosk.patients.services import patient_create
    from kiosk.staff.models import User
    from kiosk.treatments.services import order_create
    from kiosk.whiteboards.models import Board

    app = create_app()
    with app.app_context():
        vet = db.session.scalar(select(User).where(User.username == "vet"))
        ward = Ward(name=CROWDED_WARD, code="OVF")
        db.session.add(ward)
        db.session.flush()
        db.session.add(Board(name=f"{CROWDED_WARD} board", kind="ward", ward_id=ward.id,
                             position=20))
        now = utcnow()
        start = hour_floor(now, zone("UTC")) - timedelta(hours=2)
        for index in range(count):
            patient = patient_create(user=vet, origin="pims", data={
                "name": f"Overflow {index + 1}", "species": "canine", "ward": ward,
                "cage": f"O{index + 1}", "pims_id": f"OVF-{index + 1}"})
            for name, every in (("Hartmann's", 1), ("Temperature", 4)):
                kind = "fluid" if every == 1 else "observation"
                order_create(user=vet, patient=patient, now=now,
                             data={"name": name, "kind": kind, "every_hours": every,
                                   "start": start})
        db.session.commit()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "crowd":
        crowd(int(sys.argv[2]))
    else:
        sys.exit("usage: server.py crowd <count>")
