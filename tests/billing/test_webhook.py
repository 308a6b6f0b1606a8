"""Charges go to the practice system's webhook (a real HTTP server on 127.0.0.1) exactly
once in effect: failures are retried with a growing back-off for ever, an answer that never
came means the charge goes again under the same Idempotency-Key, a pause queues charges,
and an unallocated patient's charges are held until the patient is linked."""

import threading
from decimal import Decimal

import pytest

from kiosk.billing.sending import (
    BACKOFF,
    charges_failing,
    charges_send_due,
    charges_send_now,
    sending_counts,
)
from kiosk.billing.services import charge_reverse, connector_pause
from kiosk.core import clock
from kiosk.extensions import db
from kiosk.patients.services import patient_update
from kiosk.staff.models import User
from tests import factories
from tests.support.server import free_port
from tests.support.webhook_peer import WebhookPeer

from .connect_helpers import charge_make, charges_all, item_make, sending_paused, webhook_on

TIMEOUT_S = 0.3  # the client's wait in tests (10 s in a clinic)


@pytest.fixture
def peer(app):
    """The practice system's webhook, listening on 127.0.0.1."""
    app.config["KIOSK_BILLING_WEBHOOK_TIMEOUT"] = TIMEOUT_S
    with WebhookPeer() as running:
        yield running


@pytest.fixture
def linked(clinic):
    """Two patients linked to the practice system, and an item to charge."""
    item_make(clinic)
    return (factories.patient_make(clinic, "Biscuit", pims_id="P-1", file_number="F-1"),
            factories.patient_make(clinic, "Pepper", pims_id="P-2"))


def uids(charges) -> set[str]:
    return {c.uid for c in charges}


def assert_arrived_once_in_effect(peer, charges) -> None:
    """Every charge's key reached the peer, and what it kept (by key) is exactly them."""
    seen = set(peer.keys_seen())
    assert uids(charges) <= seen
    assert set(peer.accepted) == uids(charges)
    for charge in charges:
        assert peer.accepted[charge.uid]["uid"] == charge.uid


def test_a_charge_is_posted_as_json_with_its_uid_as_the_idempotency_key(
        clinic, linked, peer, frozen_clock):
    biscuit, _ = linked
    charge = charge_make(clinic, biscuit, quantity="2")
    reversal = charge_reverse(charge=charge, user=clinic.user(4), reason="entered twice")
    db.session.commit()
    webhook_on(clinic, peer.url)
    assert charges_send_due() == {"sent": 2, "failed": 0, "taken": 0}
    first, second = peer.requests
    assert (first.key, first.content_type, first.answered) == (
        charge.uid, "application/json", 200)
    assert first.body == {
        "uid": charge.uid, "key": charge.key,
        "patient": {"uid": biscuit.uid, "pims_id": "P-1", "file_number": "F-1",
                    "name": "Biscuit"},
        "item_code": "CONS", "description": "Consultation", "quantity": "2",
        "unit_price": "12.50", "total": "25.00",
        "performed_at": clock.format_iso_z(clock.utcnow()),
        "recorded_at": clock.format_iso_z(clock.utcnow()),
        "offline": False, "by": "Level 4", "device": None, "reverses": None}
    assert second.key == reversal.uid
    assert (second.body["quantity"], second.body["total"], second.body["reverses"]) == (
        "-2", "-25.00", charge.uid)
    assert all(c.sent_at == clock.utcnow() and c.send_error is None for c in charges_all())
    assert charges_send_due() == {"sent": 0, "failed": 0, "taken": 0}  # nothing twice
    assert len(peer.requests) == 2


def test_failures_back_off_are_listed_for_the_manager_and_each_charge_arrives_once(
        clinic, linked, peer, frozen_clock, client, login):
    biscuit, pepper = linked
    made = [charge_make(clinic, biscuit), charge_make(clinic, pepper),
            charge_make(clinic, biscuit)]
    webhook_on(clinic, peer.url)
    peer.fail_first(2)
    start = clock.utcnow()

    assert charges_send_due() == {"sent": 0, "failed": 3, "taken": 0}
    for charge in charges_all():
        assert charge.sent_at is None and charge.send_attempts == 1
        assert charge.send_error == "The practice system answered 500 Internal Server Error."
        assert charge.send_next_at == start + BACKOFF[0]
    assert charges_send_due()["failed"] == 0  # not due again before its back-off
    assert sending_counts() == {"unsent": 3, "held": 0, "failing": 3}
    login(clinic.user(6))
    page = client.get("/billing/admin/").text
    for charge in made:
        assert f'id="charge-{charge.uid}"' in page
    assert "The practice system answered 500 Internal Server Error." in page
    assert 'id="count-failing">3<' in page

    frozen_clock.advance(seconds=10)
    assert charges_send_due() == {"sent": 0, "failed": 3, "taken": 0}
    assert {c.send_attempts for c in charges_all()} == {2}
    assert {c.send_next_at for c in charges_all()} == {clock.utcnow() + BACKOFF[1]}
    frozen_clock.advance(seconds=29)
    assert charges_send_due()["sent"] == 0
    frozen_clock.advance(seconds=1)
    assert charges_send_due() == {"sent": 3, "failed": 0, "taken": 0}

    charges = charges_all()
    assert all(c.sent_at == clock.utcnow() and c.send_error is None for c in charges)
    assert len(peer.requests) == 9 and peer.duplicates == 0
    assert_arrived_once_in_effect(peer, charges)
    assert charges_failing() == [] and sending_counts()["unsent"] == 0
    assert "No failing charges." in client.get("/billing/admin/").text


