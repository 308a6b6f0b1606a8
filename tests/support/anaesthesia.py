"""Long anaesthesia sheets, for the PDF tests and bench/documents.py."""

from datetime import UTC, datetime, timedelta

from kiosk.anaesthesia.services import anaesthesia_finalise, anaesthesia_record, anaesthesia_start
from kiosk.extensions import db

DRUGS = [("Methadone", "0.2 mg/kg", "IM"), ("Dexmedetomidine", "3 µg/kg", "IM"),
         ("Propofol", "4 mg/kg", "IV"), ("Meloxicam", "0.2 mg/kg", "SC"),
         ("Cefazolin", "22 mg/kg", "IV")]
EVENTS = ["induction", "intubation", "surgery_start", "surgery_end", "extubation"]


def long_sheet(patient, user, *, hours: int = 4, drugs: int = 20, finalise: bool = True,
               start: datetime | None = None):
    """A sheet with vitals every 5 minutes for `hours`, `drugs` drug entries, every event."""
    start = start or datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    sheet = anaesthesia_start(patient=patient, user=user, at=start, header={
        "procedure": "TPLO, left stifle", "asa": "II", "team": "Dr Okafor, Leo (nurse)",
        "equipment": "ECG, SpO₂, capnography, NIBP"})
    anaesthesia_record(sheet=sheet, user=user, kind="pre", at=start, data={
        "weight_kg": "32.4", "temp": "38.6", "hr": "96", "rr": "24", "crt_s": "1.5",
        "pain": "2", "mm": "pink"})
    for n in range(hours * 12):
        at = start + timedelta(minutes=5 * n)
        anaesthesia_record(sheet=sheet, user=user, kind="vitals", at=at, data={
            "hr": 70 + n % 25, "rr": 10 + n % 6, "spo2": 96 + n % 4, "etco2": 35 + n % 10,
            "sys": 100 + n % 20, "dia": 55 + n % 10, "map": 70 + n % 12, "temp": "37.2",
            "vaporiser": "2", "o2": "1", "fluids": "160"})
    for n in range(drugs):
        name, dose, route = DRUGS[n % len(DRUGS)]
        anaesthesia_record(sheet=sheet, user=user, kind="drug", at=start + timedelta(
            minutes=12 * n), data={"drug": name, "dose": dose, "route": route})
    for n, event in enumerate(EVENTS):
        anaesthesia_record(sheet=sheet, user=user, kind="event", data={"event": event},
                           at=start + timedelta(minutes=10 + 50 * n))
    if finalise:
        anaesthesia_finalise(sheet=sheet, user=user, at=start + timedelta(hours=hours))
    db.session.commit()
    return sheet
