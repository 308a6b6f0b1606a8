"""A Twilio-compatible SMS and voice provider on 127.0.0.1 for tests and benchmarks: a real
HTTP server in a thread that checks Basic auth, records every request, keeps each message
once by its Idempotency-Key, and sends signed status callbacks and inbound texts back.

    with FakeProvider() as provider:
        provider.mode = "reject"     # "accept" | "reject" | "fail" (503) | "timeout"
                                     # | "redirect" (302 to itself)
        provider.delay_s = 0.05      # every answer after 50 ms
        ... provider.url, provider.account, provider.token, provider.requests
        provider.deliver(sid)        # a signed "delivered" callback to its StatusCallback
        provider.inbound(url, from_="+447700900123", body="STOP")

Its signature is computed here on its own (not with the code under test), so a mistake in
the application's check cannot hide behind the same mistake in the fake.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode

from requests.structures import CaseInsensitiveDict

MODES = ("accept", "reject", "fail", "timeout", "redirect")
RESOURCES = {"Messages.json": "SM", "Calls.json": "CA"}


@dataclass
class ProviderRequest:
    """One request as it reached the provider, and the status it was answered."""

    path: str
    form: dict[str, str]
    headers: CaseInsensitiveDict
    answered: int = 0
    method: str = "POST"


@dataclass
class Sent:
    """A message or call the provider took (once per Idempotency-Key)."""

    sid: str
    key: str | None
    form: dict[str, str]
    statuses: list[str] = field(default_factory=lambda: ["queued"])

    @property
    def is_call(self) -> bool:
        """Whether this is a voice call (else a text message)."""
        return self.sid.startswith("CA")


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode("utf-8"), keep_blank_values=True))
        self._respond(form)

    def do_GET(self):  # noqa: N802 - a client that followed a redirect arrives as a GET
        self._respond(None)

    def _respond(self, form: dict | None) -> None:
        provider = self.server.provider
        headers = CaseInsensitiveDict(self.headers.items())  # as HTTP means them
        status, answer, wait = provider.take(self.command, self.path, form, headers)
        if wait:
            time.sleep(wait)
        body = json.dumps(answer).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if "location" in answer:
                self.send_header("Location", answer["location"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting: the answer is lost, the message was taken

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        """Quiet: the tests assert on what was recorded."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping must not hold the test up

    def __init__(self, provider: "FakeProvider"):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.provider = provider


