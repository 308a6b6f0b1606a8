"""What billing registers at start-up: the facts that cause charges, and its jobs."""

from ..core.events import fact_subscribe
from .jobs import install_jobs
from .services import charge_for_anaesthesia_drug, charge_for_form, charge_for_task


def install(app) -> None:
    """Charge billable task completions (PRN doses too), anaesthesia drugs and form fees;
    send charges to the practice system on the job queue."""
    fact_subscribe("task.completed", charge_for_task)
    fact_subscribe("anaesthesia.drug_given", charge_for_anaesthesia_drug)
    fact_subscribe("form.finalised", charge_for_form)
    install_jobs()
