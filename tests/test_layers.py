"""kiosk.core imports no feature: the features register what it needs at start-up (who a
session is, upkeep jobs), and the boards ask the features above them through a registry.
These tests show core and the boards use what was registered, and refuse what was not."""

import pytest

from kiosk.core import auth, upkeep
from kiosk.whiteboards import sources


def test_upkeep_runs_every_job_the_features_registered(app, monkeypatch):
    monkeypatch.setitem(upkeep._jobs, "checked", lambda: 7)
    assert upkeep.upkeep_run() == {"checked": 7, "tasks_created": 0}


def test_who_is_signed_in_comes_from_the_registered_loader(app, clinic, client, login,
                                                            monkeypatch):
    login(clinic.user(4))
    assert client.get("/patients/").status_code == 200
    monkeypatch.setitem(auth._loaders, "sign_in", lambda key, user_id: (None, None))
    answer = client.get("/patients/")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_a_loader_core_does_not_know_is_refused(app):
    with pytest.raises(ValueError):
        auth.auth_loader_register("printer", lambda _id: None)
    assert set(auth._loaders) == {"sign_in", "device"}


def test_the_boards_say_when_a_source_is_missing_and_refuse_unknown_ones(app, monkeypatch):
    monkeypatch.delitem(sources._sources, "pending")
    with pytest.raises(RuntimeError, match="no board source 'pending' is registered"):
        sources.board_source("pending", [])
    with pytest.raises(ValueError):
        sources.board_source_register("colour", lambda patients: {})
    assert "colour" not in sources._sources
