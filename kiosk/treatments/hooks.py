"""What treatments registers at start-up with the layers below it: hourly upkeep."""

from ..core.upkeep import upkeep_job_register
from .services import tasks_extend_all


def install(app) -> None:
    """Extend every active order two days ahead at each upkeep."""
    upkeep_job_register("tasks_created", tasks_extend_all)
