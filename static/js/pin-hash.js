// Offline PIN check on shared tablets: PBKDF2-HMAC-SHA256 of a staff member's PIN against a
// verifier the server gave earlier, "pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>"
// (hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations, dklen=32)).
// Pages on a clinic LAN are often plain HTTP, where crypto.subtle does not exist: the
// pure-JavaScript path below gives the same result; crypto.subtle is only used (being
// faster) when the page is a secure context, and a failure there falls back to the JS path.
(function () {
  "use strict";
  if (window.kioskPinHash) { return; }

  var ALGORITHM = "pbkdf2_sha256";
  var MAX_ITERATIONS = 10000000;
  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);
  var IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  var W = new Int32Array(64);

  // One SHA-256 compression: state (8 words) updated in place from 16 words at block[off].
  function compress(state, block, off) {
    var i, t1, t2, x, y;
    for (i = 0; i < 16; i++) { W[i] = block[off + i]; }
    for (i = 16; i < 64; i++) {
      x = W[i - 15];
      y = W[i - 2];
      W[i] = (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
        W[i - 7] + (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) +
        W[i - 16] | 0;
    }
    var a = state[0], b = state[1], c = state[2], d = state[3];
    var e = state[4], f = state[5], g = state[6], h = state[7];
    for (i = 0; i < 64; i++) {
      t1 = h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        ((e & f) ^ (~e & g)) + K[i] + W[i] | 0;
      t2 = (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b) ^ (a & c) ^ (b & c)) | 0;
      h = g; g = f; f = e; e = d + t1 | 0;
      d = c; c = b; b = a; a = t1 + t2 | 0;
    }
    state[0] = state[0] + a | 0; state[1] = state[1] + b | 0;
    state[2] = state[2] + c | 0; state[3] = state[3] + d | 0;
    state[4] = state[4] + e | 0; state[5] = state[5] + f | 0;
    state[6] = state[6] + g | 0; state[7] = state[7] + h | 0;
  }

  // SHA-256 of `bytes`, continuing from `state` after `prefix` bytes already compressed
  // (a multiple of 64). Returns a new 8-word digest; `state` is left alone.
  function finish(state, prefix, bytes) {
    var n = bytes.length, blocks = ((n + 9 + 63) >> 6), words = new Int32Array(blocks * 16);
    var i, bits = (prefix + n) * 8, out = new Int32Array(state);
    for (i = 0; i < n; i++) { words[i >> 2] |= bytes[i] << (24 - (i & 3) * 8); }
    words[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
    words[blocks * 16 - 2] = Math.floor(bits / 0x100000000);
    words[blocks * 16 - 1] = bits | 0;
    for (i = 0; i < blocks; i++) { compress(out, words, i * 16); }
    return out;
  }

  function wordsToHex(words) {
    var s = "", i;
    for (i = 0; i < words.length; i++) { s += ((words[i] >>> 0) + 0x100000000).toString(16).slice(1); }
    return s;
  }

  function bytesToHex(bytes) {
    var s = "", i;
    for (i = 0; i < bytes.length; i++) { s += (bytes[i] + 256).toString(16).slice(1); }
    return s;
  }

  function hexToBytes(hex) {
    if (typeof hex !== "string" || hex.length % 2 || !/^[0-9a-fA-F]*$/.test(hex)) {
      throw new TypeError("salt must be a hex string");
    }
    var out = new Uint8Array(hex.length / 2), i;
    for (i = 0; i < out.length; i++) { out[i] = parseInt(hex.substr(i * 2, 2), 16); }
    return out;
  }

  function utf8(text) {
    if (typeof text !== "string") { throw new TypeError("PIN must be a string"); }
    if (typeof TextEncoder === "function") { return new TextEncoder().encode(text); }
    var raw = unescape(encodeURIComponent(text)), out = new Uint8Array(raw.length), i;
    for (i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function checkIterations(iterations) {
    if (typeof iterations !== "number" || iterations % 1 !== 0 || iterations < 1 ||
        iterations > MAX_ITERATIONS) {
      throw new RangeError("iterations must be an integer from 1 to " + MAX_ITERATIONS);
    }
  }

  // PBKDF2-HMAC-SHA256, one 32-byte block, in plain JavaScript. The HMAC key's inner and
  // outer states are compressed once, so each iteration costs two compressions.
  function pbkdf2Js(password, salt, iterations) {
    var key = password.length > 64 ? finish(IV, 0, password) : null;
    var pad = new Int32Array(16), i, j;
    if (key) { for (i = 0; i < 8; i++) { pad[i] = key[i]; } }
    else { for (i = 0; i < password.length; i++) { pad[i >> 2] |= password[i] << (24 - (i & 3) * 8); } }
    var inner = new Int32Array(IV), outer = new Int32Array(IV), block = new Int32Array(16);
    for (i = 0; i < 16; i++) { block[i] = pad[i] ^ 0x36363636; }
    compress(inner, block, 0);
    for (i = 0; i < 16; i++) { block[i] = pad[i] ^ 0x5c5c5c5c; }
    compress(outer, block, 0);

    // U1 = HMAC(P, salt || INT(1))
    var msg = new Uint8Array(salt.length + 4);
    msg.set(salt);
    msg[salt.length + 3] = 1;
    var u = finish(inner, 64, msg);
    var bytes = new Uint8Array(32);
    for (i = 0; i < 32; i++) { bytes[i] = u[i >> 2] >>> (24 - (i & 3) * 8); }
    u = finish(outer, 64, bytes);
    var result = new Int32Array(u);

    // U2..Uc: a 32-byte message after the 64-byte key block, padded once here.
    block.fill(0);
    block[8] = 0x80000000 | 0;
    block[15] = (64 + 32) * 8;
    var state = new Int32Array(8);
    for (j = 1; j < iterations; j++) {
      for (i = 0; i < 8; i++) { block[i] = u[i]; state[i] = inner[i]; }
      compress(state, block, 0);
      for (i = 0; i < 8; i++) { block[i] = state[i]; u[i] = outer[i]; }
      compress(u, block, 0);
      for (i = 0; i < 8; i++) { result[i] ^= u[i]; }
    }
    return wordsToHex(result);
  }

  function subtleAvailable() {
    return !!(window.isSecureContext && window.crypto && window.crypto.subtle);
  }

  var api = {_lastPath: null};

  api._deriveJs = function (pin, saltHex, iterations) {
    return new Promise(function (resolve) {
      checkIterations(iterations);
      var hex = pbkdf2Js(utf8(pin), hexToBytes(saltHex), iterations);
      api._lastPath = "js";
      resolve(hex);
    });
  };

  api.derive = function (pin, saltHex, iterations) {
    var password, salt;
    try {
      checkIterations(iterations);
      password = utf8(pin);
      salt = hexToBytes(saltHex);
    } catch (e) { return Promise.reject(e); }
    if (!subtleAvailable()) { return api._deriveJs(pin, saltHex, iterations); }
    var subtle = window.crypto.subtle;
    return Promise.resolve().then(function () {
      return subtle.importKey("raw", password, {name: "PBKDF2"}, false, ["deriveBits"]);
    }).then(function (key) {
      return subtle.deriveBits({name: "PBKDF2", hash: "SHA-256", salt: salt,
        iterations: iterations}, key, 256);
    }).then(function (bits) {
      api._lastPath = "subtle";
      return bytesToHex(new Uint8Array(bits));
    }, function () {
      return api._deriveJs(pin, saltHex, iterations);
    });
  };

  // {iterations, salt, hash} (hex strings, lower case) or null when malformed.
  api.parse = function (verifier) {
    if (typeof verifier !== "string") { return null; }
    var parts = verifier.split("$");
    if (parts.length !== 4 || parts[0] !== ALGORITHM) { return null; }
    if (!/^[0-9]{1,8}$/.test(parts[1])) { return null; }
    var iterations = parseInt(parts[1], 10);
    if (iterations < 1 || iterations > MAX_ITERATIONS) { return null; }
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(parts[2])) { return null; }
    if (!/^[0-9a-fA-F]{64}$/.test(parts[3])) { return null; }
    return {iterations: iterations, salt: parts[2].toLowerCase(), hash: parts[3].toLowerCase()};
  };

  // Same length (64) on both sides: every character is compared, no early exit.
  function sameHex(a, b) {
    if (a.length !== b.length) { return false; }
    var diff = 0, i;
    for (i = 0; i < a.length; i++) { diff |= a.charCodeAt(i) ^ b.charCodeAt(i); }
    return diff === 0;
  }

  api.verify = function (pin, verifier) {
    var parsed = api.parse(verifier);
    if (!parsed || typeof pin !== "string") { return Promise.resolve(false); }
    return api.derive(pin, parsed.salt, parsed.iterations).then(function (hex) {
      return sameHex(hex, parsed.hash);
    }, function () { return false; });
  };

  window.kioskPinHash = api;
})();
