// The patients list: a search box that filters the list as it is typed (on the page, so
// it works offline), and on a tablet, which patients' sheets this tablet keeps for an
// outage (what the service worker's cache actually holds) and the patients made on this
// tablet that the server has not heard of yet (listed first, marked waiting).
import {register} from "./client/binder.js";
import {fill} from "./client/dom.js";
import {uuid4} from "./client/ids.js";
import {mark, paint} from "./client/overlay.js";
import {isTablet} from "./client/device.js";
import {ready} from "./client/dom.js";

const list = () => document.getElementById("patient-list");

// "Mark end of shift" on a tablet: an op with the tablet's time, sent when it can be.
register("shift.end", () => ({
  args: {mark: uuid4()},
  after: () => { const note = document.getElementById("shift-end-waiting"); if (note) { note.hidden = false; } },
}));

function pendingPatients(ops) {
  const ul = list();
  if (!ul) { return; }
  const discharged = new Set(ops.filter((op) => op.name === "patient.discharge").map((op) => op.args && op.args.patient));
  ops.filter((op) => op.name === "patient.create" && op.args && op.args.patient && !discharged.has(op.args.patient))
    .reverse().forEach((op) => {
      const li = mark(fill("tpl-pending-patient", {name: op.args.name || "New patient", species: op.args.species || "",
        href: `${ul.dataset.shellUrl}#${encodeURIComponent(op.args.patient)}`}));
      ul.insertBefore(li, ul.firstChild);
    });
  filter();
}

// Whether the service worker keeps `path` (in any of its caches).
async function kept(path) {
  if (!("caches" in window)) { return false; }
  const names = await caches.keys();
  for (const name of names) {
    if (await (await caches.open(name)).match(path, {ignoreVary: true})) { return true; }
  }
  return false;
}

async function markKept() {
  const ul = list();
  if (!ul || !isTablet()) { return; }
  for (const a of ul.querySelectorAll("li:not(.pending-patient) > a[href]")) {
    const li = a.parentNode;
    const has = await kept(a.getAttribute("href")).catch(() => false);
    li.classList.toggle("kept-offline", has);
    const tag = a.querySelector(".kept-tag");
    if (has && !tag) { a.appendChild(fill("tpl-kept-offline", {})); }
    if (!has && tag) { tag.remove(); }
  }
}

function filter() {
  const input = document.getElementById("patient-search");
  const ul = list();
  if (!input || !ul) { return; }
  const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  ul.querySelectorAll(":scope > li:not(.muted)").forEach((li) => {
    const text = li.textContent.toLowerCase();
    const match = words.every((w) => text.includes(w));
    li.classList.toggle("filtered-out", !match);
    li.hidden = !match || li.dataset.overlayHidden === "1";
    if (match) { shown += 1; }
  });
  document.getElementById("patient-search-none").hidden = !words.length || shown > 0;
}

paint(pendingPatients);
ready(() => {
  const input = document.getElementById("patient-search");
  if (input) { input.addEventListener("input", filter); }
  markKept();
  // The worker keeps more as it fetches the tablet's list: look again now and then.
  if (isTablet()) { setInterval(markKept, 15000); }
});
