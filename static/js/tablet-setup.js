// The tablet set-up page: keep the id and token from the link's '#', remove them from the
// address bar (and history), then ask the server who this tablet is.
(function () {
  "use strict";
  var status = document.getElementById("tablet-status");
  var outbox = window.kioskOutbox;
  function say(text, bad) {
    status.textContent = text;
    status.classList.toggle("error", !!bad);
  }
  function run() {
    if (window.location.hash) {
      try {
        outbox.provisionFromHash(window.location.hash);
      } catch (e) {
        say(e.message, true);
        return;
      }
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    if (!outbox.isTablet()) {
      say("This browser is not set up as a tablet. Open the set-up link a manager gives you.", true);
      return;
    }
    say("Checking this tablet (" + outbox.deviceId() + ")…");
    outbox.verify().then(function (answer) {
      var d = answer.device || {};
      if (answer.status === 200) {
        var label = d.label || ((d.colour ? d.colour.charAt(0).toUpperCase() + d.colour.slice(1) : "") +
          (d.number ? " #" + d.number : " " + (d.name || d.id)));
        window.kioskLock.claim().then(function () {
          say("This tablet is " + label.trim() + " (" + d.id + "). Its changes are kept on it " +
            "while offline and sent when the server can be reached.");
          outbox.flush(true);
        });
      } else if (answer.status === 401) {
        say("This tablet was revoked or its link is wrong — ask a manager.", true);
      } else {
        say("The server could not check this tablet (" + answer.status + "); it is set up as " +
          outbox.deviceId() + " and will try again.", true);
      }
      outbox.render();
    }, function () {
      say("Set up as " + outbox.deviceId() + "; the server cannot be reached to check it now.", true);
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", run); }
  else { run(); }
})();
