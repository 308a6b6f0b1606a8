"""The billing report as an A4 PDF: each patient's charges (one after another in the whole
clinic's, a heading never left at a page's foot), offline charges flagged in words, totals.

Lean on purpose: a busy clinic's shift holds thousands of charges, and WeasyPrint lays
out a table cell by cell (30,000 cells take half a minute). Each patient's lines are one
preformatted block of fixed-width columns instead, which lays out in about a second."""

from flask import render_template

from ..clinic.selectors import settings_get
from ..core import clock
from ..core.pdf import pdf_document
from .selectors import Report, ReportLine

# (heading, width, right-aligned) of each column of a printed charge line.
COLUMNS = (("Performed", 16, False), ("Item", 12, False), ("Description", 34, False),
           ("Qty", 8, True), ("Unit", 10, True), ("Total", 11, True), ("Who", 18, False),
           ("Device", 12, False), ("Flags", 12, False), ("Sent", 6, False))
GAP = "  "  # between columns: a right-aligned amount never touches the name after it


def _cells(values) -> str:
    out = []
    for value, (_, width, right) in zip(values, COLUMNS, strict=True):
        text = " ".join(str(value).split())  # one line: no breaks or tabs from a note
        text = text if len(text) <= width else text[:width - 1] + "…"
        out.append(text.rjust(width) if right else text.ljust(width))
    return GAP.join(out).rstrip()


def heading_line() -> str:
    """The column headings of the printed lines, underlined."""
    head = _cells(name for name, _, _ in COLUMNS)
    return f"{head}\n{'-' * len(head)}"


def charge_line(charge: ReportLine, *, when, qty) -> str:
    """One charge as a printed line; OFFLINE and LATE are words, not colours."""
    flags = " ".join(word for word, on in (("OFFLINE", charge.offline), ("LATE", charge.late))
                     if on)
    sent = "sent" if charge.sent_at else ("held" if charge.held else "no")
    return _cells((when(charge.performed_at), charge.item_code, charge.description,
                   qty(charge.quantity), charge.unit_price, charge.total,
                   charge.user_name or "", charge.device_label or "web", flags, sent))


def total_line(label: str, total) -> str:
    """A total under the Total column."""
    width = sum(w + len(GAP) for _, w, _ in COLUMNS[:5])
    return f"{label[:width - 1].ljust(width)}{str(total).rjust(COLUMNS[5][1])}"


def billing_report_html(report: Report, *, patient=None, when, qty) -> str:
    """The printable HTML of a report (autoescaped like every page)."""
    return render_template("billing/report_print.html", report=report, patient=patient,
                           clinic=settings_get(), when=when, qty=qty,
                           printed_at=clock.utcnow(), heading=heading_line(),
                           line=charge_line, total_line=total_line)


def billing_report_pdf(report: Report, *, patient=None, when, qty) -> bytes:
    """The report as PDF bytes."""
    return pdf_document(billing_report_html(report, patient=patient, when=when,
                                            qty=qty)).write_pdf()
