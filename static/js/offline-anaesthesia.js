// Anaesthesia sheets on a tablet (SYNC.md "One path"): the start, record and finalise forms
// become ops through the shared binder, online or offline. Values outside their usual range
// (the server's numbers, given to the page as #anaesthesia-rules) ask for a confirmation
// before the op is queued. The ops still waiting are drawn over the server's page from its
// own <template>s (anaesthesia/_templates.html), marked "waiting to sync"; entries after a
// waiting finalise are addenda-to-be. A sheet started on this tablet opens as
// /tablet/anaesthesia-shell#<sheet uid>, drawn from the outbox until the server has it.
import {register} from "./client/binder.js";
import {hide, mark, paint, repaint} from "./client/overlay.js";
import {refresh} from "./client/refresh.js";
import {field, fill, leaveFor, put, ready} from "./client/dom.js";
import {formError, waitingTag} from "./client/status.js";
import {ops} from "./client/outbox.js";
import {uuid4} from "./client/ids.js";
import {isTablet} from "./client/device.js";
import {askRefresh} from "./client/worker.js";

const SHELL_URL = "/tablet/anaesthesia-shell";
const LABELS_KEY = "kiosk.anaesthesiaPatients";  // patient name etc. for the shell's header
const HEADER_KEYS = ["procedure", "asa", "team", "equipment"];

// ---- What the page holds ---------------------------------------------------------------
function readJSON(text, fallback) {
  try { return text ? JSON.parse(text) : fallback; } catch (e) { return fallback; }
}
function rules() {
  const el = document.getElementById("anaesthesia-rules");
  return readJSON(el && el.textContent, {vitals: [], pre: [], events: {}, hard_limit: "100000"});
}
function root() { return document.getElementById("anaesthesia"); }
// The sheet as the server has it (a live part, so it follows a refresh).
function state() { return document.getElementById("anaesthesia-state"); }
function isShell() { return document.body.classList.contains("anaesthesia-shell-body"); }
// The server's words for what is wrong (anaesthesia.services.rules_for_pages), filled in.
function say(key, values = {}) {
  return ((rules().messages || {})[key] || key).replace(/\{(\w+)\}/g, (all, k) => (values[k] === undefined ? all : values[k]));
}
const number = (text) => Number(String(text).replace(",", "."));
const plain = (text) => String(number(text));
const opMs = (op) => Date.parse(op.at);

