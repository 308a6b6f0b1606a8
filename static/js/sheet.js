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

  document.addEventListener("DOMContentLoaded", scrollToNow);
})();
