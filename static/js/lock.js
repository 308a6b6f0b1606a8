// The shared tablet's lock screen. A person unlocks the tablet with their PIN, checked on
// the tablet itself against the verifiers the server gave it (static/js/pin-hash.js), so
// unlocking works offline too; every change the tablet records names that person. The
// tablet locks after the clinic's idle time, or from the Lock button. Locking only forgets
// who is signed in: it never touches the outbox. Five wrong PINs lock that person out on
// this tablet for a minute, and each further wrong one doubles the wait up to an hour (the
// server's numbers, kept with the staff list). Levels 5 and 6 type 6 digits.
import {ops, state as outboxState} from "./client/outbox.js";
import {deviceId, isTablet, revoked, token, useLock} from "./client/device.js";
import {verify} from "./pin-hash.js";
import {whenLive} from "./live.js";
import {fill} from "./client/dom.js";

var K = {staff: "kiosk.staff", person: "kiosk.person", lockedAt: "kiosk.lockedAt",
  active: "kiosk.lastActive", failures: "kiosk.pinFailures"};
var PIN_RE = /^\d{4,6}$/;
var STAFF_REFRESH_MS = 10 * 60 * 1000, ACTIVITY_WRITE_MS = 5000, CHECK_MS = 5000;
var store = window.localStorage;
var body = document.body;
var chosen = null, lastWrite = 0, claimed = false;

function readJSON(key, fallback) {
  try { var t = store.getItem(key); return t ? JSON.parse(t) : fallback; } catch (e) { return fallback; }
}
function save(key, value) {
  try { store.setItem(key, typeof value === "string" ? value : JSON.stringify(value)); return true; }
  catch (e) { return false; }  // a full storage must not stop the lock from working
}

// Only a paired tablet locks; wall displays and desktops never do.
function enabled() { return isTablet() && !!body; }
function staff() { return readJSON(K.staff, null); }
function idleMs() {
  var s = staff();
  var minutes = parseInt(body.dataset.lockMinutes || (s && s.lock_minutes) || "5", 10);
  return Math.max(1, isNaN(minutes) ? 5 : minutes) * 60000;
}
function lastActive() { return parseInt(store.getItem(K.active) || "0", 10) || 0; }

// The person who unlocked the tablet, or null (locked, or idle for too long).
function person() {
  if (!enabled()) { return null; }
  var p = readJSON(K.person, null);
  if (!p) { return null; }
  if (Date.now() - lastActive() > idleMs()) { lock("idle"); return null; }
  return p;
}

function touch() {
  var now = Date.now();
  if (now - lastWrite < ACTIVITY_WRITE_MS) { return; }
  lastWrite = now;
  if (readJSON(K.person, null)) { save(K.active, String(now)); }
}

function setPerson(p) {
  save(K.active, String(Date.now()));
  save(K.person, p);
  chosen = null;
  render();
  document.dispatchEvent(new CustomEvent("lock:unlocked", {detail: p}));
}

