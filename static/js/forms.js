// Forms: the builder's extra rows; signature pads (pointer events on a <canvas>, sent as a
// PNG data URL); and, on a tablet, the fill page's saves as ops through the shared binder:
// form.start at the first save of a new form, form.fill with the values that changed,
// form.finalise. Online and offline take that one path; the ops still waiting are drawn
// over what the server sent (its <template>s), marked "waiting to sync".
import {register} from "./client/binder.js";
import {enqueue, ops as outboxOps} from "./client/outbox.js";
import {mark, paint, repaint} from "./client/overlay.js";
import {fill, leaveFor, ready} from "./client/dom.js";
import {uuid4} from "./client/ids.js";
import {isTablet} from "./client/device.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STARTED = "kiosk.formStarted.";

// ---- The builder: more empty rows -------------------------------------------------
function moreRows() {
  const body = document.getElementById("builder-rows");
  const count = document.getElementById("builder-count");
  const last = body && body.querySelector("tr.builder-row:last-of-type");
  if (!last || !count) { return; }
  let n = parseInt(count.value, 10);
  for (let i = 0; i < 3; i++, n++) {
    const row = last.cloneNode(true);
    row.classList.remove("has-error");
    row.dataset.row = String(n);
    row.querySelectorAll("[name]").forEach((el) => {
      el.name = el.name.replace(/-\d+$/, `-${n}`);
      if (el.type === "checkbox") { el.checked = false; }
      else if (el.tagName === "SELECT") { el.selectedIndex = 0; }
      else { el.value = el.name.startsWith("position-") ? String(n + 1) : ""; }
    });
    body.appendChild(row);
  }
  count.value = String(n);
}

