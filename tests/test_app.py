"""The application as a whole: configuration, CSRF, migrations, the command line."""

import json
import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text

from kiosk import create_app
from kiosk.devices.models import Device
from kiosk.devices.services import token_hash
from kiosk.extensions import db
from kiosk.staff.models import User


def test_sqlite_has_wal_and_foreign_keys(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("KIOSK_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    monkeypatch.setenv("KIOSK_TIMEZONE", "Australia/Sydney")
    monkeypatch.setenv("KIOSK_SECRET_KEY", "from-env")
    app = create_app("testing")
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("env.db")
    assert app.config["KIOSK_TIMEZONE"] == "Australia/Sydney"
    assert app.config["SECRET_KEY"] == "from-env"


def test_default_database_and_secret_live_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("KIOSK_DATABASE_URL", raising=False)
    monkeypatch.delenv("KIOSK_SECRET_KEY", raising=False)
    app = create_app("default", {"SECRET_KEY": None})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == \
        f"sqlite:///{os.path.join(app.instance_path, 'kiosk.db')}"
    secret_file = os.path.join(app.instance_path, "secret_key")
    assert app.config["SECRET_KEY"] == open(secret_file).read().strip()
    assert os.stat(secret_file).st_mode & 0o077 == 0


def test_csrf_is_enforced_on_forms(clinic, tmp_path):
    app = create_app("testing", {"WTF_CSRF_ENABLED": True,
                                 "SQLALCHEMY_DATABASE_URI": db.engine.url.render_as_string(
                                     hide_password=False)})
    client = app.test_client()
    response = client.post("/login", data={"username": "user6", "password": "password-6"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/login", data={"username": "user6", "password": "password-6",
                                           "csrf_token": token})
    assert response.status_code == 302


def test_every_page_needs_sign_in(clinic, client, app):
    open_endpoints = {"static", "staff.login", "staff.login_post", "staff.login_pin",
                      "staff.logout", "staff.home", "devices.display",
                      "tablet.setup", "tablet.service_worker",
                      # A one-time pairing code is the credential (tests/devices).
                      "tablet.pair_page", "tablet.pair",
                      # A signed client portal link is the credential (tests/portal).
                      "portal.page", "portal.form_page", "portal.form_submit",
                      # The provider's signature is the credential (tests/messaging:
                      # an unsigned request is refused with 403, changing nothing).
                      "messaging_callbacks.status", "messaging_callbacks.inbound",
                      # Times and a message only, like the status page (tests/maintenance).
                      "maintenance.banner",
                      # Health and the status page are public, with nothing clinical; a
                      # signed link is the credential for the rest (tests/status).
                      "status.healthz", "status.readyz", "status.page", "status.page_json",
                      "status.confirm", "status.confirm_post", "status.unsubscribe",
                      "status.unsubscribe_post"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in open_endpoints:
            continue
        url = rule.rule.replace("<int:", "<").replace("<", "").replace(">", "")
        ids = {"board_id", "uid", "patient_id", "ward_id", "user_id", "device_id", "op_id"}
        url = "/".join("1" if part in ids else part for part in url.split("/"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method)
            assert response.status_code in (302, 401), (rule.rule, method, response.status_code)


def test_migrations_match_the_models(server_database, tmp_path):
    url = server_database or f"sqlite:///{tmp_path / 'migrated.db'}"
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        if server_database:
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=app.extensions["migrate"].directory)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == []
        if server_database:  # leave the schema the other tests expect
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(text("DROP TABLE alembic_version"))
            db.create_all()


def kiosk_cli(*args, env_db):
    env = {**os.environ, "KIOSK_DATABASE_URL": env_db, "KIOSK_SECRET_KEY": "cli-test"}
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_command_line_contract(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert kiosk_cli("db", "upgrade", env_db=url).returncode == 0
    added = kiosk_cli("users", "add", "--name", "Ann", "--level", "3", "--pin", "4321",
                      env_db=url)
    assert added.returncode == 0, added.stderr
    user = json.loads(added.stdout.strip().splitlines()[-1])
    assert user["id"].startswith("u_")
    bad = kiosk_cli("users", "add", "--name", "Bob", "--level", "9", "--pin", "4321",
                    env_db=url)
    assert bad.returncode != 0 and "Level must be between 1 and 6." in bad.stderr
    device = kiosk_cli("devices", "add", "--name", "Ward tablet", "--colour", "blue",
                       env_db=url)
    assert device.returncode == 0, device.stderr
    info = json.loads(device.stdout.strip().splitlines()[-1])
    assert info["id"].startswith("d_") and len(info["token"]) >= 32
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(select(Device.token_hash)).scalar()
        users = conn.execute(select(func.count()).select_from(User)).scalar()
    assert stored == token_hash(info["token"]) and info["token"] not in stored
    assert users == 1
    paired = kiosk_cli("devices", "pair", info["id"], env_db=url)
    assert paired.returncode == 0, paired.stderr
    code = json.loads(paired.stdout.strip().splitlines()[-1])
    assert code["id"] == info["id"] and len(code["code"]) == 9 and code["code"][4] == "-"
    missing = kiosk_cli("devices", "pair", "d_99", env_db=url)
    assert missing.returncode != 0 and "There is no device d_99" in missing.stderr
    upkeep = kiosk_cli("upkeep", env_db=url)
    assert upkeep.returncode == 0, upkeep.stderr
    assert json.loads(upkeep.stdout.strip().splitlines()[-1]) == {"tasks_created": 0}


def test_demo_clinic_builds(app):
    from kiosk.demo import demo_build
    from kiosk.patients.models import Patient
    from kiosk.treatments.models import Task

    demo_build()
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Patient)) == 25
    statuses = set(db.session.scalars(select(Task.status)))
    assert {"done", "scheduled", "skipped"} <= statuses


def test_pages_carry_protective_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
