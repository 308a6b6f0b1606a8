"""The rows a sync batch reads and makes, found by uid without asking the database again.

A batch of a hundred ops names the same patients, orders and tasks over and over, and
creates some of them itself (a patient made offline, then its orders, then their tasks).
`BatchRows` loads every row the batch names in five queries up front, then learns every
row the session loads or adds while the batch runs (session events), and holds them all:
the session's identity map is weak, so without a hold the next op would load them again.

Only the quick way of `sync_process` looks rows up here. The careful way asks the
database for every op: a savepoint taken back would leave rows here that no longer exist.
"""

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..extensions import db
from ..patients.models import Patient
from ..patients.selectors import patient_by_uid
from ..treatments.models import Order, Task
from ..treatments.selectors import order_by_uid, task_by_uid

INFO_KEY = "sync_rows"
# How an op finds a patient, order or task by uid when it is not in the batch's rows
# (and how the careful way always does): the same selectors the pages use.
FINDERS = {Patient: patient_by_uid, Order: order_by_uid, Task: task_by_uid}


class BatchRows:
    """Patients, orders and tasks of one batch by uid; every row the batch touched, held."""

    def __init__(self):
        self.by_uid: dict[tuple[type, str], object] = {}
        self.held: list = []

    def learn(self, instance) -> None:
        """Keep `instance` alive for the batch; index it if it is a patient, order or task."""
        self.held.append(instance)
        uid = getattr(instance, "uid", None)
        if uid is not None and type(instance) in FINDERS:
            self.by_uid[(type(instance), uid)] = instance

    def prefetch(self, ops: list[dict]) -> None:
        """Load the patients, orders and tasks the ops name (their args), and the orders and
        patients of those tasks, in five queries."""
        wanted: dict[type, set[str]] = {Patient: set(), Order: set(), Task: set()}
        for op in ops:
            args = op.get("args") if isinstance(op, dict) else None
            if not isinstance(args, dict):
                continue
            for key, model in (("patient", Patient), ("order", Order), ("task", Task)):
                value = args.get(key)
                if isinstance(value, str) and len(value) <= 40:
                    wanted[model].add(value)
        # Tasks first, then the orders and patients they and the ops name, by id or uid:
        # no joins, so an order or patient shared by fifty tasks is read once, and each
        # task finds its order and patient in the session without asking again.
        tasks = self._load(Task, Task.uid, wanted[Task])
        orders = self._load(Order, Order.id, {task.order_id for task in tasks})
        orders += self._load(Order, Order.uid, {
            uid for uid in wanted[Order] if (Order, uid) not in self.by_uid})
        self._load(Patient, Patient.id, {task.patient_id for task in tasks} |
                   {order.patient_id for order in orders})
        self._load(Patient, Patient.uid, {
            uid for uid in wanted[Patient] if (Patient, uid) not in self.by_uid})

    @staticmethod
    def _load(model: type, column, values: set) -> list:
        """The rows of `model` whose `column` is one of `values` (in chunks of 500)."""
        values = sorted(values)
        rows = []
        for start in range(0, len(values), 500):
            rows += db.session.scalars(select(model).where(column.in_(values[start:start + 500])))
        return rows

    def get(self, model: type, uid: str):
        """The row with this uid (made in this batch or stored); else NotFound. A row made
        in this batch has no id until the session flushes: services link rows through
        their relationships, so one flush at the end writes them all."""
        row = self.by_uid.get((model, uid))
        # Not among the batch's rows: ask, as the careful way does (learned when it loads).
        return row if row is not None else FINDERS[model](uid)


def batch_rows_start() -> BatchRows:
    """Begin indexing what the session loads and adds, for one batch."""
    rows = BatchRows()
    db.session.info[INFO_KEY] = rows
    return rows


def batch_rows_end() -> None:
    """Stop indexing (the rows are let go with the batch)."""
    db.session.info.pop(INFO_KEY, None)


@event.listens_for(Session, "loaded_as_persistent")
def _loaded(session, instance) -> None:
    rows = session.info.get(INFO_KEY)
    if rows is not None:
        rows.learn(instance)


@event.listens_for(Session, "transient_to_pending")
def _added(session, instance) -> None:
    rows = session.info.get(INFO_KEY)
    if rows is not None:
        rows.learn(instance)
