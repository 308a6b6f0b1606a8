"""The wall whiteboard at 1080p: rows with chips, no scrollbars, pages when rows overflow."""

import re

import pytest

from tests.support.server import CROWDED_WARD

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
