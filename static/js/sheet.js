// The treatment sheet (and, on a tablet, its offline side). Online, htmx fills the task
// dialog and live pokes refresh the page's live parts. On a tablet the forms become ops
// (binder), what waits is drawn over the server's sheet (overlay), a task's dialog is
// filled from the server's <template> when the server cannot be asked, and a patient made
// on the tablet gets its sheet on /tablet/sheet-shell#<uid> from the same templates. The
// only rules computed here are the two the tablet must: task uids and due times (rules.js).
import {field, fill, fillIn, leaveFor, put, ready} from "./client/dom.js";
import {register} from "./client/binder.js";
import {hide, mark, paint, repaint} from "./client/overlay.js";
import {refresh} from "./client/refresh.js";
import {formError} from "./client/status.js";
import {isTablet, level} from "./client/device.js";
import {offline, ops, state} from "./client/outbox.js";
import {isoZ, uuid4} from "./client/ids.js";
import {dayIso, dayStart, dueTimes, hm, parseLocal, taskUid} from "./client/rules.js";

const HOUR = 3600000, HORIZON_MS = 48 * HOUR;
const $ = (id) => document.getElementById(id);
const tz = () => document.body.dataset.clinicTz || "UTC";
const grid = () => $("sheet-grid");
const isShell = () => document.body.classList.contains("shell-body");

// Words the server gives (templates/treatments/_sheet_macros.html #sheet-labels).
function label(key, values = {}) {
  const el = $("sheet-labels");
  const text = (el && el.dataset[key]) || "";
  return text.replace(/\{(\w+)\}/g, (_, k) => (values[k] === undefined ? "" : String(values[k])));
}

// ---- The dialog, online ---------------------------------------------------------------
function dialog() { return $("task-dialog"); }
function closeDialog() { const d = dialog(); if (d && d.open) { d.close(); } }

function scrollToNow() {
  const g = grid();
  if (!g || !g.dataset.currentHour) { return; }
  const th = g.querySelector(`th[data-hour="${g.dataset.currentHour}"]`);
  const box = g.querySelector(".sheet-scroll"), head = g.querySelector("th.order-head");
  // Keep one past hour visible beside the sticky order column.
  if (th && box && head) { box.scrollLeft = Math.max(0, th.offsetLeft - head.offsetWidth - th.offsetWidth); }
}

document.addEventListener("htmx:afterSwap", (evt) => {
  const target = evt.detail.target;
  if (target && target.id === "dialog-body") { const d = dialog(); if (d && !d.open) { d.showModal(); } }
  if (target && target.id === "sheet-grid") { scrollToNow(); }
});
document.addEventListener("sheet:closeDialog", closeDialog);
// Live pokes for this patient refresh the page's live parts (the dialog stays open).
document.addEventListener("live:pokes", (evt) => {
  if (grid() && !isShell() && evt.detail.some((p) => p.topic === "sheet")) { refreshSheet(); }
});
function refreshSheet() { const g = grid(); return refresh(g && g.dataset.refreshUrl); }

// ---- Forms → ops ----------------------------------------------------------------------
register("task.complete", (form) => {
  const args = {task: form.dataset.task, order: form.dataset.order, due_at: isoZ(Date.parse(form.dataset.due))};
  put(args, "value", field(form, "value"));
  put(args, "note", field(form, "note"));
  const value = form.elements.value;
  if (value && value.inputMode === "decimal" && args.value && isNaN(Number(args.value.replace(",", ".")))) {
    return formError(form, label("valueNumber"));
  }
  const at = parseLocal(field(form, "at"), tz());
  if (field(form, "at") && at === null) { return formError(form, label("atInvalid")); }
  if (at !== null && at > Date.now() + 5 * 60000) { return formError(form, label("atFuture")); }
  return {args, at: at !== null ? isoZ(at) : null, after: closeDialog};
});

register("task.skip", (form) => {
  const reason = field(form, "reason");
  if (!reason) { return formError(form, label("skipReason")); }
  return {args: {task: form.dataset.task, reason}, after: closeDialog};
});

register("order.give", (form) => {
  const now = Math.floor(Date.now() / 1000) * 1000;
  const args = {task: taskUid(form.dataset.order, now), order: form.dataset.order, due_at: isoZ(now)};
  put(args, "note", field(form, "note"));
  return {name: "task.complete", args, at: isoZ(now), after: () => form.reset()};
});

