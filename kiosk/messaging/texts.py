"""The words each channel sends for one message, from the one text a flow or a person
wrote: the e-mail's plain text and its HTML (the same words, escaped, in the clinic's
layout), the SMS and the spoken call. An SMS or a call carries clinical words only when
the template says it may; otherwise a notice with the portal link goes instead."""

from dataclasses import dataclass

from flask import render_template

from .models import ClientMessage

SMS_NOTICE = "{clinic}: there is a new message about {pet}. Read it here: {link}"
SMS_FORM_NOTICE = "{clinic}: please fill in “{form}” for {pet}: {link}"
SMS_STOP = "Reply STOP to opt out."
VOICE_NOTICE = ("This is {clinic}. There is a new message about {pet}. We have sent you a "
                "link to read it. If you have no link, please call us.")
EMAIL_FORM_LINE = "Please fill in “{form}” here: {link}"
EMAIL_PORTAL_LINE = "You can read this and earlier messages about {pet} here: {link}"


@dataclass(frozen=True)
class Texts:
    """What goes out on each channel."""

    subject: str
    text: str
    html: str
    sms: str
    voice: str


def message_texts(message: ClientMessage, *, clinic: str, link: str) -> Texts:
    """The words for `message` on every channel; `link` is its client portal link."""
    pet = message.patient.name
    form = message.form_template.name if message.form_template else None
    subject = " ".join((message.subject or f"{clinic}: about {pet}").split())
    footer = (EMAIL_FORM_LINE.format(form=form, link=link) if form
              else EMAIL_PORTAL_LINE.format(pet=pet, link=link))
    text = f"{message.body.strip()}\n\n{footer}\n\n{clinic}\n"
    html = render_template("messaging/email.html", message=message, clinic=clinic, link=link,
                           form=form, pet=pet, paragraphs=_paragraphs(message.body))
    if form:
        sms = SMS_FORM_NOTICE.format(clinic=clinic, form=form, pet=pet, link=link)
    elif message.clinical_ok:
        sms = f"{message.body.strip()}\n{link}"
    else:
        sms = SMS_NOTICE.format(clinic=clinic, pet=pet, link=link)
    voice = message.body.strip() if message.clinical_ok and not form else VOICE_NOTICE.format(
        clinic=clinic, pet=pet)
    return Texts(subject=subject, text=text, html=html, sms=f"{sms} {SMS_STOP}", voice=voice)


def _paragraphs(body: str) -> list[list[str]]:
    """The body's paragraphs (blank-line separated), each as its lines."""
    blocks = [block.strip() for block in body.replace("\r\n", "\n").split("\n\n")]
    return [block.split("\n") for block in blocks if block]
