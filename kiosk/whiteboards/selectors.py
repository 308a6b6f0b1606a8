"""Reads for the wall whiteboard: patients × hours in a fixed handful of queries."""

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from markupsafe import Markup, escape
from sqlalchemy import func, literal, select, union

from ..clinic.selectors import settings_get, settings_zone
from ..core import clock
from ..core.clock import hour_floor, local_day_bounds, to_local
from ..core.errors import NotFound
from ..core.sqlfunc import epoch_seconds
from ..extensions import db
from ..patients.models import Patient
from ..treatments.models import TASK_OPEN, Order, Task
from ..treatments.selectors import CLOSED_STATES, STATES
from .models import Board, BoardMember
from .sources import board_source

# A task's name on the board: whole when it fits a cell at 1080p, else cut with an ellipsis.
SHORT_NAME_CHARS = 10


@dataclass(frozen=True)
class Cell:
    """The tasks of one patient due in one hour: chips (state, count), most urgent first,
    and the name of the most urgent task.

    Cells are shared between equal contents and carry their markup, made once: a board of
    200 patients has 2,600 cells but only a few hundred different ones.
    """

    chips: tuple[tuple[str, int], ...] = ()
    name: str = ""
    css: str = ""
    html: Markup = Markup("")

    @property
    def worst(self) -> str | None:
        """The most urgent state in the cell, for its background."""
        return self.chips[0][0] if self.chips else None


