"""Staff users with levels 1–6."""

from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.models import TimestampMixin, UidMixin, UTCDateTime
from ..extensions import db


class User(UidMixin, TimestampMixin, db.Model):
    """A staff member. `public_id` (u_<n>) is what ops and the command line name."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    username: Mapped[str | None] = mapped_column(String(60), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    # What shared tablets check the PIN against while offline (PBKDF2; see docs/security.md).
    pin_verifier: Mapped[str | None] = mapped_column(String(160))
    # How many digits the PIN has (None: set before this was kept); levels 5-6 need 6.
    pin_length: Mapped[int | None] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Wrong passwords and PINs in a row, from anywhere, and until when sign-in is refused
    # (staff.services: a growing delay). In the database, so every process and a restart
    # see the same count.
    sign_in_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The wards this person works on: only those wards' tablets get their PIN verifier.
    wards = relationship("Ward", secondary="users_wards", order_by="Ward.name")

    @property
    def public_id(self) -> str:
        """The id ops and the command line use, e.g. 'u_12'."""
        return f"u_{self.id}"

    @classmethod
    def public_id_expr(cls):
        """`public_id` as SQL ('u_' || id), for reads that never load the user."""
        from sqlalchemy import String, cast, literal

        return (literal("u_") + cast(cls.id, String)).label("public_id")

    def __repr__(self) -> str:
        return f"<User {self.public_id} level {self.level}>"


users_wards = Table(
    "users_wards", db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("ward_id", ForeignKey("wards.id", ondelete="CASCADE"), primary_key=True),
)


class PinFailure(db.Model):
    """Wrong PINs in a row at one place (a tablet: 'd_3'), whoever they were typed for.

    Beside each user's own count, this stops someone at one tablet from trying a few PINs
    for each of many people; the same growing delay then holds PIN sign-in at that place.
    """

    __tablename__ = "pin_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    place: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffSession(db.Model):
    """One sign-in of a person in one browser, kept on the server so it can be ended.

    The browser's cookie names it by a random key (stored here only as its SHA-256).
    Signing out ends this one; a new password or PIN ends all of that person's; a PIN
    sign-in belongs to the tablet it was made on (`device_id`) and ends with its session.
    """

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    auth: Mapped[str] = mapped_column(String(10))  # "password" or "pin"
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id",
                                                             ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
