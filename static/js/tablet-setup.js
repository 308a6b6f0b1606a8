// The tablet set-up page: keep the id and token from the link's '#', remove them from the
// address bar (and history), then ask the server who this tablet is.
import * as outbox from "./client/outbox.js";
import {deviceId, isTablet} from "./client/device.js";
import {render} from "./client/status.js";
import {ready} from "./client/dom.js";

const status = document.getElementById("tablet-status");

function say(text, bad) {
  status.textContent = text;
  status.classList.toggle("error", !!bad);
}

function label(d) {
  return d.label || ((d.colour ? d.colour.charAt(0).toUpperCase() + d.colour.slice(1) : "") +
    (d.number ? ` #${d.number}` : ` ${d.name || d.id}`));
}

async function run() {
  if (window.location.hash) {
    try {
      await outbox.provisionFromHash(window.location.hash);
    } catch (e) {
      say(e.message, true);
      return;
    }
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  if (!isTablet()) {
    say("This browser is not set up as a tablet. Open the set-up link a manager gives you.", true);
    return;
  }
  say(`Checking this tablet (${deviceId()})…`);
  let answer;
  try {
    answer = await outbox.verify();
  } catch (e) {
    say(`Set up as ${deviceId()}; the server cannot be reached to check it now.`, true);
    return;
  }
  const d = answer.device || {};
  if (answer.status === 200) {
    await window.kioskLock.claim();
    say(`This tablet is ${label(d).trim()} (${d.id}). Its changes are kept on it ` +
      "while offline and sent when the server can be reached.");
    outbox.flush(true);
  } else if (answer.status === 401) {
    say("This tablet was revoked or its link is wrong — ask a manager.", true);
  } else {
    say(`The server could not check this tablet (${answer.status}); it is set up as ${deviceId()} and will try again.`, true);
  }
  render();
}

ready(run);
