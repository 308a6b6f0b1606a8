"""A realistic demo clinic: three wards, about 25 patients, orders from hourly to daily."""

import random
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from .billing.services import charge_add, charge_reverse, item_save, shift_end
from .clinic.models import ClinicSettings, Ward
from .core import clock
from .core.clock import hour_floor, zone
from .extensions import db
from .flows.services import flow_enable, flow_save, template_save
from .forms.services import form_template_create
from .owners.services import owner_link, owner_opt_out, owner_save
from .patients.models import Patient
from .patients.services import patient_create
from .staff.services import user_create
from .treatments.models import TASK_OPEN, Task
from .treatments.services import order_create, task_complete, task_skip
from .whiteboards.models import Board

DEMO_USERS = [
    # name, level, username, password, pin
    ("Dana Manager", 6, "manager", "manager-demo", "666666"),
    ("Dr Sam Okafor", 5, "vet", "vet-demo-1", "555555"),
    ("Priya Tech", 3, "tech", "tech-demo-1", "3333"),
    ("Leo Assistant", 2, None, None, "2222"),
]

# The demo clinic's consent form (Admin → Forms).
CONSENT_FORM = [
    {"key": "about", "label": "Consent to anaesthesia and surgery", "type": "heading"},
    {"key": "owner_name", "label": "Owner's or agent's name", "type": "text", "required": True},
    {"key": "owner_phone", "label": "Phone number for today", "type": "text", "required": True},
    {"key": "procedure", "label": "Procedure", "type": "text", "required": True},
    {"key": "fasted", "label": "Fasted since", "type": "date"},
    {"key": "estimate", "label": "Estimate agreed", "type": "number"},
    {"key": "cpr", "label": "If the heart stops during anaesthesia", "type": "choice",
     "required": True, "options": ["Resuscitate", "Do not resuscitate"]},
    {"key": "risks", "label": "I have been told the risks of anaesthesia and surgery and "
     "agree to them", "type": "checkbox", "required": True},
    {"key": "signature", "label": "Owner's signature", "type": "signature", "required": True},
]

# The form owners fill on their phone through the client portal (sent by a flow).
INTAKE_FORM = [
    {"key": "about", "label": "Before your pet's stay", "type": "heading"},
    {"key": "contact_name", "label": "Your name", "type": "text", "required": True},
    {"key": "contact_phone", "label": "A phone number we can reach you on today",
     "type": "text", "required": True},
    {"key": "medications", "label": "Medicines your pet takes now (name and dose)",
     "type": "text"},
    {"key": "allergies", "label": "Known allergies or reactions", "type": "text"},
    {"key": "fed", "label": "Last meal", "type": "choice", "required": True,
     "options": ["Today", "Yesterday", "I do not know"]},
    {"key": "agree", "label": "I agree to the treatment plan explained to me and to the "
     "clinic's terms", "type": "checkbox", "required": True},
    {"key": "signature", "label": "Your signature", "type": "signature", "required": True},
]

