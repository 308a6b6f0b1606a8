// Live updates: join the rooms this page shows, gather pokes for a moment, and let the
// page refresh only what changed (the "live:pokes" event; "live:refresh" after a reconnect,
// since pokes sent while disconnected are gone). After 60 s without a connection a banner
// says so, with the time of the last update; it goes away by itself.
// Only a page with [data-live-rooms] (and the Socket.IO client) connects; elsewhere
// `socket` stays null and `whenLive` never calls back.
const BURST_MS = 250, BANNER_AFTER_MS = 60000;

/** The page's Socket.IO connection, or null (not a live page, or not started yet). */
export let socket = null;
const waiting = [];

/** Call `fn(socket)` once the page's connection exists (at once if it does). */
export function whenLive(fn) {
  if (socket) { fn(socket); } else { waiting.push(fn); }
}

/** A time as screens write it: the clinic's, whatever zone the screen's clock is set to. */
export function hm(date) {
  return new Intl.DateTimeFormat("en-GB", {hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    timeZone: document.body.dataset.clinicTz || undefined}).format(date);
}

function fire(name, detail) { document.dispatchEvent(new CustomEvent(name, {detail})); }

function start() {
  const root = document.querySelector("[data-live-rooms]");
  if (socket || !root || typeof window.io !== "function") { return; }
  const rooms = JSON.parse(root.dataset.liveRooms || "[]");
  let pending = [], timer = null, everConnected = false, lostAt = null, lastUpdate = new Date();

  socket = window.io({
    auth: (cb) => cb({token: window.localStorage.getItem("kiosk.deviceToken") || undefined}),
  });
  socket.on("connect", () => {
    socket.emit("join", {rooms});
    if (everConnected) { fire("live:refresh"); }
    everConnected = true;
    lostAt = null;
    banner(false);
  });
  socket.on("disconnect", (reason) => {
    // The server closed it on purpose (device revoked, user deactivated): show what the
    // server says now (a sign-in or "ask a manager" page) instead of stale patient data.
    if (reason === "io server disconnect") { window.location.reload(); return; }
    if (!lostAt) { lostAt = Date.now(); }
  });
  socket.on("connect_error", () => { if (!lostAt) { lostAt = Date.now(); } });
  socket.on("poke", (poke) => {
    pending.push(poke);
    if (!timer) { timer = setTimeout(flush, BURST_MS); }
  });

  function flush() {
    timer = null;
    const batch = pending;
    pending = [];
    fire("live:pokes", batch);
  }

  function banner(show) {
    const el = document.getElementById("live-banner");
    if (!el) { return; }
    el.hidden = !show;
    if (show) { el.textContent = `Not live — last updated ${hm(lastUpdate)}`; }
  }

  document.addEventListener("htmx:afterSettle", () => { lastUpdate = new Date(); });
  setInterval(() => banner(lostAt !== null && Date.now() - lostAt > BANNER_AFTER_MS), 5000);

  // Pages with a [data-live-topic] element re-fetch it whole on a poke of that topic.
  document.addEventListener("live:pokes", (evt) => {
    document.querySelectorAll("[data-live-topic]").forEach((el) => {
      const hit = evt.detail.some((p) => p.topic === el.dataset.liveTopic);
      if (hit && el.id) {
        window.htmx.ajax("GET", window.location.href, {target: `#${el.id}`, select: `#${el.id}`, swap: "outerHTML"});
      }
    });
  });

  waiting.splice(0).forEach((fn) => fn(socket));
}

// The Socket.IO client is a classic deferred script that may come after the module that
// first imports this one (lock.js, in the layout): start once every deferred script ran.
if (typeof window.io === "function") { start(); }
else { document.addEventListener("DOMContentLoaded", start, {once: true}); }