register("order.stop", (form) => {
  const args = {order: form.dataset.order};
  put(args, "reason", field(form, "reason"));
  return {args};
});

register("patient.discharge", (form) => {
  const args = {patient: form.dataset.patient};
  put(args, "override_reason", field(form, "override_reason"));  // a manager's, when blocked
  return {args};
});

register("note.add", (form) => {
  const text = field(form, "text");
  if (!text) { return formError(form, label("noteEmpty")); }
  return {args: {note: uuid4(), patient: form.dataset.patient, text}, after: () => form.reset()};
});

const ORDER_FIELDS = ["name", "kind", "dose", "units", "route", "concentration", "volume_ml", "rate_ml_h",
  "additives", "instructions", "value_type", "value_units"];

// What the tablet checks before storing an order (the server checks all of it again when
// the op arrives): what it needs to draw the order's tasks. The words are the page's.
function orderError(form, key) {
  const el = $("order-messages");
  return formError(form, (el && el.dataset[key]) || key);
}

register("order.create", (form) => {
  const a = {order: uuid4(), patient: form.dataset.patient};
  ORDER_FIELDS.forEach((k) => put(a, k, field(form, k)));
  a.kind = a.kind || "medication";
  if (!a.name) { return orderError(form, "name"); }
  if (field(form, "every_hours")) {
    a.every_hours = Number(field(form, "every_hours"));
    if (!(Number.isInteger(a.every_hours) && a.every_hours >= 1 && a.every_hours <= 168)) { return orderError(form, "every"); }
  }
  const times = field(form, "times");
  if (times) {
    a.times = [...new Set(times.split(",").map((t) => t.trim()).filter(Boolean)
      .map((t) => (/^\d:\d\d$/.test(t) ? `0${t}` : t)))].sort();
    if (!a.times.every((t) => /^([01]\d|2[0-3]):[0-5]\d$/.test(t))) { return orderError(form, "times"); }
  }
  if (field(form, "prn")) { a.prn = true; }
  if ([a.every_hours, a.times && a.times.length, a.prn].filter(Boolean).length > 1) { return orderError(form, "schedules"); }
  const now = Math.floor(Date.now() / 1000) * 1000;
  const start = field(form, "start") ? parseLocal(field(form, "start"), tz()) : now;
  if (start === null) { return orderError(form, "start"); }
  a.start = isoZ(start);
  if (field(form, "end")) {
    const end = parseLocal(field(form, "end"), tz());
    if (end === null || end <= start) { return orderError(form, "end"); }
    a.end = isoZ(end);
  }
  if (field(form, "billable_code")) { a.billable = {code: field(form, "billable_code"), price: field(form, "price") || null}; }
  return {args: a, at: isoZ(now), after: () => {
    if (form.dataset.return) { window.location.href = form.dataset.return; return; }
    form.reset();
    const details = form.closest("details");
    if (details) { details.open = false; }
  }};
});

const PATIENT_FIELDS = ["breed", "sex", "weight_kg", "owner_name", "owner_phone", "ward", "cage", "colour",
  "pims_id", "file_number", "doctor", "alert_note", "date_of_birth"];

register("patient.create", (form) => {
  const a = {patient: uuid4(), name: field(form, "name"), species: field(form, "species")};
  PATIENT_FIELDS.forEach((k) => put(a, k, field(form, k)));
  const alerts = [...form.querySelectorAll("input[name=alerts]:checked")].map((el) => el.value);
  if (alerts.length) { a.alerts = alerts; }
  return {args: a, after: () => { window.location.href = `${form.dataset.shellUrl || "/tablet/sheet-shell"}#${a.patient}`; }};
});

// ---- What waits, drawn over the sheet ----------------------------------------------------
function hourStarts(g) { return [...g.querySelectorAll("thead th.hour")].map((th) => Date.parse(th.dataset.start)); }
function columnOf(starts, ms) {
  for (let i = 0; i < starts.length; i++) {
    const end = i + 1 < starts.length ? starts[i + 1] : starts[i] + HOUR;
    if (ms >= starts[i] && ms < end) { return i; }
  }
  return -1;
}
function openState(dueMs, now) {
  const grace = 60000 * (parseInt(document.body.dataset.graceMinutes || "15", 10) || 0);
  if (now > dueMs + grace) { return "overdue"; }
  if (now >= dueMs - grace) { return "due"; }
  return "scheduled";
}

