"""The admin pages: who may open them, what they show, and forms that say what is wrong."""

import re

import pytest
from flask import url_for
from sqlalchemy import select

from kiosk.clinic.models import ClinicSettings, Ward
from kiosk.clinic.selectors import settings_get
from kiosk.discharge.services import patient_discharge
from kiosk.extensions import db
from kiosk.staff.models import User
from kiosk.staff.services import user_create
from kiosk.whiteboards.models import Board, BoardMember
from kiosk.whiteboards.services import board_create, board_member_add

from ..factories import patient_make
from .helpers import audit_count, count, fresh

SETTINGS_FORM = {"name": "Riverside Vets", "timezone": "Europe/Paris", "board_hours_back": "1",
                 "board_hours_ahead": "8", "due_grace_minutes": "10",
                 "board_rotate_seconds": "20", "allow_direct_patient_creation": "1"}


def _url(app, endpoint, **values):
    with app.test_request_context():
        return url_for(endpoint, **values)


def _pages(app, clinic):
    """Every admin page (GET) and form target (POST)."""
    board = clinic.board.id
    ward = clinic.ward.id
    user = clinic.user(2).id
    gets = [("admin.index", {}), ("admin.settings", {}), ("admin.staff", {}),
            ("admin.staff_new", {}), ("admin.staff_edit", {"user_id": user}),
            ("admin.wards", {}), ("admin.ward_edit", {"ward_id": ward}),
            ("admin.boards", {}), ("admin.board_edit", {"board_id": board})]
    posts = [("admin.settings_save", {}), ("admin.staff_create", {}),
             ("admin.staff_update", {"user_id": user}), ("admin.staff_pin", {"user_id": user}),
             ("admin.staff_password", {"user_id": user}), ("admin.ward_add", {}),
             ("admin.ward_save", {"ward_id": ward}), ("admin.ward_remove", {"ward_id": ward}),
             ("admin.board_add", {}), ("admin.board_save", {"board_id": board}),
             ("admin.board_remove", {"board_id": board}),
             ("admin.board_member_new", {"board_id": board}),
             ("admin.board_member_delete", {"board_id": board, "uid": "x"})]
    return ([_url(app, e, **v) for e, v in gets], [_url(app, e, **v) for e, v in posts])


def test_level_5_gets_403_with_the_reason_on_every_admin_page(app, client, clinic, login):
    login(clinic.user(5))
    gets, posts = _pages(app, clinic)
    audits, wards, boards = audit_count(), count(Ward), count(Board)
    for url in gets:
        response = client.get(url)
        assert response.status_code == 403, url
        assert "You need level 6" in response.text, url
        assert "you are level 5" in response.text, url
    for url in posts:
        response = client.post(url, data={"name": "Hacked", "level": "6", "pin": "1111"})
        assert response.status_code == 403, url
    assert (audit_count(), count(Ward), count(Board)) == (audits, wards, boards)
    assert fresh(clinic.user(2)).name == "Level 2"
    assert fresh(clinic.settings).name == "Test Hospital"


def test_signed_out_visitors_are_sent_to_sign_in(app, client, clinic):
    response = client.get(_url(app, "admin.staff"))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_index_links_to_every_admin_page(app, client, clinic, login):
    login(clinic.user(6))
    response = client.get(_url(app, "admin.index"))
    assert response.status_code == 200
    for endpoint in ("admin.settings", "admin.staff", "admin.wards", "admin.boards"):
        assert f'href="{_url(app, endpoint)}"' in response.text


# Settings

def test_settings_page_shows_the_current_values(app, client, clinic, login):
    login(clinic.user(6))
    response = client.get(_url(app, "admin.settings"))
    assert response.status_code == 200
    assert 'value="Test Hospital"' in response.text
    assert 'name="board_hours_ahead" value="10"' in response.text
    assert re.search(r'name="allow_direct_patient_creation" value="1"\s+checked', response.text)
    assert 'name="csrf_token"' in response.text


def test_settings_save(app, client, clinic, login):
    login(clinic.user(6))
    response = client.post(_url(app, "admin.settings_save"),
                           data={**SETTINGS_FORM, "allow_direct_patient_creation": None})
    assert response.status_code == 302
    row = fresh(clinic.settings)
    assert (row.name, row.timezone, row.board_hours_back, row.board_hours_ahead,
            row.due_grace_minutes, row.board_rotate_seconds) == (
        "Riverside Vets", "Europe/Paris", 1, 8, 10, 20)
    assert row.allow_direct_patient_creation is False
    assert "Settings saved." in client.get(response.headers["Location"]).text


