"""What features above the boards add to them, registered at start-up (the boards import
neither): "carriers" (devices: the tablets carrying each patient) and "pending"
(discharge: what each patient still has unfinished). Each answers {patient id: [...]} for
a list of patients, in a handful of queries whatever their number."""

from collections.abc import Callable

from ..patients.models import Patient

SOURCES = ("carriers", "pending")
_sources: dict[str, Callable[[list[Patient]], dict[int, list]]] = {}


def board_source_register(name: str, source: Callable[[list[Patient]], dict[int, list]]
                          ) -> None:
    """Register what fills the boards' `name` ("carriers" or "pending")."""
    if name not in SOURCES:
        raise ValueError(f"unknown board source {name!r}")
    _sources[name] = source


def board_source(name: str, patients: list[Patient]) -> dict[int, list]:
    """What the registered source `name` says of these patients, by patient id."""
    source = _sources.get(name)
    if source is None:
        raise RuntimeError(f"no board source {name!r} is registered (create_app does it)")
    return source(patients)
