// The sheet on a tablet: its forms write ops to the outbox (outbox.js) instead of posting,
// and the ops still waiting are drawn over what the server sent (after every load and
// every htmx swap), marked "waiting". Due colours follow the clock offline. A patient
// created offline gets its sheet on /tablet/sheet-shell#<uid>, computed here with the
// server's schedule rules and task uids (uuid5 of the order uid and the due time).
(function () {
  "use strict";
  var outbox = window.kioskOutbox;
  if (!outbox || window.kioskSheet) { return; }
  var SHELL_URL = "/tablet/sheet-shell";
  var HORIZON_MS = 48 * 3600 * 1000;

  // ---- uuid5 with a small SHA-1 (crypto.subtle is missing on plain-HTTP LAN pages) ----
  function utf8(text) {
    var out = [], s = unescape(encodeURIComponent(text));
    for (var i = 0; i < s.length; i++) { out.push(s.charCodeAt(i)); }
    return out;
  }
  function sha1(bytes) {
    var h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    var m = bytes.slice(), bitLen = bytes.length * 8;
    m.push(0x80);
    while (m.length % 64 !== 56) { m.push(0); }
    for (var s = 7; s >= 0; s--) { m.push(s >= 4 ? 0 : (bitLen >>> (s * 8)) & 0xff); }
    var w = new Array(80);
    for (var off = 0; off < m.length; off += 64) {
      for (var i = 0; i < 16; i++) {
        w[i] = (m[off + 4 * i] << 24) | (m[off + 4 * i + 1] << 16) | (m[off + 4 * i + 2] << 8) | m[off + 4 * i + 3];
      }
      for (i = 16; i < 80; i++) { var x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]; w[i] = (x << 1) | (x >>> 31); }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
      for (i = 0; i < 80; i++) {
        var f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        var t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) | 0;
        e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0; h[4] = (h[4] + e) | 0;
    }
    var out = [];
    h.forEach(function (v) { out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff); });
    return out;
  }
  function uuid5(namespace, name) {
    var hex = namespace.replace(/-/g, "");
    var ns = [];
    for (var i = 0; i < 32; i += 2) { ns.push(parseInt(hex.substr(i, 2), 16)); }
    var b = sha1(ns.concat(utf8(name))).slice(0, 16);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = b.map(function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function isoZ(ms) { return new Date(ms).toISOString().slice(0, 19) + "Z"; }
  function taskUid(orderUid, dueMs) { return uuid5(orderUid, isoZ(dueMs)); }

  // ---- The clinic's wall clock ------------------------------------------------------
  function tz() { return document.body.dataset.clinicTz || "UTC"; }
  var partsFormat = null;
  function wall(ms) {
    if (!partsFormat) {
      partsFormat = new Intl.DateTimeFormat("en-US", {timeZone: tz(), hourCycle: "h23", year: "numeric",
        month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
    }
    var p = {};
    partsFormat.formatToParts(new Date(ms)).forEach(function (x) { p[x.type] = parseInt(x.value, 10); });
    return {y: p.year, m: p.month, d: p.day, h: p.hour % 24, mi: p.minute, s: p.second};
  }
  function offsetMs(ms) {
    var w = wall(ms);
    return Date.UTC(w.y, w.m - 1, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000;
  }
  function localToUtc(y, m, d, h, mi) {
    var guess = Date.UTC(y, m - 1, d, h, mi);
    var t = guess - offsetMs(guess);
    var second = offsetMs(t);
    return second === offsetMs(guess) ? t : guess - second;
  }
  // A datetime-local value (clinic wall clock) as epoch ms, or null.
  function parseLocal(text) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text || "");
    return m ? localToUtc(+m[1], +m[2], +m[3], +m[4], +m[5]) : null;
  }
  function hm(ms) { var w = wall(ms); return pad(w.h) + ":" + pad(w.mi); }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function dayStart(ms) { var w = wall(ms); return localToUtc(w.y, w.m, w.d, 0, 0); }
  function dayIso(ms) { var w = wall(ms); return w.y + "-" + pad(w.m) + "-" + pad(w.d); }

  // ---- The schedule (kiosk/treatments/schedule.py) -----------------------------------
  function dueTimes(a, untilMs) {
    if (a.prn) { return []; }
    var start = Date.parse(a.start);
    var limit = a.end ? Math.min(untilMs, Date.parse(a.end) + 1000) : untilMs;
    var out = [];
    if (a.every_hours) {
      for (var due = start; due < limit; due += a.every_hours * 3600000) { out.push(due); }
    } else if (a.times && a.times.length) {
      var day = wall(start), lastDay = dayIso(limit);
      var cursor = Date.UTC(day.y, day.m - 1, day.d);
      for (var n = 0; n < 400; n++, cursor += 86400000) {
        var c = new Date(cursor);
        var iso = c.getUTCFullYear() + "-" + pad(c.getUTCMonth() + 1) + "-" + pad(c.getUTCDate());
        if (iso > lastDay) { break; }
        a.times.forEach(function (t) {
          var at = localToUtc(c.getUTCFullYear(), c.getUTCMonth() + 1, c.getUTCDate(), +t.slice(0, 2), +t.slice(3, 5));
          if (at >= start && at < limit) { out.push(at); }
        });
      }
      out.sort(function (x, y) { return x - y; });
    } else if (start < limit) {
      out.push(start);
    }
    return out;
  }

  function graceMs() { return 60000 * (parseInt(document.body.dataset.graceMinutes || "15", 10) || 0); }
  function openState(dueMs, now) {
    var g = graceMs();
    if (now > dueMs + g) { return "overdue"; }
    if (now >= dueMs - g) { return "due"; }
    return "scheduled";
  }

  // ---- Small helpers -------------------------------------------------------------------
  function esc(text) {
    return String(text === null || text === undefined ? "" : text).replace(/[&<>"']/g, function (ch) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[ch];
    });
  }
  function pending() { return outbox.ops(); }
  function field(form, name) {
    var el = form.elements[name];
    if (!el) { return ""; }
    return (el.type === "checkbox" ? (el.checked ? el.value : "") : el.value || "").trim();
  }
  function put(obj, key, value) { if (value !== "" && value !== null && value !== undefined) { obj[key] = value; } }
  function formError(form, message) { return outbox.formError(form, message); }
  function closeDialog() {
    var d = document.getElementById("task-dialog");
    if (d && d.open) { d.close(); }
  }
  // The person who unlocked the tablet (lock.js), else the one signed in to this page.
  function userLevel() {
    if (window.kioskLock && window.kioskLock.person()) { return window.kioskLock.person().level; }
    return parseInt(document.body.dataset.userLevel || "0", 10);
  }

  // ---- Forms → ops -------------------------------------------------------------------
  var builders = {
    "task.complete": function (form) {
      var args = {task: form.dataset.task, order: form.dataset.order, due_at: isoZ(Date.parse(form.dataset.due))};
      put(args, "value", field(form, "value"));
      put(args, "note", field(form, "note"));
      var valueInput = form.elements.value;
      if (valueInput && valueInput.required && !args.value) { return formError(form, "Enter the value measured."); }
      if (valueInput && valueInput.inputMode === "decimal" && args.value && isNaN(Number(args.value.replace(",", ".")))) {
        return formError(form, "The value must be a number.");
      }
      var at = parseLocal(field(form, "at"));
      if (field(form, "at") && at === null) { return formError(form, "Enter a date and time."); }
      if (at !== null && at > Date.now() + 5 * 60000) { return formError(form, "The time given is in the future."); }
      return {name: "task.complete", args: args, at: at !== null ? isoZ(at) : null, after: closeDialog};
    },
    "task.skip": function (form) {
      var reason = field(form, "reason");
      if (!reason) { return formError(form, "Give the reason for skipping."); }
      return {name: "task.skip", args: {task: form.dataset.task, reason: reason}, after: closeDialog};
    },
    "order.give": function (form) {
      var now = Math.floor(Date.now() / 1000) * 1000;
      var args = {task: taskUid(form.dataset.order, now), order: form.dataset.order, due_at: isoZ(now)};
      put(args, "note", field(form, "note"));
      return {name: "task.complete", args: args, at: isoZ(now), after: function () { form.reset(); }};
    },
    "order.stop": function (form) {
      var args = {order: form.dataset.order};
      put(args, "reason", field(form, "reason"));
      return {name: "order.stop", args: args};
    },
    "patient.discharge": function (form) {
      return {name: "patient.discharge", args: {patient: form.dataset.patient}};
    },
    "note.add": function (form) {
      var text = field(form, "text");
      if (!text) { return formError(form, "Write the note first."); }
      return {name: "note.add", args: {note: outbox.uuid4(), patient: form.dataset.patient, text: text},
        after: function () { form.reset(); }};
    },
    "order.create": buildOrder,
    "patient.create": buildPatient
  };

  function buildOrder(form) {
    var a = {order: outbox.uuid4(), patient: form.dataset.patient, name: field(form, "name"),
      kind: field(form, "kind") || "medication"};
    if (!a.name) { return formError(form, "Name: this field is required."); }
    ["dose", "units", "route", "concentration", "volume_ml", "rate_ml_h", "additives",
      "instructions", "value_type", "value_units"].forEach(function (k) { put(a, k, field(form, k)); });
    var every = field(form, "every_hours");
    if (every) {
      a.every_hours = parseInt(every, 10);
      if (!(a.every_hours >= 1 && a.every_hours <= 168)) { return formError(form, "Every N hours: a whole number from 1 to 168."); }
    }
    var times = field(form, "times");
    if (times) {
      a.times = times.split(",").map(function (t) { return t.trim(); }).filter(Boolean).map(function (t) {
        return /^\d:\d\d$/.test(t) ? "0" + t : t;
      });
      if (!a.times.every(function (t) { return /^([01]\d|2[0-3]):[0-5]\d$/.test(t); })) { return formError(form, "Set times must be HH:MM, e.g. 08:00, 20:00."); }
      a.times = a.times.filter(function (t, i, all) { return all.indexOf(t) === i; }).sort();
    }
    if (field(form, "prn")) { a.prn = true; }
    if ((a.every_hours ? 1 : 0) + (a.times && a.times.length ? 1 : 0) + (a.prn ? 1 : 0) > 1) {
      return formError(form, "Choose one schedule: every N hours, set times, or as needed (PRN).");
    }
    var now = Math.floor(Date.now() / 1000) * 1000;
    var start = field(form, "start") ? parseLocal(field(form, "start")) : now;
    if (start === null) { return formError(form, "Start: enter a date and time."); }
    a.start = isoZ(start);
    if (field(form, "end")) {
      var end = parseLocal(field(form, "end"));
      if (end === null || end <= start) { return formError(form, "The end must be after the start."); }
      a.end = isoZ(end);
    }
    if (field(form, "billable_code")) { a.billable = {code: field(form, "billable_code"), price: field(form, "price") || null}; }
    return {name: "order.create", args: a, at: isoZ(now), after: function () {
      if (form.dataset.return) { window.location.href = form.dataset.return; }
      else { form.reset(); form.closest("details") && (form.closest("details").open = false); }
    }};
  }

  function buildPatient(form) {
    var a = {patient: outbox.uuid4(), name: field(form, "name"), species: field(form, "species")};
    if (!a.name) { return formError(form, "Name: this field is required."); }
    if (!a.species) { return formError(form, "Species: this field is required."); }
    ["breed", "sex", "weight_kg", "owner_name", "owner_phone", "ward", "cage", "colour",
      "pims_id", "file_number", "doctor", "alert_note", "date_of_birth"].forEach(function (k) { put(a, k, field(form, k)); });
    var alerts = Array.prototype.filter.call(form.querySelectorAll("input[name=alerts]:checked"), Boolean)
      .map(function (el) { return el.value; });
    if (alerts.length) { a.alerts = alerts; }
    var wardSelect = form.elements.ward;
    var wardName = wardSelect && wardSelect.selectedOptions && wardSelect.selectedOptions[0] && a.ward ? wardSelect.selectedOptions[0].textContent : "";
    return {name: "patient.create", args: a, after: function () {
      try { window.sessionStorage.setItem("kiosk.ward." + a.patient, wardName); } catch (e) { /* label only */ }
      window.location.href = SHELL_URL + "#" + a.patient;
    }};
  }

  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form || !form.dataset || !form.dataset.outbox || !outbox.isTablet()) { return; }
    var build = builders[form.dataset.outbox];
    if (!build) { return; }
    evt.preventDefault();
    evt.stopPropagation();
    evt.stopImmediatePropagation();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
    var op = build(form);
    if (!op) { return; }
    var button = form.querySelector("button[type=submit], button:not([type])");
    if (button) { button.disabled = true; }
    outbox.enqueue(op.name, op.args, {at: op.at}).then(function () {
      if (button) { button.disabled = false; }
      if (op.after) { op.after(); }
      apply();
    }, function () {
      if (button) { button.disabled = false; }
      formError(form, "Not saved: this tablet could not store the change (see the message).");
    });
  }, true);

  // ---- The overlay -------------------------------------------------------------------
  function grid() { return document.getElementById("sheet-grid"); }
  function hourStarts(g) {
    return Array.prototype.map.call(g.querySelectorAll("thead th.hour"), function (th) { return Date.parse(th.dataset.start); });
  }
  function columnOf(starts, ms) {
    for (var i = 0; i < starts.length; i++) {
      var end = i + 1 < starts.length ? starts[i + 1] : starts[i] + 3600000;
      if (ms >= starts[i] && ms < end) { return i; }
    }
    return -1;
  }

  function doseLabel(a) {
    return [a.dose, a.units, a.rate_ml_h ? a.rate_ml_h + " mL/h" : "", a.route].filter(Boolean).join(" ");
  }
  function scheduleLabel(a) {
    if (a.prn) { return "PRN"; }
    if (a.every_hours) { return a.every_hours === 24 ? "q24h (daily)" : "q" + a.every_hours + "h"; }
    if (a.times && a.times.length) { return a.times.join(", "); }
    return "once";
  }
  function valueType(a) { return a.value_type || (a.kind === "observation" ? "number" : "none"); }

  function taskLink(uid, dueMs, state, orderName) {
    return '<a class="task ' + state + '" href="#" data-local="1" data-task="' + esc(uid) + '" data-due="' +
      esc(new Date(dueMs).toISOString()) + '" aria-label="' + esc(orderName + " due " + hm(dueMs)) + '"><span class="tt">' +
      esc(hm(dueMs)) + "</span></a>";
  }

  // A row for an order that only this tablet knows so far.
  function orderRow(op, starts, now) {
    var a = op.args;
    var until = Math.max(Date.now(), Date.parse(a.start)) + HORIZON_MS;
    var cells = starts.map(function () { return []; });
    dueTimes(a, until).forEach(function (due) {
      var col = columnOf(starts, due);
      if (col >= 0) { cells[col].push(taskLink(taskUid(a.order, due), due, openState(due, now), a.name)); }
    });
    var current = columnOf(starts, now);
    var th = '<th scope="row" class="order"><span class="oname">' + esc(a.name) + '</span> <span class="odose">' +
      esc(doseLabel(a)) + '</span><span class="osched">' + esc(scheduleLabel(a)) + "</span>" +
      (a.instructions ? '<span class="oinstr">' + esc(a.instructions) + "</span>" : "") +
      '<span class="tag waiting-tag">Waiting to sync</span>';
    if (a.prn) {
      th += '<form class="give-form" data-outbox="order.give" data-order="' + esc(a.order) + '"><input name="note" placeholder="Note (optional)" maxlength="500" aria-label="Note for ' +
        esc(a.name) + '"><button type="submit" class="btn small primary">Give now</button></form>';
    }
    if (userLevel() >= 4) {
      th += '<form class="stop-form" data-outbox="order.stop" data-order="' + esc(a.order) + '" data-confirm="' +
        esc("Stop " + a.name + "? Its remaining tasks are cancelled.") + '"><button type="submit" class="btn small danger">Stop</button></form>';
    }
    th += "</th>";
    var tds = cells.map(function (c, i) { return '<td class="cell' + (i === current ? " now" : "") + '">' + c.join("") + "</td>"; }).join("");
    var tr = document.createElement("tr");
    tr.className = "order-row kind-" + a.kind + " pending";
    tr.dataset.order = a.order;
    tr.dataset.valueType = valueType(a);
    tr.dataset.valueUnits = a.value_units || "";
    tr.dataset.overlay = "1";
    if (a.prn) { tr.dataset.prn = "1"; }
    tr.innerHTML = th + tds;
    return tr;
  }

  function markTask(el, op) {
    ["overdue", "due", "scheduled", "done", "skipped", "stopped"].forEach(function (c) { el.classList.remove(c); });
    el.classList.add(op.name === "task.skip" ? "skipped" : "done", "waiting");
    el.dataset.pendingOp = op.id;
    var tv = el.querySelector(".tv");
    if (!tv) { tv = document.createElement("span"); tv.className = "tv"; el.appendChild(tv); }
    tv.textContent = op.name === "task.skip" ? "skipped" : (op.args.value || "✓");
    el.setAttribute("aria-label", (el.getAttribute("aria-label") || "").replace(/:.*$/, "") + ": waiting to sync");
  }

  function applyGrid(g, list, now) {
    var patient = g.dataset.patient;
    var starts = hourStarts(g);
    var tbody = g.querySelector("tbody");
    list.forEach(function (op) {
      var a = op.args || {};
      if (op.name === "order.create" && a.patient === patient && !g.querySelector('tr[data-order="' + a.order + '"]')) {
        var empty = tbody.querySelector("td.empty");
        if (empty) { empty.parentNode.remove(); }
        tbody.appendChild(orderRow(op, starts, now));
      }
    });
    list.forEach(function (op) {
      var a = op.args || {};
      if (op.name === "task.complete" || op.name === "task.skip") {
        var el = g.querySelector('a.task[data-task="' + a.task + '"]');
        if (!el && a.order && a.due_at) {
          var row = g.querySelector('tr[data-order="' + a.order + '"]');
          var due = Date.parse(a.due_at), col = columnOf(starts, due);
          if (row && col >= 0) {
            var td = row.querySelectorAll("td.cell")[col];
            td.insertAdjacentHTML("beforeend", taskLink(a.task, due, "scheduled", row.querySelector(".oname").textContent));
            el = td.lastElementChild;
          }
        }
        if (el) { markTask(el, op); }
      } else if (op.name === "order.stop") {
        var tr = g.querySelector('tr[data-order="' + a.order + '"]');
        if (tr && !tr.classList.contains("stopped")) {
          tr.classList.add("stopped", "waiting");
          tr.querySelectorAll("a.task.overdue, a.task.due, a.task.scheduled").forEach(function (t) {
            t.classList.remove("overdue", "due", "scheduled");
            t.classList.add("stopped");
          });
          tr.querySelectorAll(".stop-form, .give-form").forEach(function (f) { f.remove(); });
          tr.querySelector("th.order").insertAdjacentHTML("beforeend", '<span class="tag waiting-tag">Stopped — waiting to sync</span>');
        }
      }
    });
  }

  function applyNotes(list) {
    var section = document.getElementById("notes");
    var ul = section && section.querySelector(".note-list");
    var form = section && section.querySelector("form[data-patient]");
    if (!ul || !form) { return; }
    ul.querySelectorAll("li[data-overlay]").forEach(function (li) { li.remove(); });
    list.forEach(function (op) {
      if (op.name !== "note.add" || op.args.patient !== form.dataset.patient) { return; }
      var empty = ul.querySelector("li.muted");
      if (empty) { empty.remove(); }
      var li = document.createElement("li");
      li.className = "waiting";
      li.dataset.overlay = "1";
      li.innerHTML = "<time>" + esc(hm(Date.parse(op.at))) + "</time> <strong>" + esc(op.user || "") +
        '</strong> <span class="tag waiting-tag">Waiting to sync</span><p>' + esc(op.args.text) + "</p>";
      ul.insertBefore(li, ul.firstChild);
    });
  }

  function applyDischarge(list) {
    var g = grid();
    var patient = g && g.dataset.patient;
    if (!patient) { return; }
    var waiting = list.some(function (op) { return op.name === "patient.discharge" && op.args.patient === patient; });
    var shown = document.getElementById("discharge-waiting");
    if (shown && !waiting) {
      // Sent: the discharge changes the head and the buttons, not only the grid, so the
      // server's page says how it went (discharged, or still admitted and the reason in
      // "Needs attention"). Nothing is lost if this cuts a flush short: it resumes.
      window.location.reload();
      return;
    }
    if (waiting && !shown) {
      var head = document.querySelector(".patient-head .who");
      if (head) { head.insertAdjacentHTML("beforeend", '<p id="discharge-waiting" class="tag waiting-tag">Discharged — waiting to sync</p>'); }
    }
  }

  function apply() {
    if (!outbox.isTablet() || !outbox.loaded()) { return; }
    var list = pending();
    var g = grid();
    if (document.body.classList.contains("shell-body")) { renderShell(); return; }
    if (g) { applyGrid(g, list, Date.now()); }
    applyNotes(list);
    applyDischarge(list);
  }

  // Colours move with the clock even when the server cannot refresh the grid.
  function recolour() {
    var now = Date.now();
    document.querySelectorAll("a.task.overdue[data-due], a.task.due[data-due], a.task.scheduled[data-due]").forEach(function (el) {
      var state = openState(Date.parse(el.dataset.due), now);
      if (!el.classList.contains(state)) {
        el.classList.remove("overdue", "due", "scheduled");
        el.classList.add(state);
      }
    });
  }

  // ---- The task dialog, drawn here when the server cannot be asked -------------------
  function localDialog(link) {
    var row = link.closest("tr");
    var body = document.getElementById("dialog-body");
    var d = document.getElementById("task-dialog");
    if (!row || !body || !d) { return false; }
    var name = row.querySelector(".oname") ? row.querySelector(".oname").textContent : "";
    var dose = row.querySelector(".odose") ? row.querySelector(".odose").textContent : "";
    var sched = row.querySelector(".osched") ? row.querySelector(".osched").textContent : "";
    var due = Date.parse(link.dataset.due);
    var closed = link.classList.contains("done") || link.classList.contains("stopped");
    var vt = row.dataset.valueType || "none";
    var html = '<div class="task-dialog local" id="task-' + esc(link.dataset.task) + '"><h2 id="task-dialog-title">' + esc(name) +
      " <small>" + esc(dose) + '</small></h2><p class="meta">due ' + esc(hm(due)) + " · " + esc(sched) +
      (outbox.offline() ? ' · <strong>offline: saved on this tablet until it syncs</strong>' : "") + "</p>";
    if (link.classList.contains("waiting")) { html += '<p class="status waiting">Recorded on this tablet — waiting to sync.</p>'; }
    if (link.classList.contains("done")) { html += '<p class="status done">Done.</p>'; }
    if (link.classList.contains("stopped")) { html += '<p class="status stopped">Cancelled: the order was stopped.</p>'; }
    if (!closed) {
      html += '<form class="complete-form" data-outbox="task.complete" data-task="' + esc(link.dataset.task) + '" data-order="' +
        esc(row.dataset.order) + '" data-due="' + esc(link.dataset.due) + '">';
      if (vt !== "none") {
        html += '<label class="field"><span>Value' + (row.dataset.valueUnits ? " (" + esc(row.dataset.valueUnits) + ")" : "") +
          (vt === "number" ? " *" : "") + '</span><input name="value" maxlength="60"' + (vt === "number" ? ' inputmode="decimal" required' : "") + "></label>";
      }
      html += '<label class="field"><span>Note</span><input name="note" maxlength="500"></label>' +
        '<details><summary>Done at another time?</summary><label class="field"><span>Time given</span><input type="datetime-local" name="at"></label></details>' +
        '<button class="btn primary huge" type="submit">✓ Done</button></form>';
      if (!link.classList.contains("skipped")) {
        html += '<form class="skip-form" data-outbox="task.skip" data-task="' + esc(link.dataset.task) + '"><label class="field"><span>Reason for skipping</span>' +
          '<input name="reason" maxlength="200" list="skip-reasons"></label><datalist id="skip-reasons"><option value="Patient sleeping"><option value="Refused">' +
          '<option value="Vet asked to hold"><option value="Patient off ward"></datalist><button class="btn big" type="submit">Skip</button></form>';
      }
    }
    body.innerHTML = html + "</div>";
    if (!d.open) { d.showModal(); }
    return true;
  }

  function needsLocal(link) {
    return !navigator.onLine || outbox.offline() || link.dataset.local === "1" || link.classList.contains("waiting") ||
      !!link.closest("tr.pending");
  }

  document.addEventListener("click", function (evt) {
    var link = evt.target.closest && evt.target.closest("a.task[data-task]");
    if (!link || !outbox.isTablet()) { return; }
    if (needsLocal(link) || !window.htmx) {
      evt.preventDefault();
      evt.stopPropagation();
      evt.stopImmediatePropagation();
      localDialog(link);
    }
  }, true);

  // Online but the server did not answer: the tablet's own dialog instead.
  document.addEventListener("htmx:sendError", function (evt) {
    var link = evt.detail.elt && evt.detail.elt.closest && evt.detail.elt.closest("a.task[data-task]");
    if (link && outbox.isTablet()) { localDialog(link); }
  });

  // ---- The shell: the sheet of a patient this tablet created -------------------------
  var shellDay = 0;
  function renderShell() {
    var uid = decodeURIComponent(window.location.hash.replace(/^#/, ""));
    var list = pending();
    var create = list.filter(function (op) { return op.name === "patient.create" && op.args.patient === uid; })[0];
    if (!create) {
      // The server has it now (or never had it here): its own sheet says which.
      window.location.replace("/patients/" + encodeURIComponent(uid) + "/sheet");
      return;
    }
    var p = create.args;
    var wards = JSON.parse(document.getElementById("shell-wards").textContent || "{}");
    var ward = wards[p.ward] || p.ward || "";
    document.title = p.name + " · sheet";
    var head = document.getElementById("shell-head");
    head.className = "patient-head colour-" + (p.colour || "none");
    head.innerHTML = '<div class="who"><h1>' + esc(p.name) + '</h1><p class="meta">' + esc(p.species) +
      (p.breed ? " · " + esc(p.breed) : "") + (p.weight_kg ? " · " + esc(p.weight_kg) + " kg" : "") +
      " · " + esc(ward || "no ward") + (p.cage ? ", cage " + esc(p.cage) : "") + '</p><p class="meta small">Owner ' +
      esc(p.owner_name || "—") + ' · <span class="tag warn">Unallocated — not linked to the practice system</span> ' +
      '<span class="tag waiting-tag">Created on this tablet — waiting to sync</span></p></div>' +
      (p.alerts && p.alerts.length ? '<div class="alerts">' + p.alerts.map(function (x) { return '<span class="alert alert-' + esc(x) + '">' + esc(x) + "</span>"; }).join("") + "</div>" : "");
    var now = Date.now();
    var start = dayStart(dayStart(now) + shellDay * 86400000 + 12 * 3600000);
    var end = dayStart(start + 36 * 3600000);
    document.getElementById("shell-day").textContent = new Intl.DateTimeFormat("en-GB", {timeZone: tz(),
      weekday: "long", day: "2-digit", month: "long", year: "numeric"}).format(new Date(start + 12 * 3600000));
    var g = grid();
    g.dataset.patient = uid;
    g.dataset.day = dayIso(start + 12 * 3600000);
    var head2 = '<tr><th scope="col" class="order-head">Order</th>';
    var i = 0;
    for (var h = start; h < end; h += 3600000, i++) {
      head2 += '<th scope="col" class="hour' + (now >= h && now < h + 3600000 ? " now" : "") + '" data-hour="' + i +
        '" data-start="' + new Date(h).toISOString() + '">' + esc(hm(h)) + "</th>";
    }
    g.querySelector("thead").innerHTML = head2 + "</tr>";
    var tbody = g.querySelector("tbody");
    tbody.innerHTML = '<tr><td colspan="' + (i + 1) + '" class="empty">No orders on this day.</td></tr>';
    applyGrid(g, list, now);
    document.querySelectorAll("form[data-shell-patient]").forEach(function (f) { f.dataset.patient = uid; });
    applyNotes(list);
  }

  function shellNav(evt) {
    var b = evt.target.closest && evt.target.closest("[data-shell-day]");
    if (!b) { return; }
    evt.preventDefault();
    var step = parseInt(b.dataset.shellDay, 10);
    shellDay = step === 0 ? 0 : shellDay + step;
    renderShell();
  }

  // After a sync the server's copy is the truth: fetch it again.
  document.addEventListener("outbox:synced", function () {
    if (document.body.classList.contains("shell-body")) { renderShell(); return; }
    if (grid()) { document.dispatchEvent(new CustomEvent("live:refresh")); }
    var notes = document.getElementById("notes");
    if (notes && window.htmx && grid()) {
      window.htmx.ajax("GET", window.location.pathname + window.location.search, {target: "#notes", select: "#notes", swap: "outerHTML"});
    }
  });
  document.addEventListener("outbox:changed", apply);
  document.addEventListener("htmx:afterSettle", apply);
  window.addEventListener("hashchange", function () { if (document.body.classList.contains("shell-body")) { renderShell(); } });

  function start() {
    document.addEventListener("click", shellNav);
    apply();
    recolour();
    setInterval(recolour, 30000);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }

  window.kioskSheet = {uuid5: uuid5, sha1: sha1, taskUid: taskUid, dueTimes: dueTimes, localToUtc: localToUtc,
    apply: apply, renderShell: renderShell};
})();