class FakeProvider:
    """The provider's end of the REST API, with refusals, failures and slowness on demand."""

    def __init__(self, *, account: str | None = None, token: str | None = None,
                 number: str = "+15005550006"):
        self.account = account or "AC" + uuid.uuid4().hex
        self.token = token or secrets.token_hex(16)
        self.number = number  # the clinic's number, where inbound texts are addressed
        self._mode = "accept"
        self.delay_s = 0.0
        self.hang_s = 3.0
        self.dedupe = True  # False: a provider that ignores the Idempotency-Key
        self.requests: list[ProviderRequest] = []
        self.sent: list[Sent] = []
        self.repeats = 0  # requests for a key already sent: answered, not sent again
        self.callbacks: list[tuple[str, dict[str, str], int]] = []  # (url, params, answer)
        self._by_key: dict[str, Sent] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def mode(self) -> str:
        """How the next requests are answered: one of MODES."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self._mode = value

    # -- the REST API ------------------------------------------------------------------

    def take(self, method: str, path: str, form: dict | None,
             headers: dict) -> tuple[int, dict, float]:
        """Record one request; the status and JSON to answer, and how long to wait first."""
        record = ProviderRequest(path, form or {}, headers, method=method)
        with self._lock:
            self.requests.append(record)
            if method != "POST":
                record.answered, answer = 405, {"code": 20004, "message": "Method not allowed"}
            else:
                record.answered, answer = self._answer(path, form, headers)
        wait = self.hang_s if self.mode == "timeout" and record.answered < 300 else 0.0
        return record.answered, answer, wait + self.delay_s

    def _answer(self, path: str, form: dict, headers: dict) -> tuple[int, dict]:
        if not self._authorised(headers.get("Authorization")):
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        resource = path.rsplit("/", 1)[-1]
        if path != f"/2010-04-01/Accounts/{self.account}/{resource}" or resource not in RESOURCES:
            return 404, {"code": 20404, "message": f"The requested resource {path} was not found",
                         "status": 404}
        if self.mode == "reject":
            words = f"The 'To' number {form.get('To')} is not a valid phone number."
            return 400, {"code": 21211, "message": words, "status": 400}
        if self.mode == "redirect":  # a moved API: a client must not follow with the token
            return 302, {"location": path + "?moved=1"}
        if self.mode == "fail":
            return 503, {"code": 20503, "message": "Service unavailable", "status": 503}
        # "accept", and "timeout": taken, but the answer comes too late (a lost answer).
        sent = self._send(RESOURCES[resource], headers.get("Idempotency-Key"), form)
        return 201, {"sid": sent.sid, "status": "queued", "to": form.get("To"),
                     "account_sid": self.account}

    def _authorised(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.account}:{self.token}".encode()).decode("ascii")
        return hmac.compare_digest(header or "", f"Basic {expected}")

    def _send(self, prefix: str, key: str | None, form: dict) -> Sent:
        if self.dedupe and key and key in self._by_key:
            self.repeats += 1
            return self._by_key[key]
        sent = Sent(prefix + uuid.uuid4().hex, key, dict(form))
        self.sent.append(sent)
        self._by_key.setdefault(key, sent)
        return sent

    def sent_keys(self) -> list[str | None]:
        """The Idempotency-Key of each message or call actually sent, in order."""
        with self._lock:
            return [s.key for s in self.sent]

    def sends_per_key(self) -> dict[str | None, int]:
        """How many times each key was actually sent (1 each unless `dedupe` is off)."""
        counts: dict[str | None, int] = {}
        for key in self.sent_keys():
            counts[key] = counts.get(key, 0) + 1
        return counts

    def message(self, sid: str) -> Sent:
        """The message or call the provider sent under `sid`."""
        with self._lock:
            return next(s for s in self.sent if s.sid == sid)

    # -- calls back to the application ---------------------------------------------------

    def deliver(self, sid: str, status: str = "delivered", *, forge: bool = False) -> int:
        """POST a status callback for `sid` to the StatusCallback it was sent with, signed
        (forge=True: signed with the wrong token); our server's HTTP status is returned."""
        sent = self.message(sid)
        url = sent.form.get("StatusCallback")
        if not url:
            raise LookupError(f"{sid} was sent without a StatusCallback")
        word = "Call" if sent.is_call else "Message"
        params = {f"{word}Sid": sid, f"{word}Status": status, "To": sent.form.get("To", ""),
                  "From": sent.form.get("From", ""), "AccountSid": self.account}
        with self._lock:
            sent.statuses.append(status)
        return self._post_signed(url, params, forge)

    def inbound(self, url: str, *, from_: str, body: str, forge: bool = False,
                to: str | None = None) -> int:
        """POST a text a client sent (e.g. "STOP") to `url`, signed as the provider does;
        our server's HTTP status is returned."""
        params = {"From": from_, "To": to or self.number, "Body": body,
                  "MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": self.account}
        return self._post_signed(url, params, forge)

    def signature(self, url: str, params: dict[str, str], *, token: str | None = None) -> str:
        """The X-Twilio-Signature of a request to `url` with `params`."""
        data = url + "".join(name + params[name] for name in sorted(params))
        key = (token or self.token).encode("utf-8")
        return base64.b64encode(hmac.new(key, data.encode("utf-8"), hashlib.sha1).digest()).decode()

    def _post_signed(self, url: str, params: dict[str, str], forge: bool) -> int:
        signature = self.signature(url, params, token="forged-" + self.token if forge else None)
        request = urllib.request.Request(url, data=urlencode(params).encode(),
                                         method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answered = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            answered = exc.code
        with self._lock:
            self.callbacks.append((url, params, answered))
        return answered

    # -- running -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API's base address (what KIOSK_SMS_URL is set to)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def config(self, **extra) -> dict:
        """The KIOSK_SMS_* settings that point the application at this provider."""
        return {"KIOSK_SMS_URL": self.url, "KIOSK_SMS_ACCOUNT": self.account,
                "KIOSK_SMS_TOKEN": self.token, "KIOSK_SMS_FROM": self.number, **extra}

    def start(self) -> "FakeProvider":
        """Listen on a free port of 127.0.0.1 in a background thread."""
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
