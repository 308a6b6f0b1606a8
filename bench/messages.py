"""Messages to clients after an outage: how fast they go out, and that none goes twice when
the worker is killed.

    python bench/messages.py [--messages 2000] [--delay-ms 50] [--kill-after 0.3]

A real SMTP server (aiosmtpd) and a real Twilio-compatible provider (tests/support/
fake_provider.py, answering in --delay-ms) listen on 127.0.0.1. A clinic's flow sends
every admitted patient's owner an e-mail and an SMS; half of --messages patients are
admitted in one commit (an outage's admissions arriving in one sync) and the flows queue
their messages. A separate `kiosk worker` process (the job queue on SQLite, as a group's
worker runs) sends them:

1. Throughput: the worker is started and ready before the messages are queued; messages/s
   from the first to the last sent, and the p50/p95 time from queued to sent.
2. Kill: as many messages again; once a third of them went, the worker is killed (SIGKILL,
   mid-batch) and a new one started. A message the dead worker had claimed waits out its
   lease (KIOSK_MESSAGE_LEASE_S, 10 s here) and is sent again with the same key. Counted:
   sends the provider received per key (it honours the Idempotency-Key), repeats it
   answered without sending, e-mails received per Message-ID.

SQLite in a temporary folder. Human-readable lines first; the last line is one JSON object.
"""

import argparse
import email
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from kiosk import create_app  # noqa: E402
from kiosk.clinic.models import ClinicSettings, Ward  # noqa: E402
from kiosk.core.models import new_uid  # noqa: E402
from kiosk.extensions import db  # noqa: E402
from kiosk.flows.engine import flow_events_evaluate, flow_steps_run_due  # noqa: E402
from kiosk.flows.services import flow_enable, flow_save, template_save  # noqa: E402
from kiosk.messaging.models import ClientMessage  # noqa: E402
from kiosk.owners.models import Owner  # noqa: E402
from kiosk.owners.services import owner_link  # noqa: E402
from kiosk.patients.services import patient_create  # noqa: E402
from kiosk.staff.models import User  # noqa: E402
from tests import factories  # noqa: E402
from tests.support.fake_provider import FakeProvider  # noqa: E402

TARGET_PER_S = 100
FINAL = ("sent", "delivered", "failed", "not_sent")
LEASE_S = 10


class Mailbox:
    """What the SMTP server received: each message's Message-ID."""

    def __init__(self):
        self.ids: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.ids.append(email.message_from_bytes(envelope.original_content)["Message-ID"])
        return "250 OK"


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(folder: Path, smtp_port: int, provider: FakeProvider) -> dict[str, str]:
    """The settings the bench and its worker processes share (environment variables)."""
    return {**os.environ, "KIOSK_DATABASE_URL": f"sqlite:///{folder / 'kiosk.db'}",
            "KIOSK_JOBS_FILE": str(folder / "jobs.db"), "KIOSK_WORKER": "separate",
            "KIOSK_SECRET_KEY": "bench-" + new_uid(), "KIOSK_SMTP_HOST": "127.0.0.1",
            "KIOSK_SMTP_PORT": str(smtp_port), "KIOSK_SMTP_FROM": "clinic@example.org",
            "KIOSK_PUBLIC_URL": "http://127.0.0.1:9", "KIOSK_MESSAGE_LEASE_S": str(LEASE_S),
            **provider.config()}


def clinic_build(app) -> None:
    """The schema, a clinic with no quiet hours and a limit no owner reaches, and a flow
    writing to every admitted patient's owner by e-mail and SMS."""
    with app.app_context():
        db.create_all()
        clinic = factories.clinic_make()
        settings = db.session.scalar(select(ClinicSettings))
        settings.quiet_start = settings.quiet_end = "00:00"
        settings.client_message_limit = 100
        manager = clinic.user(6)
        words = template_save(user=manager, data={
            "name": "Welcome", "subject": "{{ patient.name }} is with us",
            "body": "Hello {{ owner.name }}, {{ patient.name }} was admitted to "
                    "{{ clinic.name }}. We will keep you posted."})
        steps = [{"category": "smartflow", "type": "client_message", "item": words.uid,
                  "channel": channel,
                  "due": {"amount": 0, "unit": "minutes", "after": "event", "weekend": "keep"}}
                 for channel in ("email", "sms")]
        flow = flow_save(user=manager, data={"name": "Welcome the owner", "definition": {
            "trigger": {"kind": "patient_admitted"}, "conditions": [], "steps": steps}})
        flow_enable(flow=flow, user=manager, enabled=True)
        db.session.commit()


