"""Load test of the web demo on loopback: N requests from C concurrent clients against `python -m app`.

Starts the server as its own process (waitress, as `make serve` does), waits for it, sends a bounded
number of `POST /api/predict` requests with real CCP photos from C client threads, then stops it.
Reports errors, latency median / p95 / max, throughput and the server-side stage timings, as JSON and a
markdown table under runs/bench/ (app.json, app.md).  Figures only: nothing is asserted.

    python bench/bench_app.py                       # 200 requests, 8 clients, models "auto"
    python bench/bench_app.py --quick               # 8 requests, 4 clients, untrained small models
    python bench/bench_app.py --clothing-detector runs/04_train_fasterrcnn/latest --mode direct
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np

from clothingrec.paths import CCP, PROJECT_ROOT, RUNS_DIR, configure_environment, find_dataset


def _multipart(data: bytes, filename: str, fields: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                 "Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post(url: str, data: bytes, filename: str, fields: dict, timeout: float) -> tuple[int, dict | None]:
    body, ctype = _multipart(data, filename, fields)
    req = urllib.request.Request(url + "/api/predict", data=body, method="POST", headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, None


def start_server(server_args: list[str], startup_timeout: float) -> tuple[subprocess.Popen, str, list[str]]:
    """`python -m app --port 0 ...` in the project root; returns (process, base url, log lines)."""
    cmd = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", "0", *server_args]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    found: dict = {}

    def reader():
        for line in proc.stdout:
            lines.append(line.rstrip())
            if "serving on http://" in line and "url" not in found:
                found["url"] = line.split("serving on ", 1)[1].split("/ ", 1)[0].rstrip("/")

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + startup_timeout
    while "url" not in found:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError("the app did not start:\n" + "\n".join(lines[-30:]))
        time.sleep(0.2)
    return proc, found["url"], lines


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def run_load(url: str, images: list[tuple[str, bytes]], *, requests: int, clients: int, mode: str,
             timeout: float, deadline_s: float) -> dict:
    """``requests`` POSTs shared by ``clients`` threads (bounded in count and by ``deadline_s``)."""
    lock = threading.Lock()
    state = {"next": 0}
    records: list[dict] = []
    stop_at = time.monotonic() + deadline_s

    def client(cid: int):
        while True:
            with lock:
                i = state["next"]
                if i >= requests or time.monotonic() > stop_at:
                    return
                state["next"] += 1
            name, data = images[i % len(images)]
            t = time.perf_counter()
            try:
                status, body = post(url, data, name, {"mode": mode}, timeout)
                error = None if status == 200 and body and "detections" in body else f"HTTP {status}"
            except Exception as exc:  # noqa: BLE001 - counted as an error
                status, body, error = 0, None, f"{type(exc).__name__}: {exc}"
            rec = {"i": i, "client": cid, "status": status, "latency_ms": 1000 * (time.perf_counter() - t),
                   "error": error}
            if body and "timings_ms" in body:
                rec["server_ms"] = body["timings_ms"]
                rec["mode_used"] = body.get("mode_used")
            with lock:
                records.append(rec)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=deadline_s + timeout + 30)
    wall = time.perf_counter() - t0
    ok = [r["latency_ms"] for r in records if r["error"] is None]
    stages = {}
    for key in ("queue_wait", "decode", "pipeline_person", "pipeline_clothing", "classify", "total"):
        values = [r["server_ms"][key] for r in records if "server_ms" in r and key in r["server_ms"]]
        if values:
            stages[key] = round(statistics.median(values), 1)
    return {
        "requests_planned": requests, "requests_sent": len(records), "clients": clients, "mode": mode,
        "errors": sum(r["error"] is not None for r in records),
        "error_examples": sorted({r["error"] for r in records if r["error"]})[:5],
        "status_counts": {str(s): sum(r["status"] == s for r in records)
                          for s in sorted({r["status"] for r in records})},
        "fallbacks": sum(r.get("mode_used") == "direct" for r in records) if mode == "two-stage" else None,
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 3) if wall > 0 else None,
        "latency_ms": ({"median": round(statistics.median(ok), 1), "p95": round(float(np.percentile(ok, 95)), 1),
                        "mean": round(statistics.fmean(ok), 1), "min": round(min(ok), 1), "max": round(max(ok), 1)}
                       if ok else None),
        "server_median_ms": stages,
        "stopped_by_deadline": len(records) < requests,
    }


def main(argv=None) -> dict:
    configure_environment()  # project caches, offline: before any model (ultralytics) is loaded
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="8 requests, 4 clients, untrained small models (seconds)")
    p.add_argument("--requests", type=int, default=None)
    p.add_argument("--clients", type=int, default=None)
    p.add_argument("--mode", choices=("two-stage", "direct"), default="two-stage")
    p.add_argument("--images", type=int, default=None, help="number of distinct CCP photos cycled through")
    p.add_argument("--timeout", type=float, default=300.0, help="per request, seconds")
    p.add_argument("--deadline", type=float, default=None, help="stop sending after this many seconds")
    p.add_argument("--warmup", type=int, default=None, help="uncounted requests first (default 2; --quick 0)")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench")
    p.add_argument("server_args", nargs="*", help="passed to `python -m app` (after --), e.g. -- --threads 2")
    args = p.parse_args(argv)
    if args.quick:
        requests, clients = args.requests or 8, args.clients or 4
        n_images, deadline = args.images or 2, args.deadline or 120
        server_args = ["--person-detector", "untrained", "--clothing-detector", "untrained", "--classifier",
                       "untrained", "--smoke-min-size", "128", "--max-persons", "1", "--person-score-threshold", "0",
                       "--threads", "2",
                       *args.server_args]
    else:
        requests, clients, n_images, deadline = (args.requests or 200, args.clients or 8, args.images or 20,
                                                 args.deadline or 1800)
        server_args = list(args.server_args)
    photos = sorted((find_dataset(CCP) / "photos").glob("*.jpg"))[:n_images]
    if not photos:
        raise SystemExit("no CCP photos found (run `make data`)")
    images = [(ph.name, ph.read_bytes()) for ph in photos]

    proc, url, log = start_server(server_args, startup_timeout=300)
    try:
        with urllib.request.urlopen(url + "/api/info", timeout=30) as resp:
            info = json.loads(resp.read())
        warmup = args.warmup if args.warmup is not None else (0 if args.quick else 2)
        for k in range(warmup):  # not counted (the server already ran each model once at start)
            name, data = images[k % len(images)]
            post(url, data, name, {"mode": args.mode}, args.timeout)
        result = run_load(url, images, requests=requests, clients=clients, mode=args.mode,
                          timeout=args.timeout, deadline_s=deadline)
        with urllib.request.urlopen(url + "/healthz", timeout=30) as resp:
            result["healthz_after"] = json.loads(resp.read())
    finally:
        stop_server(proc)
    result.update({
        "benchmark": "app", "quick": args.quick, "server_args": server_args, "images": len(images),
        "weights": info["weights"], "models": {k: v["architecture"] for k, v in info["models"].items()},
        "device": info["device"], "torch_threads": info["torch_threads"], "replicas": info["replicas"],
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    })
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "app_quick" if args.quick else "app"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    lat = result["latency_ms"] or {}
    srv = result["server_median_ms"]
    md = [f"## Web demo load test{' (quick)' if args.quick else ''}\n",
          f"`python bench/bench_app.py{' --quick' if args.quick else ''}`: {result['requests_sent']} × "
          f"`POST /api/predict` ({args.mode}) from {clients} concurrent clients on loopback, "
          f"{len(images)} CCP photos, waitress + {info['replicas']} model cop{'y' if info['replicas'] == 1 else 'ies'} "
          f"on {info['device']} ({info['torch_threads']} torch threads); weights: {info['weights']}.\n",
          "| requests | errors | median ms | p95 ms | max ms | req/s | server queue ms | pipeline ms | classify ms |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
          f"| {result['requests_sent']} | {result['errors']} | {lat.get('median', '—')} | {lat.get('p95', '—')} | "
          f"{lat.get('max', '—')} | {result['throughput_rps']} | {srv.get('queue_wait', '—')} | "
          f"{round(srv.get('pipeline_person', 0) + srv.get('pipeline_clothing', 0), 1)} | {srv.get('classify', '—')} |",
          ""]
    (args.out / f"{stem}.md").write_text("\n".join(md))
    print("\n".join(md))
    return result


if __name__ == "__main__":
    main()
