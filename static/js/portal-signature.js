// Client portal: signature boxes a client signs with a finger (touch), a stylus or the
// mouse. Pointer events where the browser has them (every current one), touch events
// otherwise. On sending, a drawn signature goes into the field's hidden input as a PNG
// data URL; a box left untouched leaves that input as the server sent it (empty, or a
// signature kept after a refusal), and the typed-name field stays the other way to sign.
// Without this script the boxes stay hidden and the typed name is the way.

const INK = {lineWidth: 3, lineCap: "round", lineJoin: "round", strokeStyle: "#111", fillStyle: "#111"};

function pad(canvas) {
  const ctx = canvas.getContext("2d");
  Object.assign(ctx, INK);
  let last = null;
  canvas.dataset.dirty = "";
  const point = (x, y) => {
    const box = canvas.getBoundingClientRect();
    return {x: (x - box.left) * canvas.width / box.width, y: (y - box.top) * canvas.height / box.height};
  };
  const start = (p) => {
    last = p;
    ctx.beginPath();
    ctx.arc(p.x, p.y, INK.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    canvas.dataset.dirty = "1";
  };
  const move = (p) => {
    if (!last) { return; }
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    last = p;
  };
  const stop = () => { last = null; };
  if (window.PointerEvent) {
    canvas.addEventListener("pointerdown", (evt) => {
      evt.preventDefault();
      if (canvas.setPointerCapture) { canvas.setPointerCapture(evt.pointerId); }
      start(point(evt.clientX, evt.clientY));
    });
    canvas.addEventListener("pointermove", (evt) => { move(point(evt.clientX, evt.clientY)); });
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
  } else {
    const first = (evt) => evt.changedTouches[0];
    canvas.addEventListener("touchstart", (evt) => {
      evt.preventDefault();
      start(point(first(evt).clientX, first(evt).clientY));
    }, {passive: false});
    canvas.addEventListener("touchmove", (evt) => {
      evt.preventDefault();
      move(point(first(evt).clientX, first(evt).clientY));
    }, {passive: false});
    canvas.addEventListener("touchend", stop);
    canvas.addEventListener("touchcancel", stop);
  }
}

function wipe(canvas) {
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.dirty = "";
}

function init() {
  const form = document.querySelector("form.portal-form");
  if (!form) { return; }
  form.querySelectorAll("[data-signature-js]").forEach((el) => { el.hidden = false; });
  form.querySelectorAll("canvas[data-signature]").forEach(pad);
  form.querySelectorAll("[data-signature-clear]").forEach((button) => {
    button.addEventListener("click", () => {
      const canvas = form.querySelector(`canvas[data-signature="${CSS.escape(button.dataset.signatureClear)}"]`);
      if (canvas) { wipe(canvas); }
    });
  });
  form.addEventListener("submit", () => {
    form.querySelectorAll("canvas[data-signature]").forEach((canvas) => {
      if (!canvas.dataset.dirty) { return; }
      const input = form.querySelector(`input[data-signature-input="${CSS.escape(canvas.dataset.signature)}"]`);
      if (input) { input.value = canvas.toDataURL("image/png"); }
    });
  });
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", init);
} else {
  init();
}