def test_settings_save_creates_the_row_on_a_new_clinic(app, client, login):
    manager = user_create(name="Boss", level=6, pin="123456")
    db.session.commit()
    login(manager)
    assert client.get(_url(app, "admin.settings")).status_code == 200
    response = client.post(_url(app, "admin.settings_save"), data=SETTINGS_FORM)
    assert response.status_code == 302
    row = db.session.scalars(select(ClinicSettings)).one()
    assert (row.name, row.allow_direct_patient_creation) == ("Riverside Vets", True)


def _settings_values():
    db.session.expire_all()
    row = settings_get()
    return {key: getattr(row, key) for key in SETTINGS_FORM}


def test_invalid_time_zone_redisplays_the_form(app, client, clinic, login):
    login(clinic.user(6))
    before, audits = _settings_values(), audit_count()
    response = client.post(_url(app, "admin.settings_save"),
                           data={**SETTINGS_FORM, "timezone": "Europe/Atlantis"})
    assert response.status_code == 422
    assert "Unknown time zone “Europe/Atlantis”." in response.text
    assert 'id="timezone-error"' in response.text
    assert 'value="Europe/Atlantis"' in response.text  # what was typed stays in the form
    assert 'value="Riverside Vets"' in response.text
    assert _settings_values() == before
    assert audit_count() == audits


@pytest.mark.parametrize(("field", "value", "message"), [
    ("board_hours_back", "13", "Board hours back must be between 0 and 12."),
    ("board_hours_ahead", "0", "Board hours ahead must be between 1 and 24."),
    ("due_grace_minutes", "500", "Due grace window (minutes) must be between 0 and 120."),
    ("board_rotate_seconds", "1", "Board rotate (seconds) must be between 5 and 300."),
])
def test_out_of_range_numbers_redisplay_the_form(app, client, clinic, login, field, value,
                                                 message):
    login(clinic.user(6))
    before = _settings_values()
    response = client.post(_url(app, "admin.settings_save"), data={**SETTINGS_FORM, field: value})
    assert response.status_code == 422
    assert message in response.text
    assert f'id="{field}-error"' in response.text
    assert _settings_values() == before


# Staff

def test_staff_list_shows_level_active_and_pin(app, client, clinic, login):
    login(clinic.user(6))
    pin_less = user_create(name="Desk Only", level=3, username="desk", password="desk-password")
    pin_less.active = False
    db.session.commit()
    response = client.get(_url(app, "admin.staff"))
    assert response.status_code == 200
    row = response.text.split(f'id="user-{pin_less.id}"')[1].split("</tr>")[0]
    assert "Desk Only" in row and "desk" in row and "Deactivated" in row and "No PIN" in row
    row = response.text.split(f'id="user-{clinic.user(4).id}"')[1].split("</tr>")[0]
    assert "Level 4" in row and "Active" in row and "Has PIN" in row


def test_add_a_user_whose_name_holds_a_script_tag(app, client, clinic, login):
    login(clinic.user(6))
    name = "<script>alert(1)</script>"
    response = client.post(_url(app, "admin.staff_create"),
                           data={"name": name, "level": "2", "pin": "2580"})
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.name == name))
    assert user.level == 2 and user.pin_hash
    page = client.get(response.headers["Location"]).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    edit = client.get(_url(app, "admin.staff_edit", user_id=user.id)).text
    assert "<script>alert(1)</script>" not in edit


def test_add_a_user_without_a_way_to_sign_in_is_refused(app, client, clinic, login):
    login(clinic.user(6))
    users, audits = count(User), audit_count()
    response = client.post(_url(app, "admin.staff_create"),
                           data={"name": "Nobody", "level": "2", "pin": "", "username": "",
                                 "password": ""})
    assert response.status_code == 422
    assert "Give the user a PIN or a username and password, or both." in response.text
    assert 'value="Nobody"' in response.text
    assert (count(User), audit_count()) == (users, audits)


