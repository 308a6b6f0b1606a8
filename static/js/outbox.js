// The tablet's outbox (SYNC.md): every change is an op kept in localStorage first, then
// sent to POST /api/sync — at once when online, later when the connection returns.
// Nothing here ever clears the outbox on sign-out or lock: only the server's answer
// (last_seq) removes ops. A change that cannot be stored is refused on screen, never
// dropped. One tab sends at a time (Web Locks, with a localStorage lease as fallback).
(function () {
  "use strict";
  if (window.kioskOutbox) { return; }

  var K = {id: "kiosk.deviceId", token: "kiosk.deviceToken", seq: "kiosk.nextSeq",
    outbox: "kiosk.outbox", attention: "kiosk.attention", revoked: "kiosk.revoked",
    lease: "kiosk.flushLease"};
  var MAX_OPS = 500, MAX_BYTES = 2 * 1024 * 1024, WARN_BYTES = 2 * 1024 * 1024;
  var BACKOFF_MIN = 1000, BACKOFF_MAX = 60000, HEARTBEAT_MS = 60000, TIMEOUT_MS = 20000;
  var LEASE_MS = 30000;
  var store = window.localStorage;
  var tabId = uuid4();
  var state = {syncing: false, failed: false, backoff: 0, timer: null, warned: false,
    message: ""};

  function fire(name, detail) { document.dispatchEvent(new CustomEvent(name, {detail: detail})); }

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var b = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) { window.crypto.getRandomValues(b); }
    else { for (var i = 0; i < 16; i++) { b[i] = Math.floor(Math.random() * 256); } }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function isoZ(date) { return (date || new Date()).toISOString().slice(0, 19) + "Z"; }

  function readJSON(key, fallback) {
    try {
      var text = store.getItem(key);
      return text ? JSON.parse(text) : fallback;
    } catch (e) { return fallback; }
  }

  // Who did it: the person who unlocked the tablet (lock.js), else the page's signed-in user.
  function person() {
    if (window.kioskLock && window.kioskLock.enabled()) {
      var who = window.kioskLock.person();
      return who ? who.id : null;
    }
    return document.body.dataset.user || null;
  }

  function deviceId() { return store.getItem(K.id); }
  function token() { return store.getItem(K.token); }
  function isTablet() { return !!(deviceId() && token()); }
  function ops() { return readJSON(K.outbox, []); }
  function attention() { return readJSON(K.attention, []); }
  function revoked() { return store.getItem(K.revoked) === "1"; }

  // Storage is full: the exact error differs between browsers.
  function isQuota(e) {
    return e && (e.name === "QuotaExceededError" || e.name === "NS_ERROR_DOM_QUOTA_REACHED" ||
      e.code === 22 || e.code === 1014);
  }

  function StorageFull(message) { this.name = "StorageFull"; this.message = message; }
  StorageFull.prototype = Object.create(Error.prototype);

  // Write several keys; if any write fails, put back what was there and throw.
  function writeAll(pairs) {
    var before = pairs.map(function (p) { return [p[0], store.getItem(p[0])]; });
    try {
      pairs.forEach(function (p) { store.setItem(p[0], p[1]); });
    } catch (e) {
      before.forEach(function (p) {
        try { if (p[1] === null) { store.removeItem(p[0]); } else { store.setItem(p[0], p[1]); } } catch (ignored) { /* best effort */ }
      });
      if (isQuota(e)) {
        throw new StorageFull("This tablet's storage is full: the change was NOT saved. " +
          "Reconnect to the network so the waiting changes can be sent, then try again.");
      }
      throw e;
    }
  }

  // Web Locks serialise changes to the outbox between tabs; without them, run at once.
  function withLock(name, options, fn) {
    if (navigator.locks && navigator.locks.request) {
      return navigator.locks.request(name, options, function (lock) { return fn(lock !== null); });
    }
    return Promise.resolve().then(function () { return fn(true); });
  }

  function nextSeq() {
    var n = parseInt(store.getItem(K.seq) || "1", 10);
    return isNaN(n) || n < 1 ? 1 : n;
  }

  // Record a change. Resolves with the op once it is safely stored; rejects (and says so
  // on screen) when it cannot be stored.
  function enqueue(name, args, options) {
    if (!isTablet()) { return Promise.reject(new Error("This browser is not a provisioned tablet.")); }
    if (!person()) {
      alertUser("This tablet is locked: unlock it with your PIN, then try again. The change was NOT saved.");
      return Promise.reject(new Error("locked"));
    }
    return withLock("kiosk-outbox", {}, function () {
      var list = ops();
      var seq = nextSeq();
      var last = list.length ? list[list.length - 1].seq : 0;
      if (seq <= last) { seq = last + 1; }
      var op = {id: uuid4(), seq: seq, name: name, args: args,
        at: (options && options.at) || isoZ(), user: person()};
      var patient = patientOf(args, options);
      if (patient) { op.patient = patient; }
      list.push(op);
      var text = JSON.stringify(list);
      writeAll([[K.outbox, text], [K.seq, String(seq + 1)]]);
      checkSize(text.length * 2);
      return op;
    }).then(function (op) {
      render();
      fire("outbox:changed", {added: op});
      schedule(0);
      return op;
    }, function (error) {
      alertUser(error.message || String(error));
      throw error;
    });
  }

  function checkSize(bytes) {
    if (bytes > WARN_BYTES) {
      state.warned = true;
      state.message = "Storage warning: " + Math.round(bytes / 1024) + " KB of changes are " +
        "waiting on this tablet. Reconnect soon so they can be sent.";
    }
    if (navigator.storage && navigator.storage.estimate) {
      navigator.storage.estimate().then(function (e) {
        if (e.quota && e.usage / e.quota > 0.9) {
          state.message = "Storage warning: this tablet's storage is " +
            Math.round(100 * e.usage / e.quota) + "% full.";
          render();
        }
      }).catch(function () { /* unknown: no warning */ });
    }
  }

  // ---- Sending ------------------------------------------------------------------

  // Up to 500 ops and 2 MiB, fewer after a 413.
  function batchOf(list, limit) {
    var out = [], size = 200;
    for (var i = 0; i < list.length && out.length < limit; i++) {
      var s = JSON.stringify(list[i]).length + 1;
      if (out.length && size + s > MAX_BYTES * 0.95) { break; }
      out.push(list[i]);
      size += s;
    }
    return out;
  }

  function leaseTake() {
    var lease = readJSON(K.lease, null);
    var now = Date.now();
    if (lease && lease.owner !== tabId && lease.until > now) { return false; }
    try { store.setItem(K.lease, JSON.stringify({owner: tabId, until: now + LEASE_MS})); } catch (e) { return false; }
    return readJSON(K.lease, {}).owner === tabId;
  }
  function leaseDrop() {
    var lease = readJSON(K.lease, null);
    if (lease && lease.owner === tabId) { store.removeItem(K.lease); }
  }

  function flush(manual) {
    if (!isTablet()) { return Promise.resolve(); }
    if (revoked() && !manual) { render(); return Promise.resolve(); }
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
    if (navigator.locks && navigator.locks.request) {
      return navigator.locks.request("kiosk-flush", {ifAvailable: true}, function (lock) {
        if (!lock) { return null; }  // another tab is sending
        return sendAll(manual);
      });
    }
    if (!leaseTake()) { return Promise.resolve(); }
    return sendAll(manual).finally(leaseDrop);
  }

  function sendAll(manual) {
    var limit = MAX_OPS, rounds = 0, applied = 0;
    state.syncing = true;
    render();
    function round() {
      rounds += 1;
      var list = ops();
      var batch = batchOf(list, limit);
      return post(batch, list).then(function (answer) {
        if (answer.kind === "ok") {
          applied += batch.length;
          return settle(answer.body, batch).then(function () {
            state.failed = false;
            state.backoff = 0;
            store.removeItem(K.revoked);
            if (ops().length && rounds < 1000 && batch.length) { return round(); }
            return null;
          });
        }
        if (answer.kind === "gap" && rounds < 1000) { return renumber(answer.lastSeq).then(round); }
        if (answer.kind === "too_big" && limit > 1) { limit = Math.max(1, Math.floor(Math.min(limit, batch.length) / 2)); return round(); }
        if (answer.kind === "revoked") {
          store.setItem(K.revoked, "1");
          state.failed = true;
          return null;
        }
        state.failed = true;
        backoff(answer.retryAfter);
        return null;
      });
    }
    return round().catch(function (e) {
      state.failed = true;
      backoff();
      if (window.console) { window.console.warn("outbox:", e); }
    }).finally(function () {
      state.syncing = false;
      render();
      if (applied) { fire("outbox:synced", {count: applied}); }
      if (manual && navigator.serviceWorker && navigator.serviceWorker.controller) {
        navigator.serviceWorker.controller.postMessage({type: "refresh"});
      }
    });
  }

  // What the sync dashboard shows of this tablet: the app's version and, where the browser
  // tells, its battery (read again in the background for the next request).
  var battery = null;
  function client() {
    var info = {app_version: document.body.dataset.appVersion || null};
    if (battery) { info.battery = battery.level; info.charging = battery.charging; }
    if (navigator.getBattery) {
      navigator.getBattery().then(function (b) { battery = {level: b.level, charging: b.charging}; })
        .catch(function () { /* not told */ });
    }
    return info;
  }

  // The patient an op is for (kept beside it on the tablet, never sent inside the op):
  // the heartbeat tells the server which patients still wait here, for discharge checks.
  function patientOf(args, options) {
    if (options && options.patient) { return options.patient; }
    if (args && typeof args.patient === "string") { return args.patient; }
    var page = document.querySelector("[data-patient]:not([data-patient=''])");
    return page ? page.dataset.patient : null;
  }

  function outboxSummary(list) {
    var patients = {}, discharges = {};
    list.forEach(function (op) {
      if (op.patient) { patients[op.patient] = true; }
      if (op.name === "patient.discharge" && op.args && op.args.patient) { discharges[op.args.patient] = true; }
    });
    return {pending: list.length, oldest_at: list.length ? list[0].at : null,
      patients: Object.keys(patients), discharges: Object.keys(discharges)};
  }

  function wire(op) {
    return {id: op.id, seq: op.seq, name: op.name, args: op.args, at: op.at, user: op.user};
  }

  function post(batch, list) {
    var body = {device: deviceId(), sent_at: isoZ(), outbox: outboxSummary(list),
      client: client(), ops: batch.map(wire)};
    var ctrl = window.AbortController ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS) : null;
    return fetch("/api/sync", {method: "POST", credentials: "same-origin", cache: "no-store",
      signal: ctrl ? ctrl.signal : undefined,
      headers: {"Content-Type": "application/json", "Accept": "application/json",
        "Authorization": "Bearer " + token()},
      body: JSON.stringify(body)}).then(function (response) {
      clearTimeout(timer);
      var retry = parseInt(response.headers.get("Retry-After") || "", 10);
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (response.ok && typeof json.last_seq === "number") { return {kind: "ok", body: json}; }
        if (response.status === 409 && typeof json.last_seq === "number") { return {kind: "gap", lastSeq: json.last_seq}; }
        if (response.status === 413) { return {kind: "too_big"}; }
        if (response.status === 401) { return {kind: "revoked"}; }
        return {kind: "retry", retryAfter: isNaN(retry) ? null : retry * 1000};
      });
    }, function () {
      clearTimeout(timer);
      return {kind: "retry", retryAfter: null};
    });
  }

  // The server has everything up to last_seq: drop those ops, keep what needs a person.
  function settle(body, batch) {
    return withLock("kiosk-outbox", {}, function () {
      var keep = ops().filter(function (op) { return op.seq > body.last_seq; });
      var notes = attention();
      var byId = {};
      batch.forEach(function (op) { byId[op.id] = op; });
      (body.results || []).forEach(function (r) {
        var status = r.status === "duplicate" ? (r.original_status || (r.result && r.result.status) || "duplicate") : r.status;
        if (status !== "rejected" && status !== "conflict") { return; }
        if (notes.some(function (n) { return n.id === r.id; })) { return; }
        var op = byId[r.id] || {};
        var err = r.error || {};
        var res = r.result || {};
        notes.push({id: r.id, seq: r.seq, name: op.name, args: op.args, at: op.at, status: status,
          code: err.code || res.conflict || res.code || null,
          message: err.message || res.message || describeConflict(res)});
      });
      writeAll([[K.outbox, JSON.stringify(keep)], [K.attention, JSON.stringify(notes)],
        [K.seq, String(Math.max(nextSeq(), body.last_seq + 1,
          keep.length ? keep[keep.length - 1].seq + 1 : 0))]]);
      return null;
    }).then(function () { render(); fire("outbox:changed", {}); });
  }

  function describeConflict(result) {
    if (result && result.conflict) { return "Recorded, flagged for review: " + String(result.conflict).replace(/_/g, " ") + "."; }
    return "Recorded, flagged for review.";
  }

  // 409 sequence_gap: the server has everything up to last_seq (as after any answer, those
  // ops leave the outbox); the others keep their order and ids, numbered from last + 1.
  function renumber(lastSeq) {
    return withLock("kiosk-outbox", {}, function () {
      var list = ops().filter(function (op) { return op.seq > lastSeq; });
      list.forEach(function (op, i) { op.seq = lastSeq + 1 + i; });
      writeAll([[K.outbox, JSON.stringify(list)], [K.seq, String(lastSeq + 1 + list.length)]]);
      return null;
    });
  }

  function backoff(retryAfter) {
    state.backoff = state.backoff ? Math.min(BACKOFF_MAX, state.backoff * 2) : BACKOFF_MIN;
    var wait = Math.max(state.backoff, Math.min(retryAfter || 0, 10 * BACKOFF_MAX));
    schedule(wait);
  }

  function schedule(ms) {
    if (!isTablet()) { return; }
    if (state.timer) { clearTimeout(state.timer); }
    state.timer = setTimeout(function () { state.timer = null; flush(false); }, ms);
  }

  // ---- On screen ----------------------------------------------------------------

  function element(id, cls) {
    var el = document.getElementById(id);
    if (!el) {
      el = document.createElement("div");
      el.id = id;
      el.className = cls;
      document.body.appendChild(el);
    }
    return el;
  }

  function alertUser(message) {
    var el = element("outbox-alert", "outbox-alert");
    // Above an open modal dialog (the rest of the page is inert then), else on the page.
    var host = document.querySelector("dialog[open]") || document.body;
    if (el.parentNode !== host) { host.appendChild(el); }
    el.setAttribute("role", "alert");
    el.innerHTML = "";
    var p = document.createElement("p");
    p.textContent = message;
    var b = document.createElement("button");
    b.type = "button";
    b.className = "btn small";
    b.textContent = "OK";
    b.addEventListener("click", function () { el.hidden = true; });
    el.appendChild(p);
    el.appendChild(b);
    el.hidden = false;
  }

  function offline() { return !navigator.onLine || state.failed; }

  function bannerText(n) {
    if (revoked()) { return "This tablet was revoked — ask a manager. " + n + " change" + (n === 1 ? "" : "s") + " kept on this tablet."; }
    if (state.syncing && n) { return "Syncing…"; }
    if (offline()) { return "Offline — " + n + " change" + (n === 1 ? "" : "s") + " waiting"; }
    if (n) { return n + " change" + (n === 1 ? "" : "s") + " waiting"; }
    return "";
  }

  function render() {
    if (!document.body || !isTablet()) { return; }
    var n = ops().length;
    var el = element("outbox-banner", "outbox-banner");
    el.setAttribute("role", "status");
    var text = bannerText(n);
    el.hidden = !text && !state.message;
    el.classList.toggle("revoked", revoked());
    el.classList.toggle("offline", offline());
    el.dataset.pending = String(n);
    el.innerHTML = "";
    var span = document.createElement("span");
    span.className = "outbox-text";
    span.textContent = text;
    el.appendChild(span);
    if (state.message) {
      var warn = document.createElement("span");
      warn.className = "outbox-warning";
      warn.textContent = " " + state.message;
      el.appendChild(warn);
    }
    if (n || revoked()) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "btn small outbox-sync";
      b.textContent = "Sync";
      b.disabled = state.syncing;
      b.addEventListener("click", function () { state.backoff = 0; flush(true); });
      el.appendChild(b);
    }
    renderAttention();
    renderPendingPatients();
  }

  function renderAttention() {
    var notes = attention();
    var el = element("outbox-attention", "outbox-attention");
    el.hidden = !notes.length;
    el.innerHTML = "";
    if (!notes.length) { return; }
    var h = document.createElement("h2");
    h.textContent = "Needs attention";
    el.appendChild(h);
    var ul = document.createElement("ul");
    notes.forEach(function (n) {
      var li = document.createElement("li");
      li.className = "attention-" + n.status;
      var what = document.createElement("span");
      what.textContent = (n.status === "rejected" ? "Not recorded: " : "Recorded with a conflict: ") +
        (n.name || "change") + " at " + (n.at || "?") + " — " + (n.message || n.code || "");
      var b = document.createElement("button");
      b.type = "button";
      b.className = "btn small";
      b.textContent = "Dismiss";
      b.addEventListener("click", function () { dismiss(n.id); });
      li.appendChild(what);
      li.appendChild(b);
      ul.appendChild(li);
    });
    el.appendChild(ul);
  }

  // The patients list: patients made on this tablet that the server has not heard of yet.
  function renderPendingPatients() {
    var list = document.querySelector("ul.patient-list");
    if (!list) { return; }
    Array.prototype.forEach.call(list.querySelectorAll("li.pending-patient"), function (li) { li.remove(); });
    var waiting = ops();
    waiting.filter(function (op) { return op.name === "patient.create" && op.args && op.args.patient; })
      .reverse().forEach(function (op) {
        var discharged = waiting.some(function (o) { return o.name === "patient.discharge" && o.args && o.args.patient === op.args.patient; });
        if (discharged) { return; }
        var li = document.createElement("li");
        li.className = "pending-patient";
        var a = document.createElement("a");
        a.href = "/tablet/sheet-shell#" + encodeURIComponent(op.args.patient);
        [["strong", op.args.name || "New patient"], ["span", op.args.species || ""],
          ["span", "Made on this tablet — waiting to sync"]].forEach(function (part, i) {
          var el = document.createElement(part[0]);
          el.textContent = part[1];
          if (i === 2) { el.className = "tag waiting-tag"; }
          a.appendChild(el);
        });
        li.appendChild(a);
        list.insertBefore(li, list.firstChild);
      });
  }

  function dismiss(id) {
    try {
      store.setItem(K.attention, JSON.stringify(attention().filter(function (n) { return n.id !== id; })));
    } catch (e) { alertUser("Could not save: storage is full."); }
    render();
  }

  // ---- Set-up (the /tablet page) --------------------------------------------------

  // "#d_3.TOKEN" or "#d_3:TOKEN" → stored; an existing counter for the same id is kept.
  function provisionFromHash(hash) {
    var m = /^#?(d_\d+)[.:](.+)$/.exec(hash || "");
    if (!m) { return null; }
    return provision(m[1], decodeURIComponent(m[2]));
  }

  // Keep a device's id and token; the same id keeps its counter and its waiting changes
  // (a re-paired tablet sends them with its new token).
  function provision(id, tok) {
    var pairs = [[K.token, tok]];
    if (store.getItem(K.id) !== id || !store.getItem(K.seq)) {
      if (store.getItem(K.id) !== id && ops().length) {
        throw new Error("This tablet still holds " + ops().length + " unsent changes of " +
          store.getItem(K.id) + "; send them before setting it up as " + id + ".");
      }
      if (store.getItem(K.id) !== id) { pairs.push([K.seq, "1"]); }
      else { pairs.push([K.seq, store.getItem(K.seq) || "1"]); }
    }
    pairs.push([K.id, id]);
    writeAll(pairs);
    store.removeItem(K.revoked);
    state.failed = false;
    schedule(0);
    return id;
  }

  // GET /api/devices/<id>; the counter never goes below what the server already has.
  function verify() {
    return fetch("/api/devices/" + encodeURIComponent(deviceId()), {cache: "no-store",
      headers: {"Authorization": "Bearer " + token(), "Accept": "application/json"}})
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (json) {
          if (response.ok && typeof json.last_seq === "number") {
            var floor = json.last_seq + 1;
            var list = ops();
            if (!list.length && nextSeq() < floor) { store.setItem(K.seq, String(floor)); }
          }
          if (response.status === 401) { store.setItem(K.revoked, "1"); }
          return {status: response.status, device: json};
        });
      });
  }

  // ---- Service worker -------------------------------------------------------------

  function registerWorker() {
    if (!("serviceWorker" in navigator) || !isTablet()) { return; }
    navigator.serviceWorker.register("/sw.js", {scope: "/"}).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (reg) {
      if (!navigator.serviceWorker.controller && reg.active) { reg.active.postMessage({type: "claim"}); }
      var ask = function () {
        var worker = navigator.serviceWorker.controller || reg.active;
        if (worker && navigator.onLine) { worker.postMessage({type: "refresh", token: token()}); }
      };
      ask();
      setInterval(ask, 10 * 60 * 1000);
    }).catch(function (e) { if (window.console) { window.console.warn("service worker:", e); } });
  }

  window.addEventListener("online", function () { state.backoff = 0; state.failed = false; render(); flush(false); });
  window.addEventListener("offline", function () { render(); });
  window.addEventListener("storage", function (e) {
    if (e.key === K.outbox || e.key === K.attention || e.key === K.revoked) { render(); fire("outbox:changed", {}); }
  });

  function start() {
    if (!isTablet()) { return; }
    render();
    registerWorker();
    flush(false);
    setInterval(function () { if (!state.timer && !state.syncing) { flush(false); } }, HEARTBEAT_MS);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }

  // A form's change could not become an op: say why at the top of the form (null back).
  function formError(form, message) {
    var el = form.querySelector(".outbox-form-error");
    if (!el) {
      el = document.createElement("p");
      el.className = "field-error outbox-form-error";
      el.setAttribute("role", "alert");
      form.insertBefore(el, form.firstChild);
    }
    el.textContent = message;
    return null;
  }

  window.kioskOutbox = {enqueue: enqueue, formError: formError, flush: flush, ops: ops, attention: attention,
    isTablet: isTablet, deviceId: deviceId, token: token, revoked: revoked, uuid4: uuid4,
    isoZ: isoZ, render: render, alert: alertUser, provisionFromHash: provisionFromHash,
    provision: provision, person: person,
    verify: verify, offline: offline, StorageFull: StorageFull, keys: K};
})();