PATIENTS = [
    # name, species, breed, sex, kg, ward, cage, alerts, colour
    ("Biscuit", "canine", "Labrador Retriever", "MN", "32.4", "ICU", "I1", ["bites"], "red"),
    ("Mittens", "feline", "Domestic Shorthair", "FS", "4.1", "ICU", "I2", [], "none"),
    ("Rex", "canine", "German Shepherd", "M", "38.0", "ICU", "I3", ["caution"], "orange"),
    ("Luna", "feline", "Maine Coon", "F", "6.3", "ICU", "I4", ["isolation"], "purple"),
    ("Pepper", "canine", "Border Collie", "FS", "18.9", "ICU", "I5", [], "none"),
    ("Clover", "rabbit", "Netherland Dwarf", "F", "1.2", "ICU", "I6", [], "green"),
    ("Duke", "canine", "Great Dane", "MN", "61.5", "ICU", "I7", ["dnr"], "none"),
    ("Ziggy", "ferret", "Sable", "M", "1.4", "ICU", "I8", [], "none"),
    ("Bella", "canine", "Cavalier King Charles", "FS", "8.2", "Surgery", "S1", [], "blue"),
    ("Oscar", "feline", "British Shorthair", "MN", "5.6", "Surgery", "S2", ["allergies"],
     "none"),
    ("Max", "canine", "Boxer", "M", "29.0", "Surgery", "S3", [], "none"),
    ("Nala", "feline", "Bengal", "FS", "4.4", "Surgery", "S4", [], "yellow"),
    ("Teddy", "canine", "Cockapoo", "MN", "9.7", "Surgery", "S5", [], "none"),
    ("Kiwi", "avian", "Cockatiel", "U", "0.09", "Surgery", "S6", ["caution"], "teal"),
    ("Rosie", "canine", "Staffordshire Bull Terrier", "FS", "17.3", "Surgery", "S7", [], "none"),
    ("Shadow", "feline", "Domestic Longhair", "MN", "5.0", "Surgery", "S8", ["bites"], "none"),
    ("Hazel", "rodent", "Guinea pig", "F", "0.95", "Boarding", "B1", [], "none"),
    ("Milo", "canine", "Beagle", "MN", "13.2", "Boarding", "B2", [], "none"),
    ("Cleo", "feline", "Siamese", "FS", "3.8", "Boarding", "B3", [], "pink"),
    ("Bruno", "canine", "Rottweiler", "M", "45.1", "Boarding", "B4", ["bites", "caution"],
     "red"),
    ("Poppy", "canine", "Jack Russell Terrier", "FS", "6.9", "Boarding", "B5", [], "none"),
    ("Simba", "feline", "Ragdoll", "MN", "7.2", "Boarding", "B6", [], "none"),
    ("Spike", "reptile", "Bearded dragon", "M", "0.45", "Boarding", "B7", [], "none"),
    ("Willow", "canine", "Whippet", "FS", "12.0", "Boarding", "B8", [], "none"),
    ("Thor", "equine", "Shetland pony", "MN", "180", "Boarding", "Stable 1", [], "none"),
]

# The demo's clients, on reserved addresses only: e-mail on example.com/.org/.net, mobiles in
# Ofcom's drama range (+44 7700 900xxx), so nothing the demo sends can reach a person.
# name, e-mail, phone, preferred channel, SMS consent, voice consent
OWNERS = [
    ("A. Patel", "a.patel@example.com", "+44 7700 900101", "sms", True, False),
    ("J. Smith", "j.smith@example.org", "+44 7700 900102", "email", True, True),
    ("M. García", "m.garcia@example.net", "+44 7700 900103", "email", False, False),
    ("K. Nguyen", None, "+44 7700 900104", "sms", True, False),
    ("R. Müller", "r.mueller@example.com", None, "email", False, False),
    ("T. O'Brien", "t.obrien@example.org", "+44 7700 900106", "voice", False, True),
    ("S. Kowalski", "s.kowalski@example.net", "+44 7700 900107", "email", False, False),
    ("L. Rossi", None, "+44 7700 900108", "portal", False, False),
    ("H. Tanaka", "h.tanaka@example.com", "+44 7700 900109", "sms", True, False),
    ("E. Johansson", "e.johansson@example.org", "+44 7700 900110", "email", True, False),
]
# The client who answered STOP to a text: the demo shows an owner sent nothing at all.
OPTED_OUT_OWNER = "K. Nguyen"

# name, kind, extra order fields; chosen per ward.
ICU_ORDERS = [
    ("Temperature", "observation", {"every_hours": 4, "value_units": "°C"}),
    ("Heart rate", "observation", {"every_hours": 2, "value_units": "bpm"}),
    ("Pain score", "observation", {"every_hours": 4, "value_units": "/10"}),
    ("Methadone", "medication", {"dose": "0.2", "units": "mg/kg", "route": "IV",
                                 "every_hours": 4, "billable_code": "MED-METH",
                                 "price": "12.50"}),
    ("Maropitant", "medication", {"dose": "1", "units": "mg/kg", "route": "SC",
                                  "every_hours": 24, "billable_code": "MED-MARO",
                                  "price": "18.00"}),
    ("Hartmann's", "fluid", {"rate_ml_h": "45", "route": "IV", "every_hours": 1}),
    ("Check IV catheter", "procedure", {"times": ["08:00", "20:00"]}),
]
SURGERY_ORDERS = [
    ("Temperature", "observation", {"every_hours": 6, "value_units": "°C"}),
    ("Meloxicam", "medication", {"dose": "0.1", "units": "mg/kg", "route": "PO",
                                 "every_hours": 24, "billable_code": "MED-MELOX",
                                 "price": "6.40"}),
    ("Amoxicillin-clavulanate", "medication", {"dose": "12.5", "units": "mg/kg", "route": "PO",
                                               "every_hours": 12}),
    ("Wound check", "procedure", {"times": ["09:00", "17:00"]}),
    ("Buprenorphine", "medication", {"dose": "0.02", "units": "mg/kg", "route": "IM",
                                     "prn": True}),
]
BOARDING_ORDERS = [
    ("Walk", "task", {"times": ["07:00", "12:00", "18:00"]}),
    ("Feed", "task", {"times": ["08:00", "17:00"]}),
    ("Clean cage", "task", {"every_hours": 24}),
    ("Appetite", "observation", {"every_hours": 12, "value_type": "text"}),
]
WARD_ORDERS = {"ICU": ICU_ORDERS, "Surgery": SURGERY_ORDERS, "Boarding": BOARDING_ORDERS}

