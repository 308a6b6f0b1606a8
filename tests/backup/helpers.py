"""Shared by the backup tests: a clinic with real data, every table's rows, a writer that
keeps writing while a backup runs."""

import hashlib
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from kiosk.core import clock
from kiosk.demo import demo_build
from kiosk.documents.models import DOC_READY
from kiosk.documents.services import document_queue
from kiosk.extensions import db
from kiosk.patients.models import Patient

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def clinic_fill() -> None:
    """The demo clinic, and an archived PDF (binary data) for one of its patients."""
    demo_build()
    db.session.flush()
    patient = db.session.scalars(db.select(Patient).order_by(Patient.id)).first()
    document = document_queue(patient=patient, kind="form", source_uid=None, title="Consent",
                              html="<h1>Consent</h1>")
    document.pdf, document.status = PDF, DOC_READY
    document.sha256 = hashlib.sha256(PDF).hexdigest()
    document.ready_at = clock.utcnow()
    db.session.commit()


def table_rows(url: str) -> dict[str, list]:
    """Every table's rows, sorted (the comparison of a restore with its source)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names()
            return {name: sorted((tuple(row) for row in conn.execute(
                text(f'SELECT * FROM "{name}"'))), key=repr) for name in names}
    finally:
        engine.dispose()


def audit_insert(conn, note: str) -> None:
    """One audit row, as the application writes them."""
    conn.execute(text("INSERT INTO audit_entries (at, action, entity, entity_uid, detail) "
                      "VALUES (:at, 'backup.test', 'test', :note, '{}')"),
                 {"at": clock.utcnow().replace(tzinfo=None), "note": note})


class Writer:
    """A connection of its own that keeps committing audit rows until stopped."""

    def __init__(self, url: str):
        self.engine = create_engine(url, poolclass=NullPool)
        self.stop = threading.Event()
        self.written = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                with self.engine.begin() as conn:
                    audit_insert(conn, f"w{self.written}")
                self.written += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            self.failed = exc

    failed: Exception | None = None

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while self.written < 20 and self.failed is None and time.monotonic() < deadline:
            self.stop.wait(0.01)  # writing before the backup starts
        assert self.written >= 20, f"the writer did not write: {self.failed!r}"
        self.before = self.written
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        self.engine.dispose()
        assert self.failed is None, f"the writer failed: {self.failed!r}"


def _writer_note(row) -> int | None:
    """The number of a Writer's row (its note "w12"), None for any other row."""
    if "backup.test" not in row:
        return None
    note = next((v for v in row if isinstance(v, str) and v[:1] == "w" and v[1:].isdigit()),
                None)
    return int(note[1:]) if note else -1


def snapshot_matches(source: dict, restored: dict, manifest: dict) -> None:
    """The restored database is the source as it stood at one moment: every table equal;
    of audit_entries (written on meanwhile), the rows made before, and the Writer's rows up
    to some moment, w0…wk, none missing (its commits come one after another)."""
    assert sorted(restored) == sorted(source)
    for name in source:
        if name != "audit_entries":
            assert restored[name] == source[name], name
        assert len(restored[name]) == manifest["tables"][name], name
    rows = restored["audit_entries"]
    assert all(row in source["audit_entries"] for row in rows)
    assert [r for r in rows if "backup.test" not in r] == \
        [r for r in source["audit_entries"] if "backup.test" not in r]
    written = sorted(n for n in map(_writer_note, rows) if n is not None and n >= 0)
    assert written == list(range(len(written))) and len(written) >= 20


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}
