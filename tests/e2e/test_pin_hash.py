"""static/js/pin-hash.js in a real browser: PBKDF2-HMAC-SHA256 of a PIN, equal to Python's
hashlib.pbkdf2_hmac, both in JavaScript (the vendored @noble/hashes, for plain-HTTP pages,
where crypto.subtle does not exist) and through crypto.subtle (secure contexts). No server:
the pages and the static files are answered by Playwright itself (page.route), from the
files; the module is imported and set on the page as window.kioskPinHash for the tests."""

import hashlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

STATIC = Path(__file__).resolve().parents[2] / "static"
MODULE = "/static/js/pin-hash.js"
# Served by page.route, never by the network: https is a secure context, plain http on a
# non-local name is not (like a clinic LAN).
SECURE_URL = "https://kiosk.test/"
INSECURE_URL = "http://kiosk.test/"

SALT_A = "00112233445566778899aabbccddeeff"
SALT_B = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
VECTORS = [
    ("1234", SALT_A, 1),
    ("1234", SALT_A, 2),
    ("1234", SALT_B, 1000),
    ("000000", SALT_A, 1000),
    ("000000", SALT_B, 20000),
    ("1234", SALT_B, 20000),
    ("Zoë-ß-日本-🐾", SALT_A, 2),
    ("Zoë-ß-日本-🐾", SALT_B, 1000),
    ("", SALT_A, 2),
    ("x" * 100, SALT_B, 3),  # a key longer than a SHA-256 block is hashed first
    ("1234", "ab", 5),  # a salt of any length
    ("1234", "cd" * 60, 5),  # a salt spanning several blocks
]


def expected(pin: str, salt_hex: str, iterations: int) -> str:
    return hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), bytes.fromhex(salt_hex),
                               iterations, dklen=32).hex()


def verifier(pin: str, salt_hex: str = SALT_A, iterations: int = 1000) -> str:
    return f"pbkdf2_sha256${iterations}${salt_hex}${expected(pin, salt_hex, iterations)}"


def answer(route) -> None:
    """A static file from the repository, else an empty page."""
    path = route.request.url.split("kiosk.test", 1)[1].split("?", 1)[0]
    if path.startswith("/static/"):
        route.fulfill(status=200, content_type="text/javascript",
                      body=(STATIC / path.removeprefix("/static/")).read_text())
    else:
        route.fulfill(status=200, content_type="text/html",
                      body="<!doctype html><title>pin</title>")


def open_page(browser, url: str):
    context = browser.new_context()
    context.route("**/*", answer)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(url)
    page.evaluate(f"() => import('{MODULE}').then(m => {{ window.kioskPinHash = m.default; }})")
    return context, page


@pytest.fixture(scope="module")
def insecure(browser):
    context, page = open_page(browser, INSECURE_URL)
    yield page
    context.close()


@pytest.fixture(scope="module")
def secure(browser):
    context, page = open_page(browser, SECURE_URL)
    yield page
    context.close()


def derive(page, pin, salt_hex, iterations, fn="derive"):
    return page.evaluate(
        """async ([fn, pin, salt, n]) => {
             window.kioskPinHash._lastPath = null;
             const hex = await window.kioskPinHash[fn](pin, salt, n);
             return {hex, path: window.kioskPinHash._lastPath};
           }""",
        [fn, pin, salt_hex, iterations])


def verify(page, pin, text):
    return page.evaluate("([pin, v]) => window.kioskPinHash.verify(pin, v)", [pin, text])


def test_the_pages_are_the_two_kinds_of_context(secure, insecure):
    assert secure.evaluate("window.isSecureContext && !!crypto.subtle") is True
    assert insecure.evaluate("window.isSecureContext") is False
    assert insecure.evaluate("typeof (window.crypto && window.crypto.subtle)") == "undefined"


@pytest.mark.parametrize(("pin", "salt_hex", "iterations"), VECTORS)
def test_pure_js_matches_hashlib(secure, pin, salt_hex, iterations):
    got = derive(secure, pin, salt_hex, iterations, fn="_deriveJs")
    assert got == {"hex": expected(pin, salt_hex, iterations), "path": "js"}


@pytest.mark.parametrize(("pin", "salt_hex", "iterations"), VECTORS)
def test_derive_uses_subtle_in_a_secure_context(secure, pin, salt_hex, iterations):
    got = derive(secure, pin, salt_hex, iterations)
    assert got == {"hex": expected(pin, salt_hex, iterations), "path": "subtle"}


@pytest.mark.parametrize(("pin", "salt_hex", "iterations"), VECTORS)
def test_derive_falls_back_to_js_over_plain_http(insecure, pin, salt_hex, iterations):
    got = derive(insecure, pin, salt_hex, iterations)
    assert got == {"hex": expected(pin, salt_hex, iterations), "path": "js"}


def test_a_failing_subtle_falls_back_to_js(browser):
    context, page = open_page(browser, SECURE_URL)
    try:
        page.evaluate("""() => {
          crypto.subtle.deriveBits = () => Promise.reject(new Error("broken"));
        }""")
        got = derive(page, "1234", SALT_A, 1000)
        assert got == {"hex": expected("1234", SALT_A, 1000), "path": "js"}
        assert verify(page, "1234", verifier("1234")) is True
    finally:
        context.close()