function csrfToken() {
  try { return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
  catch (e) { return ""; }
}

// Forget who is signed in (and end a signed-in session on the server, when online).
function lock(reason) {
  var had = readJSON(K.person, null);
  store.removeItem(K.person);
  save(K.lockedAt, String(Date.now()));
  chosen = null;
  if (body.dataset.user && navigator.onLine) {
    fetch("/logout", {method: "POST", credentials: "same-origin", redirect: "manual",
      headers: {"X-CSRFToken": csrfToken()}}).catch(function () { /* offline: the lock holds */ });
  }
  render();
  if (had) { document.dispatchEvent(new CustomEvent("lock:locked", {detail: {reason: reason}})); }
}

// Someone who just signed in to this browser (password or PIN form) has unlocked it.
function adoptSignIn() {
  var at = parseInt(body.dataset.signinAt || "0", 10);
  var lockedAt = parseInt(store.getItem(K.lockedAt) || "0", 10);
  if (!body.dataset.user || !at || at <= lockedAt) { return; }
  var p = readJSON(K.person, null);
  if (p && p.id === body.dataset.user && p.since >= at) { return; }
  setPerson({id: body.dataset.user, name: body.dataset.userName || body.dataset.user,
    level: parseInt(body.dataset.userLevel || "1", 10), levelName: body.dataset.userLevelName,
    since: at});
}

// ---- Checking a PIN -------------------------------------------------------------------

function failures() { return readJSON(K.failures, {}); }
function lockedOutUntil(userId) {
  var f = failures()[userId];
  return f && f.until && f.until > Date.now() ? f.until : 0;
}

function clock(ms) {
  return new Intl.DateTimeFormat("en-GB", {hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    timeZone: body.dataset.clinicTz || undefined}).format(new Date(ms));
}

// Resolves with null (unlocked) or the message to show; a PIN of the wrong shape is
// refused before any check and never counts as a try.
function unlock(userId, pin) {
  var s = staff();
  var who = s && (s.staff || []).filter(function (u) { return u.id === userId; })[0];
  if (!who) { return Promise.resolve("Choose your name first."); }
  if (!PIN_RE.test(pin || "")) { return Promise.resolve("A PIN is 4 to 6 digits."); }
  if (who.level >= (s.long_pin_level || 5) && pin.length < 6) {
    return Promise.resolve((who.level_name || "Level " + who.level) +
      " unlocks with a 6-digit PIN: ask a manager for a new one.");
  }
  var until = lockedOutUntil(userId);
  if (until) {
    return Promise.resolve("Too many wrong PINs: " + who.name + " is locked out on this tablet until " +
      clock(until) + ". Someone else can unlock it meanwhile.");
  }
  return verify(pin, who.verifier).then(function (ok) {
    var all = failures();
    if (ok) {
      delete all[userId];
      save(K.failures, all);
      setPerson({id: who.id, name: who.name, level: who.level, levelName: who.level_name,
        since: Date.now()});
      return null;
    }
    // The same growing wait as the server's (staff.services.lockout_delay): from the
    // 5th wrong PIN in a row, 1 minute, doubling with each further one, up to an hour.
    var tries = s.pin_tries || 5;
    var f = all[userId] || {count: 0};
    f.count += 1;
    if (f.count >= tries) {
      var first = (s.lockout_minutes || 1) * 60000, most = (s.lockout_max_minutes || 60) * 60000;
      f.until = Date.now() + Math.min(first * Math.pow(2, Math.min(f.count - tries, 12)), most);
      all[userId] = f;
      save(K.failures, all);
      return "Too many wrong PINs: " + who.name + " is locked out on this tablet until " +
        clock(f.until) + ". Someone else can unlock it meanwhile.";
    }
    all[userId] = f;
    save(K.failures, all);
    return "Wrong PIN (" + f.count + " of " + tries + " tries).";
  });
}

// ---- The staff list (kept for offline) ------------------------------------------------

function refreshStaff() {
  if (!enabled() || !navigator.onLine) { return Promise.resolve(); }
  return fetch("/api/devices/" + encodeURIComponent(deviceId()) + "/staff", {
    cache: "no-store", headers: {"Authorization": "Bearer " + token(), "Accept": "application/json"}
  }).then(function (response) {
    if (!response.ok) { return null; }
    return response.json().then(function (json) {
      if (json && Array.isArray(json.staff)) {
        json.fetched_at = Date.now();
        save(K.staff, json);
        render();
      }
    });
  }).catch(function () { /* offline: keep the copy we have */ });
}

// Make this browser the tablet for the server's pages too (its tablet session), by
// its token; resolves true when the server agreed. Never rejects.
function claim() {
  if (body.dataset.tablet) { return Promise.resolve(true); }
  return fetch("/tablet/claim", {method: "POST", credentials: "same-origin", cache: "no-store",
    headers: {"Authorization": "Bearer " + token(), "Accept": "application/json"}})
    .then(function (response) { return response.ok; }, function () { return false; });
}

// The server lost this browser's tablet session (cookie gone): take it back once.
function claimSession() {
  if (claimed || body.dataset.tablet || !navigator.onLine) { return; }
  claimed = true;
  claim().then(function (ok) {
    var key = "kiosk.claimReload";
    if (ok && !window.sessionStorage.getItem(key)) {
      window.sessionStorage.setItem(key, "1");
      window.location.reload();
    }
  });
}

// ---- On screen ------------------------------------------------------------------------

function gate(level) {
  Array.prototype.forEach.call(document.querySelectorAll("[data-min-level]"), function (el) {
    el.hidden = level < parseInt(el.dataset.minLevel, 10);
  });
}

function screen() {
  var s = document.getElementById("lock-screen");
  if (!s) {
    s = fill("tpl-lock-screen", {});
    body.appendChild(s);
  }
  return s;
}

// The page's Lock button; a page drawn for a person rather than for the tablet (a revoked
// tablet's, or the sign-in page) gets one in its top bar.
function lockButton() {
  var button = document.getElementById("lock-now");
  if (!button) {
    button = fill("tpl-lock-button", {});
    var bar = document.querySelector(".topbar") || body;
    bar.insertBefore(button, bar.querySelector(".who") || null);
  }
  return button;
}

function render() {
  if (!enabled()) { return; }
  var p = readJSON(K.person, null);
  var who = document.getElementById("lock-person");
  if (who) { who.textContent = p ? p.name + " · " + (p.levelName || "level " + p.level) : "Locked"; }
  gate(p ? p.level : 0);
  var main = document.querySelector("main");
  var s = screen();
  s.hidden = !!p;
  if (main) { main.inert = !p; }
  if (!p) { drawScreen(s); }
}

// The lock screen from the server's <template>s (templates/tablet/_lock.html).
function drawScreen(s) {
  var list = staff();
  var people = list && list.staff && list.staff.length ? list.staff : null;
  var waiting = people && outboxState.loaded ? ops().length : 0;
  var box = fill("tpl-lock-box", {tablet: body.dataset.tabletLabel || "this tablet",
    revoked: revoked(), no_staff: !people, choosing: !!people && !chosen,
    waiting: waiting || "", one: waiting === 1});
  if (people && !chosen) {
    var grid = box.querySelector(".lock-people");
    people.forEach(function (u) {
      var b = fill("tpl-lock-name", {name: u.name});
      b.addEventListener("click", function () { chosen = u.id; drawScreen(s); });
      grid.appendChild(b);
    });
  } else if (people) {
    box.insertBefore(pinForm(people, s), box.querySelector(".lock-waiting"));
  }
  s.replaceChildren(box);
}

function pinForm(people, s) {
  var u = people.filter(function (x) { return x.id === chosen; })[0] || {};
  var form = fill("tpl-lock-pin", {name: u.name, label: "PIN for " + u.name});
  var input = form.elements.pin;
  var go = form.querySelector("button[type=submit]");
  var error = form.querySelector(".field-error");
  form.querySelector(".lock-back").addEventListener("click", function () { chosen = null; drawScreen(s); });
  form.addEventListener("submit", function (evt) {
    evt.preventDefault();
    go.disabled = true;
    unlock(chosen, input.value).then(function (message) {
      go.disabled = false;
      if (message) {
        error.textContent = message;
        error.hidden = false;
        input.value = "";
        input.focus();
      }
    });
  });
  setTimeout(function () { input.focus(); }, 0);
  return form;
}

// ---- Wiring ---------------------------------------------------------------------------

function start() {
  if (!enabled()) { return; }
  claimSession();
  adoptSignIn();
  render();
  refreshStaff();
  setInterval(refreshStaff, STAFF_REFRESH_MS);
  setInterval(function () { if (readJSON(K.person, null)) { person(); } }, CHECK_MS);
  ["pointerdown", "keydown", "touchstart"].forEach(function (name) {
    document.addEventListener(name, touch, {capture: true, passive: true});
  });
  lockButton().addEventListener("click", function () { lock("button"); });
  window.addEventListener("online", refreshStaff);
  window.addEventListener("storage", function (e) {
    if (e.key === K.person || e.key === K.staff) { render(); }
  });
  // The count of waiting changes on the lock screen, once the outbox is read.
  document.addEventListener("outbox:changed", function () { if (!readJSON(K.person, null) && !chosen) { render(); } }, {once: true});
  document.addEventListener("htmx:afterSettle", function () {
    var p = readJSON(K.person, null);
    gate(p ? p.level : 0);
  });
  // What this tablet carries changed: keep the new set of pages, fetch the staff again.
  document.addEventListener("live:pokes", function (evt) {
    if (!evt.detail.some(function (p) { return p.topic === "assignment"; })) { return; }
    refreshStaff();
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage({type: "refresh", token: token()});
    }
  });
  // On a live page, this tablet's own room too (what it carries changed).
  whenLive(function (socket) {
    var join = function () { socket.emit("join", {rooms: ["device:" + deviceId().slice(2)]}); };
    socket.on("connect", join);
    if (socket.connected) { join(); }
  });
}

useLock({enabled: enabled, person: person});
if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
else { start(); }

export {person, lock, unlock, enabled, claim, refreshStaff, render, K as keys};
