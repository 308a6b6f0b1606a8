"""What the inbox registers at start-up with the layers below it: the boards' task chips
and pending labels, the reminder job, and the nav's count of what waits."""

from ..core.auth import current_user
from ..whiteboards.sources import board_source_register
from .jobs import install_jobs
from .selectors import board_pending, board_tasks, inbox_open_count
from .services import staff_task_may_complete


def inbox_count() -> int:
    """What waits in the signed-in person's inbox (on a tablet: whoever signed in on it,
    not whoever only unlocked it; 0 when nobody is): one COUNT query, for the nav's badge."""
    user = current_user()
    return inbox_open_count(user) if user is not None else 0


def install(app) -> None:
    """Show open staff tasks on the boards (chips, and pending labels when due soon),
    send reminders, and give templates the inbox's count and who may complete a task."""
    board_source_register("tasks", board_tasks)
    board_source_register("pending", board_pending)
    install_jobs()
    app.jinja_env.globals.update(inbox_count=inbox_count,
                                 task_may_complete=staff_task_may_complete)