@pytest.mark.parametrize("page_name", ["secure", "insecure"])
def test_verify(request, page_name):
    page = request.getfixturevalue(page_name)
    assert verify(page, "1234", verifier("1234")) is True
    assert verify(page, "1235", verifier("1234")) is False
    assert verify(page, "12345", verifier("1234")) is False
    assert verify(page, "000000", verifier("000000", SALT_B, 20000)) is True
    assert verify(page, "000001", verifier("000000", SALT_B, 20000)) is False
    assert verify(page, "Zoë-🐾", verifier("Zoë-🐾")) is True
    assert verify(page, "Zoe-🐾", verifier("Zoë-🐾")) is False
    # Upper-case hex from another writer is still the same verifier.
    assert verify(page, "1234", verifier("1234").upper().replace("PBKDF2_SHA256", "pbkdf2_sha256"))


def _malformed():
    good = verifier("1234")
    _alg, n, salt, digest = good.split("$")
    return [
        "",
        "pbkdf2_sha256$abc$00$00",
        f"pbkdf2_sha1${n}${salt}${digest}",
        f"PBKDF2_SHA256${n}${salt}${digest}",
        f"bcrypt${n}${salt}${digest}",
        f"pbkdf2_sha256${n}${salt}${digest[:-2]}",
        f"pbkdf2_sha256${n}${salt}${digest}00",
        f"pbkdf2_sha256${n}${salt}${digest[:-1]}",
        f"pbkdf2_sha256${n}${salt}${digest[:-1]}g",
        f"pbkdf2_sha256${n}${salt[:-1]}${digest}",
        f"pbkdf2_sha256${n}$${digest}",
        f"pbkdf2_sha256${n}$zz${digest}",
        f"pbkdf2_sha256$0${salt}${digest}",
        f"pbkdf2_sha256$-1000${salt}${digest}",
        f"pbkdf2_sha256$1e3${salt}${digest}",
        f"pbkdf2_sha256$1000.0${salt}${digest}",
        f"pbkdf2_sha256$10000001${salt}${digest}",
        f"pbkdf2_sha256$99999999999${salt}${digest}",
        f"pbkdf2_sha256${n}${salt}",
        f"pbkdf2_sha256${n}${salt}${digest}$",
        f" {good}",
        f"{good}\n",
    ]


@pytest.mark.parametrize("text", _malformed())
def test_malformed_verifiers_are_refused(insecure, text):
    assert insecure.evaluate("v => window.kioskPinHash.parse(v)", text) is None
    assert verify(insecure, "1234", text) is False


def test_parse_and_odd_inputs(insecure):
    good = verifier("1234", SALT_B, 20000)
    assert insecure.evaluate("v => window.kioskPinHash.parse(v)", good) == {
        "iterations": 20000, "salt": SALT_B, "hash": good.split("$")[3]}
    for value in ["null", "undefined", "1234", "{}"]:
        assert insecure.evaluate(f"window.kioskPinHash.parse({value})") is None
    # A PIN that is not a string never matches, and verify never rejects.
    assert insecure.evaluate(
        "v => window.kioskPinHash.verify(1234, v)", verifier("1234")) is False
    assert insecure.evaluate(
        "v => window.kioskPinHash.verify(null, v)", verifier("1234")) is False
    # derive itself refuses bad arguments.
    for call in ['derive("1234", "abc", 1)', 'derive("1234", "00", 0)',
                 'derive("1234", "00", 1.5)', 'derive(1234, "00", 1)',
                 '_deriveJs("1234", "0g", 1)', '_deriveJs("1234", "00", 0)']:
        assert insecure.evaluate(
            f"window.kioskPinHash.{call}.then(() => 'resolved', () => 'rejected')"
        ) == "rejected", call


def test_20000_iterations_are_quick(secure):
    timing = secure.evaluate("""async (salt) => {
      const h = window.kioskPinHash;
      await h._deriveJs("0000", salt, 100);  // warm up the compiler
      let t = performance.now();
      const js = await h._deriveJs("123456", salt, 20000);
      const jsMs = performance.now() - t;
      t = performance.now();
      const native = await h.derive("123456", salt, 20000);
      const subtleMs = performance.now() - t;
      return {js, jsMs, native, subtleMs, path: h._lastPath};
    }""", SALT_A)
    print(f"\nPBKDF2 20,000 iterations: pure JS {timing['jsMs']:.1f} ms, "
          f"{timing['path']} {timing['subtleMs']:.1f} ms")
    assert timing["js"] == timing["native"] == expected("123456", SALT_A, 20000)
    assert timing["path"] == "subtle"
    assert timing["jsMs"] < 5000


def test_the_default_rounds_unlock_in_a_tablets_time(secure, insecure):
    """What one unlock costs at the default rounds (config/default.py), both paths. A
    mid-range tablet is about 3-5 times slower than a laptop core: the pure-JavaScript path
    (plain-HTTP pages) should stay near 0.1 s here, 0.3-0.5 s there."""
    import json

    import config.default

    rounds = config.default.KIOSK_PIN_VERIFIER_ITERATIONS
    script = """async ([salt, n]) => {
      const h = window.kioskPinHash;
      await h._deriveJs("0000", salt, 100);  // warm up the compiler
      const t = performance.now();
      const hex = await h.derive("123456", salt, n);
      return {hex, ms: performance.now() - t, path: h._lastPath};
    }"""
    for page in (secure, insecure):
        timing = page.evaluate(script, [SALT_A, rounds])
        assert timing["hex"] == expected("123456", SALT_A, rounds)
        print("\n" + json.dumps({"bench": "pin_verifier_unlock", "iterations": rounds,
                                 "path": timing["path"], "ms": round(timing["ms"], 1)}))
        assert timing["ms"] < 3000  # generous: the machine is shared while tests run
