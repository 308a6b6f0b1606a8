// The tablet's outbox (SYNC.md): every change is an op stored first (store.js), then sent
// to POST /api/sync — at once when online, later when the connection returns. Only the
// server's answer (last_seq) removes ops; nothing here clears them on sign-out or lock.
// One tab sends at a time (Web Locks, else a localStorage lease). The page reads the ops
// through a copy kept in memory (ops(), attention()), refreshed after every change here or
// in another tab; "outbox:changed" and "outbox:synced" tell the page.
import * as store from "./store.js";
import {deviceId, isTablet, person, remember, revoked, setRevoked, token} from "./device.js";
import {fire} from "./dom.js";
import {isoZ, uuid4} from "./ids.js";

export {StorageFull} from "./store.js";

const MAX_OPS = 500, MAX_BYTES = 2 * 1024 * 1024;
const BACKOFF_MIN = 1000, BACKOFF_MAX = 60000, HEARTBEAT_MS = 60000, TIMEOUT_MS = 20000;
const LEASE_KEY = "kiosk.flushLease", LEASE_MS = 30000;
const tabId = uuid4();
const channel = "BroadcastChannel" in window ? new BroadcastChannel("kiosk-outbox") : null;

/** What the banner shows: sending now, the last send failed, a storage warning. */
export const state = {syncing: false, failed: false, backoff: 0, timer: null, message: "", loaded: false};
let kept = {ops: [], attention: [], nextSeq: 1};

/** The ops waiting to be sent, in seq order (the copy in memory). */
export function ops() { return kept.ops; }
/** The ops the server answered rejected or conflict, kept until a person dismisses them. */
export function attention() { return kept.attention; }
/** Whether the tablet cannot reach the server now. */
export function offline() { return !navigator.onLine || state.failed; }

/** Read the storage again into memory; tell the page (and, when `others`, the other tabs). */
export async function reload(others = false, detail = {}) {
  kept = await store.snapshot();
  state.loaded = true;
  fire("outbox:changed", detail);
  if (others && channel) { channel.postMessage("changed"); }
  return kept;
}

// The patient an op is for (kept beside it on the tablet, never sent inside the op): the
// heartbeat tells the server which patients still wait here, for discharge checks.
function patientOf(args, options) {
  if (options && options.patient) { return options.patient; }
  if (args && typeof args.patient === "string") { return args.patient; }
  const page = document.querySelector("[data-patient]:not([data-patient=''])");
  return page ? page.dataset.patient : null;
}

/** Thrown when no one is signed in on the tablet. */
export const LOCKED = "This tablet is locked: unlock it with your PIN, then try again. The change was NOT saved.";

/**
 * Record a change: resolves with the stored op, rejects (the reason is fired as
 * "outbox:error" for the page to show) when it cannot be stored.
 */
export async function enqueue(name, args, options = {}) {
  if (!isTablet()) { throw new Error("This browser is not a provisioned tablet."); }
  const user = person();
  if (!user) { return refuse(new Error(LOCKED)); }
  const op = {id: uuid4(), name, args, at: options.at || isoZ(), user};
  const patient = patientOf(args, options);
  if (patient) { op.patient = patient; }
  let stored;
  try {
    stored = await store.add(op);
  } catch (e) {
    return refuse(e);
  }
  await reload(true, {added: stored});
  checkSize();
  schedule(0);
  return stored;
}

function refuse(error) {
  fire("outbox:error", {message: error.message || String(error)});
  throw error;
}

function checkSize() {
  const bytes = JSON.stringify(kept.ops).length * 2;
  if (bytes > MAX_BYTES) {
    state.message = `Storage warning: ${Math.round(bytes / 1024)} KB of changes are waiting on this tablet. ` +
      "Reconnect soon so they can be sent.";
  }
  if (navigator.storage && navigator.storage.estimate) {
    navigator.storage.estimate().then((e) => {
      if (e.quota && e.usage / e.quota > 0.9) {
        state.message = `Storage warning: this tablet's storage is ${Math.round(100 * e.usage / e.quota)}% full.`;
        fire("outbox:state", {});
      }
    }).catch(() => { /* unknown: no warning */ });
  }
}

/** Take an item off the "needs attention" list. */
export async function dismiss(id) {
  try {
    await store.dismiss(id);
  } catch (e) {
    fire("outbox:error", {message: "Could not save: storage is full."});
  }
  await reload(true);
}

// ---- Sending ----------------------------------------------------------------------------

// Up to 500 ops and 2 MiB, fewer after a 413.
function batchOf(list, limit) {
  const out = [];
  let size = 200;
  for (const op of list) {
    if (out.length >= limit) { break; }
    const s = JSON.stringify(op).length + 1;
    if (out.length && size + s > MAX_BYTES * 0.95) { break; }
    out.push(op);
    size += s;
  }
  return out;
}

