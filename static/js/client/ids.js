// Identifiers and timestamps the tablet makes itself.

/** A random (version 4) UUID. */
export function uuid4() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") {
    return window.crypto.randomUUID();
  }
  const b = new Uint8Array(16);
  window.crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return hexUuid(b);
}

/** Sixteen bytes written as a UUID. */
export function hexUuid(bytes) {
  const h = Array.from(bytes, (x) => (x + 256).toString(16).slice(1)).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A time (Date or epoch ms; now when omitted) as YYYY-MM-DDTHH:MM:SSZ. */
export function isoZ(when) {
  const date = when === undefined || when === null ? new Date() : new Date(when);
  return date.toISOString().slice(0, 19) + "Z";
}
