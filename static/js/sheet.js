// Treatment sheet: open the task dialog when htmx fills it, close it after a save,
// and keep the current hour in view.
(function () {
  "use strict";
  function dialog() { return document.getElementById("task-dialog"); }

  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.detail.target && evt.detail.target.id === "dialog-body") {
      var d = dialog();
      if (d && !d.open) { d.showModal(); }
    }
    if (evt.detail.target && evt.detail.target.id === "sheet-grid") { scrollToNow(); }
  });

  document.addEventListener("sheet:closeDialog", function () {
    var d = dialog();
    if (d && d.open) { d.close(); }
  });

  function scrollToNow() {
    var grid = document.getElementById("sheet-grid");
    if (!grid || grid.dataset.currentHour === "") { return; }
    var th = grid.querySelector('th[data-hour="' + grid.dataset.currentHour + '"]');
    var box = grid.querySelector(".sheet-scroll");
    var head = grid.querySelector("th.order-head");
    // Keep one past hour visible beside the sticky order column.
    if (th && box && head) { box.scrollLeft = Math.max(0, th.offsetLeft - head.offsetWidth - th.offsetWidth); }
  }

  // Live pokes for this patient refresh the grid of the day shown (the dialog stays open).
  function refreshGrid() {
    var grid = document.getElementById("sheet-grid");
    if (grid) { window.htmx.ajax("GET", grid.dataset.refreshUrl, {target: "#sheet-grid", swap: "outerHTML"}); }
  }
  document.addEventListener("live:pokes", function (evt) {
    if (evt.detail.some(function (p) { return p.topic === "sheet"; })) { refreshGrid(); }
  });
  document.addEventListener("live:refresh", refreshGrid);

  document.addEventListener("DOMContentLoaded", scrollToNow);
})();
