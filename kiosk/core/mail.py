"""The application's one SMTP transport: the settings (KIOSK_SMTP_*) and a session that
sends many messages over one connection.

Every failure is a MailError that says whether trying again unchanged can help
(`permanent`) and never carries the password. Documents and client messages both send
through here, so TLS and the password rule live in one place.
"""

import logging
import smtplib
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage

log = logging.getLogger(__name__)

DEFAULT_PORT = 25
DEFAULT_TIMEOUT_S = 20.0
_TRUE_WORDS = ("1", "true", "yes", "on")

ERR_PORT = "KIOSK_SMTP_PORT is not a port number."
ERR_TIMEOUT = "KIOSK_SMTP_TIMEOUT is not a number of seconds above zero."
ERR_LOGIN_IN_CLEAR = ("Refusing to send the SMTP password without encryption: "
                      "set KIOSK_SMTP_STARTTLS=1.")
ERR_CA_FILE = "The certificate file KIOSK_SMTP_CA_FILE ({path}) could not be read."
ERR_UNTRUSTED = ("The SMTP server {host} showed a certificate that is not trusted "
                 "(a private one needs KIOSK_SMTP_CA_FILE).")
ERR_LOGIN = "The SMTP server {host} did not accept the user name or password."
ERR_UNREACHABLE = "The SMTP server {host} refused or could not be reached: {kind}."
ERR_RECIPIENT = "The SMTP server {host} refused the recipient {address}: {reply}."
ERR_REPLY = "The SMTP server {host} refused the message: {reply}."
ERR_UNSUPPORTED = "The SMTP server {host} does not offer what is needed: {kind}."


class MailError(Exception):
    """A message that did not go, and why. `permanent`: trying again unchanged fails the
    same way (a refused address, a 5xx reply, a wrong password or setting); otherwise
    later may work (nothing listening, a timeout, a 4xx reply)."""

    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how mail goes out. The password is left out of repr (logs, tracebacks)."""

    host: str
    port: int = DEFAULT_PORT
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    from_address: str = ""
    ca_file: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self):
        if not self.from_address:
            object.__setattr__(self, "from_address", f"kiosk@{self.host}")


def smtp_settings(config: Mapping) -> SmtpSettings | None:
    """The SMTP settings from the configuration; None when no host is set. A port or
    timeout that is not a number raises MailError (permanent: a setting to fix)."""
    host = (config.get("KIOSK_SMTP_HOST") or "").strip()
    if not host:
        return None
    try:
        port = int(config.get("KIOSK_SMTP_PORT") or DEFAULT_PORT)
    except (TypeError, ValueError):
        raise MailError(ERR_PORT, permanent=True) from None
    if not 0 < port < 65536:
        raise MailError(ERR_PORT, permanent=True)
    try:
        timeout_s = float(config.get("KIOSK_SMTP_TIMEOUT") or DEFAULT_TIMEOUT_S)
    except (TypeError, ValueError):
        raise MailError(ERR_TIMEOUT, permanent=True) from None
    if not timeout_s > 0:  # also refuses NaN
        raise MailError(ERR_TIMEOUT, permanent=True)
    return SmtpSettings(
        host=host, port=port, user=config.get("KIOSK_SMTP_USER") or None,
        password=config.get("KIOSK_SMTP_PASSWORD") or None,
        starttls=str(config.get("KIOSK_SMTP_STARTTLS") or "").strip().lower() in _TRUE_WORDS,
        from_address=config.get("KIOSK_SMTP_FROM") or "",
        ca_file=config.get("KIOSK_SMTP_CA_FILE") or None, timeout_s=timeout_s)


class SmtpSession:
    """One open SMTP connection; `send` as many messages as needed."""

    def __init__(self, smtp: smtplib.SMTP, host: str):
        self._smtp = smtp
        self._host = host

    def send(self, message: EmailMessage) -> None:
        """Send one message. A refusal of this message (its recipient, its sender, its
        content) raises MailError for it alone: the connection stays usable for the next."""
        try:
            refused = self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            # smtplib has reset the transaction: the next message starts clean.
            raise _recipients_refused(self._host, exc.recipients) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _mail_error(self._host, exc) from None
        if refused:
            # The others have it: raising would send it to them again on a retry.
            log.warning("The SMTP server %s refused %d of the message's recipients.",
                        self._host, len(refused))


@contextmanager
def smtp_session(settings: SmtpSettings) -> Iterator[SmtpSession]:
    """Open one connection (EHLO, STARTTLS with a verifying context, login over TLS only)
    and yield a session that sends through it; the connection is closed afterwards."""
    if settings.user and not settings.starttls:
        raise MailError(ERR_LOGIN_IN_CLEAR, permanent=True)  # before any connection
    context = _tls_context(settings) if settings.starttls else None
    smtp = _open(settings, context)
    try:
        yield SmtpSession(smtp, settings.host)
    finally:
        _close(smtp)


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Verifying (certificate and host name); a private CA bundle replaces the system's."""
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError):
        raise MailError(ERR_CA_FILE.format(path=settings.ca_file), permanent=True) from None


def _open(settings: SmtpSettings, context: ssl.SSLContext | None) -> smtplib.SMTP:
    """Connect, greet, secure and log in, or raise MailError having closed what was opened."""
    smtp = None
    try:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        smtp.ehlo()
        if context is not None:
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        return smtp
    except smtplib.SMTPAuthenticationError:
        _close(smtp)
        raise MailError(ERR_LOGIN.format(host=settings.host), permanent=True) from None
    except (OSError, smtplib.SMTPException) as exc:
        _close(smtp)
        raise _mail_error(settings.host, exc) from None


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()  # the server went first: nothing to say goodbye to


def _mail_error(host: str, exc: BaseException) -> MailError:
    """The MailError for a failure smtplib or the network raised: the kind of failure and
    the server's reply code and words, never what was sent to it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailError(ERR_UNTRUSTED.format(host=host), permanent=True)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailError(ERR_UNSUPPORTED.format(host=host, kind=_one_line(exc)), permanent=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = f"{exc.smtp_code} {_one_line(exc.smtp_error)}"
        return MailError(ERR_REPLY.format(host=host, reply=reply), permanent=exc.smtp_code >= 500)
    return MailError(ERR_UNREACHABLE.format(host=host, kind=type(exc).__name__), permanent=False)


def _recipients_refused(host: str, recipients: dict) -> MailError:
    """Permanent only when every refusal was a 5xx (a 4xx, e.g. greylisting, may pass later)."""
    address, (code, words) = next(iter(recipients.items()))
    permanent = all(c >= 500 for c, _ in recipients.values())
    reply = f"{code} {_one_line(words)}"
    return MailError(ERR_RECIPIENT.format(host=host, address=address, reply=reply),
                     permanent=permanent)


def _one_line(value) -> str:
    """A server's words, short and on one line."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value or "").split())[:120]