def test_an_answer_that_never_came_sends_again_and_the_peer_keeps_it_once(
        clinic, linked, peer, frozen_clock):
    biscuit, pepper = linked
    made = [charge_make(clinic, biscuit), charge_make(clinic, pepper)]
    webhook_on(clinic, peer.url)
    peer.slow_first(1, TIMEOUT_S * 4)  # it arrives, but the answer comes too late

    assert charges_send_due() == {"sent": 0, "failed": 2, "taken": 0}
    assert set(peer.accepted) == uids(made)  # the practice system has them already …
    assert {c.send_error for c in charges_all()} == {
        f"The practice system did not answer within {TIMEOUT_S:g} s."}
    frozen_clock.advance(seconds=10)
    assert charges_send_due() == {"sent": 2, "failed": 0, "taken": 0}  # … and gets them again
    assert peer.keys_seen().count(made[0].uid) == 2 and peer.duplicates == 2
    assert_arrived_once_in_effect(peer, charges_all())


def test_a_request_delivered_and_answered_twice_is_kept_once(clinic, linked, peer,
                                                             frozen_clock):
    biscuit, pepper = linked
    made = [charge_make(clinic, biscuit), charge_make(clinic, pepper)]
    webhook_on(clinic, peer.url)
    peer.twice = True
    assert charges_send_due() == {"sent": 2, "failed": 0, "taken": 0}
    assert len(peer.requests) == 4 and peer.duplicates == 2
    assert_arrived_once_in_effect(peer, made)


def test_fails_slow_and_twice_together_still_arrive_once_each(clinic, linked, peer,
                                                              frozen_clock):
    biscuit, pepper = linked
    made = [charge_make(clinic, p) for p in (biscuit, pepper, biscuit, pepper)]
    webhook_on(clinic, peer.url)
    peer.fail_first(1)
    peer.slow_first(1, TIMEOUT_S * 4)
    for wait in (0, *(b.total_seconds() for b in BACKOFF[:2])):
        frozen_clock.advance(seconds=wait)
        charges_send_due()
    assert all(c.sent_at is not None for c in charges_all())
    assert len(peer.requests) == 3 * len(made)  # failed, lost answer, sent
    peer.twice = True
    late = charge_make(clinic, pepper)
    frozen_clock.advance(seconds=10)
    peer.fail_first(0)
    peer.slow_first(0, 0)
    assert charges_send_due()["sent"] == 1
    assert_arrived_once_in_effect(peer, [*made, late])


def test_a_charge_is_never_dropped_it_is_retried_every_30_minutes(clinic, linked, peer,
                                                                  frozen_clock):
    biscuit, _ = linked
    charge_make(clinic, biscuit)
    webhook_on(clinic, peer.url)
    peer.fail_first(1000)
    waits = [*BACKOFF, BACKOFF[-1], BACKOFF[-1]]
    for attempt, wait in enumerate(waits, start=1):
        assert charges_send_due()["failed"] == 1
        (charge,) = charges_all()
        assert charge.send_attempts == attempt
        assert charge.send_next_at == clock.utcnow() + wait
        frozen_clock.advance(seconds=wait.total_seconds())
    peer.fail_first(0)
    assert charges_send_due()["sent"] == 1
    assert charges_all()[0].send_attempts == len(waits)  # kept: how hard it was


def test_a_practice_system_that_is_down_is_a_listed_failure(clinic, linked, app,
                                                            frozen_clock):
    biscuit, _ = linked
    charge_make(clinic, biscuit)
    webhook_on(clinic, f"http://127.0.0.1:{free_port()}/charges")
    assert charges_send_due()["failed"] == 1
    (charge,) = charges_failing()
    assert charge.send_error == "The practice system refused the connection (is it running?)."
    assert "127.0.0.1" not in charge.send_error  # no address: it may carry a token


