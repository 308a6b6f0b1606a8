"""What staff registers at start-up with the layers below it: who a sign-in is."""

from ..core.auth import auth_loader_register
from ..extensions import db
from .models import StaffSession, User
from .sessions import staff_session_live


def signed_in(key, user_id) -> tuple[User | None, StaffSession | None]:
    """The user a session's sign-in key names, with that live sign-in; (None, None) when
    the sign-in is not live (ended, expired, never made)."""
    live = staff_session_live(key, user_id)
    user = db.session.get(User, user_id) if live is not None else None
    return (user, live) if user is not None else (None, None)


def install(app) -> None:
    """Tell core.auth how to find the person of a session."""
    auth_loader_register("sign_in", signed_in)