def test_add_a_user_with_a_taken_username_is_refused(app, client, clinic, login):
    login(clinic.user(6))
    users = count(User)
    response = client.post(_url(app, "admin.staff_create"),
                           data={"name": "Twin", "level": "2", "username": "user3",
                                 "password": "long-enough-secret"})
    assert response.status_code == 422
    assert 'id="username-error"' in response.text
    assert "That username is taken." in response.text
    assert "long-enough-secret" not in response.text
    assert count(User) == users


def test_edit_a_user(app, client, clinic, login):
    login(clinic.user(6))
    user = clinic.user(2)
    page = client.get(_url(app, "admin.staff_edit", user_id=user.id))
    assert page.status_code == 200 and 'value="Level 2"' in page.text
    response = client.post(_url(app, "admin.staff_update", user_id=user.id),
                           data={"name": "Leo", "level": "4"})
    assert response.status_code == 302
    user = fresh(user)
    assert (user.name, user.level, user.active) == ("Leo", 4, False)  # box left unticked
    client.post(_url(app, "admin.staff_update", user_id=user.id),
                data={"name": "Leo", "level": "4", "active": "1"})
    assert fresh(user).active is True


def test_last_manager_cannot_demote_self(app, client, clinic, login):
    me = login(clinic.user(6))
    audits = audit_count()
    response = client.post(_url(app, "admin.staff_update", user_id=me.id),
                           data={"name": "Level 6", "level": "5", "active": "1"})
    assert response.status_code == 422
    assert "You are the last active manager (level 6)" in response.text
    assert 'id="level-error"' in response.text
    me = fresh(me)
    assert (me.level, me.active) == (6, True)
    assert audit_count() == audits


def test_last_manager_cannot_deactivate_self(app, client, clinic, login):
    me = login(clinic.user(6))
    response = client.post(_url(app, "admin.staff_update", user_id=me.id),
                           data={"name": "Level 6", "level": "6"})
    assert response.status_code == 422
    assert 'id="active-error"' in response.text
    assert fresh(me).active is True


def test_reset_pin_and_set_password(app, client, clinic, login):
    login(clinic.user(6))
    user = clinic.user(2)
    old_pin, old_password = user.pin_hash, user.password_hash
    response = client.post(_url(app, "admin.staff_pin", user_id=user.id), data={"pin": "8642"})
    assert response.status_code == 302
    response = client.post(_url(app, "admin.staff_password", user_id=user.id),
                           data={"username": "leo", "password": "a-new-password"})
    assert response.status_code == 302
    user = fresh(user)
    assert user.pin_hash != old_pin and user.password_hash != old_password
    assert user.username == "leo"


def test_bad_pin_and_short_password_are_refused(app, client, clinic, login):
    login(clinic.user(6))
    user = clinic.user(2)
    before = (user.pin_hash, user.password_hash, user.username)
    response = client.post(_url(app, "admin.staff_pin", user_id=user.id), data={"pin": "12"})
    assert response.status_code == 422
    assert 'id="pin-error"' in response.text and "A PIN is 4 to 6 digits." in response.text
    response = client.post(_url(app, "admin.staff_password", user_id=user.id),
                           data={"username": "leo", "password": "short"})
    assert response.status_code == 422
    assert 'id="password-error"' in response.text
    user = fresh(user)
    assert (user.pin_hash, user.password_hash, user.username) == before


def test_unknown_user_is_404(app, client, clinic, login):
    login(clinic.user(6))
    assert client.get(_url(app, "admin.staff_edit", user_id=999)).status_code == 404


# Wards

