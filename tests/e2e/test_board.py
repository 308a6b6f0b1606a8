"""The wall whiteboard at 1080p: rows with chips, no scrollbars, pages when rows overflow."""

import re

import pytest

from tests.support.server import CROWDED_WARD

from .conftest import sign_in

pytestmark = pytest.mark.e2e

NO_SCROLL = """() => {
  const el = document.documentElement;
  return {scrollHeight: el.scrollHeight, scrollWidth: el.scrollWidth,
          innerHeight: window.innerHeight, innerWidth: window.innerWidth};
}"""
PAGE_LABEL = re.compile(r"^page 1 of (\d+)$")


def board_check(page, url: str) -> tuple[int, int, str]:
    """Open a board; assert rows with chips and no scrollbars; (rows, hidden rows, label)."""
    page.goto(url)
    rows = page.locator("#board-grid .board-row")
    rows.first.wait_for()
    assert page.locator("#board-grid .board-row .chip").count() > 0
    # board.js has split the rows into pages once the clock shows the time.
    page.wait_for_function("document.getElementById('board-clock').textContent.length > 0")
    size = page.evaluate(NO_SCROLL)
    assert size["scrollHeight"] <= size["innerHeight"], size
    assert size["scrollWidth"] <= size["innerWidth"], size
    hidden = page.locator("#board-grid .board-row.off-page").count()
    label = page.locator("#board-page-label").inner_text().strip()
    return rows.count(), hidden, label


def test_icu_board_fits_a_1080p_screen(wall, live_server):
    """The demo ICU board: chips, no scrollbars; a page label only if rows overflow."""
    total, hidden, label = board_check(wall, f"{live_server}/boards/1")
    if hidden:
        match = PAGE_LABEL.match(label)
        assert match and int(match.group(1)) >= 2, label
    else:
        assert label == ""
    assert total > hidden


def test_a_crowded_board_pages_its_rows(wall, live_server):
    """More patients than fit: the board shows page 1 of N and still never scrolls."""
    wall.goto(f"{live_server}/boards/")
    wall.get_by_role("link", name=re.compile(CROWDED_WARD)).click()
    wall.locator("#board-grid .board-row").first.wait_for()
    total, hidden, label = board_check(wall, wall.url)
    assert hidden > 0, f"all {total} rows fit on one page"
    match = PAGE_LABEL.match(label)
    assert match, label
    pages = int(match.group(1))
    assert pages >= 2
    assert total - hidden <= total / pages + 1


# What a board shows as text on its own background, each inside its table cell.
LEAVES = (".board-head h1, .board-head .board-kind, .board-head .legend li, #board-page-label,"
          " #board-clock, #board-grid thead th, .board-row .name, .board-row .alert,"
          " .board-row .badge, .board-row .pmeta > span, .board-row .chip,"
          " .board-row .task-name, .board-updated")

LAYOUT = """(selector) => {
  const problems = [];
  const label = (el) => el.tagName.toLowerCase() + "." + el.className + " '" +
    el.textContent.trim().slice(0, 30) + "'";
  const leaves = Array.from(document.querySelectorAll(selector)).filter((el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  });
  const boxes = leaves.map((el) => el.getBoundingClientRect());
  leaves.forEach((el, i) => {
    const r = boxes[i];
    if (r.left < -0.5 || r.right > window.innerWidth + 0.5 || r.top < -0.5 ||
        r.bottom > window.innerHeight + 0.5) {
      problems.push("outside the screen: " + label(el));
    }
    const cell = el.closest(".board-row > th, .board-row > td");
    if (cell) {
      const c = cell.getBoundingClientRect();
      if (r.left < c.left - 0.5 || r.right > c.right + 0.5 || r.top < c.top - 0.5 ||
          r.bottom > c.bottom + 0.5) {
        problems.push("sticks out of its cell: " + label(el));
      }
    }
    const style = getComputedStyle(el);
    if (style.display !== "inline" && style.overflowX === "visible" &&
        el.scrollWidth > el.clientWidth + 1) {
      problems.push("text wider than its box: " + label(el));
    }
    for (let j = i + 1; j < leaves.length; j++) {
      const o = boxes[j];
      if (el.contains(leaves[j]) || leaves[j].contains(el)) { continue; }
      const w = Math.min(r.right, o.right) - Math.max(r.left, o.left);
      const h = Math.min(r.bottom, o.bottom) - Math.max(r.top, o.top);
      if (w > 0.5 && h > 0.5) { problems.push(label(el) + " overlaps " + label(leaves[j])); }
    }
  });
  return {problems: problems, checked: leaves.length};
}"""

CONTRAST = """() => {
  const rgba = (text) => {
    const p = text.match(/[\\d.]+/g).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const backdrop = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.a > 0) { layers.push(c); }
      if (c.a >= 1) { break; }
    }
    return layers.reverse().reduce((under, top) => over(top, under), {r: 0, g: 0, b: 0, a: 1});
  };
  const luminance = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  return Array.from(document.querySelectorAll(
      ".board-main .chip, .board-row .task-name, .board-row .badge, .board-row .alert," +
      " .board-row .carrier-chip")).map((el) => {
    const back = backdrop(el);
    const fore = over(rgba(getComputedStyle(el).color), back);
    const [hi, lo] = [luminance(fore), luminance(back)].sort((a, b) => b - a);
    return {what: el.className, text: el.textContent.trim(),
            ratio: (hi + 0.05) / (lo + 0.05)};
  });
}"""

