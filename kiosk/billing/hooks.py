"""What billing registers at start-up: it listens for the facts that cause charges."""

from ..core.events import fact_subscribe
from .services import charge_for_anaesthesia_drug, charge_for_form, charge_for_task


def install(app) -> None:
    """Charge billable task completions (PRN doses too), anaesthesia drugs and form fees."""
    fact_subscribe("task.completed", charge_for_task)
    fact_subscribe("anaesthesia.drug_given", charge_for_anaesthesia_drug)
    fact_subscribe("form.finalised", charge_for_form)
