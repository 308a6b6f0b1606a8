"""Writes for owners: contact details, the channel they prefer, their consent, their
opt-out, and the link to their patients. Nothing here commits: the caller owns the
transaction.

A patient's `owner_name` and `owner_phone` are what boards and sheets show; whenever an
owner's name or phone changes, or a patient is linked to an owner, they are set from the
owner's record here, and nowhere else."""

import re
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from ..clinic.services import EMAIL
from ..core import clock
from ..core.audit import audit_record
from ..core.auth import LEVEL_COMPLETE_TASK, LEVEL_FORMS, permission_check
from ..core.errors import DomainError
from ..core.events import event_record
from ..core.models import new_uid
from ..core.validate import choice, text_optional, text_required
from ..extensions import db
from .models import CHANNEL_LABELS, OWNER_CHANNELS, Owner

# Reception staff enter contact details and consent (and take them out again).
LEVEL_OWNER_EDIT = LEVEL_FORMS
# Anyone on the phone to an owner who asks to hear nothing more may record it at once;
# opting back in is consent again, given to those who may enter it.
LEVEL_OPT_OUT = LEVEL_COMPLETE_TASK
LEVEL_OPT_IN = LEVEL_FORMS

OWNER_FIELDS = ("name", "email", "phone", "preferred_channel", "sms_consent", "voice_consent")
# Details that reach an owner: the audit names them when they change, never their values.
CONTACT_FIELDS = ("name", "email", "phone")
PHONE_DIGITS = (8, 15)  # E.164 allows at most 15 digits; fewer than 8 is no real number
CONSENT_WORDS = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}

ERR_PHONE = ("The phone number must have its country code (+44 7700 900123, or 0044 …) or "
             "start with a single 0 as dialled here, and have 8 to 15 digits.")
ERR_PHONE_NO_COUNTRY = ("This phone number is dialled nationally (it starts with 0) and this "
                        "clinic's country code is not set: give it with its country code, "
                        "e.g. +44 7700 900123.")
ERR_EMAIL = "This is not an e-mail address (name@example.com)."
ERR_CONSENT = "{label} must be yes or no (true/false, 1/0)."
ERR_CHANNEL_EMAIL = "E-mail as the preferred channel needs an e-mail address."
ERR_CHANNEL_PHONE = "{channel} as the preferred channel needs a phone number."
ERR_CHANNEL_CONSENT = "{channel} as the preferred channel needs the owner's consent to {what}."
ERR_NEW_OWNER_NAME = "A new owner needs a name."
ERR_HAS_OWNER = "This patient already has an owner: change their details on the owner's page."
ERR_OPT_OUT_AT = "The time of the opt-out needs its time zone."
ERR_REASON = "Say why (who asked, and how): the reason is kept with the change."


def _country_code() -> str | None:
    """The configured country code for national numbers ("44"), or None."""
    code = str(current_app.config.get("KIOSK_PHONE_COUNTRY_CODE") or "").strip().lstrip("+")
    return code or None


def phone_normalise(raw: str | None, *, country_code: str | None,
                    field: str = "phone") -> str | None:
    """A phone number in E.164 ("+" and 8–15 digits), or None when empty.

    Spaces, dots, dashes, slashes and brackets are dropped (and a "(0)" after the country
    code); "00" becomes "+"; a number starting with a single 0 is national and takes
    `country_code` ("44"). Anything else is a DomainError naming `field`.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str) or len(raw) > 40:
        raise DomainError("bad_phone", ERR_PHONE, field=field)
    # "+44 (0)7700 900123": the bracketed 0 is the trunk prefix, not a digit of the number.
    text = re.sub(r"[\s.\-/()\[\]]", "", raw.replace("(0)", ""))
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("0") and not text.startswith("00"):
        code = (country_code or "").strip().lstrip("+")
        if not code:
            raise DomainError("no_country_code", ERR_PHONE_NO_COUNTRY, field=field)
        digits = code + text[1:]
    else:
        raise DomainError("bad_phone", ERR_PHONE, field=field)
    low, high = PHONE_DIGITS
    if not digits.isascii() or not digits.isdigit() or digits.startswith("0") \
            or not low <= len(digits) <= high:
        raise DomainError("bad_phone", ERR_PHONE, field=field)
    return "+" + digits


def email_clean(value, *, field: str = "email") -> str | None:
    """An e-mail address (at most 254 characters), or None when empty."""
    text = text_optional(value, field, "The e-mail address", 254)
    if text is not None and not EMAIL.match(text):
        raise DomainError("bad_email", ERR_EMAIL, field=field)
    return text


def consent_clean(value, *, field: str, label: str) -> bool:
    """Consent as a yes or a no: a bool, or yes/no, true/false, 1/0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = value.strip().lower() if isinstance(value, str) else None
    if word not in CONSENT_WORDS:
        raise DomainError("bad_consent", ERR_CONSENT.format(label=label), field=field)
    return CONSENT_WORDS[word]


