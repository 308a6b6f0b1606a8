"""Reads for the wall whiteboard: patients × hours in a fixed handful of queries."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..clinic.selectors import settings_get, settings_zone
from ..core.clock import hour_floor, local_day_bounds, to_local, utcnow
from ..core.errors import NotFound
from ..extensions import db
from ..patients.models import Patient
from ..treatments.models import TASK_OPEN, Order, Task
from ..treatments.selectors import STATES, task_state
from .models import Board, BoardMember


@dataclass
class Cell:
    """The tasks of one patient due in one hour: counts by state and their names."""

    counts: Counter = field(default_factory=Counter)
    names: list[str] = field(default_factory=list)

    def chips(self) -> list[tuple[str, int]]:
        """(state, count) in the order the eye should meet them: overdue first."""
        return [(s, self.counts[s]) for s in STATES if self.counts[s]]

    @property
    def worst(self) -> str | None:
        """The most urgent state in the cell, for its background."""
        chips = self.chips()
        return chips[0][0] if chips else None


@dataclass
class BoardRow:
    """A patient's line on the board."""

    patient: Patient
    cells: list[Cell]
    undone_yesterday: int = 0


@dataclass
class BoardGrid:
    """The whole board: hour columns, patient rows, and the time it was drawn."""

    board: Board
    hours: list[datetime]
    rows: list[BoardRow]
    now: datetime
    current_hour: int


def board_by_id(board_id: int) -> Board:
    """The board with this id, or NotFound."""
    board = db.session.get(Board, board_id)
    if board is None:
        raise NotFound("There is no board with that id.")
    return board


def boards_list() -> list[Board]:
    """Every board, in the order the clinic set."""
    return list(db.session.scalars(select(Board).order_by(Board.position, Board.name)))


def board_patients(board: Board) -> list[Patient]:
    """Admitted patients on the board: the ward's for a ward board, members for a list."""
    query = select(Patient).where(Patient.status == "admitted")
    if board.kind == "ward":
        query = query.where(Patient.ward_id == board.ward_id)
    else:
        query = query.join(BoardMember, BoardMember.patient_id == Patient.id).where(
            BoardMember.board_id == board.id)
    return list(db.session.scalars(query.order_by(Patient.cage, Patient.name)))


def board_grid(board: Board, *, now: datetime | None = None,
               patients: list[Patient] | None = None) -> BoardGrid:
    """The board's grid; pass `patients` to draw only those rows (one row for htmx)."""
    settings = settings_get()
    tz = settings_zone(settings)
    now = now or utcnow()
    first = hour_floor(now, tz) - timedelta(hours=settings.board_hours_back)
    hours = [first + timedelta(hours=i)
             for i in range(settings.board_hours_back + settings.board_hours_ahead + 1)]
    end = hours[-1] + timedelta(hours=1)
    patients = board_patients(board) if patients is None else patients
    ids = [p.id for p in patients]
    rows = {p.id: BoardRow(patient=p, cells=[Cell() for _ in hours]) for p in patients}
    grace = timedelta(minutes=settings.due_grace_minutes)
    if ids:
        tasks = db.session.execute(
            select(Task.patient_id, Task.due_at, Task.status, Order.name)
            .join(Order, Order.id == Task.order_id)
            .where(Task.patient_id.in_(ids), Task.due_at >= first, Task.due_at < end))
        for patient_id, due_at, status, name in tasks:
            cell = rows[patient_id].cells[int((due_at - first).total_seconds() // 3600)]
            cell.counts[task_state(status, due_at, now, grace)] += 1
            cell.names.append(name)
        for patient_id, count in _undone_yesterday(ids, now, tz):
            rows[patient_id].undone_yesterday = count
    return BoardGrid(board=board, hours=hours, rows=list(rows.values()), now=now,
                     current_hour=settings.board_hours_back)


def _undone_yesterday(ids: list[int], now: datetime, tz) -> list[tuple[int, int]]:
    start, end = local_day_bounds(to_local(now, tz).date() - timedelta(days=1), tz)
    return list(db.session.execute(
        select(Task.patient_id, func.count(Task.id))
        .where(Task.patient_id.in_(ids), Task.status == TASK_OPEN, Task.due_at >= start,
               Task.due_at < end)
        .group_by(Task.patient_id)))
