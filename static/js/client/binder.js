// One form-to-op binder for every page. A form names its op with data-outbox="task.complete";
// a page module registers the builder that turns such a form into the op's args:
//   register("task.complete", (form, submitter) => ({args, at?, name?, patient?, after?}) or null)
// A builder returns null after saying what is wrong (status.formError). On a tablet the
// binder stops the post, stores the op in the outbox, then runs `after` and fires
// "binder:saved"; off a tablet (a signed-in desktop) forms post as usual.
import {enqueue} from "./outbox.js";
import {isTablet} from "./device.js";
import {clearFormError, formError} from "./status.js";
import {fire} from "./dom.js";

const builders = new Map();

/** Say how forms with data-outbox=`name` become an op. */
export function register(name, build) {
  builders.set(name, build);
}

/** Whether a builder is registered for `name`. */
export function has(name) { return builders.has(name); }

async function submit(form, build, submitter) {
  clearFormError(form);
  const op = await build(form, submitter);
  if (!op) { return; }
  const button = form.querySelector("button[type=submit], button:not([type])");
  if (button) { button.disabled = true; }
  try {
    await enqueue(op.name || form.dataset.outbox, op.args, {at: op.at, patient: op.patient});
  } catch (e) {
    formError(form, "Not saved: this tablet could not store the change (see the message).");
    return;
  } finally {
    if (button) { button.disabled = false; }
  }
  if (op.after) { op.after(); }
  fire("binder:saved", {form, name: op.name || form.dataset.outbox});
}

function onSubmit(evt) {
  const form = evt.target;
  const name = form && form.dataset && form.dataset.outbox;
  if (!name || !isTablet() || !builders.has(name)) { return; }
  evt.preventDefault();
  evt.stopPropagation();
  evt.stopImmediatePropagation();
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
  submit(form, builders.get(name), evt.submitter).catch((e) => {
    formError(form, e.message || String(e));
  });
}

let started = false;
/** Intercept the forms of every page (once). */
export function start() {
  if (started) { return; }
  started = true;
  document.addEventListener("submit", onSubmit, true);
}
