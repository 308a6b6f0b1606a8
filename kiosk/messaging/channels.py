"""The channels that reach a client: an e-mail built for the one SMTP transport
(kiosk.core.mail), and text messages and voice calls through a Twilio-compatible REST API.

Pure adapters: no database, no request. Each failure is a ChannelError that says whether
trying again can help (`permanent`) and why in plain words, never with the token. Every
send carries the message's key (Message-ID, Idempotency-Key), so a resend after a crash is
recognised as the same message by whoever already has it.
"""

import base64
import hashlib
import hmac
import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from ipaddress import ip_address
from urllib.parse import quote, urlencode, urlsplit
from xml.sax.saxutils import escape

from ..core import clock

API_VERSION = "2010-04-01"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_VOICE_LANGUAGE = "en-GB"
_ANSWER_LIMIT = 64 * 1024  # a provider's answer is a small JSON object
_REASON_LIMIT = 200
_DOMAIN = re.compile(r"[^a-z0-9.-]+")
# XML 1.0 allows no control characters but tab and line breaks (text-to-speech markup).
_XML_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LOOPBACK_NAMES = ("localhost",)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # it travels as a header: printable ASCII

ERR_URL = ("KIOSK_SMS_URL must be an https:// address (http:// only on this machine) "
           "without a user name or password in it.")
ERR_MISSING = "SMS and voice need {names} as well as KIOSK_SMS_URL."
ERR_TIMEOUT = "KIOSK_SMS_TIMEOUT is not a number of seconds above zero."
ERR_AUTH = ("The SMS provider refused the account or token (HTTP {status}): "
            "check KIOSK_SMS_ACCOUNT and KIOSK_SMS_TOKEN.")
ERR_REFUSED = "The SMS provider refused the message (HTTP {status}{code}): {words}"
ERR_BUSY = "The SMS provider is busy or failing (HTTP {status}); try again later."
ERR_REDIRECT = ("The SMS provider answered with a redirect (HTTP {status}), which is not "
                "followed: check KIOSK_SMS_URL.")
ERR_SLOW = "The SMS provider did not answer within {seconds:g} s."
ERR_UNTRUSTED = "The SMS provider's certificate is not trusted."
ERR_UNREACHABLE = "The SMS provider could not be reached: {kind}."
ERR_KEY = "A message key is 1 to 200 printable ASCII characters without spaces."
ERR_NO_ID = "The SMS provider answered {status} without a message id."


class ChannelError(Exception):
    """A text or call that did not go. `permanent`: trying again unchanged fails the same
    way; `reason`: why, in plain words (never the token)."""

    def __init__(self, reason: str, *, permanent: bool):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class Receipt:
    """What the provider said when it took a message: its id and its status word."""

    provider_id: str
    status: str


@dataclass(frozen=True)
class ProviderSettings:
    """The SMS and voice provider. The token is left out of repr (logs, tracebacks)."""

    url: str
    account: str
    token: str = field(repr=False)
    sms_from: str
    voice_from: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    voice_language: str = DEFAULT_VOICE_LANGUAGE


def email_build(*, to: str, subject: str, text: str, html: str, key: str,
                from_address: str, from_name: str) -> EmailMessage:
    """An e-mail with a text part, then the same in HTML (multipart/alternative). Its
    Message-ID comes from `key` alone, so a resend after a crash carries the same one."""
    message = EmailMessage()
    message["From"] = formataddr((_one_line(from_name), _one_line(from_address)))
    message["To"] = _one_line(to)
    # Header text never carries a line break (one would end the header and start another).
    message["Subject"] = _one_line(subject)
    message["Date"] = format_datetime(clock.utcnow())
    message["Message-ID"] = message_id(key, from_address)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def message_id(key: str, from_address: str) -> str:
    """The Message-ID for `key`: a digest of it (any key makes a valid, fixed-length id)
    at the sender's domain."""
    domain = _DOMAIN.sub("", from_address.rpartition("@")[2].lower()).strip(".-") or "kiosk"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    return f"<kiosk.{digest}@{domain}>"


def provider_settings(config: Mapping) -> ProviderSettings | None:
    """The SMS and voice provider from the configuration; None when KIOSK_SMS_URL is not
    set. A setting that cannot work raises ChannelError (permanent) saying which."""
    url = str(config.get("KIOSK_SMS_URL") or "").strip().rstrip("/")
    if not url:
        return None
    if not _url_acceptable(url):
        raise ChannelError(ERR_URL, permanent=True)
    values = {name: str(config.get(name) or "").strip()
              for name in ("KIOSK_SMS_ACCOUNT", "KIOSK_SMS_TOKEN", "KIOSK_SMS_FROM")}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ChannelError(ERR_MISSING.format(names=", ".join(missing)), permanent=True)
    try:
        timeout_s = float(config.get("KIOSK_SMS_TIMEOUT") or DEFAULT_TIMEOUT_S)
    except (TypeError, ValueError):
        raise ChannelError(ERR_TIMEOUT, permanent=True) from None
    if not timeout_s > 0:  # also refuses NaN
        raise ChannelError(ERR_TIMEOUT, permanent=True)
    return ProviderSettings(
        url=url, account=values["KIOSK_SMS_ACCOUNT"], token=values["KIOSK_SMS_TOKEN"],
        sms_from=values["KIOSK_SMS_FROM"],
        voice_from=str(config.get("KIOSK_VOICE_FROM") or "").strip() or values["KIOSK_SMS_FROM"],
        timeout_s=timeout_s,
        voice_language=str(config.get("KIOSK_VOICE_LANGUAGE") or "").strip()
        or DEFAULT_VOICE_LANGUAGE)


