"""Billing's manager pages: the connector (a webhook address that is really the practice
system's), its pause, failing charges sent again, the item catalogue, and who may use them."""

from decimal import Decimal

import pytest
from flask import url_for
from markupsafe import escape
from sqlalchemy import select

from kiosk.billing.models import BillingConnector, BillingItem, Charge
from kiosk.billing.services import ERR_WEBHOOK_HOST, ERR_WEBHOOK_SCHEME, ERR_WEBHOOK_SELF
from kiosk.core import clock
from kiosk.extensions import db
from tests import factories
from tests.admin.helpers import audit_count, count

from .connect_helpers import charge_make, charges_all, connector_row, item_make, webhook_on

PEER = "http://127.0.0.1:9/charges"  # never called here: the address is only stored


@pytest.fixture
def manager(clinic, login):
    """The clinic's level-6 manager, signed in with a password."""
    return login(clinic.user(6))


def sign_in_at(client, user, base_url):
    """Sign `user` in with a password on the server as reached at `base_url`."""
    from kiosk.core.auth import SESSION_KEY
    from kiosk.staff.sessions import staff_session_start

    key = staff_session_start(user=user, auth="password")
    db.session.commit()
    with client.session_transaction(base_url=base_url) as session:
        session.update({"user_id": user.id, SESSION_KEY: key, "auth": "password"})


def field_error(page: str, field: str, message: str) -> bool:
    """Whether the form shows `message` as the error of `field`."""
    return (f'id="{field}-error"' in page and str(escape(message)) in page
            and 'aria-invalid="true"' in page)


def test_the_page_shows_the_connector_the_counts_and_the_export(clinic, manager, client,
                                                                frozen_clock):
    item_make(clinic)
    charge_make(clinic, factories.patient_make(clinic, "Stray"))  # unallocated: held
    charge_make(clinic, factories.patient_make(clinic, "Biscuit", pims_id="P-1"))
    page = client.get("/billing/admin/").text
    assert 'id="count-unsent">2<' in page and 'id="count-held">1<' in page
    assert 'id="count-failing">0<' in page and "No failing charges." in page
    assert "/billing/admin/export.csv?shift=current" in page
    assert 'value="none" selected' in page.replace("\n", "")
    assert "/billing/admin/" in client.get("/admin/").text  # linked from the admin home


def test_a_webhook_is_saved_and_shown(clinic, manager, client):
    response = client.post("/billing/admin/", data={"kind": "webhook", "webhook_url": PEER})
    assert response.status_code == 302
    assert connector_row()[1:3] == ("webhook", PEER)
    page = client.get("/billing/admin/").text
    assert f'value="{PEER}"' in page
    client.post("/billing/admin/", data={"kind": "none", "webhook_url": PEER})
    assert connector_row()[1:3] == ("none", None)


@pytest.mark.parametrize(("url", "message", "host"), [
    ("ftp://pims.example/charges", ERR_WEBHOOK_SCHEME, None),
    ("javascript:alert(1)", ERR_WEBHOOK_SCHEME, None),
    ("pims.example/charges", ERR_WEBHOOK_SCHEME, None),
    ("http:///charges", ERR_WEBHOOK_HOST, None),
    ("", "Webhook address is required.", None),
    ("http://localhost/hook", ERR_WEBHOOK_SELF, None),  # the test client is "localhost"
    ("http://127.0.0.1:80/hook", ERR_WEBHOOK_SELF, None),
    # Other spellings of this machine: an IPv4-mapped IPv6 address, a number, a dot.
    ("http://[::ffff:127.0.0.1]:80/hook", ERR_WEBHOOK_SELF, None),
    ("http://2130706433/hook", ERR_WEBHOOK_SELF, None),
    ("http://localhost./hook", ERR_WEBHOOK_SELF, None),
    # The name the browser reached this server by (behind a proxy too) is the server's.
    ("https://kiosk.vets.example/billing", ERR_WEBHOOK_SELF, "https://kiosk.vets.example"),
    ("http://KIOSK.vets.example:8080/x", ERR_WEBHOOK_SELF, "http://kiosk.vets.example:8080"),
])
def test_a_bad_webhook_address_is_refused_naming_it_and_nothing_changes(
        clinic, manager, client, url, message, host):
    webhook_on(clinic, PEER)
    if host:
        sign_in_at(client, clinic.user(6), host)
    before, audits = connector_row(), audit_count()
    response = client.post("/billing/admin/", data={"kind": "webhook", "webhook_url": url},
                           base_url=host or "http://localhost")
    assert response.status_code == 422
    assert field_error(response.text, "webhook_url", message)
    assert connector_row() == before and audit_count() == audits