def owner_fields_clean(data: dict, *, partial: bool = False) -> dict:
    """Validate owner fields from a form, an import row or a caller; return clean values.

    With `partial`, only the keys present in `data` are checked and returned (the name is
    required only when given or when not partial)."""
    out: dict = {}
    if not partial or "name" in data:
        out["name"] = text_required(data.get("name"), "name", "Name", 120)
    if not partial or "email" in data:
        out["email"] = email_clean(data.get("email"))
    if not partial or "phone" in data:
        out["phone"] = phone_normalise(data.get("phone"), country_code=_country_code())
    if not partial or "preferred_channel" in data:
        out["preferred_channel"] = choice(data.get("preferred_channel"), "preferred_channel",
                                          "The preferred channel", OWNER_CHANNELS)
    for key, label in (("sms_consent", "SMS consent"), ("voice_consent", "Voice consent")):
        if not partial or key in data:
            value = data.get(key)
            out[key] = consent_clean(False if value is None else value, field=key,
                                     label=label)
    return out


def owner_channel_check(*, preferred_channel: str, email: str | None, phone: str | None,
                        sms_consent: bool, voice_consent: bool) -> None:
    """The one rule of what a preferred channel needs: e-mail an address, SMS a phone and
    consent to SMS, voice a phone and consent to calls (the portal needs nothing)."""
    label = CHANNEL_LABELS.get(preferred_channel, preferred_channel)
    if preferred_channel == "email" and not email:
        raise DomainError("channel_needs_email", ERR_CHANNEL_EMAIL, field="preferred_channel")
    if preferred_channel in ("sms", "voice") and not phone:
        raise DomainError("channel_needs_phone", ERR_CHANNEL_PHONE.format(channel=label),
                          field="preferred_channel")
    if preferred_channel == "sms" and not sms_consent:
        raise DomainError("channel_needs_consent", ERR_CHANNEL_CONSENT.format(
            channel=label, what="text messages"), field="preferred_channel")
    if preferred_channel == "voice" and not voice_consent:
        raise DomainError("channel_needs_consent", ERR_CHANNEL_CONSENT.format(
            channel=label, what="calls"), field="preferred_channel")


def owner_channel_default(*, email: str | None, phone: str | None, sms_consent: bool) -> str:
    """The channel a new owner is given when nobody chose one: e-mail when there is an
    address, else SMS when they agreed to it, else the portal (which needs nothing)."""
    if email:
        return "email"
    if phone and sms_consent:
        return "sms"
    return "portal"


def owner_address(owner: Owner, channel: str) -> str | None:
    """The address `channel` reaches the owner at: the e-mail address for e-mail, the phone
    for SMS and voice, "portal" for the portal; None when the owner has none."""
    channel = choice(channel, "channel", "The channel", OWNER_CHANNELS)
    if channel == "email":
        return owner.email
    if channel in ("sms", "voice"):
        return owner.phone
    return "portal"


def owner_save(*, owner: Owner | None, user, name, email, phone, preferred_channel,
               sms_consent, voice_consent) -> Owner:
    """Create an owner (`owner` None) or change one; every field is checked before anything
    is written, and the owner's patients show the new name and phone."""
    permission_check(user, LEVEL_OWNER_EDIT, "enter owners' contact details")
    fields = owner_fields_clean({
        "name": name, "email": email, "phone": phone, "preferred_channel": preferred_channel,
        "sms_consent": sms_consent, "voice_consent": voice_consent})
    owner_channel_check(**{key: fields[key] for key in OWNER_FIELDS if key != "name"})
    creating = owner is None
    if creating:
        owner = Owner(uid=new_uid())
        db.session.add(owner)
    changed = _apply(owner, fields)
    if creating or changed:
        _owner_changed(owner, user=user, changed=changed,
                       action="owner.create" if creating else "owner.update")
    return owner


def _apply(owner: Owner, fields: dict) -> list[str]:
    """Set the fields that differ; the names of those changed, in OWNER_FIELDS order."""
    changed = [key for key in OWNER_FIELDS if key in fields
               and getattr(owner, key) != fields[key]]
    for key in changed:
        setattr(owner, key, fields[key])
    return changed


