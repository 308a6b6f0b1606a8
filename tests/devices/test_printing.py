"""The device PDFs (assignment list, tablet labels) and the colour palette they print."""

import dataclasses

import pytest

from kiosk.devices.palette import COLOURS, PALETTE, Swatch, swatch
from kiosk.devices.printing import (
    LABELS_PER_PAGE,
    assignments_document,
    assignments_pdf,
    labels_document,
    labels_pdf,
    render_assignments_html,
    render_labels_html,
)

CLINIC = "Riverside Vets & Exotics"
PRINTED_AT = "Mon 3 Mar 2025, 14:05"
HOSTILE = "<script>alert(1)</script> Rex & Co"
SPECIES = ("Dog", "Cat", "Rabbit", "Ferret")
PET_NAMES = ("Bella", "Milo", "Luna", "Oscar", "Poppy", "Alfie", "Willow", "Tiger",
             "Daisy", "Charlie")


def _patients(count, *, ward="ICU"):
    """`count` patients with cages in one ward."""
    return [{"name": f"{PET_NAMES[i % len(PET_NAMES)]} {i + 1}",
             "species": SPECIES[i % len(SPECIES)], "cage": f"C{i + 1}", "ward": ward}
            for i in range(count)]


def _card(*, id, colour, number, kind="tablet", ward=None, board=None, patients=(),
          name="Ward tablet", revoked=False):
    """One card as the caller builds it."""
    label = f"{swatch(colour).name} #{number}" if number else swatch(colour).name
    return {"id": id, "label": label, "name": name, "colour": colour, "number": number,
            "kind": kind, "ward": ward, "board": board, "patients": list(patients),
            "revoked": revoked}


@pytest.fixture
def cards():
    """A realistic assignment list: a ward tablet, a hostile name, a 40-patient ward, ..."""
    return [
        _card(id="d_1", colour="blue", number=2, ward="ICU", name="ICU tablet",
              patients=[{"name": "Rex", "species": "Dog", "cage": "C3", "ward": "ICU"},
                        {"name": "Mittens", "species": "Cat", "cage": None, "ward": "ICU"}]),
        _card(id="d_2", colour="white", number=1, name=HOSTILE),
        _card(id="d_3", colour="red", number=3, ward="Kennels", name="Kennels tablet",
              patients=_patients(40, ward="Kennels")),
        _card(id="d_4", colour="black", number=4, kind="display", name="Lobby screen"),
        _card(id="d_5", colour="green", number=5, kind="display", board="ICU board",
              name="ICU wall", patients=_patients(3)),
        _card(id="d_6", colour="purple", number=6, name="Old tablet", revoked=True),
    ]


@pytest.fixture
def label_devices():
    """Twelve tablets, one of them white and one with a hostile name."""
    devices = [{"id": f"d_{n}", "label": f"{swatch(c).name} #{n}", "name": f"Tablet {n}",
                "colour": c, "number": n, "kind": "tablet"}
               for n, c in enumerate(COLOURS + COLOURS[:4], start=1)]
    devices[0]["name"] = HOSTILE
    return devices


def _page_of(document, anchor):
    """The 0-based pages on which an element with this id appears."""
    return [i for i, page in enumerate(document.pages) if anchor in page.anchors]


# --- palette -----------------------------------------------------------------------------

def _luminance(hex_colour):
    """WCAG relative luminance of a #rrggbb colour."""
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a, b):
    """WCAG contrast ratio between two colours."""
    low, high = sorted((_luminance(a), _luminance(b)))
    return (high + 0.05) / (low + 0.05)


def test_palette_has_the_fixed_colours_in_order():
    assert COLOURS == ("red", "orange", "yellow", "green", "blue", "purple", "black", "white")
    assert tuple(PALETTE) == COLOURS
    assert [PALETTE[c].name for c in COLOURS] == [
        "Red", "Orange", "Yellow", "Green", "Blue", "Purple", "Black", "White"]


@pytest.mark.parametrize("colour", COLOURS)
def test_every_swatch_is_readable(colour):
    s = swatch(colour)
    assert s is PALETTE[colour]
    assert _contrast(s.text, s.background) >= 4.5


def test_white_swatch_has_a_border_visible_on_paper():
    white = swatch("white")
    assert white.background == "#ffffff" and white.text == "#000000"
    assert _contrast(white.border, "#ffffff") >= 3


def test_unknown_colour_gets_a_grey_swatch_not_an_error():
    grey = swatch("teal")
    assert grey.name == "Unknown" and grey.background == "#8d99ae"
    assert swatch("") == grey and swatch(None) == grey
    assert _contrast(grey.text, grey.background) >= 4.5
    assert swatch(" Blue ") is PALETTE["blue"]


def test_swatches_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PALETTE["red"].background = "#000000"
    assert isinstance(PALETTE["red"], Swatch)


# --- assignment list -----------------------------------------------------------------------

