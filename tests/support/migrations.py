"""A newer release's migrations, for upgrade tests: the project's migrations/ folder copied
into a temporary directory with one more Alembic revision on top of its head, and the real
`kiosk db upgrade --directory <copy>` run against a database as a separate process.

    newer = newer_migrations(tmp_path)               # newer.directory, newer.revision
    kiosk_db_upgrade(server.process_env(), newer.directory, cwd=tmp_path)
    # or, for a KioskServer: server_db_upgrade(server, newer)
    assert database_revision(url) == newer.revision

The extra revision is harmless to the running application, as a release's first step of a
change is (docs/deployment.md, "Upgrading"): it creates a small table of its own and adds a
nullable column to `patients` that today's code neither reads nor writes.
"""

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from tests.support.server import ROOT, KioskServer, kiosk_executable, on_the_clock

MIGRATIONS = ROOT / "migrations"
NEWER_REVISION = "f18c0a7e5b01"
PROBE_TABLE = "upgrade_probes"
PROBE_COLUMN = "upgrade_note"  # added to `patients`, nullable
UPGRADE_TIMEOUT = 120

_REVISION_TEMPLATE = '''"""A newer release (upgrade tests): a table, a column on patients

Revision ID: {revision}
Revises: {head}
Create Date: 2027-01-01 00:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = {revision!r}
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table({table!r},
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_{table}'))
    )
    op.execute("INSERT INTO {table} (note) VALUES ('upgraded')")
    # A plain ADD COLUMN (no batch copy of the table on SQLite): what a release adds
    # while the previous release's processes still read and write the table.
    op.add_column('patients', sa.Column({column!r}, sa.String(length=80), nullable=True))


def downgrade():
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_column({column!r})
    op.drop_table({table!r})
'''


@dataclass(frozen=True)
class NewerMigrations:
    """A copy of migrations/ with one revision (`revision`) on top of the project's `head`."""

    directory: Path
    head: str
    revision: str


def migrations_head(directory: Path = MIGRATIONS) -> str:
    """The single head revision of a migrations folder."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory(str(directory)).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"{directory} has {len(heads)} heads: {heads}")
    return heads[0]


def newer_migrations(tmp_dir: Path) -> NewerMigrations:
    """Copy migrations/ into `tmp_dir`/migrations and add one newer revision on its head."""
    target = Path(tmp_dir) / "migrations"
    shutil.copytree(MIGRATIONS, target, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrations_head(target)
    script = _REVISION_TEMPLATE.format(revision=NEWER_REVISION, head=head, table=PROBE_TABLE,
                                       column=PROBE_COLUMN)
    (target / "versions" / f"{NEWER_REVISION}_newer_release.py").write_text(script)
    if migrations_head(target) != NEWER_REVISION:
        raise RuntimeError("the newer revision is not the copy's head")
    return NewerMigrations(directory=target, head=head, revision=NEWER_REVISION)


def kiosk_db_upgrade(env: dict[str, str], directory: Path | None = None, *,
                     cwd: Path | None = None, on_clock: bool = False) -> str:
    """Run the real `kiosk db upgrade` (with `--directory` when given) in a process of its
    own with `env` (its KIOSK_DATABASE_URL names the database); what it printed. With
    `on_clock`, the process reads this test's clock (KIOSK_CLOCK_START). Fails loudly."""
    argv = [kiosk_executable(), "db", "upgrade"]
    if directory is not None:
        argv += ["--directory", str(directory)]
    result = subprocess.run(argv, env=on_the_clock(env) if on_clock else env,
                            cwd=cwd or ROOT, capture_output=True, text=True,
                            timeout=UPGRADE_TIMEOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv[1:])}` failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def server_db_upgrade(server: KioskServer, newer: NewerMigrations | None = None) -> str:
    """`kiosk db upgrade` on `server`'s database (its environment and clock), to `newer`'s
    revision when given, else to the project's own head."""
    return kiosk_db_upgrade(server.process_env(), newer.directory if newer else None,
                            cwd=server.directory)


def database_revision(url: str) -> str | None:
    """The Alembic revision a database is at (None before any migration)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def newer_schema_present(url: str) -> bool:
    """Whether the newer revision's table and column are in the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            return found.has_table(PROBE_TABLE) and PROBE_COLUMN in {
                column["name"] for column in found.get_columns("patients")}
    finally:
        engine.dispose()
