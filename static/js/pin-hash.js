// Offline PIN check on shared tablets: PBKDF2-HMAC-SHA256 of a staff member's PIN against a
// verifier the server gave earlier, "pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>"
// (hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations, dklen=32)).
// Pages on a clinic LAN are often plain HTTP, where crypto.subtle does not exist: the
// vendored @noble/hashes gives the same result there; crypto.subtle is only used (being
// faster) when the page is a secure context, and a failure there falls back to it.
import {pbkdf2Async} from "../vendor/noble-hashes/pbkdf2.js";
import {sha256} from "../vendor/noble-hashes/sha2.js";
import {bytesToHex, hexToBytes as nobleHexToBytes, utf8ToBytes} from "../vendor/noble-hashes/utils.js";

const ALGORITHM = "pbkdf2_sha256";
const MAX_ITERATIONS = 10000000;

function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError("salt must be a hex string");
  }
  return nobleHexToBytes(hex);
}

function utf8(text) {
  if (typeof text !== "string") { throw new TypeError("PIN must be a string"); }
  return utf8ToBytes(text);
}

function checkIterations(iterations) {
  if (typeof iterations !== "number" || iterations % 1 !== 0 || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new RangeError(`iterations must be an integer from 1 to ${MAX_ITERATIONS}`);
  }
}

function subtleAvailable() {
  return !!(window.isSecureContext && window.crypto && window.crypto.subtle);
}

/** The PIN check; `_lastPath` says which way the last derivation went ("js" or "subtle"). */
const pinHash = {_lastPath: null};

/** PBKDF2-HMAC-SHA256 in JavaScript (@noble/hashes): the hex of 32 bytes. */
pinHash._deriveJs = async function (pin, saltHex, iterations) {
  checkIterations(iterations);
  const out = await pbkdf2Async(sha256, utf8(pin), hexToBytes(saltHex), {c: iterations, dkLen: 32});
  pinHash._lastPath = "js";
  return bytesToHex(out);
};

/** PBKDF2-HMAC-SHA256 (crypto.subtle where the page may use it): the hex of 32 bytes. */
pinHash.derive = async function (pin, saltHex, iterations) {
  checkIterations(iterations);
  const password = utf8(pin), salt = hexToBytes(saltHex);
  if (!subtleAvailable()) { return pinHash._deriveJs(pin, saltHex, iterations); }
  try {
    const subtle = window.crypto.subtle;
    const key = await subtle.importKey("raw", password, {name: "PBKDF2"}, false, ["deriveBits"]);
    const bits = await subtle.deriveBits({name: "PBKDF2", hash: "SHA-256", salt, iterations}, key, 256);
    pinHash._lastPath = "subtle";
    return bytesToHex(new Uint8Array(bits));
  } catch (e) {
    return pinHash._deriveJs(pin, saltHex, iterations);
  }
};

/** {iterations, salt, hash} (hex strings, lower case) or null when malformed. */
pinHash.parse = function (verifier) {
  if (typeof verifier !== "string") { return null; }
  const parts = verifier.split("$");
  if (parts.length !== 4 || parts[0] !== ALGORITHM) { return null; }
  if (!/^[0-9]{1,8}$/.test(parts[1])) { return null; }
  const iterations = parseInt(parts[1], 10);
  if (iterations < 1 || iterations > MAX_ITERATIONS) { return null; }
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(parts[2])) { return null; }
  if (!/^[0-9a-fA-F]{64}$/.test(parts[3])) { return null; }
  return {iterations, salt: parts[2].toLowerCase(), hash: parts[3].toLowerCase()};
};

// Same length (64) on both sides: every character is compared, no early exit.
function sameHex(a, b) {
  if (a.length !== b.length) { return false; }
  let diff = 0;
  for (let i = 0; i < a.length; i++) { diff |= a.charCodeAt(i) ^ b.charCodeAt(i); }
  return diff === 0;
}

/** Whether `pin` matches `verifier`; never rejects. */
pinHash.verify = async function (pin, verifier) {
  const parsed = pinHash.parse(verifier);
  if (!parsed || typeof pin !== "string") { return false; }
  try {
    return sameHex(await pinHash.derive(pin, parsed.salt, parsed.iterations), parsed.hash);
  } catch (e) {
    return false;
  }
};

export default pinHash;
export const {parse} = pinHash;
/** Whether `pin` matches `verifier`; never rejects. */
export function verify(pin, verifier) { return pinHash.verify(pin, verifier); }
