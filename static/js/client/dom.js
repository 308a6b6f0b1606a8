// Small DOM helpers shared by the page modules: read a form, fill a server-rendered
// <template>. Markup always comes from the server; these only clone it and set text and
// attributes (never innerHTML).

/** A form field's trimmed value ("" when missing; a checkbox gives its value when ticked). */
export function field(form, name) {
  const el = form.elements[name];
  if (!el) { return ""; }
  if (el.type === "checkbox") { return el.checked ? el.value : ""; }
  return String(el.value || "").trim();
}

/** Set obj[key] unless the value is empty. */
export function put(obj, key, value) {
  if (value !== "" && value !== null && value !== undefined) { obj[key] = value; }
}

function templateOf(template) {
  const el = typeof template === "string" ? document.getElementById(template) : template;
  if (!el || !el.content) { throw new Error(`No <template> ${template}`); }
  return el;
}

function empty(value) { return value === undefined || value === null || value === "" || value === false; }

/**
 * Clone the first element of a <template> (an element or its id) and fill it from `values`:
 *   data-slot="key"        the element's text is values[key]
 *   data-slot-attr="a:key b:key2"   attributes set from values (removed when empty)
 *   data-if="key" / data-unless="key"  the element is kept only when values[key] is (not) set
 * Returns the filled element.
 */
export function fill(template, values) {
  const node = templateOf(template).content.firstElementChild.cloneNode(true);
  fillIn(node, values);
  return node;
}

/** Fill an element already in the page (or a clone) the way fill() does. */
export function fillIn(node, values) {
  const all = (sel) => [node, ...node.querySelectorAll(sel)].filter((el) => el.matches(sel));
  all("[data-if]").forEach((el) => { if (empty(values[el.dataset.if]) && el !== node) { el.remove(); } });
  all("[data-unless]").forEach((el) => { if (!empty(values[el.dataset.unless]) && el !== node) { el.remove(); } });
  all("[data-slot]").forEach((el) => {
    const v = values[el.dataset.slot];
    el.textContent = empty(v) ? "" : String(v);
  });
  all("[data-slot-attr]").forEach((el) => {
    el.dataset.slotAttr.split(/\s+/).filter(Boolean).forEach((pair) => {
      const [attr, key] = pair.split(":");
      const v = values[key];
      if (empty(v)) { el.removeAttribute(attr); } else { el.setAttribute(attr, v === true ? "" : String(v)); }
    });
  });
  return node;
}

/** Run fn once the document is parsed. */
export function ready(fn) {
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", fn); } else { fn(); }
}

/** Dispatch a CustomEvent on the document. */
export function fire(name, detail) {
  document.dispatchEvent(new CustomEvent(name, {detail}));
}

let leaving = null;
/**
 * Go to the server's own page for what the page was drawing, once. A shell repaints on
 * every change of the outbox while it flushes, and a form follows every sync; a second
 * navigation would abort the first page load and start it again. The shells replace
 * themselves in the history; `keepHistory` keeps the page left behind.
 */
export function leaveFor(url, {keepHistory = false} = {}) {
  if (leaving === url) { return; }
  leaving = url;
  if (keepHistory) { window.location.assign(url); } else { window.location.replace(url); }
}
