// The outbox's storage (SYNC.md): ops, the "needs attention" list and the next seq, in
// IndexedDB through the vendored idb wrapper. Every change is one transaction: an enqueue
// adds one op and moves the counter together, a settle drops what the server has and adds
// what needs a person together. Nothing else here: sending is outbox.js.
import {openDB} from "../../vendor/idb/idb.js";

const DB_NAME = "kiosk";
const LEGACY = {outbox: "kiosk.outbox", attention: "kiosk.attention", seq: "kiosk.nextSeq"};

/** Storage refused the write (full): the change was not kept. */
export class StorageFull extends Error {
  constructor() {
    super("This tablet's storage is full: the change was NOT saved. " +
      "Reconnect to the network so the waiting changes can be sent, then try again.");
    this.name = "StorageFull";
  }
}

function isQuota(e) {
  return !!e && (e.name === "QuotaExceededError" || e.code === 22 ||
    (e.inner && isQuota(e.inner)));
}

// A failed transaction as the error to show: a full storage says so.
function failure(e) { return isQuota(e) ? new StorageFull() : e; }

async function run(db, stores, fn) {
  const tx = db.transaction(stores, "readwrite");
  try {
    const result = await fn(tx);
    await tx.done;
    return result;
  } catch (e) {
    try { tx.abort(); } catch (ignored) { /* already finished */ }
    try { await tx.done; } catch (aborted) { throw failure(aborted && aborted.name !== "AbortError" ? aborted : e); }
    throw failure(e);
  }
}

let opened = null;

/** The database, opened (and migrated from localStorage) once per page. */
export function db() {
  if (!opened) {
    opened = openDB(DB_NAME, 1, {
      upgrade(database) {
        database.createObjectStore("ops", {keyPath: "seq"});
        database.createObjectStore("attention", {keyPath: "id"});
        database.createObjectStore("meta");
      },
    }).then((database) => withLock("kiosk-outbox-migrate", () => migrate(database)).then(() => database));
  }
  return opened;
}

function withLock(name, fn) {
  if (navigator.locks && navigator.locks.request) { return navigator.locks.request(name, fn); }
  return Promise.resolve().then(fn);
}

function readLegacy(key, fallback) {
  try {
    const text = window.localStorage.getItem(key);
    return text ? JSON.parse(text) : fallback;
  } catch (e) { return fallback; }
}

// A tablet upgraded from the localStorage outbox: its ops, attention list and counter move
// here in one transaction, and leave localStorage only once that has committed.
async function migrate(database) {
  const present = Object.values(LEGACY).some((k) => window.localStorage.getItem(k) !== null);
  if (!present) { return; }
  const ops = readLegacy(LEGACY.outbox, []).filter((op) => op && Number.isInteger(op.seq));
  const notes = readLegacy(LEGACY.attention, []).filter((n) => n && n.id);
  const seq = parseInt(window.localStorage.getItem(LEGACY.seq) || "1", 10) || 1;
  await run(database, ["ops", "attention", "meta"], async (tx) => {
    for (const op of ops) { await tx.objectStore("ops").put(op); }
    for (const n of notes) { await tx.objectStore("attention").put(n); }
    const meta = tx.objectStore("meta");
    const last = ops.length ? Math.max(...ops.map((op) => op.seq)) : 0;
    await meta.put(Math.max((await meta.get("nextSeq")) || 1, seq, last + 1), "nextSeq");
  });
  Object.values(LEGACY).forEach((k) => window.localStorage.removeItem(k));
}

/** Everything kept: {ops (in seq order), attention, nextSeq}. */
export async function snapshot() {
  const database = await db();
  const tx = database.transaction(["ops", "attention", "meta"], "readonly");
  const [ops, attention, nextSeq] = await Promise.all([tx.objectStore("ops").getAll(),
    tx.objectStore("attention").getAll(), tx.objectStore("meta").get("nextSeq")]);
  await tx.done;
  attention.sort((a, b) => (a.seq || 0) - (b.seq || 0));
  return {ops, attention, nextSeq: nextSeq || 1};
}

/** Store `op` (without seq) as the next op; resolves with it, numbered. */
export async function add(op) {
  return run(await db(), ["ops", "meta"], async (tx) => {
    const meta = tx.objectStore("meta");
    let seq = (await meta.get("nextSeq")) || 1;
    const last = await tx.objectStore("ops").openCursor(null, "prev");
    if (last && seq <= last.key) { seq = last.key + 1; }
    const stored = {...op, seq};
    await tx.objectStore("ops").add(stored);
    await meta.put(seq + 1, "nextSeq");
    return stored;
  });
}

/** The server has every op up to lastSeq: drop them, keep `notes` for a person. */
export async function settle(lastSeq, notes) {
  return run(await db(), ["ops", "attention", "meta"], async (tx) => {
    const ops = tx.objectStore("ops");
    await ops.delete(IDBKeyRange.upperBound(lastSeq));
    const attention = tx.objectStore("attention");
    for (const n of notes) {
      if (!(await attention.get(n.id))) { await attention.put(n); }
    }
    const meta = tx.objectStore("meta");
    const last = await ops.openCursor(null, "prev");
    await meta.put(Math.max((await meta.get("nextSeq")) || 1, lastSeq + 1, last ? last.key + 1 : 0), "nextSeq");
  });
}

/** 409 sequence_gap: ops up to lastSeq leave; the rest keep order and ids from lastSeq + 1. */
export async function renumber(lastSeq) {
  return run(await db(), ["ops", "meta"], async (tx) => {
    const ops = tx.objectStore("ops");
    const keep = (await ops.getAll()).filter((op) => op.seq > lastSeq);
    await ops.clear();
    for (let i = 0; i < keep.length; i++) { await ops.put({...keep[i], seq: lastSeq + 1 + i}); }
    await tx.objectStore("meta").put(lastSeq + 1 + keep.length, "nextSeq");
  });
}

/** Take an item off the "needs attention" list. */
export async function dismiss(id) {
  return run(await db(), ["attention"], (tx) => tx.objectStore("attention").delete(id));
}

/** Set the next seq (a newly provisioned device starts at 1; never below a pending op). */
export async function setNextSeq(n, {onlyIfEmpty = false, onlyRaise = false} = {}) {
  return run(await db(), ["ops", "meta"], async (tx) => {
    const count = await tx.objectStore("ops").count();
    if (onlyIfEmpty && count) { return false; }
    const meta = tx.objectStore("meta");
    const current = (await meta.get("nextSeq")) || 1;
    if (onlyRaise && n <= current) { return false; }
    const last = await tx.objectStore("ops").openCursor(null, "prev");
    await meta.put(Math.max(n, last ? last.key + 1 : 1), "nextSeq");
    return true;
  });
}