def test_add_a_ward_makes_its_board(app, client, clinic, login):
    login(clinic.user(6))
    response = client.post(_url(app, "admin.ward_add"), data={"name": "Surgery", "code": "S"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert "Surgery" in page and "Ward Surgery added, with its board." in page
    ward = db.session.scalar(select(Ward).where(Ward.name == "Surgery"))
    assert db.session.scalar(select(Board.name).where(Board.ward_id == ward.id)) \
        == "Surgery board"


def test_duplicate_ward_name_is_refused(app, client, clinic, login):
    login(clinic.user(6))
    wards, boards, audits = count(Ward), count(Board), audit_count()
    response = client.post(_url(app, "admin.ward_add"), data={"name": "icu", "code": ""})
    assert response.status_code == 422
    assert "There is already a ward called “icu”." in response.text
    assert 'id="name-error"' in response.text
    assert (count(Ward), count(Board), audit_count()) == (wards, boards, audits)


def test_ward_names_are_escaped(app, client, clinic, login):
    login(clinic.user(6))
    client.post(_url(app, "admin.ward_add"), data={"name": "<b>Zoo</b>"})
    page = client.get(_url(app, "admin.wards")).text
    assert "<b>Zoo</b>" not in page and "&lt;b&gt;Zoo&lt;/b&gt;" in page


def test_rename_a_ward(app, client, clinic, login):
    login(clinic.user(6))
    response = client.post(_url(app, "admin.ward_save", ward_id=clinic.ward.id),
                           data={"name": "Critical care", "code": "CC"})
    assert response.status_code == 302
    assert fresh(clinic.ward).name == "Critical care"
    assert fresh(clinic.board).name == "Critical care board"


def test_rename_a_ward_to_a_taken_name(app, client, clinic, login):
    login(clinic.user(6))
    other = Ward(name="Surgery")
    db.session.add(other)
    db.session.commit()
    response = client.post(_url(app, "admin.ward_save", ward_id=other.id),
                           data={"name": "ICU"})
    assert response.status_code == 422
    assert "There is already a ward called “ICU”." in response.text
    assert fresh(other).name == "Surgery"


def test_deleting_a_ward_with_patients_is_refused(app, client, clinic, login):
    login(clinic.user(6))
    patient_make(clinic, "Biscuit")
    patient_make(clinic, "Rex")
    wards, boards, audits = count(Ward), count(Board), audit_count()
    response = client.post(_url(app, "admin.ward_remove", ward_id=clinic.ward.id))
    assert response.status_code == 422
    assert "ICU still has 2 admitted patient(s); move or discharge them" in response.text
    assert 'class="form-error"' in response.text
    assert (count(Ward), count(Board), audit_count()) == (wards, boards, audits)


def test_delete_an_empty_ward(app, client, clinic, login):
    login(clinic.user(6))
    response = client.post(_url(app, "admin.ward_remove", ward_id=clinic.ward.id))
    assert response.status_code == 302
    assert (count(Ward), count(Board)) == (0, 0)
    assert "Ward ICU deleted." in client.get(response.headers["Location"]).text


# Whiteboards

def test_boards_page_lists_boards_and_adds_one(app, client, clinic, login):
    login(clinic.user(6))
    page = client.get(_url(app, "admin.boards"))
    assert page.status_code == 200 and "ICU board" in page.text and "Ward ICU" in page.text
    response = client.post(_url(app, "admin.board_add"),
                           data={"name": "Pending discharge", "kind": "list", "ward": ""})
    assert response.status_code == 302
    board = db.session.scalar(select(Board).where(Board.name == "Pending discharge"))
    assert (board.kind, board.ward_id) == ("list", None)
    assert response.headers["Location"].endswith(_url(app, "admin.board_edit",
                                                      board_id=board.id))


def test_a_ward_board_without_a_ward_is_refused(app, client, clinic, login):
    login(clinic.user(6))
    boards, audits = count(Board), audit_count()
    response = client.post(_url(app, "admin.board_add"),
                           data={"name": "Second ICU", "kind": "ward", "ward": ""})
    assert response.status_code == 422
    assert 'id="ward-error"' in response.text
    assert "Choose the ward this board shows." in response.text
    assert (count(Board), audit_count()) == (boards, audits)


def test_duplicate_board_name_is_refused(app, client, clinic, login):
    login(clinic.user(6))
    boards = count(Board)
    response = client.post(_url(app, "admin.board_add"),
                           data={"name": "ICU board", "kind": "list"})
    assert response.status_code == 422
    assert "There is already a board called “ICU board”." in response.text
    assert count(Board) == boards


def test_rename_and_reorder_a_board(app, client, clinic, login):
    login(clinic.user(6))
    board_create(actor=clinic.user(6), name="Pending discharge", kind="list")
    db.session.commit()
    response = client.post(_url(app, "admin.board_save", board_id=clinic.board.id),
                           data={"name": "Intensive care", "position": "9"})
    assert response.status_code == 302
    page = client.get(_url(app, "admin.boards")).text
    assert page.index("Pending discharge") < page.index("Intensive care")


def test_bad_position_is_refused(app, client, clinic, login):
    login(clinic.user(6))
    response = client.post(_url(app, "admin.board_save", board_id=clinic.board.id),
                           data={"name": "Renamed", "position": "-3"})
    assert response.status_code == 422
    assert 'id="position-error"' in response.text
    board = fresh(clinic.board)
    assert (board.name, board.position) == ("ICU board", 0)


def test_delete_a_board(app, client, clinic, login):
    login(clinic.user(6))
    response = client.post(_url(app, "admin.board_remove", board_id=clinic.board.id))
    assert response.status_code == 302
    assert count(Board) == 0
    assert count(Ward) == 1


@pytest.fixture
def pending(clinic):
    """A hand-made list board."""
    board = board_create(actor=clinic.user(6), name="Pending discharge", kind="list")
    db.session.commit()
    return board


def test_list_board_membership(app, client, clinic, login, pending):
    login(clinic.user(6))
    rex = patient_make(clinic, "Rex")
    page = client.get(_url(app, "admin.board_edit", board_id=pending.id)).text
    assert f'<option value="{rex.uid}">Rex' in page
    response = client.post(_url(app, "admin.board_member_new", board_id=pending.id),
                           data={"patient": rex.uid})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert f'id="member-{rex.uid}"' in page
    assert f'<option value="{rex.uid}">' not in page
    response = client.post(_url(app, "admin.board_member_delete", board_id=pending.id,
                                uid=rex.uid))
    assert response.status_code == 302
    assert count(BoardMember) == 0


def test_adding_a_discharged_patient_is_refused(app, client, clinic, login, pending):
    login(clinic.user(6))
    rex = patient_make(clinic, "Rex")
    patient_discharge(patient=rex, user=clinic.user(6))
    db.session.commit()
    audits = audit_count()
    page = client.get(_url(app, "admin.board_edit", board_id=pending.id)).text
    assert rex.uid not in page  # not offered
    response = client.post(_url(app, "admin.board_member_new", board_id=pending.id),
                           data={"patient": rex.uid})
    assert response.status_code == 422
    assert "Rex has been discharged; only admitted patients can go on a board." in response.text
    assert 'id="patient-error"' in response.text
    assert (count(BoardMember), audit_count()) == (0, audits)


def test_adding_a_patient_twice_is_refused(app, client, clinic, login, pending):
    login(clinic.user(6))
    rex = patient_make(clinic, "Rex")
    board_member_add(board=pending, actor=clinic.user(6), patient=rex)
    db.session.commit()
    response = client.post(_url(app, "admin.board_member_new", board_id=pending.id),
                           data={"patient": rex.uid})
    assert response.status_code == 422
    assert "Rex is already on Pending discharge." in response.text
    assert count(BoardMember) == 1


def test_adding_without_choosing_a_patient(app, client, clinic, login, pending):
    login(clinic.user(6))
    response = client.post(_url(app, "admin.board_member_new", board_id=pending.id),
                           data={"patient": ""})
    assert response.status_code == 422
    assert "Choose a patient." in response.text
    assert count(BoardMember) == 0


def test_ward_board_page_has_no_member_form(app, client, clinic, login):
    login(clinic.user(6))
    page = client.get(_url(app, "admin.board_edit", board_id=clinic.board.id)).text
    assert "Shows ward ICU" in page
    assert _url(app, "admin.board_member_new", board_id=clinic.board.id) not in page


def test_every_post_form_carries_the_csrf_token(app, client, clinic, login, pending):
    login(clinic.user(6))
    board_member_add(board=pending, actor=clinic.user(6), patient=patient_make(clinic, "Rex"))
    db.session.commit()
    gets, _ = _pages(app, clinic)
    gets.append(_url(app, "admin.board_edit", board_id=pending.id))
    for url in gets:
        page = client.get(url).text
        assert page.count('method="post"') == page.count('name="csrf_token"'), url


def test_audit_log_lists_changes_for_managers_only(clinic, client, login):
    from tests import factories

    patient = factories.patient_make(clinic, name="<b>Audit</b>")
    login(clinic.user(5))
    assert client.get("/admin/audit").status_code == 403
    login(clinic.user(6))
    html = client.get(f"/admin/audit?uid={patient.uid}").get_data(as_text=True)
    assert "patient.create" in html and "user.create" not in html
    assert "\\u003cb\\u003eAudit" in html and "<b>Audit</b>" not in html