def test_send_now_makes_failing_charges_due_at_once(clinic, linked, peer, frozen_clock):
    biscuit, _ = linked
    made = charge_make(clinic, biscuit)
    webhook_on(clinic, peer.url)
    peer.fail_first(1)
    charges_send_due()
    assert charges_send_due()["sent"] == 0
    assert charges_send_now(user=clinic.user(6)) == 1
    db.session.commit()
    assert charges_send_due()["sent"] == 1
    assert_arrived_once_in_effect(peer, [made])


def test_two_senders_at_once_never_send_the_same_charge(app, clinic, linked, peer,
                                                        frozen_clock):
    biscuit, pepper = linked
    made = [charge_make(clinic, p) for p in (biscuit, pepper) * 6]
    webhook_on(clinic, peer.url)
    app.config["KIOSK_BILLING_WEBHOOK_TIMEOUT"] = 5
    peer.slow_first(1, 0.05)  # each send takes a moment: the senders overlap
    results, errors = [], []

    def sender():
        with app.app_context():
            try:
                results.append(charges_send_due())
            except Exception as exc:  # reported below: a thread's error is not a test's
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sum(r["sent"] for r in results) == len(made)
    assert sum(r["taken"] for r in results) >= 1  # they did meet
    assert sorted(peer.keys_seen()) == sorted(uids(made))  # each exactly once, raw
    assert all(c.sent_at is not None for c in charges_all())


def test_while_paused_charges_queue_and_go_when_resumed(clinic, linked, peer, frozen_clock):
    biscuit, pepper = linked
    webhook_on(clinic, peer.url)
    sending_paused(clinic, True, reason="practice system upgrade")
    made = [charge_make(clinic, biscuit), charge_make(clinic, pepper)]
    frozen_clock.advance(minutes=45)
    assert charges_send_due() == {"sent": 0, "failed": 0, "taken": 0}
    assert peer.requests == [] and sending_counts()["unsent"] == 2
    assert all(c.send_attempts == 0 for c in charges_all())  # waiting is not failing
    sending_paused(clinic, False)
    assert charges_send_due()["sent"] == 2
    assert_arrived_once_in_effect(peer, made)


def test_a_pause_in_the_middle_of_a_batch_stops_it(app, clinic, linked, peer, frozen_clock):
    biscuit, _ = linked
    webhook_on(clinic, peer.url)
    made = [charge_make(clinic, biscuit) for _ in range(3)]
    manager_id = clinic.user(6).id

    def pause_after_first(*_):
        if len(peer.requests) == 1:
            # A manager pauses (on another connection) while the first charge is on its way.
            with app.app_context():
                connector_pause(user=db.session.get(User, manager_id), paused=True)
                db.session.commit()
                db.session.remove()

    real_take = peer.take
    peer.take = lambda *a: (real_take(*a), pause_after_first())[0]
    assert charges_send_due()["sent"] == 1
    sending_paused(clinic, False)
    assert charges_send_due()["sent"] == 2
    assert_arrived_once_in_effect(peer, made)


def test_without_a_webhook_nothing_is_sent(clinic, linked, peer, frozen_clock):
    biscuit, _ = linked
    charge_make(clinic, biscuit)
    assert charges_send_due() == {"sent": 0, "failed": 0, "taken": 0}
    assert peer.requests == []


def test_an_unallocated_patients_charges_are_held_until_linked(clinic, linked, peer,
                                                               frozen_clock):
    biscuit, _ = linked
    stray = factories.patient_make(clinic, "Stray")  # made here: no practice-system id
    assert stray.unallocated
    held = [charge_make(clinic, stray), charge_make(clinic, stray)]
    sent = charge_make(clinic, biscuit)
    webhook_on(clinic, peer.url)
    assert charges_send_due() == {"sent": 1, "failed": 0, "taken": 0}
    assert peer.keys_seen() == [sent.uid]
    assert sending_counts() == {"unsent": 2, "held": 2, "failing": 0}
    frozen_clock.advance(hours=3)
    assert charges_send_due()["sent"] == 0  # still held, however long

    patient_update(patient=stray, user=clinic.user(4), data={"pims_id": "P-77"})
    db.session.commit()
    assert charges_send_due()["sent"] == 2
    assert_arrived_once_in_effect(peer, [sent, *held])
    assert peer.accepted[held[0].uid]["patient"]["pims_id"] == "P-77"
    assert sending_counts() == {"unsent": 0, "held": 0, "failing": 0}


def test_money_in_the_payload_is_decimal_text(clinic, peer, frozen_clock):
    item_make(clinic, code="FLUID", description="Fluids per litre", price="7.35")
    patient = factories.patient_make(clinic, pims_id="P-5")
    charge_make(clinic, patient, code="FLUID", quantity="1.5")
    webhook_on(clinic, peer.url)
    charges_send_due()
    (request,) = peer.requests
    assert (request.body["quantity"], request.body["total"]) == ("1.5", "11.03")
    assert Decimal(request.body["total"]) == charges_all()[0].total