// ---- Signature pads ----------------------------------------------------------------
function pad(canvas) {
  const ctx = canvas.getContext("2d");
  let drawing = false, last = null;
  canvas.dataset.dirty = "";
  Object.assign(ctx, {lineWidth: 2.5, lineCap: "round", lineJoin: "round", strokeStyle: "#111"});
  const point = (evt) => {
    const box = canvas.getBoundingClientRect();
    return {x: (evt.clientX - box.left) * canvas.width / box.width, y: (evt.clientY - box.top) * canvas.height / box.height};
  };
  canvas.addEventListener("pointerdown", (evt) => {
    evt.preventDefault();
    drawing = true;
    last = point(evt);
    if (canvas.setPointerCapture) { canvas.setPointerCapture(evt.pointerId); }
    ctx.beginPath();
    ctx.arc(last.x, last.y, 1, 0, 2 * Math.PI);
    ctx.fill();
    canvas.dataset.dirty = "1";
  });
  canvas.addEventListener("pointermove", (evt) => {
    if (!drawing) { return; }
    const p = point(evt);
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    last = p;
  });
  const stop = () => { drawing = false; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  const clear = canvas.parentElement.querySelector(".sig-clear");
  if (clear) { clear.addEventListener("click", () => wipe(canvas)); }
}
function wipe(canvas) {
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.dirty = "";
}
const drawn = (canvas) => (canvas && canvas.dataset.dirty ? canvas.toDataURL("image/png") : undefined);

// ---- The fill page on a tablet -----------------------------------------------------
function json(text, fallback) { try { return JSON.parse(text); } catch (e) { return fallback; } }
const fieldsOf = (form) => json(form.dataset.fields, []).filter((f) => f.type !== "heading");
const fillForm = () => document.querySelector("form.form-fill");

function formUid(form) {
  if (form.dataset.form) { return form.dataset.form; }
  const hash = window.location.hash.slice(1);
  return UUID.test(hash) ? hash : "";
}
const opsOf = (uid) => (uid ? outboxOps().filter((op) => op.args && op.args.form === uid) : []);

// What the page shows now, for a field (null when empty; a signature only when drawn).
function shown(form, f) {
  if (f.type === "signature") { return drawn(form.querySelector(`canvas[data-signature="${CSS.escape(f.key)}"]`)); }
  const el = form.elements.namedItem(f.key);
  if (!el) { return undefined; }
  if (f.type === "checkbox") { return !!el.checked; }
  return el.value.trim() === "" ? null : el.value;
}
function same(f, a, b) {
  if (f.type === "checkbox") { return !!a === !!b; }
  const text = (v) => (v === undefined || v === null ? null : String(v));
  return text(a) === text(b);
}

// The values standing: the server's, then the ops still waiting for this form.
function standing(form, uid) {
  const values = json(form.dataset.values, {});
  let finalised = false;
  opsOf(uid).forEach((op) => {
    if (op.name === "form.fill") { Object.assign(values, op.args.values || {}); }
    if (op.name === "form.finalise") { finalised = true; }
  });
  return {values, finalised};
}

function status(text, kind) {
  const el = document.getElementById("form-status");
  if (el) { el.textContent = text; el.className = `form-status${kind ? ` ${kind}` : ""}`; }
}
function fieldError(form, key, message) {
  form.querySelectorAll(".form-field .field-error.local").forEach((p) => p.remove());
  const box = form.querySelector(`.form-field[data-key="${CSS.escape(key)}"]`);
  if (!box) { status(message, "error"); return; }
  box.appendChild(fill("tpl-form-field-error", {message}));
  box.scrollIntoView({block: "center"});
}

// Draw what waits on this tablet over the form: values, signatures, a finalise.
function drawForm(form) {
  const uid = formUid(form), state = standing(form, uid), waiting = opsOf(uid);
  fieldsOf(form).forEach((f) => {
    const waits = waiting.some((op) => op.name === "form.fill" && op.args.values && f.key in op.args.values);
    const box = form.querySelector(`.form-field[data-key="${CSS.escape(f.key)}"]`);
    if (box) { box.classList.toggle("waiting", waits); }
    if (!waits) { return; }
    const value = state.values[f.key], el = form.elements.namedItem(f.key);
    if (f.type === "signature") {
      const current = box && box.querySelector(".signature-current");
      if (current && value) {
        current.querySelectorAll(":scope > :not([data-overlay])").forEach((old) => old.remove());
        current.appendChild(mark(fill("tpl-form-signature", {src: value})));
      }
    } else if (f.type === "checkbox" && el) { el.checked = !!value; }
    else if (el) { el.value = value === null || value === undefined ? "" : value; }
  });
  if (waiting.length) { form.dataset.sent = "1"; }  // a reload, still waiting
  if (state.finalised) { lock(form, "Finalised on this tablet — waiting to sync."); }
  else if (waiting.length) { status(`Saved on this tablet — waiting to sync (${waiting.length}).`, "waiting"); }
}

function lock(form, text) {
  form.querySelectorAll("input, select, textarea, button").forEach((el) => { el.disabled = true; });
  form.querySelectorAll(".signature-pad").forEach((el) => { el.hidden = true; });
  status(text, "waiting");
}

function missing(fields, values) {
  return fields.find((f) => {
    const v = values[f.key];
    return f.required && (f.type === "checkbox" ? v !== true : v === null || v === undefined || v === "");
  }) || null;
}

// A save: the ops it makes, in order (a new form's start, the changed values, a finalise).
// The binder queues the last; the ones before it are queued here first, in order.
async function buildFill(form, submitter) {
  const finalise = !!(submitter && submitter.value === "finalise");
  if (form.dataset.locked) { return null; }
  if (finalise && submitter.dataset.confirm && !window.confirm(submitter.dataset.confirm)) { return null; }
  let uid = formUid(form);
  const patient = form.dataset.patient;
  if (!uid) {
    uid = uuid4();
    window.history.replaceState(null, "", `#${uid}`);
  }
  const state = standing(form, uid), changed = {}, after = {...state.values};
  fieldsOf(form).forEach((f) => {
    const now = shown(form, f);
    if (now !== undefined && !same(f, now, state.values[f.key])) { changed[f.key] = now; after[f.key] = now; }
  });
  const any = Object.keys(changed).length > 0;
  const lack = finalise ? missing(fieldsOf(form), after) : null;
  const ops = [];
  if (!form.dataset.form && window.localStorage.getItem(STARTED + uid) !== "1" && (any || finalise)) {
    ops.push({name: "form.start", args: {form: uid, patient, template: form.dataset.template,
      version: parseInt(form.dataset.version, 10)}});
  }
  if (any) { ops.push({name: "form.fill", args: {form: uid, fill: uuid4(), values: changed}}); }
  if (finalise && !lack) { ops.push({name: "form.finalise", args: {form: uid}}); }
  form.dataset.sent = "1";
  const done = () => {
    form.querySelectorAll("canvas[data-signature]").forEach(wipe);
    if (lack) { fieldError(form, lack.key, (form.dataset.requiredMessage || "{label}").replace("{label}", lack.label)); }
    else if (!ops.length) { status("Nothing changed.", ""); }
  };
  if (!ops.length) { done(); return null; }
  const last = ops.pop();
  for (const op of ops) {
    await enqueue(op.name, op.args, {patient});
    if (op.name === "form.start") { window.localStorage.setItem(STARTED + uid, "1"); }
  }
  return {name: last.name, args: last.args, patient, after() {
    if (last.name === "form.start") { window.localStorage.setItem(STARTED + uid, "1"); }
    repaint();
    done();
  }};
}
register("form.fill", buildFill);

// Online, the outbox sends at once: then show the server's page of the form.
function afterSync(form) {
  const uid = formUid(form);
  if (!form.dataset.sent || !uid || opsOf(uid).length) { return; }
  if (!form.dataset.form && window.localStorage.getItem(STARTED + uid) !== "1") { return; }
  window.localStorage.removeItem(STARTED + uid);
  leaveFor(form.dataset.pageUrl.replace("FORM", uid), {keepHistory: true});
}

// The patient's forms list: the forms started on this tablet, not yet synced.
function drawList(list) {
  const ul = document.getElementById("form-list");
  if (!ul) { return; }
  list.filter((op) => op.name === "form.start" && op.args && op.args.patient === ul.dataset.patient).forEach((op) => {
    if (ul.querySelector(`[data-form="${CSS.escape(op.args.form)}"]`)) { return; }
    const starter = document.querySelector(`form.start-form input[value="${CSS.escape(op.args.template)}"]`);
    ul.appendChild(mark(fill("tpl-form-waiting", {form: op.args.form,
      href: starter ? `${starter.form.dataset.newUrl}#${op.args.form}` : "",
      label: starter ? starter.form.querySelector("button").textContent : "Form"})));
  });
}

// Off a tablet the forms post as usual: the drawn signatures go into their hidden inputs,
// and finalising asks first. A tablet's start button opens the blank form (a save starts it).
document.addEventListener("submit", (evt) => {
  const form = evt.target, button = evt.submitter;
  if (!form || !form.dataset || !form.dataset.formOutbox) { return; }
  if (isTablet()) {
    if (form.dataset.formOutbox === "start") {
      evt.preventDefault();
      window.location.href = form.dataset.newUrl;
    }
    return;  // the fill form is the binder's
  }
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    evt.preventDefault();
    return;
  }
  form.querySelectorAll("canvas[data-signature]").forEach((c) => {
    const input = form.querySelector(`input[type=hidden][name="${CSS.escape(c.dataset.signature)}"]`);
    if (input) { input.value = drawn(c) || ""; }
  });
});

ready(() => {
  const more = document.getElementById("builder-more");
  if (more) { more.addEventListener("click", moreRows); }
  document.querySelectorAll("canvas[data-signature]").forEach(pad);
  if (!isTablet()) { return; }
  const form = fillForm();
  paint((list) => {
    if (form) { drawForm(form); }
    drawList(list);
  });
  if (form) { document.addEventListener("outbox:synced", () => afterSync(form)); }
});
