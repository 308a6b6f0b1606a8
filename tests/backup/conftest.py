"""A clinic on an SQLite file of its own, with its own instance folder (the secret key)."""

import secrets
from pathlib import Path

import pytest

from tests.support.database import app_on_fresh_database

from .helpers import clinic_fill


def instance_make(app, folder: Path) -> Path:
    """Give `app` an instance folder of its own whose secret_key is the key it uses."""
    folder.mkdir(mode=0o700, exist_ok=True)
    app.instance_path = str(folder)
    (folder / "secret_key").write_text(app.config["SECRET_KEY"])
    return folder


@pytest.fixture
def sqlite_clinic(tmp_path):
    """An application on tmp/source.db holding the demo clinic and an archived PDF."""
    key = secrets.token_urlsafe(32)
    with app_on_fresh_database(None, tmp_path / "source.db", {"SECRET_KEY": key}) as app:
        clinic_fill()
        instance_make(app, tmp_path / "instance")
        yield app