function taskEl(uid, due, state, orderName) {
  const a = fill("tpl-task", {task: uid, due: new Date(due).toISOString(), time: hm(due, tz()),
    label: label("due", {name: orderName, time: hm(due, tz())})});
  a.classList.add(state);
  return a;
}

function scheduleLabel(a) {
  if (a.prn) { return label("prn"); }
  if (a.every_hours) { return a.every_hours === 24 ? label("daily") : label("every", {n: a.every_hours}); }
  if (a.times && a.times.length) { return a.times.join(", "); }
  return label("once");
}

// A row for an order only this tablet knows so far: the server's row template, filled.
function orderRow(a, starts, now) {
  const tr = mark(fill("tpl-order-row", {name: a.name, order: a.order, instructions: a.instructions,
    dose: [a.dose, a.units, a.rate_ml_h ? label("rate", {n: a.rate_ml_h}) : "", a.route].filter(Boolean).join(" "),
    schedule: scheduleLabel(a), billable: a.billable ? "1" : "", billable_title: a.billable ? label("billable", {code: a.billable.code}) : "",
    give: a.prn ? "1" : "", stop: "1", stop_confirm: label("stop", {name: a.name}), note_label: label("noteFor", {name: a.name})}));
  tr.classList.add(`kind-${a.kind}`);
  tr.dataset.order = a.order;
  tr.dataset.valueType = a.value_type || (a.kind === "observation" ? "number" : "none");
  tr.dataset.valueUnits = a.value_units || "";
  if (a.prn) { tr.dataset.prn = "1"; }
  tr.querySelectorAll("[data-min-level]").forEach((el) => { el.hidden = level() < parseInt(el.dataset.minLevel, 10); });
  const current = columnOf(starts, now);
  const cells = starts.map((_, i) => {
    const td = fill("tpl-cell", {});
    if (i === current) { td.classList.add("now"); }
    return td;
  });
  dueTimes(a, Math.max(now, Date.parse(a.start)) + HORIZON_MS, tz()).forEach((due) => {
    const col = columnOf(starts, due);
    if (col >= 0) { cells[col].appendChild(taskEl(taskUid(a.order, due), due, openState(due, now), a.name)); }
  });
  tr.append(...cells);
  return tr;
}

function markTask(el, op) {
  ["overdue", "due", "scheduled", "done", "skipped", "stopped"].forEach((c) => el.classList.remove(c));
  el.classList.add(op.name === "task.skip" ? "skipped" : "done", "waiting");
  el.dataset.pendingOp = op.id;
  el.querySelectorAll(".tv").forEach((tv) => tv.remove());
  const tv = document.createElement("span");
  tv.className = "tv";
  tv.textContent = op.name === "task.skip" ? "skipped" : (op.args.value || "✓");
  mark(tv);
  el.appendChild(tv);
  el.setAttribute("aria-label", label("waiting", {label: (el.getAttribute("aria-label") || "").replace(/:.*$/, "")}));
}

function paintGrid(list) {
  const g = grid();
  if (!g || !g.dataset.patient) { return; }
  const patient = g.dataset.patient, starts = hourStarts(g), now = Date.now();
  const tbody = g.querySelector("tbody");
  list.filter((op) => op.name === "order.create" && op.args.patient === patient).forEach((op) => {
    if (g.querySelector(`tr[data-order="${op.args.order}"]`)) { return; }
    const empty = tbody.querySelector("td.empty");
    if (empty) { hide(empty.parentNode); }
    tbody.appendChild(orderRow(op.args, starts, now));
  });
  list.forEach((op) => {
    const a = op.args || {};
    if (op.name === "task.complete" || op.name === "task.skip") {
      let el = g.querySelector(`a.task[data-task="${a.task}"]`);
      if (!el && a.order && a.due_at) {
        const row = g.querySelector(`tr[data-order="${a.order}"]`);
        const due = Date.parse(a.due_at), col = columnOf(starts, due);
        if (row && col >= 0) {
          el = mark(taskEl(a.task, due, "scheduled", row.querySelector(".oname").textContent));
          row.querySelectorAll("td.cell")[col].appendChild(el);
        }
      }
      if (el) { markTask(el, op); }
    } else if (op.name === "order.stop") {
      const tr = g.querySelector(`tr[data-order="${a.order}"]`);
      if (tr && !tr.classList.contains("stopped")) {
        tr.classList.add("stopped", "waiting");
        tr.querySelectorAll("a.task.overdue, a.task.due, a.task.scheduled").forEach((t) => {
          t.classList.remove("overdue", "due", "scheduled");
          t.classList.add("stopped");
        });
        tr.querySelectorAll(".stop-form, .give-form").forEach(hide);
        tr.querySelector("th.order").appendChild(mark(fill("tpl-stopped-tag", {})));
      }
    }
  });
}

