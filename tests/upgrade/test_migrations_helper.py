"""The newer release's migrations folder and the real `kiosk db upgrade` that applies it."""

import os

import pytest

from ..support.migrations import (
    NEWER_REVISION,
    database_revision,
    kiosk_db_upgrade,
    migrations_head,
    newer_migrations,
    newer_schema_present,
)

pytestmark = pytest.mark.servers  # real `kiosk` processes on databases of their own


def test_the_copy_has_one_newer_head_and_the_project_is_untouched(tmp_path):
    head = migrations_head()

    newer = newer_migrations(tmp_path)

    assert newer.head == head
    assert migrations_head(newer.directory) == NEWER_REVISION
    assert migrations_head() == head  # the project's own folder gained nothing


def test_kiosk_db_upgrade_takes_a_database_to_the_newer_revision(tmp_path,
                                                                  fresh_database_url):
    newer = newer_migrations(tmp_path)
    env = {**os.environ, "KIOSK_DATABASE_URL": fresh_database_url}
    env.pop("KIOSK_REDIS_URL", None)

    kiosk_db_upgrade(env, cwd=tmp_path)
    assert database_revision(fresh_database_url) == newer.head
    assert not newer_schema_present(fresh_database_url)

    kiosk_db_upgrade(env, newer.directory, cwd=tmp_path, on_clock=True)
    assert database_revision(fresh_database_url) == NEWER_REVISION
    assert newer_schema_present(fresh_database_url)

    kiosk_db_upgrade(env, newer.directory, cwd=tmp_path)  # again: nothing to do, no error
    assert database_revision(fresh_database_url) == NEWER_REVISION
