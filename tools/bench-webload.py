#!/usr/bin/env python3
"""Load for gradeq-web (tools/bench --web, tools/bench-web): N Server-Sent Events clients and
R API requests a second for S seconds, as one logged-in user. Prints one
JSON object: requests, errors, latencies, SSE clients still connected at
the end, events received."""
import http.client
import json
import sys
import threading
import time

host, port, cookie, run_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sse_clients, rate, seconds = int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
WORKERS = 16
paths = ["/api/status", f"/api/runs/{run_id}", f"/api/runs/{run_id}/jobs?limit=50",
         "/api/dead?limit=50", "/api/states"]
headers = {"Cookie": f"gradeq_session={cookie}"}
lock = threading.Lock()
stats = {"requests": 0, "errors": 0, "lat": [], "sse_events": 0, "sse_lost": 0,
         "sse_connected_at_end": 0, "error_samples": []}
stop = threading.Event()


def worker(i):
    conn = None
    period = WORKERS / rate
    t = time.monotonic() + i * period / WORKERS
    k = i
    while not stop.is_set():
        now = time.monotonic()
        if t > now:
            time.sleep(t - now)
        t += period
        path = paths[k % len(paths)]
        k += 1
        t0 = time.monotonic()
        ok = False
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            ok = r.status == 200 and body[:1] == b"{"
            if not ok:
                err = f"{path}: HTTP {r.status} {body[:100]!r}"
        except Exception as e:  # a broken connection counts as an error
            err = f"{path}: {e}"
            conn = None
        ms = (time.monotonic() - t0) * 1000
        with lock:
            stats["requests"] += 1
            stats["lat"].append(ms)
            if not ok:
                stats["errors"] += 1
                if len(stats["error_samples"]) < 5:
                    stats["error_samples"].append(err)


def sse(i):
    try:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", "/api/events", headers=headers)
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}")
        while not stop.is_set():
            line = r.fp.readline()
            if not line:
                raise RuntimeError("stream ended")
            if line.startswith(b"event: gradeq"):
                with lock:
                    stats["sse_events"] += 1
        with lock:
            stats["sse_connected_at_end"] += 1
        conn.close()
    except Exception:
        with lock:
            stats["sse_lost"] += 1


threads = [threading.Thread(target=sse, args=(i,), daemon=True) for i in range(sse_clients)]
threads += [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
for t in threads:
    t.start()
start = time.monotonic()
time.sleep(seconds)
stop.set()
elapsed = time.monotonic() - start
for t in threads:
    t.join(timeout=40)
lat = sorted(stats.pop("lat")) or [0]
stats["seconds"] = round(elapsed, 1)
stats["requests_per_s"] = round(stats["requests"] / elapsed, 1)
stats["p50_ms"] = round(lat[len(lat) // 2], 1)
stats["p95_ms"] = round(lat[int(len(lat) * 0.95)], 1)
stats["max_ms"] = round(lat[-1], 1)
print(json.dumps(stats))
