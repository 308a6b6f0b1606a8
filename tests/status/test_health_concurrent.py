"""Health checks asked for at the same time: a later request waits on the check already
running (until its own deadline) instead of being told "down" by a healthy server."""

import socket
import threading
import time

import pytest

SLOW_S = 0.5
# Slower still, for a request that must give up first: under the check's own 1 s socket
# timeout, so the check itself still gets its answer.
LATE_S = 0.9


@pytest.fixture
def slow_redis(request):
    """A server on 127.0.0.1 speaking Redis's protocol that answers PING after SLOW_S
    seconds (a busy but healthy Redis; another delay when parametrized indirectly);
    yields (port, the PINGs it answered)."""
    delay = getattr(request, "param", SLOW_S)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    pings, conns, stop = [], [], threading.Event()

    def serve(conn):
        reader = conn.makefile("rb")
        while line := reader.readline():
            args = []
            for _ in range(int(line[1:])):
                size = int(reader.readline()[1:])
                args.append(reader.read(size + 2)[:-2].decode().upper())
            if args[0] == "PING":
                time.sleep(delay)
                pings.append(time.monotonic())
                conn.sendall(b"+PONG\r\n")
            elif args[0] == "HELLO":  # the client's handshake: protocol 3
                conn.sendall(b"%1\r\n$5\r\nproto\r\n:3\r\n")
            else:
                conn.sendall(b"+OK\r\n")

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except OSError:
                continue
            conns.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], pings
    stop.set()
    thread.join()
    for conn in conns:
        conn.close()
    listener.close()


def _at_once(app, paths):
    """GET each of `paths` from its own client, all at the same moment; the answers."""
    start = threading.Barrier(len(paths))
    answers = [None] * len(paths)

    def get(index, path):
        client = app.test_client()
        start.wait()
        answers[index] = client.get(path)

    threads = [threading.Thread(target=get, args=(i, p)) for i, p in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.parametrize("paths", [("/readyz", "/readyz"), ("/readyz", "/status.json"),
                                   ("/status.json", "/readyz", "/status")])
def test_checks_asked_for_at_once_share_the_running_one(app, slow_redis, paths):
    port, pings = slow_redis
    app.config.update(KIOSK_REDIS_URL=f"redis://127.0.0.1:{port}/0",
                      KIOSK_STATUS_CHECK_TIMEOUT_S="2")
    answers = _at_once(app, paths)
    for path, answer in zip(paths, answers, strict=True):
        assert answer.status_code != 503, (path, answer.text)
    for answer in (a for p, a in zip(paths, answers, strict=True) if p != "/status"):
        assert answer.json["checks"]["redis"]["state"] == "ok", answer.json
        assert answer.json["checks"]["database"]["state"] == "ok", answer.json
    assert len(pings) == 1  # one check ran; every request read its answer


@pytest.mark.parametrize("slow_redis", [LATE_S], indirect=True)
def test_a_request_joining_a_slow_check_still_gives_up_at_its_own_deadline(app, slow_redis):
    port, pings = slow_redis
    app.config.update(KIOSK_REDIS_URL=f"redis://127.0.0.1:{port}/0",
                      KIOSK_STATUS_CHECK_TIMEOUT_S="0.2")
    started = time.monotonic()
    first, second = _at_once(app, ("/readyz", "/readyz"))
    # Each gave up at its 0.2 s deadline; the slow answer comes only after LATE_S.
    assert time.monotonic() - started < LATE_S  # neither waited for the slow answer
    for answer in (first, second):
        assert answer.status_code == 503 and answer.json["down"] == ["redis"]
    reasons = sorted(a.json["checks"]["redis"]["reason"] for a in (first, second))
    assert reasons[0].startswith("Did not answer within 0.2 s"), reasons
    answered_by = time.monotonic() + LATE_S + 5
    while not pings and time.monotonic() < answered_by:  # the one check's PING answered
        time.sleep(0.05)
    time.sleep(LATE_S)  # time enough for a second check's PING, had one been sent
    assert len(pings) == 1  # the second request started no check of its own
