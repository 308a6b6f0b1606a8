"""Patients and the alerts shown as a stripe on their panel."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db

SPECIES = ("canine", "feline", "equine", "rabbit", "avian", "reptile", "rodent", "ferret",
           "bovine", "other")
SEXES = ("M", "MN", "F", "FS", "U")
SEX_LABELS = {"M": "male", "MN": "male neutered", "F": "female", "FS": "female spayed",
              "U": "unknown"}
ALERTS = ("caution", "bites", "dnr", "isolation", "allergies")
ALERT_LABELS = {"caution": "Caution", "bites": "Bites", "dnr": "DNR",
                "isolation": "Isolation", "allergies": "Allergies"}
PANEL_COLOURS = ("none", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink",
                 "grey")
STATUSES = ("admitted", "discharged")
ORIGINS = ("pims", "direct")


class Patient(UidMixin, TimestampMixin, db.Model):
    """An animal in the hospital; `unallocated` until linked to the practice system record."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    species: Mapped[str] = mapped_column(String(30))
    breed: Mapped[str | None] = mapped_column(String(80))
    sex: Mapped[str | None] = mapped_column(String(4))
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(7, 3))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    owner_name: Mapped[str | None] = mapped_column(String(120))
    owner_phone: Mapped[str | None] = mapped_column(String(40))
    # The owner's record (contact, consent, opt-out); owner_name and owner_phone above are
    # what boards and sheets show, kept equal to it by the owners' services.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id"), index=True)
    ward_id: Mapped[int | None] = mapped_column(ForeignKey("wards.id"), index=True)
    cage: Mapped[str | None] = mapped_column(String(20))
    doctor: Mapped[str | None] = mapped_column(String(120))
    colour: Mapped[str] = mapped_column(String(20), default="none")
    alerts: Mapped[list] = mapped_column(JSON, default=list)
    alert_note: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="admitted", index=True)
    admitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discharged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # A manager's reason for discharging although the checks found something unfinished.
    discharge_override: Mapped[str | None] = mapped_column(String(500))
    pims_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    file_number: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(10), default="pims")
    unallocated: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    ward = relationship("Ward", lazy="joined")
    owner = relationship("Owner", back_populates="patients")

    def admitted_when(self, at: datetime | None) -> bool:
        """Whether the patient was in the hospital at `at` (now when None): admitted, or
        discharged only later, so a tablet's action from before the discharge still counts."""
        if self.status == "admitted":
            return True
        return at is not None and self.discharged_at is not None and at < self.discharged_at

    @property
    def sex_label(self) -> str:
        """The sex as words."""
        return SEX_LABELS.get(self.sex or "U", "unknown")

    def __repr__(self) -> str:
        return f"<Patient {self.name} {self.uid}>"
