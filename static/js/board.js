// Whiteboard: a live clock, and pages that rotate when patients overflow the screen.
(function () {
  "use strict";
  var page = 0;
  var timer = null;

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#board-grid .board-row")); }

  // Rows into pages of at most `most` rows that fit in `room` pixels.
  function split(all, heights, room, most) {
    var pages = [[]], used = 0;
    all.forEach(function (r, i) {
      var last = pages[pages.length - 1];
      if (last.length && (used + heights[i] > room || last.length >= most)) { pages.push([]); used = 0; }
      pages[pages.length - 1].push(r); used += heights[i];
    });
    return pages;
  }

  // Split rows into pages that fit between the hour headings and the "Updated" line.
  function paginate() {
    var grid = document.getElementById("board-grid");
    if (!grid) { return; }
    var all = rows();
    all.forEach(function (r) { r.classList.remove("off-page"); });
    var body = grid.querySelector("tbody");
    var footer = grid.querySelector(".board-updated");
    var main = grid.parentElement;
    var below = (footer ? footer.getBoundingClientRect().height + 4 : 0) +
      (main ? parseFloat(getComputedStyle(main).paddingBottom) || 0 : 0);
    var room = window.innerHeight - body.getBoundingClientRect().top - below - 4;
    var heights = all.map(function (r) { return r.getBoundingClientRect().height + 4; });
    // As many pages as the rows need, then the rows shared evenly between them.
    var pages = split(all, heights, room, all.length);
    if (pages.length > 1) { pages = split(all, heights, room, Math.ceil(all.length / pages.length)); }
    if (page >= pages.length) { page = 0; }
    pages.forEach(function (list, i) { list.forEach(function (r) { r.classList.toggle("off-page", i !== page); }); });
    var label = document.getElementById("board-page-label");
    if (label) { label.textContent = pages.length > 1 ? "page " + (page + 1) + " of " + pages.length : ""; }
    return pages.length;
  }

  function rotate() {
    page += 1;
    if (page >= (paginate() || 1)) { page = 0; paginate(); }
  }

  function tick() {
    var clock = document.getElementById("board-clock");
    if (clock) {
      clock.textContent = new Intl.DateTimeFormat("en-GB", {hour: "2-digit", minute: "2-digit",
        hourCycle: "h23", timeZone: document.body.dataset.clinicTz || undefined}).format(new Date());
    }
  }

  function start() {
    var grid = document.getElementById("board-grid");
    var seconds = grid ? parseInt(grid.dataset.rotateSeconds || "15", 10) : 15;
    paginate();
    tick();
    if (timer) { clearInterval(timer); }
    timer = setInterval(rotate, Math.max(seconds, 5) * 1000);
  }

  // Live pokes: a changed patient's row alone; the whole grid when the board itself
  // changed, a new patient arrived, or the connection came back.
  function refreshGrid() {
    var grid = document.getElementById("board-grid");
    if (grid) { window.htmx.ajax("GET", grid.getAttribute("hx-get"), {target: "#board-grid", swap: "outerHTML"}); }
  }

  document.addEventListener("live:pokes", function (evt) {
    var grid = document.getElementById("board-grid");
    if (!grid) { return; }
    var uids = {}, whole = false;
    evt.detail.forEach(function (p) {
      if (p.topic !== "board") { return; }
      if (!p.patient || !document.getElementById("row-" + p.patient)) { whole = true; }
      else { uids[p.patient] = true; }
    });
    if (whole) { refreshGrid(); return; }
    Object.keys(uids).forEach(function (uid) {
      window.htmx.ajax("GET", grid.dataset.rowUrl.replace("__uid__", uid), {target: "#row-" + uid, swap: "outerHTML"});
    });
  });
  document.addEventListener("live:refresh", refreshGrid);

  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("htmx:afterSettle", function () { paginate(); });
  window.addEventListener("resize", paginate);
  setInterval(tick, 10000);
})();
