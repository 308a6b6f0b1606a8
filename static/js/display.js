// A wall display's link is /display#TOKEN: claim it once, then show the board.
(function () {
  "use strict";
  var script = document.currentScript;

  function claim(token, status) {
    fetch(script.dataset.claimUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({token: token})
    }).then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) {
        if (res.ok) { window.location.replace(res.body.board_url); }
        else { status.textContent = res.body.message; }
      })
      .catch(function () {
        status.textContent = "The server cannot be reached; trying again in 30 seconds.";
        setTimeout(function () { claim(token, status); }, 30000);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var status = document.getElementById("display-status");
    var token = decodeURIComponent(window.location.hash.replace(/^#/, ""));
    if (!token) {
      status.textContent = "This screen has no display link. Ask a manager for one (Admin → Wall displays).";
      return;
    }
    history.replaceState(null, "", window.location.pathname);  // the token leaves the address bar
    claim(token, status);
  });
})();