// Times as the server's pages write them ('Sun 22 Nov 14:30'), in the clinic's zone.
let timeFormat = null;
function dt(ms) {
  timeFormat = timeFormat || new Intl.DateTimeFormat("en-GB", {timeZone: document.body.dataset.clinicTz || "UTC",
    weekday: "short", day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
  const p = {};
  timeFormat.formatToParts(new Date(ms)).forEach((x) => { p[x.type] = x.value; });
  return `${p.weekday} ${p.day} ${p.month} ${p.hour}:${p.minute}`;
}

// Who recorded an op, by name: the lock screen's staff list, else the signed-in user's.
function by(op) {
  const staff = readJSON(window.localStorage.getItem("kiosk.staff"), {}).staff || [];
  const who = staff.find((u) => u.id === op.user);
  if (who) { return who.name; }
  return op.user && op.user === document.body.dataset.user ? document.body.dataset.userName || op.user : op.user || "";
}

function sheetUids() { return state() ? readJSON(state().dataset.sheetUids, []) : []; }
function sheetOps(list) {
  const uids = sheetUids();
  return list.filter((op) => op.name.startsWith("anaesthesia.") && op.args && uids.includes(op.args.sheet));
}

// The header as it will stand: the server's, the waiting start's, then waiting changes.
function mergedHeader(list) {
  const header = readJSON(state() && state().dataset.header, {});
  list.forEach((op) => {
    const fields = op.name === "anaesthesia.start" ? op.args
      : op.name === "anaesthesia.record" && op.args.kind === "header" ? op.args.data : null;
    if (!fields) { return; }
    [...HEADER_KEYS, "emergency"].forEach((k) => { if (fields[k] !== undefined && fields[k] !== "") { header[k] = fields[k]; } });
  });
  return header;
}

// ---- Unusual values, asked before queuing -------------------------------------------
// Checks the numbers against the usual ranges; returns the data, or null after saying what
// is wrong (a value to confirm gets a "Yes, … is right" box, as the server's page has).
function measures(form, list, data) {
  const confirmed = [...form.querySelectorAll("input[name=confirm]")]
    .filter((el) => el.type === "hidden" || el.checked).map((el) => el.value);
  const hard = number(rules().hard_limit);
  const unsure = [];
  for (const m of list) {
    const text = field(form, m.key);
    if (!text) { continue; }
    const n = number(text);
    if (!Number.isFinite(n) || !/^-?[\d.,]+$/.test(text)) { return formError(form, say("not_a_number", {label: m.label})); }
    if (Math.abs(n) > hard) { return formError(form, say("out_of_range", {label: m.label, value: text})); }
    if ((n < number(m.low) || n > number(m.high)) && !confirmed.includes(m.key)) { unsure.push(m); }
    data[m.key] = text;
  }
  if (!unsure.length) {
    return {data, confirmed: confirmed.filter((k) => data[k] !== undefined)};
  }
  formError(form, unsure.map((m) => say("confirm_needed", {...m, value: plain(field(form, m.key))})).join(" "));
  const anchor = form.querySelector("button[type=submit]");
  unsure.forEach((m) => {
    if (form.querySelector(`.outbox-confirm input[value="${CSS.escape(m.key)}"]`)) { return; }
    anchor.parentNode.insertBefore(fill("tpl-anaes-confirm", {key: m.key, label: m.label, value: field(form, m.key)}), anchor);
  });
  return null;
}

function atLeastOne(form, checked, message) {
  if (checked && !Object.keys(checked.data).length) { return formError(form, message); }
  return checked;
}

// ---- Forms → ops ---------------------------------------------------------------------
// Each returns {data, confirmed?}, or null after saying what is wrong.
const kinds = {
  vitals: (form) => atLeastOne(form, measures(form, rules().vitals, {}), say("vitals_required")),
  pre(form) {
    const checked = measures(form, rules().pre, {});
    if (checked) { put(checked.data, "mm", field(form, "mm")); }
    return atLeastOne(form, checked, say("pre_required"));
  },
  drug(form) {
    const data = {drug: field(form, "drug"), dose: field(form, "dose"), route: field(form, "route")};
    if (!data.drug) { return formError(form, say("drug_required")); }
    if (!data.dose) { return formError(form, say("dose_required")); }
    put(data, "given_by", field(form, "given_by"));
    return {data};
  },
  event(form, submitter) {
    const event = submitter && submitter.name === "event" ? submitter.value : field(form, "event");
    if (!event) { return formError(form, "Which event?"); }
    const data = {event};
    put(data, "note", field(form, "note"));
    return {data};
  },
  // Only what this person changed: another tablet's change to another field stands.
  header(form, _submitter, list) {
    const now = mergedHeader(sheetOps(list)), data = {};
    HEADER_KEYS.forEach((k) => {
      const value = field(form, k);
      if (value !== "" && value !== (now[k] || "")) { data[k] = value; }
    });
    const emergency = !!field(form, "emergency");
    if (emergency !== !!now.emergency) { data.emergency = emergency; }
    if (!Object.keys(data).length) { return formError(form, "Nothing has changed."); }
    return {data};
  },
  note(form) {
    const text = field(form, "text");
    return text ? {data: {text}} : formError(form, say("note_required"));
  },
};

function buildRecord(form, submitter) {
  const kind = form.dataset.kind;
  if (!form.dataset.sheet || !kinds[kind]) { return null; }
  const entry = kinds[kind](form, submitter, ops());
  if (!entry) { return null; }
  const args = {entry: uuid4(), sheet: form.dataset.sheet, kind, data: entry.data};
  if (entry.confirmed && entry.confirmed.length) { args.confirmed = entry.confirmed; }
  return {args, after() {
    form.querySelectorAll(".outbox-confirm, input[name=confirm]").forEach((el) => el.remove());
    if (kind === "drug" || kind === "note" || kind === "pre") { form.reset(); }
    delete form.dataset.typed;  // recorded: the vitals are carried forward again
    repaint();
  }};
}

function buildStart(form) {
  const args = {sheet: uuid4(), patient: form.dataset.patient};
  HEADER_KEYS.forEach((k) => put(args, k, field(form, k)));
  if (field(form, "emergency")) { args.emergency = true; }
  return {args, after() {
    const labels = readJSON(window.localStorage.getItem(LABELS_KEY), {});
    labels[args.sheet] = {patient: args.patient, name: form.dataset.patientName || "",
      species: form.dataset.patientSpecies || "", weight: form.dataset.patientWeight || ""};
    try { window.localStorage.setItem(LABELS_KEY, JSON.stringify(labels)); } catch (e) { /* a label only */ }
    window.location.href = `${SHELL_URL}#${args.sheet}`;
  }};
}

function buildFinalise(form) {
  if (!form.dataset.sheet) { return null; }
  const header = mergedHeader(sheetOps(ops()));
  const lack = (rules().finalise_needs || []).find(([key]) => !header[key]);
  if (lack) { return formError(form, say("finalise_needs", {label: lack[1]})); }
  return {args: {sheet: form.dataset.sheet}};
}

register("anaesthesia.start", buildStart);
register("anaesthesia.record", buildRecord);
register("anaesthesia.finalise", buildFinalise);

// ---- The overlay: what this tablet still holds, drawn over the server's rows ------------
function insertByTime(parent, el, ms) {
  const later = [...parent.querySelectorAll(":scope > [data-at]")].find((row) => Date.parse(row.dataset.at) > ms);
  parent.insertBefore(el, later || null);
}
function hideEmpty(parent) {
  const empty = parent && parent.querySelector(":scope > .empty-row");
  if (empty) { hide(empty); }
}

// An entry's values for its template: the data, who, when, and the names shown.
function slots(op, r) {
  const a = op.args, ms = opMs(op);
  const values = {...(a.data || {}), at: new Date(ms).toISOString(), time: dt(ms), by: by(op),
    values: JSON.stringify(a.data || {})};
  (a.confirmed || []).forEach((k) => { values[`confirmed_${k}`] = "confirmed"; });
  if (a.kind === "drug") { values.given_by = values.given_by || values.by; }
  if (a.kind === "event") { values.event_label = r.events[values.event] || values.event; }
  return values;
}

// Where each kind of waiting entry goes on the sheet.
const PLACES = {vitals: "#vitals table.vitals-grid tbody", drug: "#drug table.drugs tbody",
  event: "#event ul.events", note: "#note ul.notes"};

function drawEntry(op, r) {
  const kind = op.args.kind, values = slots(op, r);
  if (kind === "pre") {
    const after = root().querySelector("#pre .pre-values");
    if (after) { after.after(mark(fill("tpl-anaes-pre", values))); }
    return;
  }
  const parent = PLACES[kind] && root().querySelector(PLACES[kind]);
  if (!parent) { return; }
  hideEmpty(parent);
  insertByTime(parent, mark(fill(`tpl-anaes-${kind}`, values)), opMs(op));
}

function drawAddendum(op, r) {
  const section = document.getElementById("addenda");
  const tpl = document.getElementById(`tpl-anaes-addendum-${op.args.kind}`);
  if (!section || !tpl) { return; }
  section.hidden = false;  // shown while it waits (restoreTexts hides it again)
  section.dataset.overlayShown = "1";
  insertByTime(section.querySelector(".addenda-list"), mark(fill(tpl, slots(op, r))), opMs(op));
}

// Text the overlay changed in place (header values, button labels): put back first.
function setText(el, text) {
  if (el.dataset.overlayText === undefined) { el.dataset.overlayText = el.textContent; }
  el.textContent = text;
}
function restoreTexts() {
  document.querySelectorAll("#anaesthesia [data-overlay-text]").forEach((el) => {
    el.textContent = el.dataset.overlayText;
    delete el.dataset.overlayText;
  });
  document.querySelectorAll("#anaesthesia [data-overlay-shown]").forEach((el) => {
    el.hidden = !el.querySelector(".addenda-list li");
    delete el.dataset.overlayShown;
  });
}

function drawHeader(list) {
  const changed = list.filter((op) => op.name === "anaesthesia.start" || (op.name === "anaesthesia.record" && op.args.kind === "header"));
  if (!changed.length) { return; }
  const header = mergedHeader(list);
  HEADER_KEYS.forEach((k) => {
    const dd = root().querySelector(`dd[data-header="${k}"]`);
    if (!dd) { return; }
    const value = k === "asa" ? (header.asa ? header.asa + (header.emergency ? " E" : "") : "") : header[k];
    setText(dd, value || "—");
    const touched = changed.some((op) => {
      const f = op.name === "anaesthesia.start" ? op.args : op.args.data;
      return f[k] !== undefined || (k === "asa" && f.emergency !== undefined);
    });
    if (touched) { dd.append(" ", mark(waitingTag())); }
  });
}

function drawFinalised(op) {
  const status = document.getElementById("sheet-status");
  const now = status && status.querySelector(".status-now");
  if (now) {
    hide(now);
    status.append(mark(fill("tpl-anaes-finalised-status", {})));
  }
  const area = document.getElementById("finalise");
  if (area) {
    const form = area.querySelector("form.finalise");
    if (form) { hide(form); }
    area.prepend(mark(fill("tpl-anaes-finalised", {time: dt(opMs(op)), by: by(op)})));
  }
}

// The vitals form starts from the last values, waiting rows included (by time); what is
// being typed is never overwritten.
function carryForward() {
  const form = root().querySelector("form.vitals-form");
  const steppers = form && form.querySelector(".steppers[data-carry]");
  if (!steppers) { return; }
  const rows = [...root().querySelectorAll("#vitals table.vitals-grid tbody tr[data-values]")]
    .sort((x, y) => Date.parse(x.dataset.at) - Date.parse(y.dataset.at));
  const last = {};
  rows.forEach((tr) => Object.assign(last, readJSON(tr.dataset.values, {})));
  const text = JSON.stringify(last);
  if (steppers.dataset.carried === text) { return; }  // nothing new: leave what is typed
  steppers.dataset.carried = text;
  if (form.dataset.typed) { return; }
  Object.keys(last).forEach((k) => {
    const input = steppers.querySelector(`input[name="${CSS.escape(k)}"]`);
    if (input) { input.value = last[k]; }
  });
}

// The header form shows the header as it stands, unless someone is changing it.
function refillHeader(list) {
  const form = root().querySelector('form[data-kind="header"]');
  if (!form || form.dataset.typed) { return; }
  const header = mergedHeader(list);
  HEADER_KEYS.forEach((k) => { if (form.elements[k]) { form.elements[k].value = header[k] || ""; } });
  if (form.elements.emergency) { form.elements.emergency.checked = !!header.emergency; }
}

function drawSheet(all) {
  const r = rules(), list = sheetOps(all);
  const locked = state().dataset.finalised === "1";
  const finalise = list.find((op) => op.name === "anaesthesia.finalise");
  list.forEach((op) => {
    if (op.name !== "anaesthesia.record") { return; }
    if (locked || (finalise && op.seq > finalise.seq)) { drawAddendum(op, r); } else { drawEntry(op, r); }
  });
  drawHeader(list);
  if (finalise && !locked) { drawFinalised(finalise); }
  if (finalise || locked) {
    root().querySelectorAll("form[data-outbox='anaesthesia.record']:not([data-kind=event]) button[type=submit]").forEach((b) => {
      if (!b.textContent.includes("(addendum)")) { setText(b, `${b.textContent} (addendum)`); }
    });
  }
  carryForward();
  refillHeader(list);
}

// The patient's list of sheets: the ones started here that the server has not heard of.
function drawList(all) {
  const ul = document.querySelector("ul.anaesthesia-list[data-patient]");
  if (!ul) { return; }
  all.filter((op) => op.name === "anaesthesia.start" && op.args.patient === ul.dataset.patient).forEach((op) => {
    hideEmpty(ul);
    ul.prepend(mark(fill("tpl-anaes-started-here", {href: `${SHELL_URL}#${op.args.sheet}`, time: dt(opMs(op)), by: by(op)})));
  });
}

// ---- The shell: a sheet started on this tablet ----------------------------------------
// Fills the shell for the sheet after '#'; false when there is nothing (more) to draw.
function fillShell(all, notes) {
  const uid = decodeURIComponent(window.location.hash.replace(/^#/, ""));
  const start = all.find((op) => op.name === "anaesthesia.start" && op.args.sheet === uid);
  if (!start) {
    const refused = notes.find((n) => n.name === "anaesthesia.start" && n.args && n.args.sheet === uid);
    if (refused) {
      document.getElementById("shell-title").replaceChildren(fill("tpl-anaes-shell-refused", {}));
      document.getElementById("shell-meta").textContent = refused.message || refused.code || "";
    } else {
      // The server has it now: its own page shows every tablet's entries.
      leaveFor(`/anaesthesia/${encodeURIComponent(uid)}`);
    }
    return false;
  }
  const label = readJSON(window.localStorage.getItem(LABELS_KEY), {})[uid] || {};
  const name = label.name || "Patient";
  root().dataset.sheet = uid;
  root().dataset.patient = start.args.patient;
  state().dataset.sheetUids = JSON.stringify([uid]);
  document.title = `${name} · anaesthesia`;
  document.getElementById("shell-title").replaceChildren(fill("tpl-anaes-shell-title", {name}));
  document.getElementById("shell-meta").replaceChildren(fill("tpl-anaes-shell-meta",
    {species: label.species, weight: label.weight, time: dt(opMs(start)), by: by(start)}));
  document.getElementById("shell-list").href = `/patients/${encodeURIComponent(start.args.patient)}/anaesthesia`;
  root().querySelectorAll("form[data-outbox]").forEach((f) => { f.dataset.sheet = uid; });
  return true;
}

paint((all, notes) => {
  restoreTexts();
  if (isShell() && !fillShell(all, notes)) { return; }
  if (root() && state()) { drawSheet(all); }
  drawList(all);
});

// ---- Following the server ------------------------------------------------------------
ready(() => {
  if (!isTablet()) { return; }
  // A new sheet the server now has: the service worker keeps its page from now on.
  document.addEventListener("outbox:synced", askRefresh);
  // What another tablet records appears without a reload (the shared refresh swaps the
  // server's rows and leaves the forms as typed).
  document.addEventListener("live:pokes", (evt) => {
    const patient = root() && !isShell() && root().dataset.patient;
    if (patient && evt.detail.some((p) => p.topic === "sheet" && p.patient === patient)) { refresh(); }
  });
  window.addEventListener("hashchange", () => { if (isShell()) { repaint(); } });
});