def _url_acceptable(url: str) -> bool:
    """https, or http to this machine only: the token travels in every request."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _loopback(parts.hostname)


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def sms_send(settings: ProviderSettings, *, to: str, body: str, key: str,
             status_callback: str | None) -> Receipt:
    """Send a text message; the provider's receipt, or ChannelError. `key` goes as the
    Idempotency-Key: a provider that already took this key does not send it again."""
    form = {"To": to, "From": settings.sms_from, "Body": body}
    return _post(settings, "Messages.json", form, key=key, status_callback=status_callback)


def voice_call(settings: ProviderSettings, *, to: str, text: str, key: str,
               status_callback: str | None) -> Receipt:
    """Place a call that reads `text` aloud (escaped inside the provider's markup); the
    provider's receipt, or ChannelError. `key` goes as the Idempotency-Key."""
    twiml = twiml_say(text, settings.voice_language)
    form = {"To": to, "From": settings.voice_from, "Twiml": twiml}
    return _post(settings, "Calls.json", form, key=key, status_callback=status_callback)


def twiml_say(text: str, language: str) -> str:
    """The call's markup: `text` read aloud in `language`, both escaped as XML so a client's
    name cannot add instructions to the call."""
    quotes = {'"': "&quot;", "'": "&apos;"}
    spoken = escape(_XML_UNSAFE.sub("", text), quotes)
    return (f'<Response><Say language="{escape(_XML_UNSAFE.sub("", language), quotes)}">'
            f"{spoken}</Say></Response>")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a 2xx: following it would send the token elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """Follow nothing."""
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post(settings: ProviderSettings, resource: str, form: dict[str, str], *, key: str,
          status_callback: str | None) -> Receipt:
    """POST the form to the account's resource; the receipt, or ChannelError."""
    if status_callback:
        form = {**form, "StatusCallback": status_callback}
    if not _KEY.fullmatch(key):
        raise ValueError(ERR_KEY)
    if not _url_acceptable(settings.url):  # settings made by hand, not by provider_settings
        raise ChannelError(ERR_URL, permanent=True)
    url = f"{settings.url}/{API_VERSION}/Accounts/{quote(settings.account, safe='')}/{resource}"
    secret = base64.b64encode(f"{settings.account}:{settings.token}".encode()).decode("ascii")
    headers = {"Authorization": f"Basic {secret}", "Idempotency-Key": key,
               "Content-Type": "application/x-www-form-urlencoded",
               "Accept": "application/json", "User-Agent": "kiosk-messaging"}
    # The scheme was checked just above: https, or http to this machine.
    request = urllib.request.Request(url, data=urlencode(form).encode("utf-8"),  # noqa: S310
                                     headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=settings.timeout_s) as response:
            status, raw = response.status, response.read(_ANSWER_LIMIT)
    except urllib.error.HTTPError as exc:
        raw = _read_quietly(exc)
        raise _refusal(exc.code, raw) from None
    except urllib.error.URLError as exc:  # while connecting
        raise _unreachable(exc.reason, settings.timeout_s) from None
    except OSError as exc:  # a timeout waiting for the answer, a connection reset
        raise _unreachable(exc, settings.timeout_s) from None
    return _receipt(status, raw)


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read(_ANSWER_LIMIT)
    except OSError:
        return b""
    finally:
        exc.close()


def _receipt(status: int, raw: bytes) -> Receipt:
    """A 2xx answer's id and status word. Without an id nobody can match the callbacks:
    tried again (the same key, so a provider that has it does not send it twice)."""
    answer = _json(raw)
    sid = answer.get("sid")
    if not isinstance(sid, str) or not sid:
        raise ChannelError(ERR_NO_ID.format(status=status), permanent=False)
    return Receipt(provider_id=sid, status=str(answer.get("status") or "queued"))


def _refusal(status: int, raw: bytes) -> ChannelError:
    """The ChannelError for a non-2xx answer: busy or failing is worth another try."""
    if status in (401, 403):
        return ChannelError(ERR_AUTH.format(status=status), permanent=True)
    if status in (408, 429) or status >= 500:
        return ChannelError(ERR_BUSY.format(status=status), permanent=False)
    if 300 <= status < 400:
        return ChannelError(ERR_REDIRECT.format(status=status), permanent=True)
    answer = _json(raw)
    code = _one_line(answer.get("code"))[:20]
    words = _one_line(answer.get("message") or "no reason given")[:_REASON_LIMIT]
    return ChannelError(ERR_REFUSED.format(status=status, code=f", code {code}" if code else "",
                                           words=words), permanent=True)


def _unreachable(reason, timeout_s: float) -> ChannelError:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return ChannelError(ERR_UNTRUSTED, permanent=True)
    if isinstance(reason, TimeoutError):
        return ChannelError(ERR_SLOW.format(seconds=timeout_s), permanent=False)
    kind = type(reason).__name__ if isinstance(reason, BaseException) else "unknown"
    return ChannelError(ERR_UNREACHABLE.format(kind=kind), permanent=False)


def _json(raw: bytes) -> dict:
    try:
        answer = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return answer if isinstance(answer, dict) else {}


def callback_signature(token: str, url: str, params: dict[str, str]) -> str:
    """The provider's signature of a request it sends us (X-Twilio-Signature): base64 of
    HMAC-SHA1 with the token over the full URL, then each parameter's name and value in
    the order of the names."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def callback_signature_valid(token: str, url: str, params: dict[str, str],
                             signature: str | None) -> bool:
    """Whether `signature` is the provider's for this request; False when it or the token
    is missing (an unsigned callback is never believed)."""
    if not token or not signature:
        return False
    expected = callback_signature(token, url, params)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))


def _one_line(value) -> str:
    return " ".join(str(value or "").split())