function paintNotes(list) {
  const section = $("notes");
  const ul = section && section.querySelector(".note-list");
  const form = section && section.querySelector("form[data-patient]");
  if (!ul || !form) { return; }
  list.filter((op) => op.name === "note.add" && op.args.patient === form.dataset.patient).forEach((op) => {
    ul.querySelectorAll(":scope > li.muted").forEach(hide);
    ul.insertBefore(mark(fill("tpl-note", {time: hm(Date.parse(op.at), tz()), user: op.user || "", text: op.args.text})), ul.firstChild);
  });
}

// A discharge waiting: said in the head, and nothing more is offered for the patient.
function paintDischarge(list) {
  const g = grid();
  const patient = g && g.dataset.patient;
  if (!patient || !list.some((op) => op.name === "patient.discharge" && op.args.patient === patient)) { return; }
  const head = document.querySelector(".patient-head .who");
  if (head) { head.appendChild(mark(fill("tpl-discharge-waiting", {}))); }
  document.querySelectorAll("#sheet-grid .stop-form, #sheet-grid .give-form, .sheet-actions .manage").forEach(hide);
}

// Sent: the discharge changed the head and the buttons: the server's parts say how it went.
let dischargeShown = false;
document.addEventListener("outbox:changed", () => {
  const shown = !!$("discharge-waiting");
  if (dischargeShown && !shown && !isShell()) { refreshSheet(); }
  dischargeShown = shown;
});

// Colours move with the clock even when the server cannot refresh the grid.
function recolour() {
  const now = Date.now();
  document.querySelectorAll("a.task[data-due]:is(.overdue, .due, .scheduled)").forEach((el) => {
    const state = openState(Date.parse(el.dataset.due), now);
    if (!el.classList.contains(state)) {
      el.classList.remove("overdue", "due", "scheduled");
      el.classList.add(state);
    }
  });
}

// ---- A task's dialog when the server cannot be asked ----------------------------------
function localDialog(link) {
  const row = link.closest("tr"), body = $("dialog-body"), d = dialog();
  if (!row || !body || !d) { return; }
  const text = (sel) => { const el = row.querySelector(sel); return el ? el.textContent.trim() : ""; };
  const closed = link.classList.contains("done") || link.classList.contains("stopped");
  const vt = row.dataset.valueType || "none";
  body.replaceChildren(fill("tpl-task-dialog", {dialog_id: `task-${link.dataset.task}`,
    name: text(".oname"), dose: text(".odose"), schedule: text(".osched"), instructions: text(".oinstr"),
    due: hm(Date.parse(link.dataset.due), tz()), offline: offline() ? "1" : "",
    waiting: link.classList.contains("waiting") ? "1" : "", done: link.classList.contains("done") ? "1" : "",
    stopped: link.classList.contains("stopped") ? "1" : "", open: closed ? "" : "1",
    skippable: closed || link.classList.contains("skipped") ? "" : "1",
    task: link.dataset.task, order: row.dataset.order, due_iso: link.dataset.due,
    value_field: vt !== "none" ? "1" : "", value_units: row.dataset.valueUnits,
    value_required: vt === "number", value_inputmode: vt === "number" ? "decimal" : ""}));
  if (!d.open) { d.showModal(); }
}

function needsLocal(link) {
  return offline() || link.dataset.local === "1" || link.classList.contains("waiting") || !!link.closest("tr.pending");
}

document.addEventListener("click", (evt) => {
  const link = evt.target.closest && evt.target.closest("a.task[data-task]");
  if (!link || !isTablet()) { return; }
  if (needsLocal(link) || !window.htmx) {
    evt.preventDefault();
    evt.stopPropagation();
    evt.stopImmediatePropagation();
    localDialog(link);
  }
}, true);

// Online but the server did not answer: the tablet's own dialog instead.
document.addEventListener("htmx:sendError", (evt) => {
  const link = evt.detail.elt && evt.detail.elt.closest && evt.detail.elt.closest("a.task[data-task]");
  if (link && isTablet()) { localDialog(link); }
});

