// The pairing page: send the code (typed, or from the QR link's '#'), keep the device's id
// and token in this browser's storage, then go where the server says: a tablet to its
// set-up page, a display to its board. The code leaves the address bar at once.
(function () {
  "use strict";
  var form = document.getElementById("pair-form");
  var input = document.getElementById("pair-code");
  var status = document.getElementById("pair-status");
  var outbox = window.kioskOutbox;

  function say(text, bad) {
    status.textContent = text;
    status.classList.toggle("error", !!bad);
  }

  function pair(code) {
    say("Pairing…");
    return fetch("/pair", {method: "POST", credentials: "same-origin", cache: "no-store",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      // A browser holding another tablet's unsent changes is not paired over them.
      body: JSON.stringify({code: code, holding: outbox.deviceId(), pending: outbox.ops().length})}).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          say(body.message || "Pairing failed (" + response.status + "); ask a manager.", true);
          return;
        }
        if (body.kind === "tablet") {
          try {
            outbox.provision(body.id, body.token);
          } catch (e) {
            say(e.message, true);
            return;
          }
        }
        say("Paired: this is " + body.label + ".");
        window.location.assign(body.next);
      });
    }, function () {
      say("The server cannot be reached; try again when the network is back.", true);
    });
  }

  form.addEventListener("submit", function (evt) {
    evt.preventDefault();
    var code = input.value.replace(/[\s-]/g, "").toUpperCase();
    if (!/^[A-Z2-9]{8}$/.test(code)) {
      say("A pairing code is 8 letters and digits, like K7PM-4QXD.", true);
      input.focus();
      return;
    }
    pair(code);
  });

  var fromLink = window.location.hash.replace(/^#/, "");
  if (fromLink) {
    window.history.replaceState(null, "", window.location.pathname);
    input.value = decodeURIComponent(fromLink);
    form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
  }
})();