def test_another_host_or_port_of_the_practice_system_is_fine(clinic, manager, client):
    response = client.post("/billing/admin/", data={
        "kind": "webhook", "webhook_url": "http://localhost:8123/hook"})
    assert response.status_code == 302
    assert connector_row()[2] == "http://localhost:8123/hook"


def test_pause_with_a_reason_then_resume(clinic, manager, client, frozen_clock):
    webhook_on(clinic, PEER)
    response = client.post("/billing/admin/pause",
                           data={"paused": "1", "reason": "PIMS upgrade tonight"})
    assert response.status_code == 302
    assert connector_row()[3:] == (True, "PIMS upgrade tonight")
    page = client.get("/billing/admin/").text
    assert "Paused" in page and "PIMS upgrade tonight" in page and "Resume sending" in page
    client.post("/billing/admin/pause", data={"paused": "0"})
    assert connector_row()[3:] == (False, None)
    assert "Pause sending" in client.get("/billing/admin/").text


def test_a_pause_reason_too_long_is_refused_and_nothing_changes(clinic, manager, client):
    webhook_on(clinic, PEER)
    before, audits = connector_row(), audit_count()
    response = client.post("/billing/admin/pause", data={"paused": "1", "reason": "x" * 201})
    assert response.status_code == 422
    assert field_error(response.text, "reason", "Reason is longer than 200 characters.")
    assert connector_row() == before and audit_count() == audits


def test_send_now_makes_the_failing_charges_due(clinic, manager, client, frozen_clock):
    item_make(clinic)
    patient = factories.patient_make(clinic, "Biscuit", pims_id="P-1")
    failing, fine = charge_make(clinic, patient), charge_make(clinic, patient)
    later = clock.utcnow().replace(hour=20)
    db.session.execute(Charge.__table__.update().where(Charge.id == failing.id).values(
        send_attempts=3, send_error="The practice system answered 503.", send_next_at=later))
    db.session.commit()
    page = client.get("/billing/admin/").text
    assert f'id="charge-{failing.uid}"' in page and f'id="charge-{fine.uid}"' not in page
    assert "The practice system answered 503." in page
    response = client.post("/billing/admin/send-now")
    assert response.status_code == 302
    assert "1 failing charge will be sent now." in client.get("/billing/admin/").text
    by_id = {c.id: c for c in charges_all()}
    assert by_id[failing.id].send_next_at == clock.utcnow()
    assert by_id[failing.id].send_attempts == 3  # its history is kept


# The catalogue

ITEM = {"code": "FLUID", "description": "IV fluids per litre", "unit_price": "7.35",
        "applies_to": "manual"}


def item_row(code="FLUID"):
    db.session.expire_all()
    return db.session.scalar(select(BillingItem).where(BillingItem.code == code))


def test_items_are_added_edited_and_taken_out_of_use(clinic, manager, client):
    response = client.post("/billing/admin/items", data=ITEM)
    assert response.status_code == 302
    item = item_row()
    assert (item.description, item.unit_price, item.active) == (
        "IV fluids per litre", Decimal("7.35"), True)
    page = client.get("/billing/admin/items").text
    assert "FLUID" in page and "7.35" in page

    edit = client.get(f"/billing/admin/items/{item.uid}").text
    assert 'value="IV fluids per litre"' in edit and "Edit FLUID" in edit
    response = client.post(f"/billing/admin/items/{item.uid}", data={
        "description": "IV fluids (litre)", "unit_price": "8", "applies_to": "manual",
        "active": "1"})
    assert response.status_code == 302
    assert (item_row().description, item_row().unit_price) == ("IV fluids (litre)",
                                                               Decimal("8.00"))
    client.post(f"/billing/admin/items/{item.uid}/deactivate")
    assert item_row().active is False
    client.post(f"/billing/admin/items/{item.uid}", data={
        "description": "IV fluids (litre)", "unit_price": "8", "applies_to": "manual",
        "active": "1"})
    assert item_row().active is True


