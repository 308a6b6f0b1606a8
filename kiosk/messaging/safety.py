"""The rules a message to a client passes before it goes: an owner who can be reached on
that channel and agreed to it, not opted out, not in the clinic's quiet hours (SMS and
calls), not past the owner's daily limit. One function decides; the sender obeys.

Nothing here is dropped silently: a message that may go later is held until a time, one
that must not go is recorded as not sent with the reason in words.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from ..core.clock import as_utc, moment_text, to_local
from ..owners.services import owner_address
from .models import ClientMessage

# Channels that ring or buzz a phone: held in the quiet hours unless urgent.
INTRUSIVE = ("sms", "voice")
# Channels the daily limit counts (a portal post reaches nobody by itself).
LIMITED = ("email", "sms", "voice")
LIMIT_WINDOW = timedelta(hours=24)
DEFAULT_QUIET = ("21:00", "08:00")
DEFAULT_LIMIT = 10

WHY_NO_OWNER = "The patient has no owner on record."
WHY_OPTED_OUT = "The owner opted out of messages ({via}, {when})."
WHY_NO_ADDRESS = {"email": "The owner has no e-mail address.",
                  "sms": "The owner has no mobile phone number.",
                  "voice": "The owner has no phone number."}
WHY_NO_CONSENT = {"sms": "The owner has not agreed to SMS messages.",
                  "voice": "The owner has not agreed to voice calls."}
WHY_QUIET = "Held for the clinic's quiet hours until {until}."
WHY_LIMIT = ("Held: the owner was sent {count} messages in the last 24 hours (the clinic's "
             "limit); it goes at {until}.")


@dataclass(frozen=True)
class Verdict:
    """What to do with a message now: "send" (to `address`), "hold" (until `until`) or
    "refuse" (never), with the reason in words for the last two."""

    action: str
    address: str | None = None
    until: datetime | None = None
    reason: str = ""


def _clock_time(text: str | None, default: str) -> time:
    hours, minutes = (text or default).split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, settings) -> datetime | None:
    """When the quiet hours in force at `now` end (UTC), or None when it is not quiet.
    The hours are the clinic's wall clock ("21:00"–"08:00" spans midnight; equal: none),
    so a DST change moves them with the clinic."""
    start = _clock_time(getattr(settings, "quiet_start", None), DEFAULT_QUIET[0])
    end = _clock_time(getattr(settings, "quiet_end", None), DEFAULT_QUIET[1])
    if start == end:
        return None
    tz = _zone(settings)
    local = to_local(now, tz)
    at = local.time().replace(tzinfo=None)
    if start < end:
        quiet = start <= at < end
        end_day = local.date()
    else:
        quiet = at >= start or at < end
        end_day = local.date() + timedelta(days=1) if at >= start else local.date()
    if not quiet:
        return None
    return as_utc(datetime.combine(end_day, end, tzinfo=tz))


def _zone(settings):
    from ..clinic.selectors import settings_zone

    return settings_zone(settings)


def message_verdict(message: ClientMessage, *, settings, now: datetime,
                    sent_recent: list[datetime]) -> Verdict:
    """Whether `message` may go now. `sent_recent`: when its owner was sent messages on the
    limited channels in the last 24 hours (oldest first)."""
    owner = message.owner
    if owner is None:
        return Verdict("refuse", reason=WHY_NO_OWNER)
    if owner.opted_out:
        return Verdict("refuse", reason=WHY_OPTED_OUT.format(
            via=owner.opted_out_via or "asked", when=moment_text(owner.opted_out_at,
                                                                 _zone(settings))))
    channel = message.channel
    address = owner_address(owner, channel)
    if address is None:
        return Verdict("refuse", reason=WHY_NO_ADDRESS.get(channel, WHY_NO_OWNER))
    if channel == "sms" and not owner.sms_consent or channel == "voice" and not (
            owner.voice_consent):
        return Verdict("refuse", reason=WHY_NO_CONSENT[channel])
    if message.urgent:
        return Verdict("send", address=address)
    if channel in INTRUSIVE:
        until = quiet_until(now, settings)
        if until is not None:
            return Verdict("hold", until=until, reason=WHY_QUIET.format(
                until=moment_text(until, _zone(settings))))
    limit = getattr(settings, "client_message_limit", None) or DEFAULT_LIMIT
    if channel in LIMITED and len(sent_recent) >= limit:
        until = as_utc(sent_recent[-limit]) + LIMIT_WINDOW
        return Verdict("hold", until=until, reason=WHY_LIMIT.format(
            count=len(sent_recent), until=moment_text(until, _zone(settings))))
    return Verdict("send", address=address)
