// The "waiting to sync" overlay: what the outbox still holds, drawn over what the server
// sent. Page modules register painters; each repaint first takes away what the last one
// drew (elements marked data-overlaid, elements hidden with hide()), then every painter
// draws again from the outbox as it stands. Repaints follow the outbox, htmx swaps and
// refreshes.
import {attention, ops} from "./outbox.js";
import {isTablet} from "./device.js";

const painters = [];

/** Add a painter: fn(ops, attention) draws what waits. */
export function paint(fn) {
  painters.push(fn);
  if (started) { repaint(); }
}

/** Mark an element as drawn by the overlay (the next repaint removes it). */
export function mark(el) {
  el.dataset.overlaid = "1";
  return el;
}

/** Hide a server element while something waits (the next repaint shows it again). */
export function hide(el) {
  el.hidden = true;
  el.dataset.overlayHidden = "1";
}

/** Draw the overlay again. */
export function repaint() {
  if (!isTablet()) { return; }
  document.querySelectorAll("[data-overlaid]").forEach((el) => el.remove());
  document.querySelectorAll("[data-overlay-hidden]").forEach((el) => {
    el.hidden = false;
    delete el.dataset.overlayHidden;
  });
  const list = ops(), notes = attention();
  painters.forEach((fn) => fn(list, notes));
}

let started = false;
/** Repaint whenever what waits or what the server sent changes. */
export function start() {
  if (started) { return; }
  started = true;
  ["outbox:changed", "htmx:afterSettle", "refresh:done"].forEach((name) => document.addEventListener(name, repaint));
  repaint();
}
