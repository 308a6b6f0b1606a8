// Every page's client entry point: on a provisioned tablet, load the outbox, show its state,
// bind forms to ops, draw what waits, refresh after syncs, keep the service worker and
// announce staff messages to the person holding the tablet.
import * as outbox from "./outbox.js";
import * as status from "./status.js";
import * as binder from "./binder.js";
import * as overlay from "./overlay.js";
import * as refresh from "./refresh.js";
import * as notify from "./notify.js";
import {register as registerWorker} from "./worker.js";
import {isTablet} from "./device.js";
import {ready} from "./dom.js";

ready(async () => {
  status.start();
  binder.start();
  document.documentElement.dataset.binder = "on";  // forms with data-outbox go to the outbox now
  refresh.start();
  if (!isTablet()) { return; }
  notify.start();
  await outbox.start();
  overlay.start();
  status.render();
  registerWorker();
});