// ---- The shell: the sheet of a patient this tablet created -----------------------------
let shellDay = 0;
function shellPatient() {
  const uid = decodeURIComponent(window.location.hash.replace(/^#/, ""));
  return ops().filter((op) => op.name === "patient.create" && op.args.patient === uid)[0];
}

function shellHead(p) {
  const wards = JSON.parse(($("shell-wards") || {}).textContent || "{}");
  const head = fill("tpl-shell-head", {css: `patient-head colour-${p.colour || "none"}`, name: p.name, species: p.species,
    breed: p.breed, weight: p.weight_kg, ward: wards[p.ward] || p.ward || "—", cage: p.cage, owner: p.owner_name || "—",
    alerts: (p.alerts || []).length ? "1" : ""});
  const alerts = head.querySelector(".alerts");
  (p.alerts || []).forEach((x) => { if (alerts && $(`tpl-alert-${x}`)) { alerts.appendChild(fill(`tpl-alert-${x}`, {})); } });
  $("shell-head").replaceChildren(head);
}

function shellGrid(uid) {
  const now = Date.now();
  const start = dayStart(dayStart(now, tz()) + shellDay * 24 * HOUR + 12 * HOUR, tz());
  const end = dayStart(start + 36 * HOUR, tz());
  $("shell-day").textContent = new Intl.DateTimeFormat("en-GB", {timeZone: tz(), weekday: "long", day: "2-digit",
    month: "long", year: "numeric"}).format(new Date(start + 12 * HOUR));
  const g = grid();
  g.dataset.patient = uid;
  g.dataset.day = dayIso(start + 12 * HOUR, tz());
  const headRow = g.querySelector("thead tr") || g.querySelector("thead").appendChild(document.createElement("tr"));
  const first = headRow.querySelector("th.order-head");
  const hours = [];
  for (let h = start, i = 0; h < end; h += HOUR, i++) {
    const th = fill("tpl-hour", {hour: String(i), start: new Date(h).toISOString(), label: hm(h, tz())});
    if (now >= h && now < h + HOUR) { th.classList.add("now"); }
    hours.push(th);
  }
  headRow.replaceChildren(...(first ? [first] : []), ...hours);
  g.querySelector("tbody").replaceChildren(fill("tpl-empty-row", {colspan: String(hours.length + 1)}));
}

function renderShell() {
  const create = shellPatient();
  if (!create) {
    // The server has it now (or never had it here): its own sheet says which.
    const uid = decodeURIComponent(window.location.hash.replace(/^#/, ""));
    leaveFor(`/patients/${encodeURIComponent(uid)}/sheet`);
    return;
  }
  const p = create.args;
  document.title = `${p.name} · sheet`;
  shellHead(p);
  shellGrid(p.patient);
  document.querySelectorAll("form[data-shell-patient]").forEach((f) => { f.dataset.patient = p.patient; });
  document.querySelectorAll(".note-list li[data-overlaid]").forEach((li) => li.remove());
}

function shellNav(evt) {
  const b = evt.target.closest && evt.target.closest("[data-shell-day]");
  if (!b) { return; }
  evt.preventDefault();
  const step = parseInt(b.dataset.shellDay, 10);
  shellDay = step === 0 ? 0 : shellDay + step;
  renderShell();
  repaint();
}

// ---- Start ----------------------------------------------------------------------------
ready(() => {
  scrollToNow();
  if (!isTablet()) { return; }
  if (isShell()) {
    // The shell is drawn once the outbox is read, and again after each change; then what
    // waits is painted on it again (the overlay's own repaint on the same event may have
    // run first, and drawing the shell empties the grid it painted).
    document.addEventListener("outbox:changed", () => { renderShell(); repaint(); });
    document.addEventListener("click", shellNav);
    window.addEventListener("hashchange", () => { renderShell(); repaint(); });
  }
  paint(paintGrid);
  paint(paintNotes);
  paint(paintDischarge);
  recolour();
  setInterval(recolour, 30000);
  // Said once the outbox is read and drawn (tests wait for it before tapping).
  const drawn = () => { document.documentElement.dataset.sheet = "ready"; };
  if (state.loaded) { drawn(); }
  document.addEventListener("outbox:changed", drawn, {once: true});
});
