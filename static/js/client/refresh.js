// One refresh path: fetch this page from the server again and swap in its live parts (the
// elements marked data-live-part="name"), leaving forms being typed in alone. Runs after a
// sync and on live pokes; one at a time, and one asked for meanwhile runs after it.
// "refresh:done" then lets the overlay draw what still waits.
import {fire} from "./dom.js";

let busy = false, again = false;

/** This page (or `url`) as the server has it now, parsed; null if it would not give it. */
export async function serverPage(url) {
  const response = await fetch(url || window.location.pathname + window.location.search,
    {credentials: "same-origin", cache: "no-store", headers: {"Accept": "text/html"}});
  if (!response.ok || response.redirected) { return null; }
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

function swap(fresh) {
  document.querySelectorAll("[data-live-part]").forEach((el) => {
    const name = el.dataset.livePart;
    const part = fresh.querySelector(`[data-live-part="${CSS.escape(name)}"]`);
    if (!part) { return; }
    // A form somebody is typing in stays as typed.
    if (el.matches("form[data-typed], :has(form[data-typed])")) { return; }
    el.replaceWith(document.importNode(part, true));
  });
}

/** Fetch the page again and swap its live parts; resolves true when it did. */
export async function refresh(url) {
  if (busy) { again = true; return false; }
  busy = true;
  let done = false;
  try {
    const fresh = await serverPage(url);
    if (fresh) {
      swap(fresh);
      done = true;
      fire("refresh:done", {});
    }
  } catch (e) {
    // The server went again: keep what is drawn.
  } finally {
    busy = false;
    if (again) { again = false; refresh(url); }
  }
  return done;
}

// Typing marks the form, so a refresh leaves it alone until it is sent.
function typed(evt) {
  const form = evt.target.closest && evt.target.closest("form");
  if (form) { form.dataset.typed = "1"; }
}

let started = false;
/** Refresh after a sync and on a live "refresh" (once per page). */
export function start() {
  if (started) { return; }
  started = true;
  document.addEventListener("input", typed);
  document.addEventListener("binder:saved", (evt) => { delete evt.detail.form.dataset.typed; });
  document.addEventListener("outbox:synced", () => refresh());
  document.addEventListener("live:refresh", () => refresh());
}