@pytest.mark.parametrize(("price", "message"), [
    ("abc", "Unit price must be a number."),
    ("-1", "Unit price must be at least 0."),
    ("100001", "Unit price must be at most 100000."),
    ("1.234", "Unit price has more than two decimals."),
    ("NaN", "Unit price must be a number."),
    ("", "Unit price is required."),
])
def test_a_bad_price_is_refused_naming_it_and_nothing_is_stored(clinic, manager, client,
                                                                price, message):
    item_make(clinic, code="CONS", price="12.50")
    items, audits = count(BillingItem), audit_count()
    response = client.post("/billing/admin/items", data={**ITEM, "unit_price": price})
    assert response.status_code == 422
    assert field_error(response.text, "unit_price", message)
    assert count(BillingItem) == items and audit_count() == audits
    cons = item_row("CONS")
    response = client.post(f"/billing/admin/items/{cons.uid}", data={
        "description": "Consultation", "unit_price": price, "applies_to": "manual",
        "active": "1"})
    assert response.status_code == 422
    assert field_error(response.text, "unit_price", message)
    assert item_row("CONS").unit_price == Decimal("12.50") and audit_count() == audits


def test_a_taken_code_and_a_form_item_without_a_name_are_refused(clinic, manager, client):
    item_make(clinic, code="FLUID")
    items, audits = count(BillingItem), audit_count()
    response = client.post("/billing/admin/items", data=ITEM)
    assert response.status_code == 422
    assert field_error(response.text, "code", "A billing item with the code “FLUID” "
                                              "already exists.")
    response = client.post("/billing/admin/items", data={**ITEM, "code": "CONSENT",
                                                         "applies_to": "form"})
    assert response.status_code == 422
    assert field_error(response.text, "match",
                       "Say which drug or form name this item charges for.")
    assert count(BillingItem) == items and audit_count() == audits


# Who may

def _urls(app, item_uid):
    with app.test_request_context():
        gets = [url_for("billing_admin.settings"), url_for("billing_admin.items"),
                url_for("billing_admin.item_edit", uid=item_uid)]
        posts = [url_for("billing_admin.settings_save"), url_for("billing_admin.pause"),
                 url_for("billing_admin.send_now"), url_for("billing_admin.items"),
                 url_for("billing_admin.item_update", uid=item_uid),
                 url_for("billing_admin.item_deactivate", uid=item_uid)]
    return gets, posts


def test_level_5_is_refused_every_page_and_changes_nothing(app, clinic, client, login):
    item = item_make(clinic)
    webhook_on(clinic, PEER)
    login(clinic.user(5))
    gets, posts = _urls(app, item.uid)
    before, audits, items = connector_row(), audit_count(), count(BillingItem)
    for url in gets:
        response = client.get(url)
        assert response.status_code == 403, url
        assert "You need level 6" in response.text and "you are level 5" in response.text
    for url in posts:
        response = client.post(url, data={**ITEM, "kind": "none", "paused": "1"})
        assert response.status_code == 403, url
    assert connector_row() == before and audit_count() == audits
    assert count(BillingItem) == items and item_row("CONS").active is True
    assert db.session.scalar(select(BillingConnector.paused)) is False


def test_not_signed_in_goes_to_the_sign_in_page(app, clinic, client):
    item = item_make(clinic)
    gets, posts = _urls(app, item.uid)
    for url in gets + posts:
        response = client.get(url) if url in gets else client.post(url, data=ITEM)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert count(BillingItem) == 1


def test_held_patients_are_listed_to_link_even_after_they_went_home(clinic, manager, client,
                                                                    frozen_clock):
    from kiosk.discharge.services import patient_discharge

    item_make(clinic)
    stray = factories.patient_make(clinic, "Stray", file_number="F-7")  # unallocated
    charge_make(clinic, stray)
    charge_make(clinic, stray, quantity="2")
    charge_make(clinic, factories.patient_make(clinic, "Linked", pims_id="P-1"))
    patient_discharge(patient=stray, user=clinic.user(6), override_reason="Owner in a hurry")
    db.session.commit()
    page = client.get("/billing/admin/").text
    table = page[page.index('id="held-patients"'):]
    table = table[:table.index("</table>")]
    assert "Stray (file F-7)" in table and "discharged" in table and "37.50" in table
    assert f"/patients/{stray.uid}/edit" in table and "Linked" not in table
