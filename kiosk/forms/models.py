"""Form templates and their versions, and the forms filled per patient with their entries."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core import clock
from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db

FORM_DRAFT = "draft"
FORM_FINALISED = "finalised"
FIELD_TYPES = ("text", "number", "checkbox", "choice", "date", "signature", "heading")
# Who filled a form the owner sent back through the client portal, wherever a page or a
# PDF says who filled, signed or finalised it.
CLIENT_FILLED = "the owner, {name}, through the client portal"
CLIENT_UNNAMED = "name not on record"


class FormTemplate(UidMixin, TimestampMixin, db.Model):
    """A kind of form the clinic uses ("Anaesthesia consent"); its fields live in versions."""

    __tablename__ = "form_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    versions = relationship("FormVersion", back_populates="template",
                            order_by="FormVersion.number")

    @property
    def current(self) -> "FormVersion":
        """The latest published version (what a new form is started on)."""
        return self.versions[-1]


class FormVersion(UidMixin, db.Model):
    """The fields of a template as published once. Never changed afterwards: a form keeps
    the version it was started on."""

    __tablename__ = "form_versions"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("form_templates.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    # [{"key", "label", "type", "required", "options": [str]}] in the order shown.
    fields: Mapped[list] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    published_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    template = relationship("FormTemplate", back_populates="versions")
    published_by = relationship("User")

    def field(self, key: str) -> dict | None:
        """The field with this key, or None."""
        return next((f for f in self.fields if f["key"] == key), None)


class PatientForm(UidMixin, TimestampMixin, db.Model):
    """One form filled for one patient, on the version it was started on: by staff (who
    started and who finalised it), or by the owner through the client portal (no staff
    member: `filled_by_client` holds the owner's name, and the form arrives finalised)."""

    __tablename__ = "patient_forms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("form_templates.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("form_versions.id"))
    status: Mapped[str] = mapped_column(String(12), default=FORM_DRAFT, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)
    # None when the owner filled it through the client portal (then filled_by_client).
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    finalised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The owner's name as the clinic had it when they sent the form through the portal.
    filled_by_client: Mapped[str | None] = mapped_column(String(120))

    patient = relationship("Patient")
    template = relationship("FormTemplate")
    version = relationship("FormVersion")
    started_by = relationship("User", foreign_keys=[started_by_id])
    finalised_by = relationship("User", foreign_keys=[finalised_by_id])

    @property
    def is_finalised(self) -> bool:
        """True once finalised: the form is locked."""
        return self.status == FORM_FINALISED

    @property
    def client_text(self) -> str | None:
        """"the owner, <name>, through the client portal" for a form the owner sent, else
        None."""
        if self.filled_by_client is None:
            return None
        return CLIENT_FILLED.format(name=self.filled_by_client or CLIENT_UNNAMED)

    @property
    def started_by_text(self) -> str:
        """Who started the form, in words."""
        return self.client_text or (self.started_by.name if self.started_by else "someone")

    @property
    def finalised_by_text(self) -> str:
        """Who finalised the form, in words ("" while it is being filled)."""
        if not self.is_finalised:
            return ""
        return self.client_text or (self.finalised_by.name if self.finalised_by else "someone")


class FormEntry(UidMixin, db.Model):
    """One value given to one field at a time. Appended, never edited or deleted: the
    latest by time per field is the form's value."""

    __tablename__ = "form_entries"
    __table_args__ = (Index("ix_form_entries_form_id_at", "form_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("patient_forms.id"))
    key: Mapped[str] = mapped_column(String(40))
    # Text, a number as text, true/false, a date "YYYY-MM-DD", a PNG data URL; None: cleared.
    value: Mapped[object] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # None for a value the owner gave through the client portal.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock.utcnow)

    form = relationship("PatientForm")
    user = relationship("User", lazy="joined")

    @property
    def recorded_by_text(self) -> str:
        """Who gave this value, in words."""
        if self.user is not None:
            return self.user.name
        return self.form.client_text or "someone"
