"""The treatment sheet on a tablet: tap a task, record it, and see it stay recorded."""

import re

import pytest

pytestmark = pytest.mark.e2e

OPEN_NOW = "a.task.overdue, a.task.due"
DONE = re.compile(r"\bdone\b")


def sheet_urls(page, base_url: str) -> list[str]:
    """Every admitted patient's sheet, from the patient list."""
    page.goto(f"{base_url}/patients/")
    links = page.locator("ul.patient-list a[href$='/sheet']")
    links.first.wait_for()
    hrefs = links.evaluate_all("els => els.map(a => a.getAttribute('href'))")
    return [base_url + href for href in hrefs]


def task_state(page, sheet_url: str, uid: str) -> str:
    """The task's state as a fresh GET of the sheet shows it (overdue, due, done …)."""
    response = page.request.get(sheet_url)
    assert response.ok, response.status
    match = re.search(r'class="task (\w+)" href="[^"]*/tasks/' + re.escape(uid) + '"',
                      response.text())
    assert match, f"task {uid} is not on the sheet"
    return match.group(1)


def open_dialog(page, link):
    """Tap a task and wait for its dialog to be open and filled."""
    link.tap()
    dialog = page.locator("dialog#task-dialog")
    dialog.locator(".task-dialog").wait_for()
    page.wait_for_function("document.getElementById('task-dialog').open")
    return dialog


def close_dialog(page) -> None:
    """Close the task dialog without recording anything."""
    page.locator("dialog#task-dialog").get_by_role("button", name="Close").click()
    page.wait_for_function("!document.getElementById('task-dialog').open")


def find_task(page, base_url: str, selector: str):
    """The first sheet with a task matching `selector`: (sheet url, link, uid) or None."""
    for url in sheet_urls(page, base_url):
        page.goto(url)
        page.locator("#sheet-grid").wait_for()
        links = page.locator(selector)
        if links.count():
            link = links.first
            return url, link, link.get_attribute("data-task")
    return None


def find_number_task(page, base_url: str):
    """An open observation task that wants a number, with its dialog open."""
    for selector in ("tr.kind-observation a.task.overdue, tr.kind-observation a.task.due",
                     "tr.kind-observation a.task.scheduled"):
        for url in sheet_urls(page, base_url):
            page.goto(url)
            page.locator("#sheet-grid").wait_for()
            links = page.locator(selector)
            for index in range(min(links.count(), 3)):
                link = links.nth(index)
                uid = link.get_attribute("data-task")
                dialog = open_dialog(page, link)
                if dialog.locator("input[name=value][inputmode=decimal]").count():
                    return url, uid, dialog
                close_dialog(page)
    pytest.fail("The demo clinic has no open observation task that takes a number.")


def test_complete_a_task_on_a_tablet(tablet, live_server):
    """Tap an overdue or due task, record it, the dialog closes and the task stays done."""
    page = tablet
    found = find_task(page, live_server, OPEN_NOW) or find_task(page, live_server,
                                                                 "a.task.scheduled")
    assert found, "The demo clinic has no open task on any sheet."
    url, link, uid = found

    dialog = open_dialog(page, link)
    value = dialog.locator("input[name=value]")
    if value.count():
        value.fill("38.5")
    dialog.locator(".complete-form").get_by_role("button", name="✓ Done").tap()

    page.wait_for_function("!document.getElementById('task-dialog').open")
    done_link = page.locator(f'a.task[data-task="{uid}"]')
    done_link.wait_for()
    assert DONE.search(done_link.get_attribute("class"))
    assert task_state(page, url, uid) == "done"
    page.reload()
    assert DONE.search(page.locator(f'a.task[data-task="{uid}"]').get_attribute("class"))


def test_a_bad_value_is_refused_inside_the_dialog(tablet, live_server):
    """Letters for a temperature: the dialog says why, stays open, and nothing is recorded."""
    page = tablet
    url, uid, dialog = find_number_task(page, live_server)
    state_before = task_state(page, url, uid)

    dialog.locator("input[name=value]").fill("abc")
    dialog.locator(".complete-form").get_by_role("button", name="✓ Done").tap()

    error = dialog.locator(".field-error")
    error.wait_for()
    assert error.inner_text().strip()
    assert page.evaluate("document.getElementById('task-dialog').open")
    assert dialog.locator("input[name=value]").input_value() == "abc"
    assert not DONE.search(page.locator(f'a.task[data-task="{uid}"]').get_attribute("class"))
    assert task_state(page, url, uid) == state_before != "done"
    page.reload()
    assert not DONE.search(page.locator(f'a.task[data-task="{uid}"]').get_attribute("class"))
