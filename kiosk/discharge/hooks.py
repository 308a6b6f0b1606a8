"""What discharge registers at start-up with the layers below it: the pending boards."""

from ..whiteboards.sources import board_source_register
from .selectors import pending_by_patient


def install(app) -> None:
    """Fill the pending boards with what each patient still has unfinished."""
    board_source_register("pending", pending_by_patient)
