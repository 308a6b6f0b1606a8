// Anaesthesia sheet, one hand: the − and + buttons step a vitals value by 1 (0.1 below 10).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.step");
    if (!button) return;
    var input = button.parentElement.querySelector("input");
    var now = parseFloat((input.value || "0").replace(",", "."));
    if (isNaN(now)) now = 0;
    var size = Math.abs(now) < 10 && input.value.indexOf(".") >= 0 ? 0.1 : 1;
    var next = now + size * Number(button.dataset.step);
    input.value = size < 1 ? next.toFixed(1) : String(Math.round(next));
    input.dispatchEvent(new Event("input", {bubbles: true}));  // changed by hand, as typing
  });
})();
