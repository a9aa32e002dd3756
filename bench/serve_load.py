"""``geodesk serve`` under hostile load: many clients, slow clients, a connection flood, disconnects.

    .venv/bin/python -m bench.serve_load [--clients 32] [--slow 40] [--flood 80] [--tokens 8]

The real command (``geodesk serve --model TINY --port 0``) runs as a subprocess on 127.0.0.1 with its
default limits (64 connections, queue 8, headers within 10 s); the clients run in this process, so the
server's threads and memory are read from ``/proc/<pid>/status`` alone. Phases, in one run:

  idle         5 single requests one after the other: the baseline latency, threads and RSS
  burst        --clients concurrent clients x 2 requests; a 503 is retried after its Retry-After
  slowloris    --slow connections trickling one header byte a second for 12 s while 8 clients
               send 2 requests each: every normal request must be answered; the server must close
               every slow connection at its header deadline
  flood        --flood connections that send nothing: requests beyond the connection cap get 503
               (not a hang); after the header deadline the server answers again
  disconnect   4 streamed requests for 200 tokens, each closed after its first token: the worker must
               be idle again long before 200 tokens take (the full 200-token time is measured first)

Targets: every normal request answered (200) in every phase; server threads never above idle + 4
(connections cost no thread); RSS growth under 300 MB; a disconnect frees the model within 25 % of a
full answer's time. Writes bench/results/serve_load.json (sizes, counts, latencies, peaks, ratios).
Loopback only; bounded to about two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_common import machine, median, write_result

REPO = Path(__file__).resolve().parent.parent


def stack_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("starlette", "uvicorn", "h11")}


def proc_status(pid: int) -> tuple[int, int]:
    """(threads, RSS bytes) of a process, from /proc."""
    threads = rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return threads, rss


class Monitor:
    """Samples the server's threads and RSS every 20 ms; ``peaks()`` since the last ``reset()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            with self.lock:
                self.samples.append(proc_status(self.pid))

    def reset(self) -> None:
        with self.lock:
            self.samples = []

    def peaks(self) -> dict[str, int]:
        with self.lock:
            samples = list(self.samples) or [proc_status(self.pid)]
        return {"threads_peak": max(t for t, _ in samples), "rss_peak_bytes": max(r for _, r in samples)}


def body(tokens: int, stream: bool = False) -> bytes:
    return json.dumps(
        {
            "messages": [{"role": "user", "content": "Where was this photo taken? Answer in json."}],
            "max_tokens": tokens,
            "stream": stream,
        }
    ).encode()