function readLease() {
  try { return JSON.parse(window.localStorage.getItem(LEASE_KEY) || "null"); } catch (e) { return null; }
}
function leaseTake() {
  const lease = readLease(), now = Date.now();
  if (lease && lease.owner !== tabId && lease.until > now) { return false; }
  try { window.localStorage.setItem(LEASE_KEY, JSON.stringify({owner: tabId, until: now + LEASE_MS})); } catch (e) { return false; }
  return (readLease() || {}).owner === tabId;
}
function leaseDrop() {
  const lease = readLease();
  if (lease && lease.owner === tabId) { window.localStorage.removeItem(LEASE_KEY); }
}

// A send asked for while another is under way waits its turn rather than being dropped:
// the running one may already have read the ops, or given up just before the network
// came back (its retry planned, then cleared by the "online" event's request). At most one
// request waits; later ones join it.
let waiting = null;

/** Send what waits (one tab at a time); `manual` also sends from a revoked tablet. */
export function flush(manual = false) {
  if (!isTablet()) { return Promise.resolve(); }
  if (revoked() && !manual) { fire("outbox:state", {}); return Promise.resolve(); }
  if (waiting) {
    waiting.manual = waiting.manual || manual;
    return waiting.done;
  }
  const turn = {manual};
  const run = () => {
    if (waiting === turn) { waiting = null; }
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
    return sendAll(turn.manual);
  };
  waiting = turn;
  if (navigator.locks && navigator.locks.request) {
    turn.done = navigator.locks.request("kiosk-flush", run);
  } else if (leaseTake()) {
    turn.done = Promise.resolve().then(run).finally(leaseDrop);
  } else {  // another tab sends now: try again when its lease may be over
    waiting = null;
    schedule(BACKOFF_MIN);
    turn.done = Promise.resolve();
  }
  return turn.done;
}

async function sendAll(manual) {
  let limit = MAX_OPS, applied = 0;
  state.syncing = true;
  fire("outbox:state", {});
  try {
    for (let rounds = 0; rounds < 1000; rounds++) {
      const list = (await store.snapshot()).ops;
      const batch = batchOf(list, limit);
      const answer = await post(batch, list);
      if (answer.kind === "ok") {
        applied += batch.length;
        await settle(answer.body, batch);
        state.failed = false;
        state.backoff = 0;
        setRevoked(false);
        if (!kept.ops.length || !batch.length) { break; }
      } else if (answer.kind === "gap") {
        await store.renumber(answer.lastSeq);
      } else if (answer.kind === "too_big" && limit > 1) {
        limit = Math.max(1, Math.floor(Math.min(limit, batch.length) / 2));
      } else if (answer.kind === "revoked") {
        setRevoked(true);
        state.failed = true;
        break;
      } else {
        state.failed = true;
        backoff(answer.retryAfter);
        break;
      }
    }
  } catch (e) {
    state.failed = true;
    backoff();
    if (window.console) { window.console.warn("outbox:", e); }
  } finally {
    state.syncing = false;
    await reload(true).catch(() => null);
    fire("outbox:state", {});
    if (applied) { fire("outbox:synced", {count: applied}); }
    if (manual && navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage({type: "refresh"});
    }
  }
}

// What the sync dashboard shows of this tablet: the app's version and, where the browser
// tells, its battery (read again in the background for the next request).
let battery = null;
function client() {
  const info = {app_version: document.body.dataset.appVersion || null};
  if (battery) { info.battery = battery.level; info.charging = battery.charging; }
  if (navigator.getBattery) {
    navigator.getBattery().then((b) => { battery = {level: b.level, charging: b.charging}; }).catch(() => null);
  }
  return info;
}

function outboxSummary(list) {
  const patients = new Set(), discharges = new Set();
  list.forEach((op) => {
    if (op.patient) { patients.add(op.patient); }
    if (op.name === "patient.discharge" && op.args && op.args.patient) { discharges.add(op.args.patient); }
  });
  return {pending: list.length, oldest_at: list.length ? list[0].at : null,
    patients: [...patients], discharges: [...discharges]};
}

function wire(op) {
  return {id: op.id, seq: op.seq, name: op.name, args: op.args, at: op.at, user: op.user};
}

