"""Reads of anaesthesia sheets: the merged view a tablet and the PDF show, and its chart."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ..core.models import row_by_uid
from ..extensions import db
from .entries import asa_label
from .models import AnaesthesiaEntry, AnaesthesiaSheet

CHART_SERIES = (("hr", "HR", "#c0392b"), ("spo2", "SpO₂", "#1f6feb"),
                ("etco2", "EtCO₂", "#8250df"), ("sys", "Sys", "#2d7d46"),
                ("dia", "Dia", "#2d7d46"), ("map", "MAP", "#b35900"))
CHART_W, CHART_H, CHART_TOP = 720, 220, 250  # SVG units; values 0–CHART_TOP


def anaesthesia_sheet_by_uid(uid: str) -> AnaesthesiaSheet:
    """The sheet with this uid (one that joined another is returned as itself), or NotFound."""
    return row_by_uid(AnaesthesiaSheet, uid, what="anaesthesia sheet", field="sheet")


def sheets_of(patient) -> list[AnaesthesiaSheet]:
    """The patient's sheets (not those that joined another), newest first."""
    return list(db.session.scalars(select(AnaesthesiaSheet).where(
        AnaesthesiaSheet.patient == patient, AnaesthesiaSheet.merged_into_id.is_(None))
        .order_by(AnaesthesiaSheet.started_at.desc(), AnaesthesiaSheet.id.desc())))


def sheet_uids(sheet: AnaesthesiaSheet) -> list[str]:
    """The uids that name this sheet: its own, then those of the sheets that joined it (a
    tablet's waiting entries may name either)."""
    joined = db.session.scalars(select(AnaesthesiaSheet.uid).where(
        AnaesthesiaSheet.merged_into_id == sheet.id).order_by(AnaesthesiaSheet.id))
    return [sheet.uid, *joined]


def sheet_uids_of_patients(patients) -> dict[int, list[str]]:
    """The uids of the sheets of each patient (those that joined another too: their pages
    show the sheet they joined), by patient id, newest first; one query for them all."""
    ids = [p.id for p in patients]
    found: dict[int, list[str]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = db.session.execute(select(AnaesthesiaSheet.patient_id, AnaesthesiaSheet.uid).where(
        AnaesthesiaSheet.patient_id.in_(ids)).order_by(
        AnaesthesiaSheet.started_at.desc(), AnaesthesiaSheet.id.desc()))
    for patient_id, uid in rows:
        found[patient_id].append(uid)
    return found


def entries_of(sheet: AnaesthesiaSheet) -> list[AnaesthesiaEntry]:
    """Every entry of the sheet, by the time it happened (then by when it was recorded)."""
    # `sheet ==` (not `sheet_id == sheet.id`): the id is read when the query runs, after
    # the autoflush, so a sheet made in this unit of work finds its entries too.
    return list(db.session.scalars(select(AnaesthesiaEntry).where(
        AnaesthesiaEntry.sheet == sheet).order_by(
        AnaesthesiaEntry.at, AnaesthesiaEntry.recorded_at, AnaesthesiaEntry.id)))


def sheet_header(sheet: AnaesthesiaSheet, entries=None) -> dict:
    """Header fields as they stand: the latest value of each (by time) wins."""
    header: dict = {}
    for entry in entries if entries is not None else entries_of(sheet):
        if entry.kind == "header":
            header.update(entry.data)
    return header


@dataclass
class SheetView:
    """What a tablet page and the PDF show of one sheet."""

    sheet: AnaesthesiaSheet
    header: dict
    asa: str
    pre: dict
    drugs: list
    events: list
    vitals: list
    notes: list
    addenda: list
    chart: dict = field(default_factory=dict)
    last_vitals: dict = field(default_factory=dict)


def sheet_view(sheet: AnaesthesiaSheet) -> SheetView:
    """The merged sheet: every entry from every tablet, by time; addenda apart."""
    entries = entries_of(sheet)
    main = [e for e in entries if not e.addendum]
    header = sheet_header(sheet, main)
    pre: dict = {}
    for entry in main:
        if entry.kind == "pre":
            pre.update(entry.data)
    vitals = [e for e in main if e.kind == "vitals"]
    last: dict = {}
    for entry in vitals:
        last.update(entry.data)
    return SheetView(
        sheet=sheet, header=header, asa=asa_label(header), pre=pre,
        drugs=[e for e in main if e.kind == "drug"],
        events=[e for e in main if e.kind == "event"],
        vitals=vitals, notes=[e for e in main if e.kind == "note"],
        addenda=[e for e in entries if e.addendum], chart=chart_of(vitals), last_vitals=last)


def chart_of(vitals: list) -> dict:
    """SVG polylines of HR, SpO₂, EtCO₂ and blood pressure over the sheet's time."""
    if not vitals:
        return {}
    first, last = vitals[0].at, vitals[-1].at
    span = max((last - first).total_seconds(), 300)

    def x(at: datetime) -> float:
        return round((at - first).total_seconds() / span * CHART_W, 1)

    def y(value: str) -> float:
        number = min(max(float(value), 0), CHART_TOP)
        return round(CHART_H - number / CHART_TOP * CHART_H, 1)

    lines = []
    for key, label, colour in CHART_SERIES:
        points = [(x(e.at), y(e.data[key])) for e in vitals if key in e.data]
        if points:
            lines.append({"key": key, "label": label, "colour": colour,
                          "points": " ".join(f"{px},{py}" for px, py in points),
                          "dots": points})
    ticks = [{"y": round(CHART_H - v / CHART_TOP * CHART_H, 1), "label": v}
             for v in range(0, CHART_TOP + 1, 50)]
    return {"width": CHART_W, "height": CHART_H, "lines": lines, "ticks": ticks,
            "first": first, "last": last}
