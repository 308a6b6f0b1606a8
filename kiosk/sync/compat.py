"""Ops as earlier releases' pages wrote them, read as today's (docs/sync-protocol.md,
"Older pages").

A tablet keeps the pages it was given and the ops they queued while it was offline; after an
upgrade those ops reach a newer server. When a release changes an op's shape (renames or
moves an argument, turns a text into a number, renames the op), it registers a translation
here: the op's old name, how to recognise the old shape, and the current name and args.
The sync envelope applies them in one place, before anything reads an op, so an old page's
op is checked, applied, stored and compared with its resend exactly as today's page's op.

An op that is neither today's shape nor a registered old one is left as it came: its spec
refuses it with the usual clear reason (`rejected`), never an error of the server.

Every op shape since the first offline release (the localStorage outbox) is still today's:
releases have only added ops (`order.give`, `shift.end`) and optional arguments
(`override_reason`), which older pages simply never send. tests/sync/recorded holds ops
recorded from those releases' pages, replayed by tests/sync/test_compat.py; a release that
changes a shape records its predecessor's ops there and adds its translation here.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Translation:
    """An op shape an earlier release's page sent, and how to write it as today's."""

    name: str  # the op's name as the old page sent it
    until: str  # the release whose pages sent it (the last one), for the reader
    recognise: Callable[[dict], bool]  # whether the args are that old shape
    translate: Callable[[dict], tuple[str, dict]]  # old args → (today's name, today's args)


# Old op name → its translations, tried in order. Empty: no shape has changed yet.
TRANSLATIONS: dict[str, list[Translation]] = {}


def translation_register(translation: Translation) -> None:
    """Add the translation of an old op shape (a release that changes a shape calls this)."""
    TRANSLATIONS.setdefault(translation.name, []).append(translation)


def translation_remove(translation: Translation) -> None:
    """Take a translation out again (tests that register their own)."""
    found = TRANSLATIONS.get(translation.name, [])
    if translation in found:
        found.remove(translation)
    if not found:
        TRANSLATIONS.pop(translation.name, None)


def op_current(op):
    """The op with today's name and args: the same dict when it is not a known old shape,
    else a copy (id, seq, at and user as sent). Never raises: what cannot be read is left
    for its spec to refuse."""
    if not isinstance(op, dict) or not isinstance(op.get("name"), str) \
            or not isinstance(op.get("args"), dict):
        return op
    for translation in TRANSLATIONS.get(op["name"], ()):
        try:
            if not translation.recognise(op["args"]):
                continue
            name, args = translation.translate(dict(op["args"]))
        except Exception:  # noqa: BLE001 - an odd old op is refused by its spec, not a 500
            log.warning("op %s: its old shape could not be translated", op["name"][:60])
            return op
        return {**op, "name": name, "args": args}
    return op
