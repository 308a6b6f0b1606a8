// What the outbox says on screen: the banner (waiting, offline, syncing, revoked, a storage
// warning, the Sync button), the alert for a change that was not saved, and the "needs
// attention" list. The elements come from the server (templates/tablet/_outbox.html).
import {attention, dismiss, offline, ops, state, syncNow} from "./outbox.js";
import {isTablet, revoked} from "./device.js";
import {fill} from "./dom.js";

const $ = (id) => document.getElementById(id);

function plural(n) { return `${n} change${n === 1 ? "" : "s"}`; }

function bannerText(n) {
  if (revoked()) { return `This tablet was revoked — ask a manager. ${plural(n)} kept on this tablet.`; }
  if (state.syncing && n) { return "Syncing…"; }
  if (offline()) { return `Offline — ${plural(n)} waiting`; }
  if (n) { return `${plural(n)} waiting`; }
  return "";
}

/** Draw the banner and the attention list from the outbox as it stands. */
export function render() {
  const el = $("outbox-banner");
  if (!el || !isTablet()) { return; }
  const n = ops().length;
  const text = bannerText(n);
  el.hidden = !text && !state.message;
  el.classList.toggle("revoked", revoked());
  el.classList.toggle("offline", offline());
  el.dataset.pending = String(n);
  el.querySelector(".outbox-text").textContent = text;
  el.querySelector(".outbox-warning").textContent = state.message ? ` ${state.message}` : "";
  const button = el.querySelector(".outbox-sync");
  button.hidden = !(n || revoked());
  button.disabled = state.syncing;
  renderAttention();
}

function renderAttention() {
  const el = $("outbox-attention");
  if (!el) { return; }
  const notes = attention();
  el.hidden = !notes.length;
  const ul = el.querySelector("ul");
  ul.replaceChildren(...notes.map((n) => fill("tpl-attention-item", {
    css: `attention-${n.status}`, id: n.id,
    text: `${n.status === "rejected" ? "Not recorded: " : "Recorded with a conflict: "}${n.name || "change"} at ${n.at || "?"} — ${n.message || n.code || ""}`,
  })));
}

/** Say `message` at once, above an open dialog if there is one. */
export function alertUser(message) {
  const el = $("outbox-alert");
  if (!el) { window.alert(message); return; }
  // Above an open modal dialog (the rest of the page is inert then), else on the page.
  const host = document.querySelector("dialog[open]") || document.body;
  if (el.parentNode !== host) { host.appendChild(el); }
  el.querySelector(".outbox-alert-text").textContent = message;
  el.hidden = false;
}

/** A form's change could not become an op: say why at the top of the form (null back). */
export function formError(form, message) {
  let el = form.querySelector(".outbox-form-error");
  if (!el) {
    el = fill("tpl-form-error", {});
    form.insertBefore(el, form.firstChild);
  }
  el.textContent = message;
  return null;
}

/** Clear a form's error from an earlier try. */
export function clearFormError(form) {
  const el = form.querySelector(".outbox-form-error");
  if (el) { el.remove(); }
}

/** A "waiting to sync" tag (its text, when given, in place of the default). */
export function waitingTag(text) {
  const tag = fill("tpl-waiting-tag", {});
  if (text) { tag.textContent = text; }
  return tag;
}

let started = false;
/** Follow the outbox and wire the buttons. */
export function start() {
  if (started) { return; }
  started = true;
  ["outbox:changed", "outbox:state"].forEach((name) => document.addEventListener(name, render));
  document.addEventListener("outbox:error", (evt) => alertUser(evt.detail.message));
  document.addEventListener("click", (evt) => {
    const target = evt.target;
    if (!target.closest) { return; }
    if (target.closest("#outbox-banner .outbox-sync")) { syncNow(); }
    if (target.closest("#outbox-alert .outbox-alert-ok")) { $("outbox-alert").hidden = true; }
    const gone = target.closest("#outbox-attention [data-dismiss]");
    if (gone) { dismiss(gone.dataset.dismiss); }
  });
  render();
}
