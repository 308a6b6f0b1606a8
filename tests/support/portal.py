"""A client portal message on a running server's database, for the browser test and the
documentation's screenshot: an intake form sent by e-mail to the owner of a demo patient.

    python tests/support/portal.py message <patient name>

Run with the server's environment (its KIOSK_DATABASE_URL and KIOSK_SECRET_KEY) and
KIOSK_PUBLIC_URL set to its address; prints one JSON line: the portal link, the message's
and the patient's uids, the owner's name.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A phone as the browser tests and the screenshot hold it.
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 2}
INTAKE_NAME = "Intake questions"
INTAKE_FIELDS = [
    {"key": "about", "label": "Before the visit", "type": "heading"},
    {"key": "eating", "label": "How is your pet eating?", "type": "text", "required": True},
    {"key": "weight", "label": "Weight at home (kg)", "type": "number"},
    {"key": "last_meal", "label": "Date of the last meal", "type": "date"},
    {"key": "vomiting", "label": "Any vomiting in the last week?", "type": "choice",
     "required": True, "options": ["No", "Once", "More than once"]},
    {"key": "agree", "label": "I agree to the treatment plan we discussed", "type": "checkbox",
     "required": True},
    {"key": "signature", "label": "Your signature", "type": "signature", "required": True},
]


def portal_message_make(patient_name: str) -> dict:
    """The intake form (made once) sent by e-mail to the patient's owner (an owner record
    made from the patient's owner name when it has none), left as the e-mail sender leaves
    a message it handed over; its portal link."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import select

    from kiosk import create_app
    from kiosk.core import clock
    from kiosk.extensions import db
    from kiosk.forms.models import FormTemplate
    from kiosk.forms.services import form_template_create
    from kiosk.messaging.links import portal_link
    from kiosk.messaging.models import MESSAGE_SENT
    from kiosk.messaging.services import client_message_queue
    from kiosk.owners.models import Owner
    from kiosk.patients.models import Patient
    from kiosk.staff.models import User

    app = create_app()
    with app.app_context():
        patient = db.session.scalar(select(Patient).where(Patient.name == patient_name))
        manager = db.session.scalar(select(User).where(User.username == "manager"))
        template = db.session.scalar(select(FormTemplate).where(
            FormTemplate.name == INTAKE_NAME)) or form_template_create(
            user=manager, name=INTAKE_NAME, fields=INTAKE_FIELDS)
        if patient.owner_id is None:
            owner = Owner(name=patient.owner_name or "Alex Client",
                          email="owner@example.org", preferred_channel="email")
            db.session.add(owner)
            db.session.flush()
            patient.owner_id = owner.id
        owner = db.session.get(Owner, patient.owner_id)
        message = client_message_queue(
            key=f"intake:{patient.uid}", patient=patient, channel="email",
            subject=f"Before {patient.name}'s visit", form_template=template,
            body=f"Hello {owner.name}, please answer a few questions before "
                 f"{patient.name}'s visit, and sign the form.")
        message.owner_id, message.to_address = owner.id, owner.email
        message.status, message.sent_at = MESSAGE_SENT, clock.utcnow()
        db.session.commit()
        return {"link": portal_link(message), "message": message.uid, "patient": patient.uid,
                "owner": owner.name}


def portal_message_on(server, patient_name: str) -> dict:
    """portal_message_make on `server`'s database (a KioskServer), its links under the
    server's address: what the command printed."""
    env = {**server.process_env(), "KIOSK_PUBLIC_URL": server.base_url}
    result = subprocess.run([sys.executable, __file__, "message", patient_name], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"making the portal message failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def draw_with_a_finger(page, canvas) -> None:
    """A scribble across a signature box as touch events (a phone's own input), through
    Chromium's DevTools protocol: Playwright's touchscreen only taps."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    y = box["y"] + box["height"] / 2
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, points: list) -> None:
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", [{"x": box["x"] + 15, "y": y}])
    for step in range(1, 80):  # a looping line, like a hand's (a prolate cycloid)
        t = step * 0.25
        touch("touchMove", [{"x": box["x"] + 15 + 14 * t - 20 * math.sin(t),
                             "y": y + 5 - 20 * math.cos(t) - 6 * math.sin(t / 3)}])
    touch("touchEnd", [])
    cdp.detach()


def fill_intake(page) -> None:
    """Every field of the intake form on its portal page, the signature drawn."""
    page.get_by_label("How is your pet eating?").fill("Well, twice a day")
    page.get_by_label("Weight at home (kg)").fill("31.5")
    page.get_by_label("Date of the last meal").fill("2026-11-21")
    page.get_by_role("radio", name="Once", exact=True).check()
    page.get_by_label("I agree to the treatment plan we discussed").check()
    draw_with_a_finger(page, page.locator("canvas[data-signature=signature]"))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "message":
        print(json.dumps(portal_message_make(sys.argv[2])))
    else:
        sys.exit("usage: portal.py message <patient name>")