def _owner_changed(owner: Owner, *, user, changed: list[str], action: str) -> None:
    """Audit which fields changed (values only for what is not contact detail), tell the
    features above, and give the owner's patients the new name and phone."""
    detail: dict = {"changed": changed}
    settled = {key: getattr(owner, key) for key in changed if key not in CONTACT_FIELDS}
    if settled:
        detail["now"] = settled
    audit_record(action=action, entity="owner", entity_uid=owner.uid, user=user, detail=detail)
    event_record(db.session, "owner.changed", owner=owner.uid)
    if "name" in changed or "phone" in changed:
        for patient in owner.patients:
            _patient_show(patient, owner)


def _patient_show(patient, owner: Owner) -> bool:
    """Give the patient the owner's name and phone to show; whether anything changed (the
    boards and the sheet then redraw it)."""
    if (patient.owner_name, patient.owner_phone) == (owner.name, owner.phone):
        return False
    patient.owner_name, patient.owner_phone = owner.name, owner.phone
    event_record(db.session, "patient.changed", patient=patient.uid)
    return True


def owner_link(*, patient, owner: Owner, user=None) -> None:
    """Make `owner` the patient's owner, the patient showing their name and phone. Linking
    the owner it already has changes nothing. `user` None: the practice-system import."""
    if user is not None:
        permission_check(user, LEVEL_OWNER_EDIT, "link owners to patients")
    was = patient.owner
    if was is owner:
        _patient_show(patient, owner)
        return
    patient.owner = owner
    _patient_show(patient, owner)
    audit_record(action="patient.owner_link", entity="patient", entity_uid=patient.uid,
                 user=user, detail={"owner": owner.uid,
                                    "was": was.uid if was is not None else None})
    event_record(db.session, "patient.changed", patient=patient.uid)


def owner_add_to_patient(*, patient, user, name, email, phone, preferred_channel,
                         sms_consent, voice_consent) -> Owner:
    """Create an owner for a patient who has none and link them (the patient's page)."""
    permission_check(user, LEVEL_OWNER_EDIT, "enter owners' contact details")
    if patient.owner is not None:
        raise DomainError("has_owner", ERR_HAS_OWNER, status=409)
    owner = owner_save(owner=None, user=user, name=name, email=email, phone=phone,
                       preferred_channel=preferred_channel, sms_consent=sms_consent,
                       voice_consent=voice_consent)
    owner_link(patient=patient, owner=owner, user=user)
    return owner


def _reason(via, user) -> str:
    """How an opt-out or opt-in came: staff give a reason (kept with their name); an owner's
    own reply is named by its caller ("SMS reply STOP")."""
    if user is None:
        return text_required(via, "via", "How the owner asked", 200)
    if via is None or (isinstance(via, str) and not via.strip()):
        raise DomainError("required", ERR_REASON, field="reason")
    reason = text_required(via, "reason", "The reason", 150)
    return f"staff: {user.name}: {reason}"[:200]


def owner_opt_out(*, owner: Owner, via: str, user=None, at: datetime | None = None) -> Owner:
    """Record that the owner wants no messages at all (from `at`, else now). Asked again
    while opted out, the first opt-out stays as it was. `user` None: the owner's own
    reply, with `via` saying how; staff give their reason as `via`."""
    if user is not None:
        permission_check(user, LEVEL_OPT_OUT, "opt owners out of messages")
    how = _reason(via, user)
    if at is not None and (not isinstance(at, datetime) or at.tzinfo is None):
        raise DomainError("bad_time", ERR_OPT_OUT_AT, field="at")
    if owner.opted_out:
        return owner
    owner.opted_out_at = clock.as_utc(at) if at is not None else clock.utcnow()
    owner.opted_out_via = how
    audit_record(action="owner.opt_out", entity="owner", entity_uid=owner.uid, user=user,
                 detail={"via": how})
    event_record(db.session, "owner.opted_out", owner=owner.uid)
    return owner


def owner_opt_in(*, owner: Owner, via: str, user=None) -> Owner:
    """Clear the owner's opt-out (their START reply, or staff with a reason); an owner not
    opted out stays as they are. Consent to SMS and calls is not touched."""
    if user is not None:
        permission_check(user, LEVEL_OPT_IN, "opt owners back in to messages")
    how = _reason(via, user)
    if not owner.opted_out:
        return owner
    was = owner.opted_out_via
    owner.opted_out_at = None
    owner.opted_out_via = None
    audit_record(action="owner.opt_in", entity="owner", entity_uid=owner.uid, user=user,
                 detail={"via": how, "was": was})
    event_record(db.session, "owner.opted_in", owner=owner.uid)
    return owner


