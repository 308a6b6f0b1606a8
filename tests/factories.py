"""Small builders for test data, using the real services wherever a rule applies.

Times come from the arguments or from kiosk.core.clock, never from the wall clock: a test
that cares which instant (or day) it is holds the clock (the frozen_clock fixture)."""

from dataclasses import dataclass, field
from datetime import datetime

from kiosk.clinic.models import ClinicSettings, Ward
from kiosk.extensions import db
from kiosk.patients.services import patient_create
from kiosk.staff.models import User
from kiosk.staff.services import user_create
from kiosk.treatments.services import order_create
from kiosk.whiteboards.models import Board


@dataclass
class Clinic:
    """What `clinic_make` built."""

    settings: ClinicSettings
    ward: Ward
    board: Board
    users: dict[int, User] = field(default_factory=dict)

    def user(self, level: int) -> User:
        """The user of that level."""
        return self.users[level]


def clinic_make(*, timezone: str = "UTC", direct_creation: bool = True) -> Clinic:
    """Settings, one ward and its board, and users of levels 1–6 on that ward (PIN: the
    level's digit 4 times, 6 times for levels 5 and 6: "3333", "555555")."""
    settings = ClinicSettings(name="Test Hospital", timezone=timezone,
                              allow_direct_patient_creation=direct_creation)
    ward = Ward(name="ICU", code="ICU")
    db.session.add_all([settings, ward])
    db.session.flush()
    board = Board(name="ICU board", kind="ward", ward_id=ward.id)
    db.session.add(board)
    users = {level: user_create(name=f"Level {level}", level=level,
                                pin=str(level) * (6 if level >= 5 else 4),
                                username=f"user{level}", password=f"password-{level}")
             for level in range(1, 7)}
    db.session.commit()
    return Clinic(settings=settings, ward=ward, board=board, users=users)


def patient_make(clinic: Clinic, name: str = "Biscuit", **fields):
    """An admitted patient in the clinic's ward (from the practice system unless told)."""
    data = {"name": name, "species": "canine", "ward": clinic.ward, "cage": "1", **fields}
    origin = "pims" if data.get("pims_id") else "direct"
    patient = patient_create(user=clinic.user(6), data=data, origin=origin)
    db.session.commit()
    return patient


def order_make(clinic: Clinic, patient, *, now: datetime | None = None, **fields):
    """An order (every 4 hours from `now`, else the clock's now, unless told) and its tasks."""
    data = {"name": "Methadone", "kind": "medication", "dose": "0.2", "units": "mg/kg",
            "route": "IV", "every_hours": 4, **fields}
    order = order_create(user=clinic.user(5), patient=patient, data=data, now=now)
    db.session.commit()
    return order
