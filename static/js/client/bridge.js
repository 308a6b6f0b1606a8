// TEMPORARY: window.kioskOutbox for the classic page scripts not yet converted to modules
// (offline-anaesthesia.js, forms.js; lock.js and offline-sheet.js until they are). Only
// what they use; remove once they import the modules. ops() and attention() read the outbox's copy in memory, which "outbox:changed"
// says is (re)loaded.
import * as outbox from "./outbox.js";
import {deviceId, isTablet, revoked, token} from "./device.js";
import {formError} from "./status.js";
import {uuid4} from "./ids.js";

const MIRROR = "kiosk.bridgeOps";

function earlyOps() {
  if (outbox.state.loaded) { return outbox.ops(); }
  try { return JSON.parse(window.sessionStorage.getItem(MIRROR) || "[]"); } catch (e) { return []; }
}

document.addEventListener("outbox:changed", () => {
  try { window.sessionStorage.setItem(MIRROR, JSON.stringify(outbox.ops())); } catch (e) { /* a copy only */ }
});

function loadedOr(read) {
  if (!outbox.state.loaded) { throw new Error("The outbox is still being read from storage."); }
  return read();
}

window.kioskOutbox = {
  enqueue: (name, args, options) => outbox.enqueue(name, args, options),
  formError,
  ops: earlyOps,
  attention: () => loadedOr(outbox.attention),
  loaded: () => outbox.state.loaded,
  isTablet,
  token,
  uuid4,
  deviceId,
  revoked,
  offline: outbox.offline,
};
