// Forms: the builder's extra rows; signature pads (pointer events on a <canvas>, sent as a
// PNG data URL); and, on a tablet, the fill page's saves as ops in the outbox (outbox.js):
// form.start at the first save of a new form, form.fill with the values that changed,
// form.finalise. Online and offline take that one path; the ops still waiting are drawn
// over what the server sent, marked "waiting to sync".
(function () {
  "use strict";
  if (window.kioskForms) { return; }
  var outbox = window.kioskOutbox;
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  var STARTED = "kiosk.formStarted.";

  // ---- The builder: more empty rows -------------------------------------------------
  function moreRows() {
    var body = document.getElementById("builder-rows");
    var count = document.getElementById("builder-count");
    var last = body && body.querySelector("tr.builder-row:last-of-type");
    if (!last || !count) { return; }
    var n = parseInt(count.value, 10);
    for (var i = 0; i < 3; i++, n++) {
      var row = last.cloneNode(true);
      row.classList.remove("has-error");
      row.dataset.row = String(n);
      Array.prototype.forEach.call(row.querySelectorAll("[name]"), function (el) {
        el.name = el.name.replace(/-\d+$/, "-" + n);
        if (el.type === "checkbox") { el.checked = false; }
        else if (el.tagName === "SELECT") { el.selectedIndex = 0; }
        else { el.value = el.name.indexOf("position-") === 0 ? String(n + 1) : ""; }
      });
      body.appendChild(row);
    }
    count.value = String(n);
  }

  // ---- Signature pads ----------------------------------------------------------------
  function pad(canvas) {
    var ctx = canvas.getContext("2d");
    var drawing = false, last = null;
    canvas.dataset.dirty = "";
    canvas.style.touchAction = "none";  // the finger draws; the page does not scroll
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111";
    function point(evt) {
      var box = canvas.getBoundingClientRect();
      return {x: (evt.clientX - box.left) * canvas.width / box.width,
        y: (evt.clientY - box.top) * canvas.height / box.height};
    }
    canvas.addEventListener("pointerdown", function (evt) {
      evt.preventDefault();
      drawing = true;
      last = point(evt);
      if (canvas.setPointerCapture) { canvas.setPointerCapture(evt.pointerId); }
      ctx.beginPath();
      ctx.arc(last.x, last.y, 1, 0, 2 * Math.PI);
      ctx.fill();
      canvas.dataset.dirty = "1";
    });
    canvas.addEventListener("pointermove", function (evt) {
      if (!drawing) { return; }
      var p = point(evt);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
    });
    function stop() { drawing = false; }
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    var clear = canvas.parentElement.querySelector(".sig-clear");
    if (clear) {
      clear.addEventListener("click", function () {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        canvas.dataset.dirty = "";
      });
    }
  }

  // The drawn signatures into their hidden inputs (only those drawn: others stay as they are).
  function signaturesIn(form) {
    Array.prototype.forEach.call(form.querySelectorAll("canvas[data-signature]"), function (c) {
      var input = form.querySelector('input[type=hidden][name="' + c.dataset.signature + '"]');
      if (input) { input.value = c.dataset.dirty ? c.toDataURL("image/png") : ""; }
    });
  }

  // ---- The fill page on a tablet -----------------------------------------------------
  function json(text, fallback) { try { return JSON.parse(text); } catch (e) { return fallback; } }
  function fieldsOf(form) { return json(form.dataset.fields, []); }

  function formUid(form) {
    if (form.dataset.form) { return form.dataset.form; }
    var hash = window.location.hash.slice(1);
    return UUID.test(hash) ? hash : "";
  }

  function control(form, key) { return form.elements.namedItem(key); }

  // What the page shows now, for each field (null when empty; a signature when drawn).
  function shown(form, f) {
    var el = control(form, f.key);
    if (f.type === "signature") {
      var canvas = form.querySelector('canvas[data-signature="' + f.key + '"]');
      return canvas && canvas.dataset.dirty ? canvas.toDataURL("image/png") : undefined;
    }
    if (!el) { return undefined; }
    if (f.type === "checkbox") { return !!el.checked; }
    return el.value.trim() === "" ? null : el.value;
  }

  function same(f, a, b) {
    if (f.type === "checkbox") { return !!a === !!b; }
    return (a === undefined || a === null ? null : String(a)) === (b === undefined || b === null ? null : String(b));
  }

  // The values standing: the server's, then the ops still waiting for this form.
  function standing(form, uid) {
    var values = json(form.dataset.values, {});
    var finalised = false;
    pending(uid).forEach(function (op) {
      if (op.name === "form.fill") { Object.keys(op.args.values || {}).forEach(function (k) { values[k] = op.args.values[k]; }); }
      if (op.name === "form.finalise") { finalised = true; }
    });
    return {values: values, finalised: finalised};
  }

  function pending(uid) {
    if (!uid || !outbox) { return []; }
    return outbox.ops().filter(function (op) { return op.args && op.args.form === uid; });
  }

  function status(text, kind) {
    var el = document.getElementById("form-status");
    if (el) { el.textContent = text; el.className = "form-status" + (kind ? " " + kind : ""); }
  }

  function fieldError(form, key, message) {
    Array.prototype.forEach.call(form.querySelectorAll(".form-field .field-error.local"), function (p) { p.remove(); });
    var box = form.querySelector('.form-field[data-key="' + key + '"]');
    if (box) {
      var p = document.createElement("p");
      p.className = "field-error local";
      p.setAttribute("role", "alert");
      p.textContent = message;
      box.appendChild(p);
      box.scrollIntoView({block: "center"});
    } else { status(message, "error"); }
  }

  // Draw what waits on this tablet over the page: values, signatures, a finalise.
  function overlay(form) {
    var uid = formUid(form);
    var state = standing(form, uid);
    var waiting = pending(uid);
    fieldsOf(form).forEach(function (f) {
      if (f.type === "heading") { return; }
      var waits = waiting.some(function (op) { return op.name === "form.fill" && op.args.values && f.key in op.args.values; });
      var box = form.querySelector('.form-field[data-key="' + f.key + '"]');
      if (box) { box.classList.toggle("waiting", waits); }
      if (!waits) { return; }
      var value = state.values[f.key];
      var el = control(form, f.key);
      if (f.type === "signature") {
        var current = box && box.querySelector(".signature-current");
        if (current && value) { current.innerHTML = ""; var img = new Image(); img.className = "signature"; img.alt = "Signature (waiting to sync)"; img.src = value; current.appendChild(img); }
      } else if (f.type === "checkbox" && el) { el.checked = !!value; }
      else if (el) { el.value = value === null || value === undefined ? "" : value; }
    });
    if (state.finalised) { lock(form, "Finalised on this tablet — waiting to sync."); }
    else if (waiting.length) { status("Saved on this tablet — waiting to sync (" + waiting.length + ").", "waiting"); }
  }

  function lock(form, text) {
    Array.prototype.forEach.call(form.querySelectorAll("input, select, textarea, button"), function (el) { el.disabled = true; });
    Array.prototype.forEach.call(form.querySelectorAll(".signature-pad"), function (el) { el.hidden = true; });
    status(text, "waiting");
  }

  function missing(form, state) {
    var fields = fieldsOf(form);
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (!f.required || f.type === "heading") { continue; }
      var v = state[f.key];
      if (f.type === "checkbox" ? v !== true : (v === null || v === undefined || v === "")) { return f; }
    }
    return null;
  }

  function save(form, finalise) {
    var uid = formUid(form);
    var isNew = !form.dataset.form;
    if (!uid) {
      uid = outbox.uuid4();
      window.history.replaceState(null, "", "#" + uid);
    }
    var state = standing(form, uid);
    var changed = {}, any = false, after = {};
    Object.keys(state.values).forEach(function (k) { after[k] = state.values[k]; });
    fieldsOf(form).forEach(function (f) {
      if (f.type === "heading") { return; }
      var now = shown(form, f);
      if (now === undefined) { return; }
      if (!same(f, now, state.values[f.key])) { changed[f.key] = now; after[f.key] = now; any = true; }
    });
    var lack = finalise ? missing(form, after) : null;
    var chain = Promise.resolve();
    var started = window.localStorage.getItem(STARTED + uid) === "1";
    if (isNew && !started && (any || finalise)) {
      chain = chain.then(function () {
        return outbox.enqueue("form.start", {form: uid, patient: form.dataset.patient,
          template: form.dataset.template, version: parseInt(form.dataset.version, 10)});
      }).then(function () { window.localStorage.setItem(STARTED + uid, "1"); });
    }
    if (any) {
      chain = chain.then(function () {
        return outbox.enqueue("form.fill", {form: uid, fill: outbox.uuid4(), values: changed},
          {patient: form.dataset.patient});
      });
    }
    if (finalise && !lack) {
      chain = chain.then(function () {
        return outbox.enqueue("form.finalise", {form: uid}, {patient: form.dataset.patient});
      });
    }
    form.dataset.sent = "1";
    return chain.then(function () {
      Array.prototype.forEach.call(form.querySelectorAll("canvas[data-signature]"), function (c) {
        c.getContext("2d").clearRect(0, 0, c.width, c.height);
        c.dataset.dirty = "";
      });
      overlay(form);
      if (lack) { fieldError(form, lack.key, "“" + lack.label + "” is required before the form is finalised."); }
      else if (!any && !finalise) { status("Nothing changed.", ""); }
    }, function () {
      status("Not saved: this tablet could not store the change (see the message).", "error");
    });
  }

  // Online, the outbox sends at once: then show the server's page of the form.
  function afterSync(form) {
    var uid = formUid(form);
    if (!form.dataset.sent || !uid || pending(uid).length) { return; }
    if (!form.dataset.form && window.localStorage.getItem(STARTED + uid) !== "1") { return; }
    window.localStorage.removeItem(STARTED + uid);
    window.location.href = form.dataset.pageUrl.replace("FORM", uid);
  }

  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form || !form.dataset || !form.dataset.formOutbox) { return; }
    var button = evt.submitter;
    var finalise = !!(button && button.value === "finalise");
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
      evt.preventDefault();
      return;
    }
    if (form.dataset.formOutbox === "fill") { signaturesIn(form); }
    if (!outbox || !outbox.isTablet()) { return; }  // a signed-in desktop: the plain post
    evt.preventDefault();
    evt.stopPropagation();
    if (form.dataset.formOutbox === "start") {
      window.location.href = form.dataset.newUrl;
      return;
    }
    if (form.dataset.locked) { return; }
    save(form, finalise);
  }, true);

  // The patient's forms list offline: the forms started on this tablet, not yet synced.
  function listPending() {
    var list = document.getElementById("form-list");
    if (!list || !outbox) { return; }
    outbox.ops().filter(function (op) {
      return op.name === "form.start" && op.args && op.args.patient === list.dataset.patient;
    }).forEach(function (op) {
      if (list.querySelector('[data-form="' + op.args.form + '"]')) { return; }
      var starter = document.querySelector('form.start-form input[value="' + op.args.template + '"]');
      var url = starter ? starter.form.dataset.newUrl + "#" + op.args.form : null;
      var li = document.createElement("li");
      li.className = "waiting";
      li.dataset.form = op.args.form;
      var a = document.createElement(url ? "a" : "span");
      if (url) { a.href = url; }
      a.textContent = (starter ? starter.form.querySelector("button").textContent : "Form") + " — waiting to sync";
      li.appendChild(a);
      list.appendChild(li);
    });
  }

  function init() {
    var more = document.getElementById("builder-more");
    if (more) { more.addEventListener("click", moreRows); }
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-signature]"), pad);
    var form = document.querySelector("form.form-fill");
    if (form && outbox && outbox.isTablet()) {
      if (pending(formUid(form)).length) { form.dataset.sent = "1"; }  // a reload, still waiting
      overlay(form);
      document.addEventListener("outbox:synced", function () { afterSync(form); });
      document.addEventListener("outbox:changed", function () { overlay(form); });
    }
    listPending();
  }

  window.kioskForms = {overlay: overlay};
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
})();
