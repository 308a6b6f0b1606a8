// Live updates: join the rooms this page shows, gather pokes for a moment, and let the
// page refresh only what changed. After a reconnect everything shown is refreshed,
// since pokes sent while disconnected are gone. After 60 s without a connection a
// banner says so, with the time of the last update; it goes away by itself.
(function () {
  "use strict";
  var BURST_MS = 250, BANNER_AFTER_MS = 60000;
  var root = document.querySelector("[data-live-rooms]");
  if (!root || typeof window.io !== "function") { return; }
  var rooms = JSON.parse(root.dataset.liveRooms || "[]");
  var pending = [], timer = null, everConnected = false, lostAt = null;
  var lastUpdate = new Date();

  var socket = window.io({
    auth: function (cb) { cb({token: window.localStorage.getItem("kiosk.deviceToken") || undefined}); }
  });

  function fire(name, detail) { document.dispatchEvent(new CustomEvent(name, {detail: detail})); }

  socket.on("connect", function () {
    socket.emit("join", {rooms: rooms});
    if (everConnected) { fire("live:refresh"); }
    everConnected = true;
    lostAt = null;
    banner(false);
  });
  socket.on("disconnect", function (reason) {
    // The server closed it on purpose (device revoked, user deactivated): show what the
    // server says now (a sign-in or "ask a manager" page) instead of stale patient data.
    if (reason === "io server disconnect") { window.location.reload(); return; }
    if (!lostAt) { lostAt = Date.now(); }
  });
  socket.on("connect_error", function () { if (!lostAt) { lostAt = Date.now(); } });
  socket.on("poke", function (poke) {
    pending.push(poke);
    if (!timer) { timer = setTimeout(flush, BURST_MS); }
  });

  function flush() {
    timer = null;
    var batch = pending;
    pending = [];
    fire("live:pokes", batch);
  }

  // Times on screens are the clinic's, whatever zone the screen's own clock is set to.
  function hm(date) {
    return new Intl.DateTimeFormat("en-GB", {hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      timeZone: document.body.dataset.clinicTz || undefined}).format(date);
  }

  function banner(show) {
    var el = document.getElementById("live-banner");
    if (!el) { return; }
    el.hidden = !show;
    if (show) { el.textContent = "Not live — last updated " + hm(lastUpdate); }
  }

  document.addEventListener("htmx:afterSettle", function () { lastUpdate = new Date(); });
  setInterval(function () {
    banner(lostAt !== null && Date.now() - lostAt > BANNER_AFTER_MS);
  }, 5000);

  // Pages with a [data-live-topic] element re-fetch it whole on a poke of that topic.
  document.addEventListener("live:pokes", function (evt) {
    document.querySelectorAll("[data-live-topic]").forEach(function (el) {
      var hit = evt.detail.some(function (p) { return p.topic === el.dataset.liveTopic; });
      if (hit && el.id) {
        window.htmx.ajax("GET", window.location.href, {target: "#" + el.id, select: "#" + el.id, swap: "outerHTML"});
      }
    });
  });

  window.kioskLive = {socket: socket, hm: hm};
})();
