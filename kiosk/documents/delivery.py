"""Sending a ready document on: to a folder, by e-mail (SMTP), or to the practice system
through a connector that the billing work installs. Each raises DeliveryError saying why."""

import os
import re
import tempfile
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

from flask import current_app

from ..clinic.selectors import settings_get
from ..clinic.services import EMAIL
from ..core.files import folder_private
from ..core.mail import MailError, smtp_session, smtp_settings
from .models import Document

_connectors: dict[str, Callable[[Document, bytes], None]] = {}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DeliveryError(Exception):
    """A delivery that did not happen, and why (for the documents page; no secrets)."""


def connector_register(name: str, send: Callable[[Document, bytes], None]) -> None:
    """Install the practice-system connector: `send(document, pdf)` raises on failure."""
    _connectors.clear()
    _connectors[name] = send


def connector_unregister() -> None:
    """Remove the installed connector (tests, or a clinic switching systems)."""
    _connectors.clear()


def _file_name(document: Document) -> str:
    when = (document.ready_at or document.created_at).strftime("%Y%m%d-%H%M")
    title = _UNSAFE.sub("-", document.title).strip("-")[:60] or document.kind
    return f"{when}-{title}-{document.uid[:8]}.pdf"


def _patient_folder(document: Document) -> str:
    """One folder per patient, starting with its uid: never '.', '..' or hidden."""
    patient = document.patient
    label = patient.pims_id or patient.file_number or ""
    name = _UNSAFE.sub("-", f"{label}-{patient.name}").strip("-.")[:70]
    return f"{patient.uid[:8]}-{name}" if name else patient.uid


def deliver_folder(document: Document, pdf: bytes, folder: str) -> str:
    """Write the PDF under folder/<patient>/, whole or not at all; the path is returned."""
    root = Path(folder)
    if not root.is_dir():
        raise DeliveryError(f"The documents folder {folder} does not exist or is not a folder.")
    target_dir = root / _patient_folder(document)
    if target_dir.resolve().parent != root.resolve():
        raise DeliveryError("The patient's folder would leave the documents folder.")
    try:
        folder_private(target_dir)  # patient records: the server's user only
        target = target_dir / _file_name(document)
        fd, temp = tempfile.mkstemp(dir=target_dir, prefix=".part-", suffix=".pdf")
        with os.fdopen(fd, "wb") as fh:
            fh.write(pdf)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)  # readers never see half a file
    except OSError as exc:
        raise DeliveryError(f"Could not write to {folder}: {exc.strerror or exc}.") from exc
    return str(target)


def deliver_email(document: Document, pdf: bytes, recipients: str) -> str:
    """Send the PDF as an attachment through the configured SMTP server."""
    try:
        settings = smtp_settings(current_app.config)
    except MailError as exc:
        raise DeliveryError(str(exc)) from None
    if settings is None:
        raise DeliveryError("No SMTP server is configured (KIOSK_SMTP_HOST).")
    to = [a.strip() for a in re.split(r"[,;]", recipients) if a.strip()]
    if not to or not all(EMAIL.match(a) for a in to):
        raise DeliveryError("The documents e-mail address is not valid.")
    clinic = settings_get().name
    message = EmailMessage()
    message["From"] = formataddr((clinic, settings.from_address))
    message["To"] = ", ".join(to)
    # Header text never carries a line break (a name typed with one would end the header).
    message["Subject"] = " ".join(f"{document.title} · {document.patient.name}".split())
    message["Message-ID"] = make_msgid(idstring=document.uid)
    message.set_content(f"{document.title} for {document.patient.name}, archived by {clinic}.")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=_file_name(document))
    try:
        with smtp_session(settings) as session:
            session.send(message)
    except MailError as exc:  # its words never carry the password or the document
        raise DeliveryError(str(exc)) from None
    return ", ".join(to)


def deliver_connector(document: Document, pdf: bytes) -> str:
    """Hand the PDF to the installed practice-system connector."""
    if not _connectors:
        raise DeliveryError("No practice-system connector is installed.")
    name, send = next(iter(_connectors.items()))
    try:
        send(document, pdf)
    except DeliveryError:
        raise
    except Exception as exc:  # a connector's own failure, reported without its details
        raise DeliveryError(f"The {name} connector failed: {type(exc).__name__}.") from exc
    return name
