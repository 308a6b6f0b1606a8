"""Charges reach the practice system through the one job queue: a commit that captured a
charge (or linked a held patient, or resumed sending) queues one "billing.send" job, and the
job sends what is due."""

from kiosk.core.jobs import jobs_run_pending
from kiosk.extensions import db
from kiosk.patients.services import patient_update
from tests import factories
from tests.support.webhook_peer import WebhookPeer

from .connect_helpers import charge_make, charges_all, item_make, sending_paused, webhook_on


def queued(app) -> list[str]:
    return [type(task).__name__ for task in app.extensions["kiosk.jobs"].huey.pending()]


def test_a_captured_charge_queues_one_send_job_which_posts_it(app, clinic, frozen_clock):
    item_make(clinic)
    patient = factories.patient_make(clinic, pims_id="P-1")
    with WebhookPeer() as peer:
        webhook_on(clinic, peer.url)
        jobs_run_pending()  # the connector's own nudge: nothing to send yet
        assert peer.requests == []
        charge_make(clinic, patient)
        charge_make(clinic, patient, quantity="2")
        assert queued(app) == ["billing.send", "billing.send"]  # one per commit
        assert jobs_run_pending() == 2
        assert set(peer.accepted) == {c.uid for c in charges_all()}
        assert all(c.sent_at is not None for c in charges_all())


def test_linking_a_held_patient_and_resuming_sending_queue_the_send(app, clinic,
                                                                     frozen_clock):
    item_make(clinic)
    bedside = factories.patient_make(clinic, "Rex")  # created directly: unallocated
    with WebhookPeer() as peer:
        webhook_on(clinic, peer.url)
        sending_paused(clinic, True, "upgrade")
        charge_make(clinic, bedside)
        jobs_run_pending()
        assert peer.requests == [], "paused, and held"
        sending_paused(clinic, False)
        jobs_run_pending()
        assert peer.requests == [], "still held: the patient is not linked"
        patient_update(patient=bedside, user=clinic.user(4), data={"pims_id": "P-77"})
        db.session.commit()
        assert queued(app) == ["billing.send"]
        jobs_run_pending()
        assert set(peer.accepted) == {c.uid for c in charges_all()}
