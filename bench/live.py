"""Live-update benchmark: how soon pokes reach 100 connected clients after a change.

Starts a real server (`kiosk run`, temporary SQLite, the demo clinic) and connects
python-socketio clients over WebSocket: wall displays, each in one board's room (signed in
as the demo manager), and sheets, each in one patient's sheet room (tablet device tokens
from `kiosk devices add`). A separate signed-in client then completes open tasks through
HTTP, one at a time. For each completion, every client in an affected room should hear a
poke for that patient; latency = time heard - time the HTTP response arrived (pokes are
sent after the commit, before the page is rendered, so many arrive first: those count as
0 ms and are reported). A client that has not heard within `--wait` seconds missed it.

Also measured: how long the clients take to connect and join (`--parallel` at a time), the
server's resident memory (its processes' RSS) before and after they connected, per
connection, and the CPU the server and this client process used during the completions.
The server gets a thread per client (KIOSK_THREADS: a live connection holds one). All the
clients live in this one Python process: when its CPU share nears 100 % of a core, the
clients, not the server, set the latency.

The same run is repeated with two server processes joined by Redis (clients spread over
both, completions through the first), unless Redis is unreachable.

    python bench/live.py [--clients 100] [--displays 30] [--completions 500] [--wait 2]
                         [--parallel 20] [--redis-url redis://127.0.0.1:6379/0] [--no-redis]

Human-readable lines first; the last line is one JSON object.
"""

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import socketio  # noqa: E402

from tests.support.server import KioskServer  # noqa: E402

TABLETS = 5
PATIENTS_SQL = "SELECT id, uid, ward_id FROM patients WHERE status = 'admitted' ORDER BY id"
BOARDS_SQL = "SELECT id, kind, ward_id FROM boards ORDER BY position, id"
MEMBERS_SQL = "SELECT board_id, patient_id FROM board_members"
OPEN_TASKS_SQL = """
    SELECT p.uid, t.uid FROM tasks t
    JOIN orders o ON o.id = t.order_id
    JOIN patients p ON p.id = t.patient_id
    WHERE t.status = 'scheduled' AND o.status = 'active' AND p.status = 'admitted'
    ORDER BY t.due_at, t.id
"""


@dataclass
class Listener:
    """One connected client: its room and the pokes it heard (time, poke)."""

    room: str
    server: int
    sio: socketio.Client | None = None
    heard: list = field(default_factory=list)


class Crowd:
    """Every listener of a run; poke callbacks record the time and wake the waiter."""

    def __init__(self):
        self.listeners: list[Listener] = []
        self.changed = threading.Condition()

    def connect(self, listener: Listener, url: str, *, cookie=None, token=None) -> float:
        """Connect one client and join its room; the seconds that took."""
        began = time.perf_counter()
        sio = socketio.Client(reconnection=False)

        def on_poke(data, listener=listener):
            now = time.perf_counter()
            with self.changed:
                listener.heard.append((now, data))
                self.changed.notify_all()

        sio.on("poke", on_poke)
        sio.connect(url, headers={"Cookie": cookie} if cookie else {},
                    auth={"token": token} if token else None, transports=["websocket"],
                    wait_timeout=10)
        ack = sio.call("join", {"rooms": [listener.room]}, timeout=10)
        if ack.get("joined") != [listener.room]:
            raise RuntimeError(f"could not join {listener.room}: {ack}")
        listener.sio = sio
        with self.changed:
            self.listeners.append(listener)
        return time.perf_counter() - began

    def close(self) -> None:
        """Disconnect everyone at once (each waits a few seconds for the closing handshake)."""
        clients = [lst.sio for lst in self.listeners if lst.sio is not None and lst.sio.connected]
        with ThreadPoolExecutor(max_workers=max(1, len(clients))) as pool:
            list(pool.map(lambda sio: sio.disconnect(), clients))


def clinic_read(server: KioskServer) -> tuple[list[str], list[int], dict, list]:
    """Patient uids, board ids, the boards showing each patient, and open tasks."""
    patients = server.query(PATIENTS_SQL)
    boards = server.query(BOARDS_SQL)
    members = server.query(MEMBERS_SQL)
    by_id = {pid: uid for pid, uid, _ in patients}
    showing = {uid: {b for b, kind, ward in boards if kind == "ward" and ward == ward_id}
               for _, uid, ward_id in patients}
    for board_id, patient_id in members:
        if patient_id in by_id:
            showing[by_id[patient_id]].add(board_id)
    tasks = server.query(OPEN_TASKS_SQL)
    return [uid for _, uid, _ in patients], [b for b, _, _ in boards], showing, tasks


