// The after-outage report's "Print" button: the browser's print dialog, with the report's
// print stylesheet (no navigation, no buttons, a page per section).
(function () {
  "use strict";
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-print]");
    if (button) { evt.preventDefault(); window.print(); }
  });
})();