# The billing catalogue (Billing → items): the codes the demo orders carry, a drug the
# anaesthesia sheet charges by name, and items charged by hand.
BILLING_ITEMS = [
    # code, description, price, applies to, matches
    ("MED-METH", "Methadone injection", "12.50", "order", None),
    ("MED-MARO", "Maropitant injection", "18.00", "order", None),
    ("MED-MELOX", "Meloxicam oral dose", "6.40", "order", None),
    ("ANA-PROP", "Propofol induction", "28.00", "anaesthesia_drug", "Propofol"),
    ("CONS", "Consultation", "45.00", "manual", None),
    ("BAND", "Bandage change", "14.20", "manual", None),
]

# Message templates of the demo's flows (Admin → Smart flows → Templates).
FLOW_TEMPLATES = {
    "fever": {"name": "Fever alert",
              "subject": "Fever: {{ patient.name }} at {{ event.value }} °C",
              "body": "{{ patient.name }} ({{ patient.ward }}, cage {{ patient.cage }}) had a "
                      "temperature of {{ event.value }} °C at {{ event.time }}. Please check "
                      "{{ patient.name }} and the fluids."},
    "intake_arrived": {"name": "Intake form arrived",
                       "subject": "Intake form from {{ owner.name }} for {{ patient.name }}",
                       "body": "{{ owner.name }} filled in the intake form for "
                               "{{ patient.name }} ({{ patient.ward }}, cage "
                               "{{ patient.cage }}) at {{ event.time }}. It is on the "
                               "patient's forms."},
    "follow_up": {"name": "Discharge follow-up (SMS)",
                  "body": "Hello {{ owner.name }}, this is {{ clinic.name }}. How is "
                          "{{ patient.name }} since going home? Reply or call us with any "
                          "worry."},
}


def _step(kind: str, item: str, *, due: tuple, **extra) -> dict:
    """One step of a demo flow; `due` is (amount, unit, after, weekend rule)."""
    amount, unit, after, weekend = due
    category = "task" if kind == "staff_task" else "smartflow"
    return {"category": category, "type": kind, "item": item,
            "due": {"amount": amount, "unit": unit, "after": after, "weekend": weekend},
            **extra}


def _demo_flows(manager) -> None:
    """Flows a clinic would have: two on (senior bloods, a fever alert) and one off (a
    follow-up text after discharge), so the flows page shows both. Turned on in the
    demo's own transaction, they see its admissions: older dogs get their bloods task."""
    fever = template_save(user=manager, data=FLOW_TEMPLATES["fever"])
    follow_up = template_save(user=manager, data=FLOW_TEMPLATES["follow_up"])
    bloods = flow_save(user=manager, data={"name": "Senior bloods", "definition": {
        "trigger": {"kind": "patient_admitted"},
        "conditions": [{"field": "species", "op": "eq", "value": "canine"},
                       {"field": "age_years", "op": "ge", "value": "7"}],
        "steps": [_step("staff_task", "Bloods for {{ patient.name }}",
                        due=(2, "hours", "admitted", "monday"), responsible="doctor",
                        remind={"amount": 1, "unit": "hours"}, cancel_on_discharge=True)]}})
    alert = flow_save(user=manager, data={"name": "Fever alert", "definition": {
        "trigger": {"kind": "value_recorded", "order": "Temperature", "above": "39.5"},
        "conditions": [],
        "steps": [_step("staff_message", fever.uid, due=(0, "minutes", "event", "keep"),
                        responsible="level:5")]}})
    flow_save(user=manager, data={"name": "Discharge follow-up", "definition": {
        "trigger": {"kind": "patient_discharged"},
        "conditions": [],
        "steps": [_step("client_message", follow_up.uid,
                        due=(2, "days", "discharged", "monday"), channel="sms")]}})
    for flow in (bloods, alert):
        flow_enable(flow=flow, user=manager, enabled=True)