def post(port: int, tokens: int, patience_s: float = 300.0) -> tuple[int, float, int]:
    """(final status, seconds, 503s seen) for one completion, retrying 503 after its Retry-After for
    up to ``patience_s`` (as the remote backend does, with a longer budget: 32 clients share one
    model that answers one request at a time)."""
    started = time.perf_counter()
    busy = 0
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("POST", "/v1/chat/completions", body(tokens), {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 503 or time.perf_counter() - started > patience_s:
                return response.status, time.perf_counter() - started, busy
            busy += 1
            time.sleep(min(float(response.getheader("Retry-After") or 1), 2.0))
        except OSError:
            busy += 1
            if time.perf_counter() - started > patience_s:
                return 0, time.perf_counter() - started, busy
            time.sleep(0.2)
        finally:
            conn.close()


def health(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        return {"status": response.status, **(json.loads(response.read()) if response.status == 200 else {})}
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_clients(port: int, clients: int, each: int, tokens: int) -> dict[str, Any]:
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda _: [post(port, tokens) for _ in range(each)], range(clients)))
    flat = [r for rs in results for r in rs]
    latencies = [s for _, s, _ in flat]
    return {
        "requests": len(flat),
        "answered_200": sum(1 for status, _, _ in flat if status == 200),
        "retried_503": sum(b for _, _, b in flat),
        "latency_p50_s": round(median(latencies), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
    }


def slowloris(port: int, count: int, hold_s: float) -> dict[str, Any]:
    """Open ``count`` connections that trickle a header byte per second; how many the server closed."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sock.setblocking(False)
        socks.append(sock)
    closed: dict[int, float] = {}
    started = time.monotonic()
    while time.monotonic() - started < hold_s and len(closed) < count:
        for i, sock in enumerate(socks):
            if i in closed:
                continue
            try:
                if sock.recv(1024) == b"":
                    closed[i] = time.monotonic() - started
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic() - started
                continue
            try:
                sock.send(b"X")
            except OSError:
                closed[i] = time.monotonic() - started
        time.sleep(1.0)
    for sock in socks:
        sock.close()
    return {
        "slow_connections": count,
        "closed_by_server": len(closed),
        "closed_after_s_max": round(max(closed.values()), 1) if closed else None,
    }


def flood(port: int, count: int, tokens: int) -> dict[str, Any]:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
    time.sleep(0.5)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", body(tokens), {"Content-Type": "application/json"})
        during = conn.getresponse().status
    except OSError:
        during = 0
    finally:
        conn.close()
    deadline = time.monotonic() + 30
    after, waited = 0, 0.0
    started = time.monotonic()
    while time.monotonic() < deadline:
        status, _, _ = post(port, tokens, patience_s=0.0)
        if status == 200:
            after, waited = status, time.monotonic() - started
            break
        time.sleep(0.5)
    for sock in socks:
        sock.close()
    return {
        "idle_connections": count,
        "status_during_flood": during,
        "status_after": after,
        "answered_again_after_s": round(waited, 1),
    }


def stream_and_leave(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    payload = body(200, stream=True)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    received = b""
    while b'"content": "' not in received.replace(b'"content": ""', b""):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    sock.close()


def wait_idle(port: int, limit_s: float = 120) -> float:
    started = time.monotonic()
    time.sleep(0.05)
    while time.monotonic() - started < limit_s:
        state = health(port)
        if not state.get("busy") and not state.get("queue", {}).get("waiting"):
            return time.monotonic() - started
        time.sleep(0.02)
    return limit_s


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--slow", type=int, default=40)
    parser.add_argument("--flood", type=int, default=80)
    parser.add_argument("--tokens", type=int, default=8)
    args = parser.parse_args()

    from geodesk.engine.tiny import create_tiny_model

    with tempfile.TemporaryDirectory(prefix="geodesk-serve-load-") as tmp:
        model = Path(tmp) / "tiny"
        create_tiny_model(model, seed=0)
        env = {
            **os.environ,
            "GEODESK_WORKSPACE": str(Path(tmp) / "ws"),
            "PYTHONPATH": str(REPO),
            "GEODESK_API_KEY": "",
        }
        code = "import sys; from geodesk.cli import main; sys.exit(main(sys.argv[1:]))"
        cmd = [sys.executable, "-c", code, "serve", "--model", str(model), "--port", "0", "--json"]
        log_path = Path(tmp) / "serve.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env, text=True)
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line:
                raise SystemExit(f"geodesk serve did not start:\n{log_path.read_text()}")
            started = json.loads(line)
            port = int(started["url"].rsplit(":", 1)[1])
            monitor = Monitor(server.pid)
            phases: dict[str, Any] = {}

            singles = [post(port, args.tokens)[1] for _ in range(5)]
            idle_threads, idle_rss = proc_status(server.pid)
            phases["idle"] = {
                "latency_median_s": round(median(singles), 3),
                "threads": idle_threads,
                "rss_bytes": idle_rss,
            }

            monitor.reset()
            phases["burst"] = {
                "clients": args.clients,
                **run_clients(port, args.clients, 2, args.tokens),
                **monitor.peaks(),
            }

            monitor.reset()
            slow_result: dict[str, Any] = {}
            slow_thread = threading.Thread(
                target=lambda: slow_result.update(slowloris(port, args.slow, 14.0))
            )
            slow_thread.start()
            time.sleep(1.0)
            normal = run_clients(port, 8, 2, args.tokens)
            slow_thread.join()
            phases["slowloris"] = {**slow_result, "normal_clients": 8, **normal, **monitor.peaks()}

            monitor.reset()
            phases["flood"] = {**flood(port, args.flood, args.tokens), **monitor.peaks()}

            monitor.reset()
            conn_started = time.perf_counter()
            full = post(port, 200)
            full_s = time.perf_counter() - conn_started
            for _ in range(4):
                stream_and_leave(port)
            freed_s = wait_idle(port)
            after = post(port, args.tokens)
            phases["disconnect"] = {
                "full_200_token_answer_s": round(full_s, 3),
                "full_status": full[0],
                "four_disconnects_then_idle_s": round(freed_s, 3),
                "ratio_idle_to_one_full_answer": round(freed_s / full_s, 3),
                "status_after": after[0],
                **monitor.peaks(),
            }
            monitor.stop.set()
        finally:
            server.terminate()
            server.wait(30)

    peak_threads = max(p.get("threads_peak", 0) for p in phases.values())
    peak_rss = max(p.get("rss_peak_bytes", 0) for p in phases.values())
    answered = all(
        phases[name]["answered_200"] == phases[name]["requests"] for name in ("burst", "slowloris")
    )
    targets = {
        "every_normal_request_answered": answered
        and phases["flood"]["status_after"] == 200
        and phases["disconnect"]["status_after"] == 200,
        "slow_connections_all_closed": phases["slowloris"]["closed_by_server"] == args.slow,
        "flood_answered_503_not_hang": phases["flood"]["status_during_flood"] == 503,
        "threads_within_idle_plus_4": peak_threads <= idle_threads + 4,
        "rss_growth_under_300_mb": peak_rss - idle_rss < 300 * 1024 * 1024,
        "disconnect_frees_model_within_25_percent": phases["disconnect"]["ratio_idle_to_one_full_answer"]
        <= 0.25,
    }
    document = {
        "benchmark": "serve_load",
        "machine": {**machine(), **stack_versions()},
        "size": {
            "model": "tiny (geodesk.engine.tiny)",
            "clients": args.clients,
            "slow": args.slow,
            "flood": args.flood,
            "tokens": args.tokens,
            "server_limits": "defaults (64 connections, queue 8, headers within 10 s, keep-alive 5 s)",
        },
        "phases": phases,
        "peaks": {
            "threads": peak_threads,
            "threads_idle": idle_threads,
            "rss_growth_bytes": peak_rss - idle_rss,
        },
        "targets": targets,
    }
    path = write_result("serve_load.json", document)
    print(json.dumps(document, indent=2))
    print(f"wrote {path}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