async function post(batch, list) {
  const body = {device: deviceId(), sent_at: isoZ(), outbox: outboxSummary(list), client: client(),
    ops: batch.map(wire)};
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch("/api/sync", {method: "POST", credentials: "same-origin", cache: "no-store",
      signal: ctrl.signal, body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", "Accept": "application/json",
        "Authorization": `Bearer ${token()}`}});
  } catch (e) {
    return {kind: "retry", retryAfter: null};
  } finally {
    clearTimeout(timer);
  }
  const retry = parseInt(response.headers.get("Retry-After") || "", 10);
  const json = await response.json().catch(() => ({}));
  if (response.ok && typeof json.last_seq === "number") { return {kind: "ok", body: json}; }
  if (response.status === 409 && typeof json.last_seq === "number") { return {kind: "gap", lastSeq: json.last_seq}; }
  if (response.status === 413) { return {kind: "too_big"}; }
  if (response.status === 401) { return {kind: "revoked"}; }
  return {kind: "retry", retryAfter: isNaN(retry) ? null : retry * 1000};
}

// The server has everything up to last_seq: drop those ops, keep what needs a person.
async function settle(body, batch) {
  const byId = new Map(batch.map((op) => [op.id, op]));
  const notes = [];
  (body.results || []).forEach((r) => {
    const status = r.status === "duplicate" ? (r.original_status || (r.result && r.result.status) || "duplicate") : r.status;
    if (status !== "rejected" && status !== "conflict") { return; }
    const op = byId.get(r.id) || {};
    const err = r.error || {}, res = r.result || {};
    notes.push({id: r.id, seq: r.seq, name: op.name, args: op.args, at: op.at, status,
      code: err.code || res.conflict || res.code || null,
      message: err.message || res.message || describeConflict(res)});
  });
  await store.settle(body.last_seq, notes);
  await reload(true);
}

function describeConflict(result) {
  if (result && result.conflict) { return `Recorded, flagged for review: ${String(result.conflict).replace(/_/g, " ")}.`; }
  return "Recorded, flagged for review.";
}

function backoff(retryAfter) {
  state.backoff = state.backoff ? Math.min(BACKOFF_MAX, state.backoff * 2) : BACKOFF_MIN;
  schedule(Math.max(state.backoff, Math.min(retryAfter || 0, 10 * BACKOFF_MAX)));
}

/** Send in `ms` milliseconds (replacing a send already planned). */
export function schedule(ms) {
  if (!isTablet()) { return; }
  if (state.timer) { clearTimeout(state.timer); }
  state.timer = setTimeout(() => { state.timer = null; flush(false); }, ms);
}

/** Send now, as after the Sync button: the back-off starts again. */
export function syncNow() { state.backoff = 0; return flush(true); }

// ---- Set-up ------------------------------------------------------------------------------

/** "#d_3.TOKEN" or "#d_3:TOKEN" → provisioned (see provision); null when not such a hash. */
export function provisionFromHash(hash) {
  const m = /^#?(d_\d+)[.:](.+)$/.exec(hash || "");
  return m ? provision(m[1], decodeURIComponent(m[2])) : Promise.resolve(null);
}

/**
 * Keep a device's id and token. The same id keeps its counter and waiting changes (a
 * re-paired tablet sends them with its new token); another id starts at seq 1, and is
 * refused while changes of the old one wait.
 */
export async function provision(id, tok) {
  const {ops: waiting} = await store.snapshot();
  const previous = deviceId();
  if (previous !== id) {
    if (waiting.length) {
      throw new Error(`This tablet still holds ${waiting.length} unsent changes of ${previous}; ` +
        `send them before setting it up as ${id}.`);
    }
    await store.setNextSeq(1);
  }
  remember(id, tok);
  state.failed = false;
  await reload(true);
  schedule(0);
  return id;
}

/** GET /api/devices/<id>; the counter never goes below what the server already has. */
export async function verify() {
  const response = await fetch(`/api/devices/${encodeURIComponent(deviceId())}`, {cache: "no-store",
    headers: {"Authorization": `Bearer ${token()}`, "Accept": "application/json"}});
  const json = await response.json().catch(() => ({}));
  if (response.ok && typeof json.last_seq === "number") {
    await store.setNextSeq(json.last_seq + 1, {onlyIfEmpty: true, onlyRaise: true});
    await reload(true);
  }
  if (response.status === 401) { setRevoked(true); }
  return {status: response.status, device: json};
}

// ---- Start --------------------------------------------------------------------------------

let started = false;
/** Load the outbox, follow the other tabs and the network, and send what waits. */
export async function start() {
  if (started) { return; }
  started = true;
  if (channel) { channel.onmessage = () => { reload(false).catch(() => null); }; }
  window.addEventListener("online", () => { state.backoff = 0; state.failed = false; fire("outbox:state", {}); flush(false); });
  window.addEventListener("offline", () => fire("outbox:state", {}));
  window.addEventListener("storage", (e) => { if (e.key === "kiosk.revoked") { fire("outbox:state", {}); } });
  if (!isTablet()) { return; }
  await reload(false);
  flush(false);
  setInterval(() => { if (!state.timer && !state.syncing) { flush(false); } }, HEARTBEAT_MS);
}