TEXT_SIZES = """() => {
  const main = document.querySelector(".board-main");
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const small = [];
  let checked = 0;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || el.closest(".sr-only")) { continue; }
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) { continue; }
    checked += 1;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < 20) { small.push(el.className + " '" + node.textContent.trim() + "' " + size); }
  }
  return {small: small, checked: checked};
}"""

STATE_SHAPES = """() => Array.from(document.querySelectorAll(".board-main .chip")).map((chip) => {
  const use = chip.querySelector("svg[aria-hidden='true'] use");
  const href = use ? use.getAttribute("href") : null;
  const symbol = href ? document.querySelector(href) : null;
  return {state: Array.from(chip.classList).find((c) => c !== "chip"), href: href,
          drawn: symbol ? symbol.innerHTML.length > 0 : false,
          words: chip.textContent.replace(/\\s+/g, " ").trim(),
          box: use ? use.closest("svg").getBoundingClientRect().width : 0};
})"""


def board_open(page, url: str) -> None:
    """Open a board and wait until board.js has drawn the clock and split the pages."""
    page.goto(url)
    page.locator("#board-grid .board-row").first.wait_for()
    page.wait_for_function("document.getElementById('board-clock').textContent.length > 0")


def test_cells_name_their_most_urgent_task(wall, live_server):
    """Each cell with tasks names one of them, in full or shortened, inside the cell."""
    board_open(wall, f"{live_server}/boards/1")
    cells = wall.locator("#board-grid .board-row:not(.off-page) td.cell:has(.chip)")
    assert cells.count() > 10
    names = cells.evaluate_all("""cells => cells.map(c => {
      const name = c.querySelector('.task-name');
      return name ? {text: name.textContent.trim(), full: name.scrollWidth <= name.clientWidth}
                  : null;
    })""")
    assert all(n and n["text"] for n in names), names
    assert all(n["full"] for n in names), [n for n in names if not n["full"]]  # 1080p: no clipping
    assert {"Hartmann's", "Heart rate"} & {n["text"] for n in names}


def test_states_differ_by_shape_and_words(wall, live_server):
    """Not colour alone: every chip (board and legend) carries its state's drawn shape and
    says its state in words for screen readers."""
    board_open(wall, f"{live_server}/boards/1")
    chips = wall.evaluate(STATE_SHAPES)
    states = {c["state"] for c in chips}
    assert {"overdue", "due", "scheduled", "done", "skipped", "stopped"} <= states, states
    by_state: dict[str, set] = {}
    for chip in chips:
        assert chip["href"] and chip["drawn"] and chip["box"] >= 16, chip
        assert chip["state"] in chip["words"], chip
        by_state.setdefault(chip["state"], set()).add(chip["href"])
    assert all(len(hrefs) == 1 for hrefs in by_state.values()), by_state
    shapes = [next(iter(h)) for h in by_state.values()]
    assert len(set(shapes)) == len(shapes), by_state  # a different shape for every state


def test_chip_text_contrast_is_at_least_4_5(wall, live_server):
    """Text on every chip state, the task names, badges, alerts and tablet labels: contrast
    >= 4.5:1 against what is actually behind them."""
    measured = []
    for board in ("1", "2"):
        board_open(wall, f"{live_server}/boards/{board}")
        measured += wall.evaluate(CONTRAST)
    kinds = {m["what"] for m in measured}
    for state in ("overdue", "due", "scheduled", "done", "skipped", "stopped"):
        assert any(state in k.split() for k in kinds), (state, kinds)
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, low


def test_text_is_at_least_20px_at_1080p(wall, live_server):
    """Read from across the room: no text on the board smaller than 20 px at 1920×1080."""
    board_open(wall, f"{live_server}/boards/1")
    sizes = wall.evaluate(TEXT_SIZES)
    assert sizes["checked"] > 100
    assert not sizes["small"], sizes["small"]


@pytest.mark.parametrize("viewport", [{"width": 1920, "height": 1080},
                                      {"width": 1280, "height": 720},
                                      {"width": 1024, "height": 768}],
                         ids=lambda v: f"{v['width']}x{v['height']}")
def test_nothing_overlaps_or_overflows(browser, live_server, viewport):
    """At 1080p, 1280×720 and on a 1024-wide tablet: the texts and chips of the header and
    of every row keep inside their cells and on the screen, never overlap, and nothing
    scrolls sideways (the ICU board, and the Surgery board with its longer names)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, live_server, "manager", "manager-demo")
        for board in ("1", "2"):
            board_open(page, f"{live_server}/boards/{board}")
            result = page.evaluate(LAYOUT, LEAVES)
            assert result["checked"] > 50
            assert not result["problems"], (board, result["problems"][:10])
            size = page.evaluate(NO_SCROLL)
            assert size["scrollWidth"] <= size["innerWidth"], size
    finally:
        context.close()


def test_the_pending_board_says_what_it_shows(wall, live_server):
    """The demo's pending board reads as what it is, on the boards list and on the wall: not
    "Hand-made list", the words once shown for every board that was not a ward's."""
    shows = "Patients with unfinished work (fills itself)"  # Board.shows of a pending board
    wall.goto(f"{live_server}/boards/")
    tile = wall.locator("a.tile").filter(
        has=wall.locator("strong", has_text=re.compile(r"^Pending$")))
    assert tile.locator("span").inner_text().strip() == shows
    assert "Hand-made" not in wall.locator("main").inner_text()
    tile.click()
    wall.locator(".board-title h1", has_text="Pending").wait_for()
    assert wall.locator(".board-title .board-kind").inner_text().strip() == shows
    assert "Hand-made" not in wall.locator("body").inner_text()
