// The maintenance banner (templates/maintenance/_banner.html): counts down to the window
// from the server's time (the screen's own clock may be wrong), and on a tablet, once the
// server says the window is under way, fetches every page the tablet keeps again and sends
// what waits in the outbox, so the tablet enters the window fresh; it says so on the banner.
import {isTablet} from "./client/device.js";
import {flush} from "./client/outbox.js";
import {refreshAndWait} from "./client/worker.js";

const FRESH_KEY = "kiosk.maintenanceFresh";
let offsetMs = 0;

function banner() { return document.getElementById("maintenance-banner"); }

function hm(ms) {
  return new Intl.DateTimeFormat("en-GB", {hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    timeZone: document.body.dataset.clinicTz || undefined}).format(new Date(ms));
}

// The same words as the server's `countdown` filter (kiosk/maintenance/hooks.py).
export function countdown(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d) { return `${d} d ${h} h`; }
  if (h) { return `${h} h ${two(m)} min`; }
  if (m) { return `${m} min ${two(r)} s`; }
  return `${r} s`;
}

function tick() {
  const el = banner();
  if (!el || el.hidden || !el.dataset.starts) { return; }
  const now = Date.now() + offsetMs;
  const starts = Number(el.dataset.starts), ends = Number(el.dataset.ends);
  const out = el.querySelector("[data-countdown]");
  if (!out) { return; }
  if (now < starts) {
    out.textContent = `starts in ${countdown((starts - now) / 1000)}`;
  } else if (now < ends) {
    out.textContent = `under way, expected to end at ${hm(ends)}`;
  } else {
    out.textContent = `expected to have ended at ${hm(ends)}`;
  }
}

function freshDone() {
  try { return JSON.parse(window.localStorage.getItem(FRESH_KEY) || "{}"); } catch (e) { return {}; }
}

function showFresh(el, done) {
  const out = el.querySelector("[data-fresh]");
  if (out && done && done.at) {
    out.textContent = `Pages on this tablet fetched fresh at ${hm(done.at)}` +
      (typeof done.kept === "number" ? ` (${done.kept})` : "") + ".";
  }
}

// Once per window: the server switched what the window needs (direct patient creation…)
// before saying "under way", so the pages fetched now show it, and stay kept offline.
// One try at a time, and after a try that did not finish (no worker yet, no answer, no
// page kept) the next no sooner than a minute later: a slow refresh is not restarted.
const RETRY_MS = 60000;
let making = false, lastTry = 0;
async function makeFresh(el) {
  const uid = el.dataset.window;
  if (making) { return; }
  const done = freshDone();
  if (done.window === uid) { showFresh(el, done); return; }
  if (!navigator.onLine || Date.now() - lastTry < RETRY_MS) { return; }
  making = true;
  lastTry = Date.now();
  let kept = null;
  try {
    // What waits reaches the server first, so the pages fetched next show it (an
    // ordinary send: a manual one would ask the worker for a refresh of its own, and this
    // one would wait for both).
    try { await flush(); } catch (e) { /* the outbox keeps it and says so */ }
    kept = await refreshAndWait();
  } finally {
    making = false;
  }
  if (!kept) { return; }
  const record = {window: uid, at: Date.now() + offsetMs, kept: kept};
  try { window.localStorage.setItem(FRESH_KEY, JSON.stringify(record)); } catch (e) { /* full */ }
  const current = banner();
  if (current) {
    current.dataset.fresh = "1";
    showFresh(current, record);
  }
}

// How far the screen's clock is from the server's: measured on a banner just fetched (a
// page may come from the tablet's kept copy, rendered long ago), kept for the next pages.
const OFFSET_KEY = "kiosk.serverOffsetMs";
offsetMs = Number(window.localStorage.getItem(OFFSET_KEY)) || 0;

function arm(fetched) {
  const el = banner();
  if (!el) { return; }
  const serverNow = Number(el.dataset.serverNow);
  if (fetched && serverNow) {
    offsetMs = serverNow - Date.now();
    try { window.localStorage.setItem(OFFSET_KEY, String(offsetMs)); } catch (e) { /* full */ }
  }
  const tablet = isTablet();
  el.querySelectorAll("[data-tablet-only]").forEach((node) => { node.hidden = !tablet; });
  tick();
  if (tablet && el.dataset.window && el.dataset.phase !== "notice") { makeFresh(el); }
}

arm(false);
setInterval(tick, 1000);
// The banner was fetched again (htmx swaps it whole), or a live poke says it changed.
document.addEventListener("htmx:afterSettle", (evt) => {
  const d = evt.detail || {};
  const path = (d.pathInfo && d.pathInfo.requestPath) || (d.requestConfig && d.requestConfig.path) || "";
  arm(path.indexOf("/maintenance/banner") === 0);
});
document.addEventListener("live:pokes", (evt) => {
  if ((evt.detail || []).some((p) => p.topic === "maintenance")) {
    document.body.dispatchEvent(new CustomEvent("kiosk:maintenance"));
  }
});
