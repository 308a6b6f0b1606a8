"""What features above the boards add to them, registered at start-up (the boards import
neither): "carriers" (devices: the tablets carrying each patient), "pending" (what each
patient still has unfinished: discharge's checks, the inbox's tasks due soon — several
sources, their labels joined) and "tasks" (the inbox: each patient's open staff tasks, as
BoardTask). Each answers {patient id: [...]} for a list of patients, in a handful of
queries whatever their number."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..patients.models import Patient

SOURCES = ("carriers", "pending", "tasks")
# Sources whose answers are joined: each registered function adds its labels.
JOINED = ("pending",)
_sources: dict[str, list[Callable[[list[Patient]], dict[int, list]]]] = {}


@dataclass(frozen=True)
class BoardTask:
    """A task a patient's row shows as a chip: its name and when it is due (aware UTC);
    the board says whether it is overdue, on its own clock."""

    title: str
    due_at: datetime


def board_source_register(name: str, source: Callable[[list[Patient]], dict[int, list]]
                          ) -> None:
    """Register what fills the boards' `name` ("carriers", "pending" or "tasks"); a
    "pending" source is added to those already there, others replace theirs."""
    if name not in SOURCES:
        raise ValueError(f"unknown board source {name!r}")
    if name not in JOINED:
        _sources[name] = [source]
    elif source not in _sources.setdefault(name, []):
        _sources[name].append(source)


def board_source(name: str, patients: list[Patient]) -> dict[int, list]:
    """What the registered sources of `name` say of these patients, by patient id."""
    sources = _sources.get(name)
    if not sources:
        raise RuntimeError(f"no board source {name!r} is registered (create_app does it)")
    if len(sources) == 1:
        return sources[0](patients)
    out: dict[int, list] = {}
    for source in sources:
        for patient_id, items in source(patients).items():
            out.setdefault(patient_id, []).extend(items)
    return out