def tasks_pick(tasks: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    """`count` open tasks, taken round-robin over the patients (earliest first)."""
    queues: dict[str, list[str]] = {}
    for patient, task in tasks:
        queues.setdefault(patient, []).append(task)
    picked = []
    while len(picked) < count and any(queues.values()):
        for patient, queue in queues.items():
            if queue and len(picked) < count:
                picked.append((patient, queue.pop(0)))
    if len(picked) < count:
        raise RuntimeError(f"only {len(picked)} open tasks; {count} wanted")
    return picked


def servers_start(directory: Path, processes: int, redis_url: str | None, threads: str
                  ) -> list[KioskServer]:
    """The first server prepares the demo clinic; the others share its database."""
    env = {"KIOSK_THREADS": threads}
    if redis_url:
        env = {**env, "KIOSK_REDIS_URL": redis_url,
               "KIOSK_REDIS_CHANNEL": f"kiosk-bench-{secrets.token_hex(6)}"}
    first = KioskServer(directory, name="server-1", env=env)
    servers = [first]
    try:
        first.prepare()
        first.start()
        for index in range(2, processes + 1):
            server = KioskServer(directory, name=f"server-{index}",
                                 env={**first.shared_env(), **env})
            servers.append(server)
            server.start()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def crowd_connect(servers, *, clients: int, displays: int, patients, boards,
                  parallel: int) -> tuple[Crowd, list[float], float]:
    """Displays on boards, sheets on patients, spread over the servers, `parallel` at a
    time: the crowd, each connection's seconds, and the seconds for them all."""
    crowd = Crowd()
    manager = servers[0].signed_in("manager", "manager-demo")
    cookie = f"session={manager.cookies['session']}"
    tokens = [json.loads(servers[0].kiosk(
        "devices", "add", "--name", f"Bench tablet {n + 1}", "--colour", "blue",
        "--kind", "tablet").strip().splitlines()[-1])["token"] for n in range(TABLETS)]

    def one(index: int) -> float:
        server = index % len(servers)
        url = servers[server].base_url
        if index < displays:
            listener = Listener(room=f"board:{boards[index % len(boards)]}", server=server)
            return crowd.connect(listener, url, cookie=cookie)
        sheet = index - displays
        listener = Listener(room=f"sheet:{patients[sheet % len(patients)]}", server=server)
        return crowd.connect(listener, url, token=tokens[sheet % len(tokens)])

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        seconds = list(pool.map(one, range(clients)))
    return crowd, seconds, time.perf_counter() - began


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (gunicorn's worker), in KiB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(entry.name) == pid or fields.get("PPid", "").strip() == str(pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(entry.name) == pid or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def completions_run(crowd: Crowd, server: KioskServer, picked, showing, wait: float) -> dict:
    """Complete each task, wait for the pokes it calls for, and collect the latencies."""
    tech = server.signed_in("tech", "tech-demo-1")
    latencies, since_request, http_ms = [], [], []
    before_response = missed_pokes = extra = 0
    missed_clients: set[int] = set()
    for patient, task in picked:
        rooms = {f"sheet:{patient}"} | {f"board:{b}" for b in showing[patient]}
        expected = [i for i, lst in enumerate(crowd.listeners) if lst.room in rooms]
        with crowd.changed:
            marks = [len(lst.heard) for lst in crowd.listeners]
        sent = time.perf_counter()
        response = tech.post(f"{server.base_url}/tasks/{task}/complete", timeout=30,
                             data={"value": "1", "note": "bench"},
                             headers={"HX-Request": "true"})
        answered = time.perf_counter()
        if response.status_code != 200:
            raise RuntimeError(f"completing {task}: {response.status_code} "
                               f"{response.text[:300]}")
        http_ms.append((answered - sent) * 1000)
        heard = _wait_for_pokes(crowd, expected, marks, patient, answered + wait)
        for index in expected:
            at = heard.get(index)
            if at is None:
                missed_pokes += 1
                missed_clients.add(index)
                continue
            if at < answered:
                before_response += 1
            latencies.append(max(0.0, at - answered) * 1000)
            since_request.append((at - sent) * 1000)
        extra += _unexpected(crowd, expected, marks, patient)
    return {"latencies": latencies, "since_request": since_request, "http_ms": http_ms,
            "before_response": before_response, "missed_pokes": missed_pokes,
            "missed_clients": len(missed_clients), "unexpected": extra}


def _first_for(listener: Listener, mark: int, patient: str) -> float | None:
    for at, poke in listener.heard[mark:]:
        if poke.get("patient") == patient:
            return at
    return None


def _wait_for_pokes(crowd: Crowd, expected, marks, patient, deadline) -> dict[int, float]:
    heard: dict[int, float] = {}
    with crowd.changed:
        while True:
            for index in expected:
                if index not in heard:
                    at = _first_for(crowd.listeners[index], marks[index], patient)
                    if at is not None:
                        heard[index] = at
            left = deadline - time.perf_counter()
            if len(heard) == len(expected) or left <= 0:
                return heard
            crowd.changed.wait(left)


def _unexpected(crowd: Crowd, expected, marks, patient) -> int:
    wanted = set(expected)
    with crowd.changed:
        return sum(1 for i, lst in enumerate(crowd.listeners) if i not in wanted
                   and _first_for(lst, marks[i], patient) is not None)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def phase(args, processes: int, redis_url: str | None) -> dict:
    """One run: start, connect, complete, report."""
    label = f"{processes} process{'es' if processes > 1 else ''}" + \
        (" joined by Redis" if redis_url else "")
    import resource

    with tempfile.TemporaryDirectory(prefix="kiosk-bench-live-") as tmp:
        started = time.perf_counter()
        # A live connection holds one of the server's threads: room for all, plus requests.
        threads = str(args.clients // processes + 50)
        servers = servers_start(Path(tmp), processes, redis_url, threads)
        crowd = None
        try:
            patients, boards, showing, tasks = clinic_read(servers[0])
            picked = tasks_pick(tasks, args.completions)
            time.sleep(1.0)  # the server settles after its start (upkeep's first run)
            rss_before = [rss_kib(server.process.pid) for server in servers]
            crowd, connect_s, connect_all_s = crowd_connect(
                servers, clients=args.clients, displays=args.displays, patients=patients,
                boards=boards, parallel=args.parallel)
            time.sleep(1.0)
            rss_after = [rss_kib(server.process.pid) for server in servers]
            rss_per_client = (sum(rss_after) - sum(rss_before)) / args.clients
            print(f"[{label}] {len(crowd.listeners)} clients connected in {connect_all_s:.1f} s "
                  f"({args.parallel} at a time; each: p50 "
                  f"{percentile(connect_s, 0.5) * 1000:.0f} ms, p99 "
                  f"{percentile(connect_s, 0.99) * 1000:.0f} ms) "
                  f"({args.displays} displays on {len(boards)} boards, "
                  f"{args.clients - args.displays} sheets on {len(patients)} patients), "
                  f"{len(tasks)} open tasks; set-up {time.perf_counter() - started:.1f} s")
            print(f"[{label}] server memory (RSS) {sum(rss_before) / 1024:.0f} MiB before, "
                  f"{sum(rss_after) / 1024:.0f} MiB connected: "
                  f"{rss_per_client:.0f} KiB per connection")
            began = time.perf_counter()
            client_cpu = resource.getrusage(resource.RUSAGE_SELF)
            server_cpu = sum(cpu_seconds(server.process.pid) for server in servers)
            result = completions_run(crowd, servers[0], picked, showing, args.wait)
            took = time.perf_counter() - began
            after = resource.getrusage(resource.RUSAGE_SELF)
            client_cpu_s = (after.ru_utime + after.ru_stime
                            - client_cpu.ru_utime - client_cpu.ru_stime)
            server_cpu_s = sum(cpu_seconds(server.process.pid) for server in servers) \
                - server_cpu
        finally:
            if crowd is not None:
                crowd.close()
            logs = [server.log_text() for server in servers]
            for server in servers:
                server.stop()
    lat = result["latencies"]
    p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
    lines = [line for log in logs for line in log.splitlines()]
    # The development server logs each WebSocket's closing frames as a bad request.
    bad_close = sum(1 for line in lines if "ERROR werkzeug" in line and "code 400" in line)
    error_lines = [line for line in lines if ("ERROR" in line or "Traceback" in line)
                   and "code 400" not in line]
    errors = len(error_lines)
    for line in error_lines[:3]:  # what they were, not only how many
        print(f"[{label}] server log: {line[:300]}")
    print(f"[{label}] {args.completions} completions in {took:.1f} s; "
          f"{len(lat)} pokes heard, {result['before_response']} before the HTTP response")
    print(f"[{label}] latency after the response: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(lat, default=0):.1f} ms")
    print(f"[{label}] since the request was sent: p50 "
          f"{percentile(result['since_request'], 0.5):.1f} ms, p99 "
          f"{percentile(result['since_request'], 0.99):.1f} ms; HTTP completion p50 "
          f"{statistics.median(result['http_ms']):.1f} ms, p99 "
          f"{percentile(result['http_ms'], 0.99):.1f} ms")
    print(f"[{label}] missed: {result['missed_pokes']} pokes, {result['missed_clients']} "
          f"clients; pokes outside the expected rooms: {result['unexpected']}; "
          f"errors in server logs: {errors} (and {bad_close} closing handshakes "
          f"logged as bad requests)")
    print(f"[{label}] CPU during the completions ({took:.1f} s): this client process "
          f"{client_cpu_s:.1f} s ({client_cpu_s / took:.0%} of one core: the clients' "
          f"threads share one interpreter), server {server_cpu_s:.1f} s "
          f"({server_cpu_s / took:.0%} of one core)")
    return {"processes": processes, "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
            "connect_all_s": round(connect_all_s, 1),
            "connect_p50_ms": round(percentile(connect_s, 0.5) * 1000, 1),
            "connect_p99_ms": round(percentile(connect_s, 0.99) * 1000, 1),
            "rss_before_mib": round(sum(rss_before) / 1024, 1),
            "rss_connected_mib": round(sum(rss_after) / 1024, 1),
            "rss_per_connection_kib": round(rss_per_client, 1),
            "client_cpu_share": round(client_cpu_s / took, 2),
            "server_cpu_share": round(server_cpu_s / took, 2),
            "missed": result["missed_clients"], "missed_pokes": result["missed_pokes"],
            "before_response": result["before_response"], "pokes": len(lat),
            "since_request_p50_ms": round(percentile(result["since_request"], 0.5), 1),
            "since_request_p99_ms": round(percentile(result["since_request"], 0.99), 1),
            "http_p50_ms": round(statistics.median(result["http_ms"]), 1),
            "seconds": round(took, 1)}


def redis_problem(url: str) -> str | None:
    """None when Redis answers, else why not."""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


def main() -> None:
    """Parse arguments, run both set-ups, print the figures and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--displays", type=int, default=30)
    parser.add_argument("--completions", type=int, default=500)
    parser.add_argument("--wait", type=float, default=2.0, help="seconds before a miss")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--parallel", type=int, default=20,
                        help="clients connecting at the same time")
    args = parser.parse_args()

    single = phase(args, 1, None)
    out = {"bench": "live", "server": "kiosk run", "clients": args.clients,
           "completions": args.completions,
           "p50_ms": single["p50_ms"], "p99_ms": single["p99_ms"],
           **{key: single[key] for key in (
               "connect_all_s", "connect_p50_ms", "connect_p99_ms", "rss_before_mib",
               "rss_connected_mib", "rss_per_connection_kib", "client_cpu_share",
               "server_cpu_share")},
           "missed": single["missed"], "missed_pokes": single["missed_pokes"],
           "before_response": single["before_response"], "pokes": single["pokes"],
           "since_request_p50_ms": single["since_request_p50_ms"],
           "since_request_p99_ms": single["since_request_p99_ms"], "redis": None}
    problem = "--no-redis given" if args.no_redis else redis_problem(args.redis_url)
    if problem:
        print(f"Redis run skipped: {problem}")
    else:
        out["redis"] = phase(args, 2, args.redis_url)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
