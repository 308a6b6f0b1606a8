"""A clinic's database from an earlier release is upgraded by the real `kiosk db upgrade`
with every row kept (tests/sync/recorded holds each release's demo database as SQL)."""

import gzip
import os
import sqlite3

import pytest

from ..support.migrations import database_revision, kiosk_db_upgrade, migrations_head
from ..support.server import ROOT

RECORDED = ROOT / "tests" / "sync" / "recorded"
RELEASES = sorted(path.name.removesuffix(".sql.gz") for path in RECORDED.glob("*.sql.gz"))

pytestmark = pytest.mark.servers  # a real `kiosk` process on a database of its own


def counts(conn) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'alembic_version'")]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names}


@pytest.mark.parametrize("release", RELEASES)
def test_an_earlier_release_s_database_upgrades_keeping_every_row(release, tmp_path):
    path = tmp_path / "clinic.db"
    conn = sqlite3.connect(path)
    conn.executescript(gzip.decompress((RECORDED / f"{release}.sql.gz").read_bytes()).decode())
    before = counts(conn)
    conn.close()
    env = {**os.environ, "KIOSK_DATABASE_URL": f"sqlite:///{path}"}
    env.pop("KIOSK_REDIS_URL", None)

    kiosk_db_upgrade(env, cwd=tmp_path)

    assert database_revision(f"sqlite:///{path}") == migrations_head()
    conn = sqlite3.connect(path)
    after = counts(conn)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
    assert {name: after[name] for name in before} == before
