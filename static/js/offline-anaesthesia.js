// Anaesthesia sheets on a tablet (SYNC.md "One path"): the start, record and finalise forms
// write ops to the outbox (outbox.js) instead of posting, online or offline. Values outside
// their usual range (the server's numbers, given to the page as #anaesthesia-rules) ask for
// a confirmation before the op is queued. The ops still waiting are drawn over the page the
// server sent, marked "waiting to sync"; entries after a waiting finalise are addenda-to-be.
// A sheet started on this tablet gets /tablet/anaesthesia-shell#<sheet uid>, drawn here
// from the outbox until the server has it.
(function () {
  "use strict";
  var outbox = window.kioskOutbox;
  if (!outbox || window.kioskAnaesthesia) { return; }
  var SHELL_URL = "/tablet/anaesthesia-shell";
  var LABELS_KEY = "kiosk.anaesthesiaPatients";  // patient name etc. for the shell's header
  var HEADER_KEYS = ["procedure", "asa", "emergency", "team", "equipment"];
  var KIND_LABELS = {header: "Procedure and team", pre: "Pre-anaesthetic", drug: "Drug",
    event: "Event", vitals: "Vitals", note: "Note"};

  // ---- Small helpers -------------------------------------------------------------------
  function esc(text) {
    return String(text === null || text === undefined ? "" : text).replace(/[&<>"']/g, function (ch) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[ch];
    });
  }
  function readJSON(text, fallback) {
    try { return text ? JSON.parse(text) : fallback; } catch (e) { return fallback; }
  }
  function rules() {
    var el = document.getElementById("anaesthesia-rules");
    return readJSON(el && el.textContent, {vitals: [], pre: [], events: {}, hard_limit: "100000"});
  }
  function root() { return document.getElementById("anaesthesia"); }
  function isShell() { return document.body.classList.contains("anaesthesia-shell-body"); }
  function field(form, name) {
    var el = form.elements[name];
    if (!el) { return ""; }
    return (el.type === "checkbox" ? (el.checked ? el.value : "") : el.value || "").trim();
  }
  function put(obj, key, value) { if (value !== "" && value !== null && value !== undefined) { obj[key] = value; } }
  function number(text) { return Number(String(text).replace(",", ".")); }
  function plain(text) { return String(number(text)); }

  // Times as the server's pages write them ('Sun 22 Nov 14:30'), in the clinic's zone.
  var timeFormat = null;
  function dt(ms) {
    if (!timeFormat) {
      timeFormat = new Intl.DateTimeFormat("en-GB", {timeZone: document.body.dataset.clinicTz || "UTC",
        weekday: "short", day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
    }
    var p = {};
    timeFormat.formatToParts(new Date(ms)).forEach(function (x) { p[x.type] = x.value; });
    return p.weekday + " " + p.day + " " + p.month + " " + p.hour + ":" + p.minute;
  }

  function formError(form, message) { return outbox.formError(form, message); }
  function clearError(form) {
    form.querySelectorAll(".outbox-form-error, .outbox-confirm").forEach(function (el) { el.remove(); });
  }

  // ---- The ops this page shows -----------------------------------------------------------
  function sheetUids() {
    var r = root();
    return r ? readJSON(r.dataset.sheetUids, []) : [];
  }
  function sheetOps() {
    var uids = sheetUids();
    return outbox.ops().filter(function (op) {
      return op.name.indexOf("anaesthesia.") === 0 && op.args && uids.indexOf(op.args.sheet) >= 0;
    });
  }
  function startOp(uid) {
    return outbox.ops().filter(function (op) { return op.name === "anaesthesia.start" && op.args.sheet === uid; })[0];
  }

  // The header as it will stand: the server's, the waiting start's, then waiting changes.
  function mergedHeader(list) {
    var r = root();
    var header = readJSON(r && r.dataset.header, {});
    list.forEach(function (op) {
      var fields = null;
      if (op.name === "anaesthesia.start") { fields = op.args; }
      if (op.name === "anaesthesia.record" && op.args.kind === "header") { fields = op.args.data; }
      if (!fields) { return; }
      HEADER_KEYS.forEach(function (k) { if (fields[k] !== undefined && fields[k] !== "") { header[k] = fields[k]; } });
    });
    return header;
  }

  // ---- Unusual values, asked before queuing -------------------------------------------
  // Checks the numbers against the usual ranges; returns the data, or null after showing
  // what is wrong (a value to confirm gets a "Yes, … is right" box, as on the server).
  function measures(form, list, data) {
    var confirmed = Array.prototype.filter.call(form.querySelectorAll("input[name=confirm]"), function (el) {
      return el.type === "hidden" || el.checked;
    }).map(function (el) { return el.value; });
    var hard = number(rules().hard_limit);
    var unsure = [];
    for (var i = 0; i < list.length; i++) {
      var m = list[i], text = field(form, m.key);
      if (!text) { continue; }
      var n = number(text);
      if (!isFinite(n) || !/^-?[\d.,]+$/.test(text)) { return formError(form, m.label + " must be a number."); }
      if (Math.abs(n) > hard) { return formError(form, m.label + " " + text + " cannot be right."); }
      if ((n < number(m.low) || n > number(m.high)) && confirmed.indexOf(m.key) < 0) { unsure.push(m); }
      data[m.key] = text;
    }
    if (unsure.length) {
      formError(form, unsure.map(function (m) {
        return m.label + " " + plain(field(form, m.key)) + " " + m.unit + " is outside the usual " + m.low + "–" + m.high;
      }).join("; ") + ": check it, then confirm.");
      var anchor = form.querySelector("button[type=submit]");
      unsure.forEach(function (m) {
        if (form.querySelector('.outbox-confirm input[value="' + m.key + '"]')) { return; }
        var label = document.createElement("label");
        label.className = "field check confirm outbox-confirm";
        label.innerHTML = '<input type="checkbox" name="confirm" value="' + esc(m.key) + '"> <span>Yes, ' +
          esc(m.label) + " " + esc(field(form, m.key)) + " is right</span>";
        anchor.parentNode.insertBefore(label, anchor);
      });
      return null;
    }
    data.__confirmed = confirmed.filter(function (k) { return data[k] !== undefined; });
    return data;
  }

  // ---- Forms → ops -----------------------------------------------------------------------
  var kinds = {
    vitals: function (form) {
      var data = measures(form, rules().vitals, {});
      if (data && Object.keys(data).length === 1) { return formError(form, "Enter at least one of the vitals."); }
      return data;
    },
    pre: function (form) {
      var data = measures(form, rules().pre, {});
      if (!data) { return null; }
      put(data, "mm", field(form, "mm"));
      if (Object.keys(data).length === 1) { return formError(form, "Enter at least one pre-anaesthetic value."); }
      return data;
    },
    drug: function (form) {
      var data = {drug: field(form, "drug"), dose: field(form, "dose"), route: field(form, "route")};
      if (!data.drug) { return formError(form, "Which drug?"); }
      if (!data.dose) { return formError(form, "The dose is required."); }
      put(data, "given_by", field(form, "given_by"));
      return data;
    },
    event: function (form, submitter) {
      var event = submitter && submitter.name === "event" ? submitter.value : field(form, "event");
      if (!event) { return formError(form, "Which event?"); }
      var data = {event: event};
      put(data, "note", field(form, "note"));
      return data;
    },
    // Only what this person changed: another tablet's change to another field stands.
    header: function (form) {
      var now = mergedHeader(sheetOps()), data = {};
      ["procedure", "asa", "team", "equipment"].forEach(function (k) {
        var value = field(form, k);
        if (value !== "" && value !== (now[k] || "")) { data[k] = value; }
      });
      var emergency = !!field(form, "emergency");
      if (emergency !== !!now.emergency) { data.emergency = emergency; }
      if (!Object.keys(data).length) { return formError(form, "Nothing has changed."); }
      return data;
    },
    note: function (form) {
      var text = field(form, "text");
      if (!text) { return formError(form, "The note is empty."); }
      return {text: text};
    }
  };

  function buildRecord(form, submitter) {
    var kind = form.dataset.kind;
    var data = kinds[kind] ? kinds[kind](form, submitter) : null;
    if (!data) { return null; }
    var args = {entry: outbox.uuid4(), sheet: form.dataset.sheet, kind: kind, data: data};
    if (data.__confirmed) {
      if (data.__confirmed.length) { args.confirmed = data.__confirmed; }
      delete data.__confirmed;
    }
    return {name: "anaesthesia.record", args: args, after: function () {
      clearError(form);
      form.querySelectorAll("input[name=confirm]").forEach(function (el) { el.closest("label") ? el.closest("label").remove() : el.remove(); });
      if (kind === "drug" || kind === "note" || kind === "pre") { form.reset(); }
    }};
  }

  function buildStart(form) {
    var args = {sheet: outbox.uuid4(), patient: form.dataset.patient};
    ["procedure", "asa", "team", "equipment"].forEach(function (k) { put(args, k, field(form, k)); });
    if (field(form, "emergency")) { args.emergency = true; }
    return {name: "anaesthesia.start", args: args, after: function () {
      var labels = readJSON(window.localStorage.getItem(LABELS_KEY), {});
      labels[args.sheet] = {patient: args.patient, name: form.dataset.patientName || "",
        species: form.dataset.patientSpecies || "", weight: form.dataset.patientWeight || ""};
      try { window.localStorage.setItem(LABELS_KEY, JSON.stringify(labels)); } catch (e) { /* a label only */ }
      window.location.href = SHELL_URL + "#" + args.sheet;
    }};
  }

  function buildFinalise(form) {
    var header = mergedHeader(sheetOps());
    if (!header.procedure) { return formError(form, "Enter the procedure before finalising."); }
    if (!header.asa) { return formError(form, "Enter the ASA status before finalising."); }
    return {name: "anaesthesia.finalise", args: {sheet: form.dataset.sheet}};
  }

  var builders = {"anaesthesia.start": buildStart, "anaesthesia.record": buildRecord,
    "anaesthesia.finalise": buildFinalise};

  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form || !form.dataset || !builders[form.dataset.outbox] || !outbox.isTablet()) { return; }
    evt.preventDefault();
    evt.stopPropagation();
    evt.stopImmediatePropagation();
    if (form.dataset.outbox !== "anaesthesia.start" && !form.dataset.sheet) { return; }
    var op = builders[form.dataset.outbox](form, evt.submitter);
    if (!op) { return; }
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
    var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    buttons.forEach(function (b) { b.disabled = true; });
    outbox.enqueue(op.name, op.args).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
      var steppers = form.querySelector(".steppers");
      if (steppers) { delete steppers.dataset.typed; }  // recorded: carried forward again
      delete form.dataset.typed;
      if (op.after) { op.after(); }
      apply();
    }, function () {
      buttons.forEach(function (b) { b.disabled = false; });
      formError(form, "Not saved: this tablet could not store the change (see the message).");
    });
  }, true);

  // ---- The overlay -----------------------------------------------------------------------
  function waitingTag(text) { return '<span class="tag waiting-tag">' + esc(text || "Waiting to sync") + "</span>"; }
  // Who recorded it, by name: the lock screen's staff list, else the signed-in user's.
  function by(op) {
    var key = window.kioskLock && window.kioskLock.keys ? window.kioskLock.keys.staff : "kiosk.staff";
    var staff = readJSON(window.localStorage.getItem(key), {}).staff || [];
    var who = staff.filter(function (u) { return u.id === op.user; })[0];
    if (who) { return who.name; }
    return op.user && op.user === document.body.dataset.user ? document.body.dataset.userName || op.user : op.user || "";
  }
  function opMs(op) { return Date.parse(op.at); }

  // Insert `el` among the rows of `parent` that carry data-at, by time.
  function insertByTime(parent, el, ms) {
    var rows = parent.querySelectorAll(":scope > [data-at]");
    for (var i = 0; i < rows.length; i++) {
      if (Date.parse(rows[i].dataset.at) > ms) { parent.insertBefore(el, rows[i]); return; }
    }
    parent.appendChild(el);
  }
  function overlayEl(tag, ms, html) {
    var el = document.createElement(tag);
    el.className = "waiting";
    el.dataset.overlay = "1";
    el.dataset.at = new Date(ms).toISOString();
    el.innerHTML = html;
    return el;
  }
  function hideEmpty(parent) {
    var empty = parent && parent.querySelector(".empty-row");
    if (empty) { empty.hidden = true; empty.dataset.overlayHid = "1"; }
  }

  function describe(a, r) {
    var d = a.data || {};
    if (a.kind === "vitals" || a.kind === "pre") {
      var list = a.kind === "vitals" ? r.vitals : r.pre;
      var parts = list.filter(function (m) { return d[m.key] !== undefined; }).map(function (m) {
        return m.label + " " + d[m.key] + " " + m.unit;
      });
      if (d.mm) { parts.push("MM " + d.mm); }
      return parts.join(" · ");
    }
    if (a.kind === "drug") { return [d.drug, d.dose, d.route, d.given_by ? "given by " + d.given_by : ""].filter(Boolean).join(" "); }
    if (a.kind === "event") { return (r.events[d.event] || d.event) + (d.note ? " — " + d.note : ""); }
    if (a.kind === "header") {
      return HEADER_KEYS.filter(function (k) { return d[k] !== undefined && d[k] !== ""; }).map(function (k) {
        return k === "emergency" ? (d[k] ? "emergency (E)" : "not an emergency") : k + ": " + d[k];
      }).join(" · ");
    }
    return d.text || "";
  }

  function drawEntry(op, r) {
    var a = op.args, d = a.data || {}, ms = opMs(op), time = "<time>" + esc(dt(ms)) + "</time>";
    var section = document.getElementById(a.kind);
    if (!section) { return; }
    if (a.kind === "vitals") {
      var tbody = section.querySelector("table.vitals-grid tbody");
      hideEmpty(tbody);
      var cells = r.vitals.map(function (m) {
        return "<td" + ((a.confirmed || []).indexOf(m.key) >= 0 ? ' class="confirmed" title="confirmed outside the usual range"' : "") +
          ">" + esc(d[m.key] !== undefined ? d[m.key] : "") + "</td>";
      }).join("");
      var tr = overlayEl("tr", ms, "<td>" + time + " " + waitingTag() + "</td>" + cells + "<td>" + esc(by(op)) + "</td>");
      tr.dataset.values = JSON.stringify(d);
      insertByTime(tbody, tr, ms);
    } else if (a.kind === "drug") {
      var body = section.querySelector("table.drugs tbody");
      hideEmpty(body);
      insertByTime(body, overlayEl("tr", ms, "<td>" + time + " " + waitingTag() + "</td><td>" + esc(d.drug) + "</td><td>" + esc(d.dose) +
        "</td><td>" + esc(d.route) + "</td><td>" + esc(d.given_by || by(op)) + "</td>"), ms);
    } else if (a.kind === "event" || a.kind === "note") {
      var ul = section.querySelector(a.kind === "event" ? "ul.events" : "ul.notes");
      hideEmpty(ul);
      insertByTime(ul, overlayEl("li", ms, time + " " + esc(describe(a, r)) + " <small>(" + esc(by(op)) + ")</small> " + waitingTag()), ms);
    } else if (a.kind === "pre") {
      var p = section.querySelector(".pre-values");
      p.insertAdjacentElement("afterend", overlayEl("p", ms, time + " " + esc(describe(a, r)) + " " + waitingTag()));
    }
  }

  function drawAddendum(op, r) {
    var section = document.getElementById("addenda");
    if (!section) { return; }
    section.hidden = false;
    var ul = section.querySelector(".addenda-list");
    var a = op.args, ms = opMs(op);
    insertByTime(ul, overlayEl("li", ms, "<time>" + esc(dt(ms)) + "</time> <strong>" + esc(KIND_LABELS[a.kind] || a.kind) + "</strong> " +
      esc(describe(a, r)) + " <small>(" + esc(by(op)) + ")</small> " + waitingTag("Addendum — waiting to sync")), ms);
  }

  function drawHeader(list) {
    var changed = list.filter(function (op) { return op.name === "anaesthesia.start" || (op.name === "anaesthesia.record" && op.args.kind === "header"); });
    if (!changed.length) { return; }
    var header = mergedHeader(list);
    ["procedure", "team", "equipment", "asa"].forEach(function (k) {
      var dd = document.querySelector('dd[data-header="' + k + '"]');
      if (!dd) { return; }
      var value = k === "asa" ? (header.asa ? header.asa + (header.emergency ? " E" : "") : "") : header[k];
      dd.dataset.overlayText = dd.dataset.overlayText || dd.textContent;
      dd.innerHTML = esc(value || "—") + (changed.some(function (op) {
        var f = op.name === "anaesthesia.start" ? op.args : op.args.data;
        return f[k] !== undefined || (k === "asa" && f.emergency !== undefined);
      }) ? " " + waitingTag() : "");
    });
  }

  function drawFinalised(op) {
    var status = document.getElementById("sheet-status");
    if (status) {
      status.dataset.overlayHtml = status.dataset.overlayHtml || status.innerHTML;
      status.innerHTML = "<strong>finalised — PDF when synced</strong> — new entries are addenda " + waitingTag();
    }
    var area = document.getElementById("finalise");
    if (area) {
      var form = area.querySelector("form.finalise");
      if (form) { form.hidden = true; form.dataset.overlayHid = "1"; }
      area.insertAdjacentElement("afterbegin", overlayEl("p", opMs(op), "<strong>Finalised — PDF when synced.</strong> " +
        "Finalised on this tablet " + esc(dt(opMs(op))) + " by " + esc(by(op)) + " " + waitingTag()));
    }
  }

  // The vitals form starts from the last values, waiting rows included (by time).
  function carryForward() {
    var steppers = document.querySelector("#vitals .steppers[data-carry]");
    if (!steppers) { return; }
    var rows = Array.prototype.slice.call(document.querySelectorAll("#vitals table.vitals-grid tbody tr[data-values]"));
    rows.sort(function (x, y) { return Date.parse(x.dataset.at) - Date.parse(y.dataset.at); });
    var last = {};
    rows.forEach(function (tr) {
      var values = readJSON(tr.dataset.values, {});
      Object.keys(values).forEach(function (k) { last[k] = values[k]; });
    });
    var text = JSON.stringify(last);
    if (steppers.dataset.carried === text) { return; }  // nothing new: leave what is typed
    steppers.dataset.carried = text;
    if (steppers.dataset.typed) { return; }  // being changed by hand: never overwritten
    Object.keys(last).forEach(function (k) {
      var input = steppers.querySelector('input[name="' + k + '"]');
      if (input) { input.value = last[k]; }
    });
  }

  function clearOverlay() {
    document.querySelectorAll("#anaesthesia [data-overlay]").forEach(function (el) { el.remove(); });
    document.querySelectorAll("#anaesthesia [data-overlay-hid]").forEach(function (el) { el.hidden = false; delete el.dataset.overlayHid; });
    document.querySelectorAll("#anaesthesia [data-overlay-text]").forEach(function (el) { el.textContent = el.dataset.overlayText; delete el.dataset.overlayText; });
    document.querySelectorAll("#anaesthesia [data-overlay-html]").forEach(function (el) { el.innerHTML = el.dataset.overlayHtml; delete el.dataset.overlayHtml; });
    var addenda = document.getElementById("addenda");
    if (addenda && !addenda.querySelector(".addenda-list li")) { addenda.hidden = true; }
  }

  function applySheet() {
    var r = rules(), list = sheetOps();
    clearOverlay();
    var locked = root().dataset.finalised === "1";
    var finalise = null;
    list.forEach(function (op) {
      if (op.name === "anaesthesia.finalise") { finalise = finalise || op; return; }
      if (op.name !== "anaesthesia.record") { return; }
      if (locked || (finalise && op.seq > finalise.seq)) { drawAddendum(op, r); } else { drawEntry(op, r); }
    });
    drawHeader(list);
    if (finalise && !locked) { drawFinalised(finalise); }
    document.querySelectorAll("#anaesthesia form[data-outbox=anaesthesia\\.record]:not([data-kind=event]) button[type=submit]").forEach(function (b) {
      if ((finalise || locked) && b.textContent.indexOf("(addendum)") < 0) { b.textContent += " (addendum)"; }
    });
    carryForward();
  }

  // The patient's list of sheets: the ones started here that the server has not heard of.
  function applyList() {
    var ul = document.querySelector("ul.anaesthesia-list[data-patient]");
    if (!ul) { return; }
    ul.querySelectorAll("[data-overlay]").forEach(function (el) { el.remove(); });
    ul.querySelectorAll("[data-overlay-hid]").forEach(function (el) { el.hidden = false; });
    outbox.ops().filter(function (op) { return op.name === "anaesthesia.start" && op.args.patient === ul.dataset.patient; })
      .forEach(function (op) {
        hideEmpty(ul);
        var li = overlayEl("li", opMs(op), '<a class="shell-link" href="' + esc(SHELL_URL + "#" + op.args.sheet) + '">Started ' +
          esc(dt(opMs(op))) + " on this tablet by " + esc(by(op)) + "</a> — <strong>open</strong> " + waitingTag());
        ul.insertBefore(li, ul.firstChild);
      });
  }

  // ---- The shell: a sheet started on this tablet ----------------------------------------
  function renderShell() {
    var uid = decodeURIComponent(window.location.hash.replace(/^#/, ""));
    var start = startOp(uid);
    var r = root();
    if (!start) {
      var refused = outbox.attention().filter(function (n) { return n.name === "anaesthesia.start" && n.args && n.args.sheet === uid; })[0];
      if (refused) {
        document.getElementById("shell-title").textContent = "This sheet was not started";
        document.getElementById("shell-meta").textContent = refused.message || refused.code || "";
        return;
      }
      // The server has it now: its own page shows every tablet's entries.
      window.location.replace("/anaesthesia/" + encodeURIComponent(uid));
      return;
    }
    var label = readJSON(window.localStorage.getItem(LABELS_KEY), {})[uid] || {};
    r.dataset.sheet = uid;
    r.dataset.sheetUids = JSON.stringify([uid]);
    r.dataset.patient = start.args.patient;
    document.title = (label.name || "Patient") + " · anaesthesia";
    document.getElementById("shell-title").textContent = (label.name || "Patient") + " · anaesthesia";
    document.getElementById("shell-meta").textContent = [label.species, label.weight ? label.weight + " kg" : "",
      "started " + dt(opMs(start)) + " by " + by(start)].filter(Boolean).join(" · ");
    document.getElementById("shell-list").href = "/patients/" + encodeURIComponent(start.args.patient) + "/anaesthesia";
    r.querySelectorAll("form[data-outbox]").forEach(function (f) { f.dataset.sheet = uid; });
    refillHeader();
    applySheet();
  }

  function apply() {
    if (!outbox.isTablet()) { return; }
    if (isShell()) { renderShell(); return; }
    if (root()) { applySheet(); }
    applyList();
  }

  // After a sync the server's copy is the truth: fetch the page again and draw what still waits.
  // This page as the server has it now, parsed; null if it would not give it.
  function serverPage() {
    return fetch(window.location.pathname + window.location.search, {credentials: "same-origin", cache: "no-store",
      headers: {"Accept": "text/html"}}).then(function (response) {
      if (!response.ok || response.redirected) { return null; }
      return response.text().then(function (html) { return new DOMParser().parseFromString(html, "text/html"); });
    });
  }

  function refresh() {
    return serverPage().then(function (page) {
      var fresh = page && page.querySelector("main");
      var main = document.querySelector("main");
      if (fresh && main) {
        main.innerHTML = fresh.innerHTML;
        if (window.kioskLock) { window.kioskLock.render(); }
        apply();
      }
    }).catch(function () { /* the server went again: keep what is drawn */ });
  }

  document.addEventListener("outbox:synced", function () {
    // A new sheet the server now has: the service worker keeps its page from now on.
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage({type: "refresh", token: outbox.token()});
    }
    if (isShell()) { renderShell(); return; }
    // The sheet: the server's rows in place of the waiting ones, the forms left as typed.
    if (root()) { liveRefresh(); return; }
    if (document.querySelector("ul.anaesthesia-list")) { refresh(); }
  });
  document.addEventListener("outbox:changed", apply);
  window.addEventListener("hashchange", function () { if (isShell()) { renderShell(); } });

  // ---- Live: what another tablet records appears without a reload ------------------------
  // Only what the server shows is swapped (the [data-live-part] elements): the forms, and
  // whatever is being typed into them, stay as they are.
  var live = {busy: false, again: false};
  function liveRefresh() {
    if (!root() || isShell()) { return; }
    if (live.busy) { live.again = true; return; }
    live.busy = true;
    serverPage().then(function (fresh) {
      var freshRoot = fresh && fresh.getElementById("anaesthesia");
      if (!freshRoot || freshRoot.dataset.sheet !== root().dataset.sheet) { return; }
      root().querySelectorAll("[data-live-part]").forEach(function (el) {
        var part = fresh.querySelector('[data-live-part="' + el.dataset.livePart + '"]');
        if (part) { el.replaceWith(document.importNode(part, true)); }
      });
      root().dataset.finalised = freshRoot.dataset.finalised;
      root().dataset.header = freshRoot.dataset.header;
      if (window.kioskLock) { window.kioskLock.render(); }
      apply();  // what this tablet still holds, drawn again over the server's rows
      refillHeader();
    }).catch(function () { /* the server went: keep what is drawn */ }).then(function () {
      live.busy = false;
      if (live.again) { live.again = false; liveRefresh(); }
    });
  }
  document.addEventListener("live:pokes", function (evt) {
    var patient = root() && root().dataset.patient;
    if (evt.detail.some(function (p) { return p.topic === "sheet" && p.patient === patient; })) { liveRefresh(); }
  });
  document.addEventListener("live:refresh", liveRefresh);
  document.addEventListener("input", typed);
  document.addEventListener("change", typed);
  function typed(evt) {
    if (!evt.target.closest) { return; }
    var steppers = evt.target.closest("#vitals .steppers");
    if (steppers) { steppers.dataset.typed = "1"; }
    var form = evt.target.closest("form[data-outbox]");
    if (form) { form.dataset.typed = "1"; }
  }

  // The header form shows the header as it stands, unless someone is changing it.
  function refillHeader() {
    var form = root() && root().querySelector('form[data-kind="header"]');
    if (!form || form.dataset.typed) { return; }
    var header = mergedHeader(sheetOps());
    ["procedure", "asa", "team", "equipment"].forEach(function (k) { if (form.elements[k]) { form.elements[k].value = header[k] || ""; } });
    if (form.elements.emergency) { form.elements.emergency.checked = !!header.emergency; }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", apply); }
  else { apply(); }

  window.kioskAnaesthesia = {apply: apply, renderShell: renderShell, mergedHeader: mergedHeader};
})();