def short_name(name: str, limit: int = SHORT_NAME_CHARS) -> str:
    """An order's name shortened for a board cell: whole if it fits in `limit` characters,
    else cut at a word boundary when one is near (or mid-word) and ended with "…", in
    `limit - 1` characters all told (the ellipsis is wider than a letter; what still does
    not fit a narrow cell is clipped by the page's own ellipsis)."""
    name = " ".join(name.split())
    if len(name) <= limit:
        return name
    cut = name[:limit - 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space >= limit // 2 else cut[:limit - 2]
    return cut.rstrip(" -,.;:/(") + "…"


_RANK = {state: i for i, state in enumerate(STATES)}


def task_urgency(state: str, due: float, name: str) -> tuple[int, float, str]:
    """How urgent a task is, the most urgent smallest: overdue, then due, scheduled, done,
    skipped, stopped; within a state the one due soonest (longest overdue first); then by
    name. The one rule for which task a board cell names."""
    return _RANK[state], due, name


def _chip_html(state: str, count: int) -> str:
    # Kept short: a board of 200 patients carries thousands of chips.
    return (f'<span class="chip {state}"><svg aria-hidden="true"><use href="#state-{state}">'
            f'</use></svg>{count}<span class="sr-only"> {state}</span></span>')


@lru_cache(maxsize=4096)
def cell_for(chips: tuple[tuple[str, int], ...], name: str = "") -> Cell:
    """The one Cell for these chips (states come from a fixed list, counts are ints) and
    this task name (escaped here, shortened for the screen)."""
    if not chips:
        return Cell()
    html = "".join(_chip_html(state, count) for state, count in chips)
    if name:
        short = short_name(name)
        title = f' title="{escape(name)}"' if short != name else ""
        html += f'<span class="task-name"{title}>{escape(short)}</span>'
    return Cell(chips=chips, name=name, css=f" has-{chips[0][0]}",
                html=Markup(html))  # noqa: S704


EMPTY_CELL = cell_for(())


@dataclass
class BoardRow:
    """A patient's line on the board."""

    patient: Patient
    cells: list[Cell]
    undone_yesterday: int = 0
    carriers: list = field(default_factory=list)  # the tablets carrying this patient
    pending: list = field(default_factory=list)  # what is unfinished (pending boards)
    tasks: list = field(default_factory=list)  # TaskChip: open staff tasks, due soonest first


@dataclass(frozen=True)
class TaskChip:
    """A staff task on a patient's row: "Bloods 14:00", the whole title, overdue or not."""

    text: str
    title: str
    overdue: bool


@dataclass
class BoardGrid:
    """The whole board: hour columns, patient rows, and the time it was drawn."""

    board: Board
    hours: list[datetime]
    rows: list[BoardRow]
    now: datetime
    current_hour: int
    states: tuple[str, ...] = STATES  # every chip state, for the legend


def board_by_id(board_id: int) -> Board:
    """The board with this id, or NotFound."""
    board = db.session.get(Board, board_id)
    if board is None:
        raise NotFound("There is no board with that id.")
    return board


def boards_list() -> list[Board]:
    """Every board, in the order the clinic set."""
    return list(db.session.scalars(select(Board).order_by(Board.position, Board.name)))


def board_is_pending(board: Board) -> bool:
    """Whether the board shows only patients with something unfinished."""
    return board.kind == "pending" or board.filter == "pending"


def board_patients(board: Board) -> list[Patient]:
    """Admitted patients on the board: the ward's for a ward board, members for a list,
    for a pending board (or filter) those with something unfinished."""
    query = select(Patient).where(Patient.status == "admitted")
    if board.kind == "ward" or board.kind == "pending" and board.ward_id is not None:
        query = query.where(Patient.ward_id == board.ward_id)
    elif board.kind == "list":
        query = query.join(BoardMember, BoardMember.patient_id == Patient.id).where(
            BoardMember.board_id == board.id)
    patients = list(db.session.scalars(query.order_by(Patient.cage, Patient.name)))
    if board_is_pending(board):
        pending = board_source("pending", patients)
        patients = [p for p in patients if p.id in pending]
    return patients


def board_has_patient(board: Board, patient: Patient) -> bool:
    """Whether the board shows this patient now (admitted, and in its ward or on its list)."""
    if patient.status != "admitted":
        return False
    if board_is_pending(board) and not board_source("pending", [patient]):
        return False
    if board.kind == "ward" or board.kind == "pending" and board.ward_id is not None:
        return patient.ward_id == board.ward_id
    if board.kind == "pending":
        return True
    return db.session.scalar(select(BoardMember.id).where(
        BoardMember.board_id == board.id, BoardMember.patient_id == patient.id)) is not None


def boards_showing(patients: dict[str, set[int]], connection=None) -> dict[str, list[int]]:
    """For each patient uid, the ids of the boards it is on: the ward board of its ward and
    of the wards in its set (a ward it just left), and the lists it is on. Two queries, on
    `connection` (a committing transaction's) or else on a connection of their own."""
    uids = sorted(patients)
    shown: dict[str, set[int]] = {uid: set() for uid in uids}
    left = sorted({ward for wards in patients.values() for ward in wards})
    with nullcontext(connection) if connection is not None else db.engine.connect() as conn:
        for start in range(0, len(uids), 500):
            chunk = uids[start:start + 500]
            ward_board = select(Patient.uid, Board.id).join(
                Patient, Patient.ward_id == Board.ward_id).where(
                Board.kind == "ward", Patient.uid.in_(chunk))
            listed = select(Patient.uid, BoardMember.board_id).join(
                Patient, Patient.id == BoardMember.patient_id).where(Patient.uid.in_(chunk))
            # Pending boards may gain or lose any patient: told of every change.
            pending = select(Patient.uid, Board.id).join(Board, literal(True)).where(
                (Board.kind == "pending") | (Board.filter == "pending"),
                Patient.uid.in_(chunk))
            for uid, board_id in conn.execute(union(ward_board, listed, pending)):
                shown[uid].add(board_id)
        if left:
            boards = conn.execute(select(Board.ward_id, Board.id).where(
                Board.kind == "ward", Board.ward_id.in_(left))).all()
            for uid, wards in patients.items():
                shown[uid].update(board_id for ward_id, board_id in boards if ward_id in wards)
    return {uid: sorted(ids) for uid, ids in shown.items()}


def board_grid(board: Board, *, now: datetime | None = None,
               patients: list[Patient] | None = None) -> BoardGrid:
    """The board's grid; pass `patients` to draw only those rows (one row for htmx)."""
    settings = settings_get()
    tz = settings_zone(settings)
    now = now or clock.utcnow()
    first = hour_floor(now, tz) - timedelta(hours=settings.board_hours_back)
    hours = [first + timedelta(hours=i)
             for i in range(settings.board_hours_back + settings.board_hours_ahead + 1)]
    patients = board_patients(board) if patients is None else patients
    ids = [p.id for p in patients]
    rows = {p.id: BoardRow(patient=p, cells=[EMPTY_CELL] * len(hours)) for p in patients}
    if ids:
        cells = _cells(ids, first, len(hours), now, timedelta(minutes=settings.due_grace_minutes))
        for patient_id, row_cells in cells.items():
            rows[patient_id].cells = row_cells
        for patient_id, count in _undone_yesterday(ids, now, tz):
            rows[patient_id].undone_yesterday = count
        for patient_id, devices in board_source("carriers", patients).items():
            rows[patient_id].carriers = devices
        for patient_id, tasks in board_source("tasks", patients).items():
            rows[patient_id].tasks = [task_chip(t, now, tz) for t in tasks]
        if board_is_pending(board):
            for patient_id, labels in board_source("pending", patients).items():
                rows[patient_id].pending = labels
    return BoardGrid(board=board, hours=hours, rows=list(rows.values()), now=now,
                     current_hour=settings.board_hours_back)


def task_chip(task, now: datetime, tz) -> TaskChip:
    """A BoardTask as its chip: short name and clinic-local due time; overdue once past due."""
    due = to_local(task.due_at, tz).strftime("%H:%M")
    return TaskChip(text=f"{short_name(task.title)} {due}", title=f"{task.title}, due {due}",
                    overdue=task.due_at < now)


def _cells(ids: list[int], first: datetime, columns: int, now: datetime,
           grace: timedelta) -> dict[int, list[Cell]]:
    """Each patient's cells, from task counts grouped by due time and status in SQL; each
    cell names its most urgent task (task_urgency)."""
    first_s = int(first.timestamp())
    now_s, grace_s = now.timestamp(), grace.total_seconds()
    due_s = epoch_seconds(Task.due_at)
    # Tasks of one group share their state and due time, so task_urgency tells them apart
    # by name alone: the group's first name (in the database's collation) is its most urgent.
    query = (select(Task.patient_id, due_s, Task.status, func.min(Order.name), func.count())
             .join(Order, Order.id == Task.order_id)
             .where(Task.patient_id.in_(ids), Task.due_at >= first,
                    Task.due_at < first + timedelta(hours=columns))
             .group_by(Task.patient_id, due_s, Task.status))
    # Per patient, per column: counts by index into STATES and the most urgent task so far
    # (a hot loop: kept plain).
    counts: dict[int, list[list | None]] = {}
    for patient_id, due, status, name, n in db.session.connection().execute(query):
        row = counts.get(patient_id)
        if row is None:
            row = counts[patient_id] = [None] * columns
        column = (due - first_s) // 3600
        cell = row[column]
        if cell is None:
            cell = row[column] = [[0] * len(STATES), None]
        if status in CLOSED_STATES:
            state = CLOSED_STATES[status]
        elif now_s > due + grace_s:
            state = "overdue"
        elif now_s >= due - grace_s:
            state = "due"
        else:
            state = "scheduled"
        urgency = task_urgency(state, due, name)
        cell[0][urgency[0]] += n
        if cell[1] is None or urgency < cell[1]:
            cell[1] = urgency
    return {patient_id: [_cell_of(c) for c in row] for patient_id, row in counts.items()}


def _cell_of(cell: list | None) -> Cell:
    if cell is None:
        return EMPTY_CELL
    counts, urgency = cell
    return cell_for(tuple((STATES[i], n) for i, n in enumerate(counts) if n), urgency[2])


def _undone_yesterday(ids: list[int], now: datetime, tz) -> list[tuple[int, int]]:
    start, end = local_day_bounds(to_local(now, tz).date() - timedelta(days=1), tz)
    return list(db.session.execute(
        select(Task.patient_id, func.count(Task.id))
        # A literal, not a parameter, so the partial index of open tasks applies.
        .where(Task.patient_id.in_(ids), Task.status == literal(TASK_OPEN, literal_execute=True),
               Task.due_at >= start,
               Task.due_at < end)
        .group_by(Task.patient_id)))
