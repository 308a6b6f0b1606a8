"""The board read from across the ward: each cell names its most urgent task, every state
has a shape and words as well as a colour, and each board says what it shows."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from kiosk.extensions import db
from kiosk.treatments.models import Task
from kiosk.treatments.selectors import STATES
from kiosk.treatments.services import task_complete
from kiosk.whiteboards.models import Board
from kiosk.whiteboards.selectors import board_grid, cell_for, short_name, task_urgency
from tests import factories

TEN = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def hour_cell(clinic, now: datetime, hour: datetime = TEN):
    """The first patient's cell for `hour` on the clinic's ward board at `now`."""
    grid = board_grid(db.session.get(Board, clinic.board.id), now=now)
    return grid.rows[0].cells[grid.hours.index(hour)]


def order_at(clinic, patient, name: str, due: datetime):
    """A 24-hourly order whose first task is due at `due`."""
    return factories.order_make(clinic, patient, now=due - timedelta(hours=1), name=name,
                                start=due, every_hours=24)


def most_urgent(tasks) -> str:
    """The name task_urgency puts first among (state, due, name) triples."""
    return min(task_urgency(*task) for task in tasks)[2]


def test_most_urgent_is_overdue_first_then_due_soonest():
    tasks = [("scheduled", 100.0, "Alpha"), ("due", 50.0, "Bravo"),
             ("overdue", 200.0, "Charlie"), ("overdue", 150.0, "Delta"), ("done", 10.0, "Echo")]
    assert most_urgent(tasks) == "Delta"
    assert most_urgent(tasks[:3]) == "Charlie"
    assert most_urgent([("done", 10.0, "Echo"), ("scheduled", 900.0, "Alpha")]) == "Alpha"
    assert most_urgent([("skipped", 5.0, "Foxtrot"), ("done", 9.0, "Echo")]) == "Echo"
    assert most_urgent([("due", 5.0, "Zulu"), ("due", 5.0, "Kilo")]) == "Kilo"


def test_cell_names_the_overdue_task_before_a_due_one(clinic):
    patient = factories.patient_make(clinic)
    order_at(clinic, patient, "Temperature", TEN)                       # 10:00
    order_at(clinic, patient, "Antibiotic", TEN + timedelta(minutes=30))  # 10:30
    now = TEN + timedelta(minutes=40)  # 10:00 overdue (15 min grace), 10:30 due
    cell = hour_cell(clinic, now)
    assert dict(cell.chips) == {"overdue": 1, "due": 1}
    assert cell.name == "Temperature"
    assert '<span class="task-name" title="Temperature">Temperat…</span>' in cell.html
    task = db.session.scalar(select(Task).join(Task.order).where(Task.due_at == TEN))
    task_complete(task=task, user=clinic.user(2), now=now)
    db.session.commit()
    assert hour_cell(clinic, now).name == "Antibiotic"   # the done one gives way


def test_cell_names_the_longest_overdue_not_the_first_by_name(clinic):
    patient = factories.patient_make(clinic)
    order_at(clinic, patient, "Zinc paste", TEN + timedelta(minutes=5))
    order_at(clinic, patient, "Amoxicillin", TEN + timedelta(minutes=20))
    cell = hour_cell(clinic, TEN + timedelta(hours=2))
    assert dict(cell.chips) == {"overdue": 2}
    assert cell.name == "Zinc paste"
    # Before either is late: the one due soonest.
    assert hour_cell(clinic, TEN - timedelta(hours=1)).name == "Zinc paste"


def test_tasks_due_together_are_named_alphabetically(clinic):
    patient = factories.patient_make(clinic)
    order_at(clinic, patient, "Zinc paste", TEN)
    order_at(clinic, patient, "Amoxicillin", TEN)
    order_at(clinic, patient, "Buprenorphine", TEN + timedelta(minutes=1))
    assert hour_cell(clinic, TEN + timedelta(hours=2)).name == "Amoxicillin"


def test_short_names_fit_a_cell():
    assert short_name("Heart rate") == "Heart rate"
    assert short_name("  Pain   score ") == "Pain score"
    assert short_name("Check IV catheter") == "Check IV…"
    assert short_name("Hartmann's") == "Hartmann's"
    assert short_name("Temperature") == "Temperat…"  # "Temperatu…" overflowed a 1080p cell
    assert short_name("Amoxicillin-clavulanate") == "Amoxicil…"
    assert short_name("Cefazolin (pre-op)") == "Cefazoli…"
    assert len(short_name("x" * 120)) == 9


def test_cell_markup_has_a_shape_and_words_for_each_state():
    chips = tuple((state, i + 1) for i, state in enumerate(STATES))
    html = str(cell_for(chips, "Amoxicillin <b>clav</b>").html)
    for i, state in enumerate(STATES):
        assert (f'<span class="chip {state}"><svg aria-hidden="true"><use href="#state-{state}">'
                f'</use></svg>{i + 1}<span class="sr-only"> {state}</span></span>') in html
    assert "<b>" not in html
    assert 'title="Amoxicillin &lt;b&gt;clav&lt;/b&gt;"' in html
    assert '<span class="task-name" title=' in html


def test_board_page_draws_every_shape_and_a_legend_in_words(clinic, client, login):
    patient = factories.patient_make(clinic)
    factories.order_make(clinic, patient, name="<script>x</script>")
    login(clinic.user(1))
    html = client.get(f"/boards/{clinic.board.id}").get_data(as_text=True)
    for state in STATES:
        assert f'<symbol id="state-{state}"' in html
        assert (f'<li class="chip {state}"><svg aria-hidden="true"><use href="#state-{state}">'
                f'</use></svg>{state}</li>') in html
    assert "skipped / stopped" not in html
    assert "<script>x</script>" not in html and "&lt;script&gt;x" in html
    assert '<p class="board-kind">Ward ICU</p>' in html


def test_each_board_says_what_it_shows(clinic, client, login):
    db.session.add_all([Board(name="Pending", kind="pending", position=5),
                        Board(name="ICU pending", kind="pending", ward_id=clinic.ward.id),
                        Board(name="Going home", kind="list"),
                        Board(name="ICU to finish", kind="ward", ward_id=clinic.ward.id,
                              filter="pending")])
    db.session.commit()
    login(clinic.user(1))
    html = client.get("/boards/").get_data(as_text=True)
    assert "Hand-made list" not in html
    for shown in ("<span>Ward ICU</span>",
                  "<span>Patients with unfinished work (fills itself)</span>",
                  "<span>Ward ICU: patients with unfinished work (fills itself)</span>",
                  "<span>Patients put on it by hand</span>",
                  "<span>Ward ICU, only those with unfinished work</span>"):
        assert shown in html, shown
    pending = db.session.scalar(select(Board).where(Board.name == "Pending"))
    page = client.get(f"/boards/{pending.id}").get_data(as_text=True)
    assert '<p class="board-kind">Patients with unfinished work (fills itself)</p>' in page
