"""The anaesthesia sheet as a one-hand tablet screen, measured in a real browser on a
landscape (1024×768) and a portrait (768×1024) tablet: every control on the sheet is a
target of at least 44×44 px, the whole vitals form (its steppers and its Record button)
is on the first screen without scrolling, and the chart's labels read at a contrast of at
least 4.5:1 against the chart's own background."""

import re

import pytest

from .conftest import sign_in

pytestmark = pytest.mark.e2e

TABLETS = {"landscape": {"width": 1024, "height": 768},
           "portrait": {"width": 768, "height": 1024}}
MIN_TARGET = 44  # px, both ways (WCAG 2.5.5)
MIN_CONTRAST = 4.5

# Every visible control of the sheet, with the box a finger hits: a checkbox's label
# (tapping the label ticks it), else the control itself.
TARGETS = """() => [...document.querySelectorAll(
    '#anaesthesia a[href], #anaesthesia button, #anaesthesia select, #anaesthesia textarea,'
    + ' #anaesthesia input:not([type=hidden])')]
  .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
  .map(el => {
    const box = (el.type === 'checkbox' && el.closest('label') || el).getBoundingClientRect();
    return {what: el.tagName + ' ' + (el.name || el.textContent.trim()).slice(0, 30),
            width: box.width, height: box.height};
  })"""

CHART_COLOURS = """() => {
  const figure = document.querySelector('#vitals figure.anaesthesia-chart');
  return {background: getComputedStyle(figure).backgroundColor,
          labels: [...figure.querySelectorAll('svg text')].map(t => getComputedStyle(t).fill),
          caption: getComputedStyle(figure.querySelector('figcaption')).color};
}"""


def _rgb(text: str) -> tuple[float, float, float]:
    found = re.match(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)", text)
    assert found, f"not a colour: {text!r}"
    assert found.group(4) in (None, "1"), f"a see-through colour cannot be measured: {text}"
    return tuple(float(found.group(i)) for i in (1, 2, 3))


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two CSS rgb() colours."""
    def luminance(colour: str) -> float:
        channels = [c / 255 for c in _rgb(colour)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_is_measured_as_wcag_defines_it():
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21)
    assert contrast("rgb(118, 118, 118)", "rgb(255, 255, 255)") == pytest.approx(4.54, abs=0.01)
    assert contrast("rgb(10, 20, 30)", "rgb(10, 20, 30)") == pytest.approx(1)


@pytest.fixture(scope="module")
def sheet_url(browser, live_server):
    """A demo patient's open anaesthesia sheet an hour into the anaesthetic: a chart and
    a table of vitals longer than a screen, above which the form must still be."""
    context = browser.new_context(viewport=TABLETS["landscape"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, live_server, "vet", "vet-demo-1")
    href = page.locator("ul.patient-list a[href$='/sheet']").last.get_attribute("href")
    page.goto(live_server + href.replace("/sheet", "/anaesthesia"))
    page.locator("form.anaesthesia-start input[name=procedure]").fill("Castration")
    page.get_by_role("button", name="Start anaesthesia sheet").click()
    page.wait_for_url(re.compile(r"/anaesthesia/[0-9a-f-]{36}$"))
    url = page.url
    for hr, spo2 in zip(range(80, 96, 2), (98, 97, 99, 98, 96, 97, 98, 99), strict=True):
        form = page.locator("form.vitals-form")
        form.locator("input[name=hr]").fill(str(hr))
        form.locator("input[name=spo2]").fill(str(spo2))
        form.get_by_role("button", name=re.compile("Record vitals")).click()
        # By the recorded value, not the row's text: "88" is also in a time such as 05:48.
        row = f'#vitals table.vitals-grid tbody tr[data-values*=\'"hr": "{hr}"\']'
        page.locator(row).wait_for()
    context.close()
    return url


@pytest.fixture(params=sorted(TABLETS))
def sheet_page(request, browser, live_server, sheet_url):
    """The sheet on a touch tablet of each shape, signed in as the vet, at the top."""
    context = browser.new_context(viewport=TABLETS[request.param], has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, live_server, "vet", "vet-demo-1")
    page.goto(sheet_url)
    page.locator("#vitals figure.anaesthesia-chart").wait_for()
    yield page, TABLETS[request.param]
    context.close()


def test_every_control_on_the_sheet_is_a_44_px_target(sheet_page):
    page, _size = sheet_page
    targets = page.evaluate(TARGETS)
    assert len(targets) > 40  # the steppers, the forms, the event buttons, the links
    small = [t for t in targets if t["width"] < MIN_TARGET or t["height"] < MIN_TARGET]
    assert small == []
    steps = page.locator("#vitals button.step")
    assert steps.count() == 2 * page.locator("#vitals .stepper").count() > 0


def test_the_vitals_form_is_on_the_first_screen(sheet_page):
    page, size = sheet_page
    assert page.evaluate("() => window.scrollY") == 0
    form = page.locator("form.vitals-form").bounding_box()
    record = page.locator("form.vitals-form").get_by_role(
        "button", name=re.compile("Record vitals")).bounding_box()
    last_input = page.locator("form.vitals-form .stepper input").last.bounding_box()
    assert form["y"] >= 0 and form["x"] >= 0
    assert form["x"] + form["width"] <= size["width"]
    for box in (form, record, last_input):
        assert box["y"] + box["height"] <= size["height"], (box, size)
    # No sideways scrolling either: the page is as wide as the tablet.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= size["width"]


def test_the_chart_labels_are_readable(sheet_page):
    page, _size = sheet_page
    colours = page.evaluate(CHART_COLOURS)
    assert len(colours["labels"]) >= 7  # the value ticks and the two times
    for fill in set(colours["labels"]) | {colours["caption"]}:
        assert contrast(fill, colours["background"]) >= MIN_CONTRAST, (fill, colours)
