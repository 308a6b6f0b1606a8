// The pairing page: send the code (typed, or from the QR link's '#'), keep the device's id
// and token in this browser's storage, then go where the server says: a tablet to its
// set-up page, a display to its board. The code leaves the address bar at once.
import * as outbox from "./client/outbox.js";
import * as store from "./client/store.js";
import {deviceId} from "./client/device.js";

const form = document.getElementById("pair-form");
const input = document.getElementById("pair-code");
const status = document.getElementById("pair-status");

function say(text, bad) {
  status.textContent = text;
  status.classList.toggle("error", !!bad);
}

async function pair(code) {
  say("Pairing…");
  // A browser holding another tablet's unsent changes is not paired over them.
  const pending = deviceId() ? (await store.snapshot()).ops.length : 0;
  let response;
  try {
    response = await fetch("/pair", {method: "POST", credentials: "same-origin", cache: "no-store",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify({code, holding: deviceId(), pending})});
  } catch (e) {
    say("The server cannot be reached; try again when the network is back.", true);
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    say(body.message || `Pairing failed (${response.status}); ask a manager.`, true);
    return;
  }
  if (body.kind === "tablet") {
    try {
      await outbox.provision(body.id, body.token);
    } catch (e) {
      say(e.message, true);
      return;
    }
  }
  say(`Paired: this is ${body.label}.`);
  window.location.assign(body.next);
}

form.addEventListener("submit", (evt) => {
  evt.preventDefault();
  const code = input.value.replace(/[\s-]/g, "").toUpperCase();
  if (!/^[A-Z2-9]{8}$/.test(code)) {
    say("A pairing code is 8 letters and digits, like K7PM-4QXD.", true);
    input.focus();
    return;
  }
  pair(code);
});

const fromLink = window.location.hash.replace(/^#/, "");
if (fromLink) {
  window.history.replaceState(null, "", window.location.pathname);
  input.value = decodeURIComponent(fromLink);
  form.requestSubmit();
}