def _demo_intake(manager) -> None:
    """The owner's intake form, sent by e-mail when a patient is admitted (a flow that is
    off in the demo: it needs an SMTP server, docs/messaging.md), and a flow telling the
    patient's doctor when the owner has filled it in through the client portal."""
    form = form_template_create(user=manager, name="Owner intake", fields=INTAKE_FORM)
    arrived = template_save(user=manager, data=FLOW_TEMPLATES["intake_arrived"])
    flow_save(user=manager, data={"name": "Intake form to the owner", "definition": {
        "trigger": {"kind": "patient_admitted"}, "conditions": [],
        "steps": [_step("send_form", form.uid, due=(0, "minutes", "event", "keep"),
                        channel="email")]}})
    told = flow_save(user=manager, data={"name": "Tell the vet the intake form arrived",
                                         "definition": {
        "trigger": {"kind": "form_finalised", "form": form.uid}, "conditions": [],
        "steps": [_step("staff_message", arrived.uid, due=(0, "minutes", "event", "keep"),
                        responsible="doctor")]}})
    flow_enable(flow=told, user=manager, enabled=True)


def demo_build(*, seed: int = 7) -> None:
    """Create the demo clinic in the current unit of work (the caller commits)."""
    rng = random.Random(seed)
    now = clock.utcnow()
    settings = ClinicSettings(name="Riverside Veterinary Hospital",
                              timezone=current_app.config.get("KIOSK_TIMEZONE", "UTC"),
                              allow_direct_patient_creation=True)
    db.session.add(settings)
    wards = {name: Ward(name=name, code=name[:3].upper()) for name in WARD_ORDERS}
    db.session.add_all(wards.values())
    db.session.flush()
    # Everyone works on every ward (made first, so that the users get them all).
    users = [user_create(name=n, level=lv, username=u, password=p, pin=pin)
             for n, lv, u, p, pin in DEMO_USERS]
    vet, tech = users[1], users[2]
    for position, ward in enumerate(wards.values()):
        db.session.add(Board(name=f"{ward.name} board", kind="ward", ward=ward, position=position))
    # Filled by itself: open sheets and forms, PDFs not made, discharges not synced.
    db.session.add(Board(name="Pending", kind="pending", position=10))
    db.session.flush()
    tz = zone(settings.timezone)
    owners = _demo_owners(users[0], now)
    for index, row in enumerate(PATIENTS):
        patient = _demo_patient(index, row, wards, vet, rng, now)
        owner_link(patient=patient, owner=owners[index % len(owners)], user=users[0])
        start = hour_floor(now, tz) - timedelta(hours=rng.choice([20, 26, 30]))
        for name, kind, extra in WARD_ORDERS[row[5]]:
            if rng.random() < 0.8:
                order_create(user=vet, patient=patient, now=now,
                             data={"name": name, "kind": kind, "start": start, **extra})
    db.session.flush()
    for code, description, price, applies_to, match in BILLING_ITEMS:
        item_save(user=users[0], data={"code": code, "description": description,
                                       "unit_price": price, "applies_to": applies_to,
                                       "match": match})
    _demo_history(rng, now, tech)
    form_template_create(user=users[0], name="Anaesthesia consent", fields=CONSENT_FORM)
    _demo_billing(now, tz, vet)
    _demo_flows(users[0])
    _demo_intake(users[0])


def _demo_owners(manager, now) -> list:
    """The demo's clients, some with consent to texts or calls, one opted out by STOP."""
    owners = []
    for name, email, phone, channel, sms, voice in OWNERS:
        owner = owner_save(owner=None, user=manager, name=name, email=email, phone=phone,
                           preferred_channel=channel, sms_consent=sms, voice_consent=voice)
        owners.append(owner)
        if name == OPTED_OUT_OWNER:
            owner_opt_out(owner=owner, via="SMS reply STOP", at=now - timedelta(days=3))
    return owners


