"""Which of a task's recorded completions stands: the one rule for changing it after the
fact (a reviewer choosing the tablet's completion over the one the server kept)."""

from sqlalchemy import select

from ..core.audit import audit_record
from ..core.auth import LEVEL_ORDERS, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..extensions import db
from .models import TASK_DONE, TaskCompletion

ERR_NOT_A_DUPLICATE = ("This completion is already the one the task shows; there is nothing "
                       "to replace.")
ERR_TASK_NOT_DONE = "The task is no longer done (skipped or cancelled since): nothing to replace."


def task_completion_stand(*, completion: TaskCompletion, user, device=None) -> TaskCompletion:
    """Make `completion` (one kept as a duplicate) the task's standing completion: its
    time, person, device, value and note go on the task; every other completion of the
    task becomes the duplicate. Nothing is deleted, and nothing is charged again: the task
    was already done, and stays done once."""
    permission_check(user, LEVEL_ORDERS, "change which completion of a task stands")
    task = completion.task
    if not completion.duplicate:
        raise DomainError("not_duplicate", ERR_NOT_A_DUPLICATE)
    if task.status != TASK_DONE:
        raise DomainError("task_not_done", ERR_TASK_NOT_DONE)
    before = {"value": task.value, "note": task.note, "by": task.done_by_id,
              "at": task.done_at.isoformat() if task.done_at else None}
    for other in db.session.scalars(select(TaskCompletion).where(
            TaskCompletion.task_id == task.id, TaskCompletion.id != completion.id)):
        other.duplicate = True
    completion.duplicate = False
    task.done_at, task.done_by_id = completion.done_at, completion.user_id
    task.done_device_id = completion.device_id
    task.value, task.note = completion.value, completion.note
    audit_record(action="task.completion_stand", entity="task", entity_uid=task.uid, user=user,
                 device=device, detail={"before": before, "completion": completion.id,
                                        "value": completion.value})
    event_record(db.session, "task.changed", patient=task.order.patient.uid, task=task.uid)
    return completion
