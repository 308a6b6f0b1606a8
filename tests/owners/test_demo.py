"""The demo clinic's owners: reserved e-mail domains and drama-range phones only, consent
for some, one opted out, every patient linked and showing its owner's name and phone."""

from sqlalchemy import select

from kiosk.demo import OPTED_OUT_OWNER, demo_build
from kiosk.extensions import db
from kiosk.owners.models import Owner
from kiosk.patients.models import Patient


def test_the_demos_owners_are_on_reserved_addresses(app):
    demo_build()
    db.session.commit()
    owners = list(db.session.scalars(select(Owner)))
    assert len(owners) == 10
    assert all(o.email is None or o.email.rsplit("@", 1)[1] in
               ("example.com", "example.org", "example.net") for o in owners)
    assert all(o.phone is None or o.phone.startswith("+447700900") for o in owners)
    assert any(o.sms_consent for o in owners) and not all(o.sms_consent for o in owners)
    assert [o.name for o in owners if o.opted_out] == [OPTED_OUT_OWNER]
    patients = list(db.session.scalars(select(Patient)))
    assert all(p.owner is not None and p.owner_name == p.owner.name
               and p.owner_phone == p.owner.phone for p in patients)
