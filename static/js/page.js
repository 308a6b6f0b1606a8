// Small behaviours every page shares, kept out of the HTML: the pages' Content-Security-Policy
// runs no inline handlers (onsubmit=, onclick=), so markup asks for them with data- attributes.
(function () {
  "use strict";

  // <form data-confirm="Revoke …?">: ask before a plain post. On a tablet the outbox's own
  // submit handlers (capturing, earlier) ask instead and stop the event before it gets here.
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form || !form.dataset || !form.dataset.confirm || evt.defaultPrevented) { return; }
    if (!window.confirm(form.dataset.confirm)) { evt.preventDefault(); }
  });

  // <input data-select-all>: one tap selects the whole value, ready to copy.
  document.addEventListener("click", function (evt) {
    var input = evt.target;
    if (input && input.matches && input.matches("input[data-select-all]")) { input.select(); }
  });
})();