def _same_person(owner: Owner, name: str | None) -> bool:
    """Whether a row naming `name` (or nobody) about one of `owner`'s pets may change
    `owner`: the same name, or an owner of this pet alone (a name corrected). A different
    name on an owner of other pets too is another person, never written over this one
    (the other pets' messages would go to the new person)."""
    if not name or not str(name).strip() or len(owner.patients) <= 1:
        return True
    return " ".join(str(name).split()).casefold() == " ".join(owner.name.split()).casefold()


def owner_import_find(*, pims_id: str | None, owner: Owner | None = None,
                      known: dict[str, Owner] | None = None,
                      name: str | None = None) -> Owner | None:
    """The owner an import row updates. With a practice-system id: the owner with that id,
    else `owner` (the patient's) if it has no id yet and is the row's person, else None
    (a new owner). Without one: `owner` if it is the row's person (`name`), else None.
    `known`: owners by id already read (a file's, in one query)."""
    if owner is not None and not _same_person(owner, name):
        owner = None
    if not pims_id:
        return owner
    if known is not None:
        found = known.get(pims_id)
    else:
        found = db.session.scalar(select(Owner).where(Owner.pims_id == pims_id))
    if found is not None:
        return found
    return owner if owner is not None and owner.pims_id is None else None


def owner_import_fields(*, owner: Owner | None, pims_id, name, email, phone, sms_consent=None,
                        preferred_channel=None) -> dict:
    """The clean fields an import row sets on `owner` (None: a new owner), checked as the
    owner they make: empty values are left out (an import never erases), consent only
    when the row says yes or no, and the preferred channel must still have what it needs."""
    given = {key: value for key, value in (
        ("name", name), ("email", email), ("phone", phone), ("sms_consent", sms_consent),
        ("preferred_channel", preferred_channel)) if value is not None and value != ""}
    fields = owner_fields_clean(given, partial=True)
    if pims_id is not None:
        fields["pims_id"] = text_required(pims_id, "pims_id", "The owner's id", 64)
    if owner is None and "name" not in fields:
        raise DomainError("required", ERR_NEW_OWNER_NAME, field="name")

    def now(key, default=None):
        if key in fields:
            return fields[key]
        return getattr(owner, key) if owner is not None else default

    state = {key: now(key, False if key.endswith("_consent") else None)
             for key in ("email", "phone", "sms_consent", "voice_consent")}
    if owner is None and "preferred_channel" not in fields:
        fields["preferred_channel"] = owner_channel_default(
            email=state["email"], phone=state["phone"], sms_consent=state["sms_consent"])
    owner_channel_check(preferred_channel=now("preferred_channel"), **state)
    return fields


def owner_from_import(*, pims_id, name, email, phone, sms_consent=None, preferred_channel=None,
                      owner: Owner | None = None, user=None) -> Owner | None:
    """The owner a practice-system row names, created or updated: found by `pims_id`, else
    `owner` (the patient's, when the row gives no id), else made. Only the details the row
    gives change; an opt-out is never cleared and consent never turned on unless the row
    says so. None when the row names no owner at all."""
    found, _ = owner_import_save(pims_id=pims_id, name=name, email=email, phone=phone,
                                 sms_consent=sms_consent, preferred_channel=preferred_channel,
                                 owner=owner, user=user)
    return found


def owner_import_save(*, pims_id, name, email, phone, sms_consent=None,
                      preferred_channel=None, owner: Owner | None = None, user=None
                      ) -> tuple[Owner | None, str]:
    """owner_from_import, also saying what it did: "created", "updated" or "unchanged"
    (what an import's summary counts)."""
    pims_id = pims_id or None
    if not pims_id and not name and owner is None:
        return None, "unchanged"
    target = owner_import_find(pims_id=pims_id, owner=owner, name=name)
    fields = owner_import_fields(owner=target, pims_id=pims_id, name=name, email=email,
                                 phone=phone, sms_consent=sms_consent,
                                 preferred_channel=preferred_channel)
    creating = target is None
    if creating:
        target = Owner(uid=new_uid(), sms_consent=False, voice_consent=False)
        db.session.add(target)
    changed = _apply(target, fields)
    if "pims_id" in fields and target.pims_id != fields["pims_id"]:
        target.pims_id = fields["pims_id"]  # the patient's owner, now known to the system
        changed.append("pims_id")
    if creating:
        db.session.flush()  # the file's next rows find this owner by its id
    if not creating and not changed:
        return target, "unchanged"
    _owner_changed(target, user=user, changed=changed,
                   action="owner.import_create" if creating else "owner.import_update")
    return target, "created" if creating else "updated"
