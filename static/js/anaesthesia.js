// Anaesthesia sheet, one hand: the − and + buttons step a vitals value by 1 (0.1 below 10
// when the value has a decimal point); the change counts as typed (the form keeps it).
function step(event) {
  const button = event.target.closest && event.target.closest("#vitals button.step");
  if (!button) { return; }
  const input = button.parentElement.querySelector("input");
  let now = parseFloat((input.value || "0").replace(",", "."));
  if (Number.isNaN(now)) { now = 0; }
  const size = Math.abs(now) < 10 && input.value.includes(".") ? 0.1 : 1;
  const next = now + size * Number(button.dataset.step);
  input.value = size < 1 ? next.toFixed(1) : String(Math.round(next));
  input.dispatchEvent(new Event("input", {bubbles: true}));
}

document.addEventListener("click", step);
