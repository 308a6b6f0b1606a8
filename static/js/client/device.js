// Who this browser is: a provisioned tablet keeps its id and bearer token here (small,
// read at every step, so in localStorage); the outbox itself lives in IndexedDB (store.js).

export const KEYS = {id: "kiosk.deviceId", token: "kiosk.deviceToken", revoked: "kiosk.revoked"};
const store = window.localStorage;

/** This tablet's device id ("d_3"), or null. */
export function deviceId() { return store.getItem(KEYS.id); }
/** This tablet's bearer token, or null. */
export function token() { return store.getItem(KEYS.token); }
/** Whether this browser is a provisioned tablet. */
export function isTablet() { return !!(deviceId() && token()); }
/** Whether the server said this tablet's token is revoked. */
export function revoked() { return store.getItem(KEYS.revoked) === "1"; }

/** Remember (or forget) that the server refused the token. */
export function setRevoked(flag) {
  try {
    if (flag) { store.setItem(KEYS.revoked, "1"); } else { store.removeItem(KEYS.revoked); }
  } catch (e) { /* a full storage: the next answer says it again */ }
}

/** Keep a device id and token. */
export function remember(id, tok) {
  store.setItem(KEYS.token, tok);
  store.setItem(KEYS.id, id);
  setRevoked(false);
}

/** The person changes are recorded for: who unlocked the tablet, else the signed-in user. */
export function person() {
  const lock = window.kioskLock;
  if (lock && lock.enabled()) {
    const who = lock.person();
    return who ? who.id : null;
  }
  return document.body.dataset.user || null;
}
