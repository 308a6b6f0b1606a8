// The patients list on a tablet: patients made on this tablet that the server has not
// heard of yet are listed first, marked waiting, and lead to their sheet on the tablet.
import {fill} from "./client/dom.js";
import {mark, paint} from "./client/overlay.js";

function pendingPatients(ops) {
  const list = document.querySelector("ul.patient-list[data-shell-url]");
  if (!list) { return; }
  const discharged = new Set(ops.filter((op) => op.name === "patient.discharge").map((op) => op.args && op.args.patient));
  ops.filter((op) => op.name === "patient.create" && op.args && op.args.patient && !discharged.has(op.args.patient))
    .reverse().forEach((op) => {
      const li = mark(fill("tpl-pending-patient", {name: op.args.name || "New patient", species: op.args.species || "",
        href: `${list.dataset.shellUrl}#${encodeURIComponent(op.args.patient)}`}));
      list.insertBefore(li, list.firstChild);
    });
}

paint(pendingPatients);