def test_assignments_html_escapes_every_value(app, cards):
    cards[0]["ward"] = "ICU <b>"
    with app.test_request_context():
        html = render_assignments_html(clinic_name="Vets <i>&</i>", printed_at=PRINTED_AT,
                                       cards=cards)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Rex &amp; Co" in html
    assert "<script>" not in html
    assert "Vets &lt;i&gt;&amp;&lt;/i&gt;" in html and "<i>" not in html
    assert "Ward: ICU &lt;b&gt;" in html


def test_assignments_html_says_what_each_device_carries(app, cards):
    with app.test_request_context():
        html = render_assignments_html(clinic_name=CLINIC, printed_at=PRINTED_AT, cards=cards)
    assert "Riverside Vets &amp; Exotics" in html
    assert "Device assignments" in html and f"Printed {PRINTED_AT}" in html
    assert "Blue #2" in html and "ICU tablet" in html and "Ward: ICU" in html
    assert "Rex" in html and "Cage C3" in html and "No cage" in html
    assert "Charlie 40" in html  # the last of the 40 Kennels patients
    assert "Board: ICU board" in html
    # The white and the (revoked) purple tablets have no ward; the black display has no board.
    assert html.count("Not assigned — carries every admitted patient") == 2
    assert html.count("No board") == 1
    assert "counter(pages)" in html
    assert "http" not in html  # nothing to fetch


def test_revoked_card_is_struck_through_and_says_so(app, cards):
    with app.test_request_context():
        html = render_assignments_html(clinic_name=CLINIC, printed_at=PRINTED_AT, cards=cards)
        only_live = render_assignments_html(clinic_name=CLINIC, printed_at=PRINTED_AT,
                                            cards=cards[:5])
    assert 'class="card revoked" id="card-d_6"' in html
    assert html.count('class="revoked-tag">Revoked<') == 1
    assert "revoked-tag\">" not in only_live


def test_assignments_pages_and_breaks(app, cards):
    with app.test_request_context():
        document = assignments_document(clinic_name=CLINIC, printed_at=PRINTED_AT,
                                        cards=cards)
    assert len(document.pages) == 4
    # The 40-patient card runs over a page; every other card stays on one page.
    assert _page_of(document, "card-d_3") == [0, 1, 2]
    assert _page_of(document, "card-d_3-end") == [2]
    for card in cards:
        if card["id"] != "d_3":
            assert _page_of(document, f"card-{card['id']}") == \
                _page_of(document, f"card-{card['id']}-end")


def test_long_card_alone_does_not_leave_a_blank_first_page(app):
    long_card = _card(id="d_9", colour="yellow", number=9, ward="Kennels",
                      patients=_patients(40))
    with app.test_request_context():
        document = assignments_document(clinic_name=CLINIC, printed_at=PRINTED_AT,
                                        cards=[long_card])
    assert len(document.pages) == 2
    assert _page_of(document, "card-d_9") == [0, 1]


def test_assignments_pdf_is_a_pdf(app, cards):
    with app.test_request_context():
        pdf = assignments_pdf(clinic_name=CLINIC, printed_at=PRINTED_AT, cards=cards)
        empty = assignments_pdf(clinic_name=CLINIC, printed_at=PRINTED_AT, cards=[])
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert empty.startswith(b"%PDF")


# --- labels ------------------------------------------------------------------------------

def test_labels_html_escapes_and_colours(app, label_devices):
    with app.test_request_context():
        html = render_labels_html(clinic_name="Vets <i>&</i>", devices=label_devices)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Rex &amp; Co" in html
    assert "<script>" not in html and "<i>" not in html
    assert html.count("Vets &lt;i&gt;&amp;&lt;/i&gt;") == 13  # 12 labels + the title
    assert "background: #ffffff; color: #000000" in html  # the white tablet
    assert "border-color: #555555" in html
    assert "White #8" in html and ">8</div>" in html
    assert "http" not in html


def test_twelve_labels_fill_two_pages(app, label_devices):
    with app.test_request_context():
        document = labels_document(clinic_name=CLINIC, devices=label_devices)
        pdf = labels_pdf(clinic_name=CLINIC, devices=label_devices)
    assert LABELS_PER_PAGE == 10
    assert len(document.pages) == 2
    assert [_page_of(document, f"label-d_{n}") for n in range(1, 13)] == \
        [[0]] * 10 + [[1]] * 2
    assert pdf.startswith(b"%PDF")


def test_ten_labels_fit_one_a4_page(app, label_devices):
    with app.test_request_context():
        document = labels_document(clinic_name=CLINIC, devices=label_devices[:10])
    assert len(document.pages) == 1
    page = document.pages[0]
    # A4 in CSS pixels (96 per inch).
    assert round(page.width / 96 * 25.4) == 210 and round(page.height / 96 * 25.4) == 297


def test_label_without_a_number_and_with_an_unknown_colour(app):
    device = {"id": "d_99", "label": "Spare", "name": "Loan tablet", "colour": "teal",
              "number": None, "kind": "tablet"}
    with app.test_request_context():
        html = render_labels_html(clinic_name=CLINIC, devices=[device])
        pdf = labels_pdf(clinic_name=CLINIC, devices=[device])
    assert 'class="frame no-number"' in html and 'class="number' not in html
    assert "background: #8d99ae" in html
    assert pdf.startswith(b"%PDF")
