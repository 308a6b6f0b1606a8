// The two rules the tablet must compute itself, offline, exactly as the server does:
// a task's uid (SYNC.md: uuid5 of the order uid and the due time) and an order's due
// times (kiosk/treatments/schedule.py: every N hours, set times of the clinic's day, once,
// or PRN). tests/e2e/test_js_rules.py runs both against the server's for many orders,
// across daylight-saving changes, so they cannot drift.
import {sha1} from "../../vendor/noble-hashes/legacy.js";
import {utf8ToBytes} from "../../vendor/noble-hashes/utils.js";
import {hexUuid, isoZ} from "./ids.js";

const HOUR = 3600000, DAY = 24 * HOUR;

/** RFC 4122 version 5 UUID of `name` in the namespace UUID `namespace`. */
export function uuid5(namespace, name) {
  const hex = namespace.replace(/-/g, "");
  const bytes = new Uint8Array(16 + utf8ToBytes(name).length);
  for (let i = 0; i < 16; i++) { bytes[i] = parseInt(hex.substr(2 * i, 2), 16); }
  bytes.set(utf8ToBytes(name), 16);
  const b = sha1(bytes).slice(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  return hexUuid(b);
}

/** The uid of an order's task due at `dueMs` (epoch ms). */
export function taskUid(orderUid, dueMs) {
  return uuid5(orderUid, isoZ(dueMs));
}

// ---- The clinic's wall clock ------------------------------------------------------------
const formats = new Map();
function partsOf(ms, tz) {
  if (!formats.has(tz)) {
    formats.set(tz, new Intl.DateTimeFormat("en-US", {timeZone: tz, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"}));
  }
  const p = {};
  formats.get(tz).formatToParts(new Date(ms)).forEach((x) => { p[x.type] = parseInt(x.value, 10); });
  return {y: p.year, m: p.month, d: p.day, h: p.hour % 24, mi: p.minute, s: p.second};
}

/** The wall-clock date and time in `tz` at epoch ms. */
export function wall(ms, tz) { return partsOf(ms, tz); }

function offsetMs(ms, tz) {
  const w = partsOf(ms, tz);
  return Date.UTC(w.y, w.m - 1, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant of a wall-clock time in `tz`, as Python's datetime(..., tzinfo=ZoneInfo(tz))
 * with fold=0 reads it: a time that happens twice (clocks back) is the first; a time that
 * never happens (clocks forward) is read with the offset before the change.
 */
export function localToUtc(y, m, d, h, mi, tz) {
  const w = Date.UTC(y, m - 1, d, h, mi);
  const before = offsetMs(w - 12 * HOUR, tz), after = offsetMs(w + 12 * HOUR, tz);
  if (offsetMs(w - before, tz) !== before && offsetMs(w - after, tz) === after) { return w - after; }
  return w - before;
}

/** A datetime-local value ("YYYY-MM-DDTHH:MM", clinic wall clock) as epoch ms, or null. */
export function parseLocal(text, tz) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(text || "");
  return m ? localToUtc(+m[1], +m[2], +m[3], +m[4], +m[5], tz) : null;
}

function pad(n) { return (n < 10 ? "0" : "") + n; }
/** "HH:MM" of epoch ms in `tz`. */
export function hm(ms, tz) { const w = partsOf(ms, tz); return `${pad(w.h)}:${pad(w.mi)}`; }
/** The start (epoch ms) of the clinic's day holding `ms`. */
export function dayStart(ms, tz) { const w = partsOf(ms, tz); return localToUtc(w.y, w.m, w.d, 0, 0, tz); }
/** "YYYY-MM-DD" of the clinic's day holding `ms`. */
export function dayIso(ms, tz) { const w = partsOf(ms, tz); return `${w.y}-${pad(w.m)}-${pad(w.d)}`; }

// ---- The schedule (kiosk/treatments/schedule.py due_times) -------------------------------

/**
 * An order's due times (epoch ms, ascending) before `untilMs`: `order` has the op's args
 * (start, end?, every_hours?, times?, prn?) as ISO strings and numbers.
 */
export function dueTimes(order, untilMs, tz) {
  if (order.prn) { return []; }
  const start = Date.parse(order.start);
  const limit = order.end ? Math.min(untilMs, Date.parse(order.end) + 1000) : untilMs;
  if (order.every_hours) {
    const out = [];
    for (let due = start; due < limit; due += order.every_hours * HOUR) { out.push(due); }
    return out;
  }
  if (order.times && order.times.length) { return setTimes(start, order.times, limit, tz); }
  return start < limit ? [start] : [];
}

function setTimes(start, times, limit, tz) {
  const out = [];
  const first = partsOf(start, tz), lastDay = dayIso(limit, tz);
  for (let cursor = Date.UTC(first.y, first.m - 1, first.d); ; cursor += DAY) {
    const c = new Date(cursor);
    const iso = `${c.getUTCFullYear()}-${pad(c.getUTCMonth() + 1)}-${pad(c.getUTCDate())}`;
    if (iso > lastDay) { break; }
    times.forEach((t) => {
      const at = localToUtc(c.getUTCFullYear(), c.getUTCMonth() + 1, c.getUTCDate(), +t.slice(0, 2), +t.slice(3, 5), tz);
      if (at >= start && at < limit) { out.push(at); }
    });
  }
  return out;
}