def admit(app, count: int, start: int) -> float:
    """Admit `count` patients with owners in one commit, then let the flows queue their
    messages (as the worker's flow jobs would); when the messages were queued."""
    with app.app_context():
        manager = db.session.scalar(select(User).where(User.level == 6))
        ward = db.session.scalar(select(Ward))
        for n in range(start, start + count):
            owner = Owner(uid=new_uid(), name=f"Owner {n}", email=f"owner{n}@example.org",
                          phone=f"+4477009{n:05d}", sms_consent=True, voice_consent=True)
            db.session.add(owner)
            patient = patient_create(user=manager, data={
                "name": f"Pet {n}", "species": "canine", "ward": ward}, origin="direct")
            owner_link(patient=patient, owner=owner)
        db.session.commit()
        flow_events_evaluate()
        flow_steps_run_due()
        db.session.commit()
    return time.monotonic()


def worker_start(env: dict[str, str], folder: Path, name: str) -> subprocess.Popen:
    """`kiosk worker` in a process of its own, ready (its first sweep ran) when returned."""
    log = (folder / f"{name}.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "worker", "--workers", "2"],
                               env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "started" not in (folder / f"{name}.log").read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start:\n{(folder / f'{name}.log').read_text()}")
        time.sleep(0.1)
    time.sleep(1.0)
    return process


def statuses(app) -> dict[str, int]:
    """How many messages are in each status."""
    with app.app_context():
        rows = db.session.execute(select(ClientMessage.status, func.count())
                                  .group_by(ClientMessage.status)).all()
        db.session.remove()
    return dict(rows)


def wait_final(app, total: int, timeout: float, *, seen: dict[int, float], since_id: int = 0,
               until=None) -> None:
    """Until every message is final (or `until(counts)` holds), noting in `seen` when each
    message after `since_id` was first seen sent (the database keeps whole seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            ids = db.session.scalars(select(ClientMessage.id).where(
                ClientMessage.id > since_id, ClientMessage.sent_at.is_not(None))).all()
            db.session.remove()
        now = time.monotonic()
        for message_id in ids:
            seen.setdefault(message_id, now)
        counts = statuses(app)
        if until is not None and until(counts):
            return
        if sum(counts.get(s, 0) for s in FINAL) >= total:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"messages still waiting after {timeout:.0f} s: {counts}")
        time.sleep(0.05)


def timings(seen: dict[int, float], queued: float) -> tuple[float, list[float]]:
    """Messages per second (first to last seen sent) and each one's queued → sent, in ms."""
    times = sorted(seen.values())
    span = times[-1] - times[0] if len(times) > 1 else 0
    return ((len(times) - 1) / span if span else 0.0,
            sorted((t - queued) * 1000 for t in times))


def reasons(app) -> list[str]:
    """Why messages were not sent (a few, for a failed run)."""
    with app.app_context():
        rows = db.session.scalars(select(ClientMessage.status_detail).where(
            ClientMessage.status_detail.is_not(None)).distinct().limit(5)).all()
        db.session.remove()
    return list(rows)


def last_id(app) -> int:
    with app.app_context():
        value = db.session.scalar(select(func.max(ClientMessage.id))) or 0
        db.session.remove()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--delay-ms", type=int, default=50)
    parser.add_argument("--kill-after", type=float, default=0.3,
                        help="the share of the second batch sent when the worker is killed")
    args = parser.parse_args()
    patients = args.messages // 2
    with tempfile.TemporaryDirectory() as tmp, FakeProvider() as provider:
        folder = Path(tmp)
        provider.delay_s = args.delay_ms / 1000
        box, smtp_port = Mailbox(), free_port()
        smtp = Controller(box, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        env = environment(folder, smtp_port, provider)
        os.environ.update({k: v for k, v in env.items() if k.startswith("KIOSK_")})
        app = create_app("production")
        clinic_build(app)
        print(f"{args.messages} messages per batch ({patients} patients × e-mail and SMS), "
              f"the provider answering in {args.delay_ms} ms")
        worker = worker_start(env, folder, "worker-1")
        try:
            seen: dict[int, float] = {}
            queued = admit(app, patients, 0)
            wait_final(app, args.messages, timeout=600, seen=seen)
            drained_s = time.monotonic() - queued
            per_s, waits = timings(seen, queued)
            if not waits:
                raise SystemExit(f"nothing was sent: {statuses(app)} {reasons(app)}")
            p50, p95 = statistics.median(waits), waits[int(len(waits) * 0.95) - 1]
            print(f"  throughput: {per_s:.0f} messages/s; all {args.messages} sent "
                  f"{drained_s:.1f} s after queuing; queued → sent p50 {p50:.0f} ms, "
                  f"p95 {p95:.0f} ms")
            before, after_kill = last_id(app), {}
            queued_again = admit(app, patients, patients)
            target = int(args.messages * args.kill_after)
            wait_final(app, 2 * args.messages, timeout=600, seen=after_kill, since_id=before,
                       until=lambda c: sum(
                c.get(s, 0) for s in FINAL) >= args.messages + target)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            killed_at = statuses(app)
            print(f"  worker killed with {killed_at.get('sending', 0)} messages claimed "
                  f"({killed_at})")
            worker = worker_start(env, folder, "worker-2")
            wait_final(app, 2 * args.messages, timeout=600, seen=after_kill, since_id=before)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
            smtp.stop()
        final = statuses(app)
        for log_file in sorted(folder.glob("worker-*.log")):
            troubles = [line for line in log_file.read_text().splitlines()
                        if " WARNING " in line or " ERROR " in line]
            shown = list(dict.fromkeys(line.split(": ", 1)[-1][:160] for line in troubles))[:4]
            print(f"  {log_file.stem}: {len(troubles)} warnings or errors {shown}")
        with app.app_context():
            retried = db.session.execute(select(ClientMessage.send_attempts, func.count())
                                         .group_by(ClientMessage.send_attempts)).all()
            print(f"  tries per message: {dict(retried)}; reasons seen: {reasons(app)}")
            uncertain = db.session.scalar(select(func.count()).select_from(ClientMessage)
                                          .where(ClientMessage.status_detail.like(
                                              "The sender stopped%")))
        sms_twice = sum(1 for n in provider.sends_per_key().values() if n > 1)
        per_id: dict[str, int] = {}
        for message_id in box.ids:
            per_id[message_id] = per_id.get(message_id, 0) + 1
        email_twice = sum(1 for n in per_id.values() if n > 1)
        _, kill_waits = timings(after_kill, queued_again)
        print(f"  after the kill: {final} ({uncertain} e-mails the dead worker was handing "
              f"over, not sent again); SMS sent twice: {sms_twice}, repeats the provider "
              f"answered without sending: {provider.repeats}; e-mails received twice: "
              f"{email_twice}; slowest queued → sent {max(kill_waits) / 1000:.1f} s")
        result = {
            "messages": args.messages, "provider_delay_ms": args.delay_ms,
            "messages_per_s": round(per_s), "p50_ms": round(p50), "p95_ms": round(p95),
            "target_per_s": TARGET_PER_S, "meets_target": per_s >= TARGET_PER_S,
            "kill": {"claimed_when_killed": killed_at.get("sending", 0),
                     "all_final": sum(final.get(s, 0) for s in FINAL) == 2 * args.messages,
                     "sent": final.get("sent", 0), "failed": final.get("failed", 0),
                     "uncertain_not_resent": uncertain, "sms_sent_twice": sms_twice,
                     "provider_repeats": provider.repeats, "emails_received_twice": email_twice,
                     "lease_s": LEASE_S}}
        print(json.dumps(result))


if __name__ == "__main__":
    main()
