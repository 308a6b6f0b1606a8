"""The three answers to a device's conflict or refused change: keep the server's, replace
it with the tablet's, or add the tablet's as a note.

Each answer changes things only through the services that own them (marking the op
reviewed: devices.services.sync_op_dismiss; the task's standing completion:
treatments.completions.task_completion_stand; notes: treatments.services.note_add), each of
which checks the level and writes the audit log. Like every service, these never commit.
"""

from ..clinic.selectors import settings_zone
from ..core.auth import LEVEL_ORDERS, permission_check
from ..core.clock import to_local
from ..core.errors import DomainError
from ..treatments.completions import task_completion_stand
from ..treatments.services import note_add
from .models import Device
from .selectors import ProblemCard, problem_card
from .services import sync_op_dismiss

ANSWERS = ("keep", "replace", "note")
ERR_ALREADY_REVIEWED = "This change was already reviewed ({when}); nothing was changed."
ERR_CANNOT_REPLACE = ("Only a task done twice can take the tablet's completion instead; "
                      "keep the server's or add the tablet's as a note.")
ERR_NOTHING_TO_NOTE = ("This change names no patient, or carries nothing to write down; "
                       "keep the server's instead.")


def conflict_resolve(*, actor, device: Device, op_id, answer: str) -> ProblemCard:
    """Answer one of `device`'s ops to review ('keep', 'replace' or 'note'), then mark it
    reviewed. DomainError (nothing changed) for an unknown op or answer, one already
    reviewed, an answer this op does not allow, or a person without the level."""
    permission_check(actor, LEVEL_ORDERS, "review sync conflicts")
    if answer not in ANSWERS:
        raise DomainError("bad_answer", "Choose keep, replace or note.", status=404)
    card = problem_card(device, op_id)
    if card.op.dismissed_at is not None:
        when = to_local(card.op.dismissed_at, settings_zone()).strftime("%d %b %H:%M")
        raise DomainError("already_reviewed", ERR_ALREADY_REVIEWED.format(when=when),
                          status=409)
    if answer == "replace":
        if not card.can_replace:
            raise DomainError("cannot_replace", ERR_CANNOT_REPLACE, status=409)
        task_completion_stand(completion=card.completion, user=actor)
    elif answer == "note":
        if not card.can_note:
            raise DomainError("nothing_to_note", ERR_NOTHING_TO_NOTE, status=409)
        note_add(patient=card.patient, user=actor, text=conflict_note_text(card))
    sync_op_dismiss(actor=actor, device=device, op_id=card.op.id)
    return card


def conflict_note_text(card: ProblemCard) -> str:
    """The note that keeps a tablet's entry on the patient's record, saying where it came
    from and what the server held instead."""
    zone = settings_zone()

    def when(at) -> str:
        return to_local(at, zone).strftime("%d %b %H:%M") if at else "an unknown time"

    subject = card.what
    if card.task is not None:
        subject = f"{card.task.order.name} due {when(card.task.due_at)}"
    tablet = card.tablet
    said = "; ".join(f"{label}: {value}" for label, value in tablet.fields)
    text = (f"From {tablet.device or 'a tablet'} (a sync conflict, reviewed): {subject}, "
            f"by {tablet.person} at {when(tablet.at)}. {said}.")
    server = card.server
    if server is not None:
        held = server.summary or "; ".join(f"{label}: {value}" for label, value in server.fields)
        by = f" by {server.person}" if server.person else ""
        text += f" The record kept{by} at {when(server.at)}: {held or 'done'}."
    return text