def _demo_patient(index, row, wards, vet, rng, now):
    name, species, breed, sex, kg, ward, cage, alerts, colour = row
    return patient_create(user=vet, origin="pims", at=now - timedelta(hours=30), data={
        "name": name, "species": species, "breed": breed, "sex": sex, "weight_kg": kg,
        "ward": wards[ward], "cage": cage, "alerts": alerts, "colour": colour,
        "doctor": vet.name, "pims_id": f"PIMS-{1000 + index}", "file_number": f"F{5000 + index}",
        "date_of_birth": (now - timedelta(days=rng.randint(200, 4000))).date().isoformat(),
    })


def _demo_history(rng, now, tech) -> None:
    """Most past tasks done, a few skipped, a few left overdue for the board to show."""
    past = db.session.scalars(select(Task).where(Task.status == TASK_OPEN,
                                                 Task.due_at < now - timedelta(minutes=20))
                              .order_by(Task.due_at))
    for task in list(past):
        roll = rng.random()
        recent = task.due_at > now - timedelta(hours=3)
        if roll < (0.6 if recent else 0.97):
            # Recorded when done (a charge's arrival then matches its time, as on a ward).
            done_at = task.due_at + timedelta(minutes=rng.randint(0, 20))
            task_complete(task=task, user=tech, now=done_at, at=done_at,
                          value=_demo_value(task, rng), note=None)
        elif roll < (0.65 if recent else 0.985):
            task_skip(task=task, user=tech, reason="Patient sleeping", at=task.due_at)


def _demo_billing(now, tz, vet) -> None:
    """An end of shift three hours ago, so the report shows a closed shift (the one before
    it began at the previous mark, eleven hours earlier), and charges by hand: a
    consultation, and a bandage charged in error and reversed."""
    end = hour_floor(now, tz) - timedelta(hours=3)
    patients = list(db.session.scalars(select(Patient).order_by(Patient.id).limit(2)))
    shift_end(user=vet, at=end - timedelta(hours=11), now=now, note="Previous shift")
    charge_add(patient=patients[0], user=vet, now=end - timedelta(hours=2), data={
        "item_code": "CONS", "performed_at": end - timedelta(hours=2)})
    wrong = charge_add(patient=patients[1], user=vet, now=end - timedelta(hours=1), data={
        "item_code": "BAND", "performed_at": end - timedelta(hours=1)})
    charge_reverse(charge=wrong, user=vet, reason="Charged to the wrong patient",
                   now=end - timedelta(minutes=30))
    shift_end(user=vet, at=end, now=now, note="Shift handover")


def _demo_value(task, rng) -> str | None:
    name = task.order.name
    if name == "Temperature":
        return f"{rng.uniform(37.8, 39.4):.1f}"
    if name == "Heart rate":
        return str(rng.randint(70, 140))
    if name == "Pain score":
        return str(rng.randint(0, 4))
    if name == "Appetite":
        return rng.choice(["ate all", "ate half", "picky"])
    return None


def demo_summary(base_url: str) -> str:
    """What to open and how to sign in, printed by `kiosk run --demo`."""
    board = db.session.scalar(select(Board).order_by(Board.position))
    patient_uid = db.session.scalar(select(Task.patient_id).limit(1))
    from .patients.models import Patient

    patient = db.session.get(Patient, patient_uid) if patient_uid else None
    lines = [
        "Demo clinic ready.",
        f"  Whiteboard:     {base_url}/boards/{board.id if board else ''}",
        f"  Tablet sheet:   {base_url}/patients/{patient.uid if patient else ''}/sheet",
        f"  Admin pages:    {base_url}/admin/",
        f"  Pair a tablet:  add it on {base_url}/devices/, then open {base_url}/pair on it",
        f"  Sync dashboard: {base_url}/devices/sync",
        f"  Smart flows:    {base_url}/flows/ (a manager), the staff inbox: {base_url}/inbox/",
        "  Sign in with a password (desktops), or with a name and PIN on a paired tablet:",
    ]
    for name, level, username, password, pin in DEMO_USERS:
        login = f"username {username} / password {password}, " if username else ""
        lines.append(f"    {name:<15} level {level}: {login}PIN {pin}")
    return "\n".join(lines)
