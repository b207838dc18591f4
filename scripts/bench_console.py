#!/usr/bin/env python3
"""How fast the console's session pages are on a huge audit store (docs/benchmarks.md).

    .venv/bin/python scripts/bench_console.py [--requests 219000] [--history 20] [--sessions 2000]

Builds a `warden serve` database (migrated by the real service) holding one Claude Code session
of `--requests` requests plus `--sessions` small sessions of 10 requests, by inserting rows
straight into SQLite: records as the gateway writes them (identity, decision, usage, timings, a
response) whose `request.messages` name the last `--history` messages of the conversation (each
request adds a tool result and an answer, stored once as blobs). The chain fields are not
computed (the pages never read them: `warden audit verify` would fail on this database).

Then it starts `target/release/warden serve` on a free 127.0.0.1 port and times, over HTTP with
an auditor's bearer token, each page five times (median and worst, wall-clock at the client):
the huge session's first, middle and last pages of 50 turns, the session listing (newest, a date
window, and an older page), and prints a table. Numbers depend on the machine; nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from console_fixtures import blob_name, demo_policy, gateway_record

REPO = Path(__file__).resolve().parents[1]
WARDEN = REPO / "target" / "release" / "warden"
START_MS = 1_800_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warden(*args: str) -> str:
    out = subprocess.run([str(WARDEN), *args], capture_output=True, text=True, check=True)
    return out.stdout


def start_serve(directory: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(WARDEN), "serve", "--policy", str(directory / "policy.yaml"), "--listen", f"127.0.0.1:{port}",
         "--db", str(directory / "approvals.db"), "--signing-key", str(directory / "approvals-signing-key.pem"),
         "--gateway-token-file", str(directory / "approvals-token")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(directory / "serve.log", "ab"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"warden serve did not start:\n{(directory / 'serve.log').read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def record(seq: int, session: str, subject: str, time_ms: int, names: list[str], answer: str) -> dict:
    content = [{"type": "text", "text": answer},
               {"type": "tool_use", "id": f"toolu_{seq}", "name": "Bash", "input": {"command": f"make test-{seq}"}}]
    return gateway_record("gw-bench", seq, session, time_ms, names, content, subject, cost_nanos=21_900_000)


def fill(db: Path, requests: int, history: int, sessions: int) -> int:
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = OFF")
    rows, blobs, position = [], [], 0
    window: list[str] = []

    def add(seq: int, session: str, subject: str, time_ms: int, names: list[str], answer: str) -> None:
        nonlocal position
        position += 1
        text = json.dumps(record(seq, session, subject, time_ms, names, answer), separators=(",", ":"))
        rows.append((position, "gw-bench", seq, f"gw-bench-{seq}", session, None, subject, "developer", time_ms,
                     "completed", text, "x", "x"))
        if len(rows) >= 5000:
            flush()

    def flush() -> None:
        connection.executemany("INSERT INTO audit_records (position, source, seq, id, session_id, job_id, subject, role,"
                               " time, outcome, record, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        connection.executemany("INSERT OR IGNORE INTO audit_blobs (name, content) VALUES (?, ?)", blobs)
        rows.clear()
        blobs.clear()

    def message(text: str) -> str:
        name = blob_name(text)
        blobs.append((name, text))
        return name

    window.append(message(json.dumps({"role": "user", "content": "<system-reminder>\nThe project uses make.\n"
                                      "</system-reminder>\nMake the test suite pass."})))
    seq = 0
    for n in range(requests):
        seq += 1
        add(seq, "huge-session", "alice", START_MS + n * 4000, window[-history:], f"Step {n}: running the tests.")
        window.append(message(json.dumps({"role": "assistant", "content": [
            {"type": "text", "text": f"Step {n}: running the tests."},
            {"type": "tool_use", "id": f"toolu_{seq}", "name": "Bash", "input": {"command": f"make test-{seq}"}}]})))
        window.append(message(json.dumps({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{seq}", "content": f"{n} tests passed\n" * 20}]})))
    for s in range(sessions):
        prompt = message(json.dumps({"role": "user", "content": f"Question {s}"}))
        for n in range(10):
            seq += 1
            add(seq, f"small-{s:05}", f"user{s % 50}", START_MS + s * 400_000 + n * 1000, [prompt], f"Answer {n}")
    flush()
    connection.commit()
    connection.close()
    return position


def timed(url: str, token: str, runs: int = 5) -> tuple[float, float, int]:
    samples, size = [], 0
    for _ in range(runs):
        request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            body = response.read()
        samples.append(time.perf_counter() - began)
        size = len(body)
    return statistics.median(samples) * 1000, max(samples) * 1000, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=219_000, help="requests in the huge session")
    parser.add_argument("--history", type=int, default=20, help="messages each request re-sends")
    parser.add_argument("--sessions", type=int, default=2000, help="small sessions (10 requests each)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if not WARDEN.exists():
        sys.exit(f"{WARDEN} is missing: cargo build --release --bin warden")
    directory = Path(tempfile.mkdtemp(prefix="warden-bench-console-"))
    try:
        warden("token", "init", "--dir", str(directory))
        warden("serve", "init", "--dir", str(directory))
        port = free_port()
        demo_policy(directory, f"http://127.0.0.1:{port}")
        stop(start_serve(directory, port))  # migrates the empty database
        began = time.perf_counter()
        rows = fill(directory / "approvals.db", args.requests, args.history, args.sessions)
        size_mb = sum(f.stat().st_size for f in directory.glob("approvals.db*")) / 1e6
        print(f"store: {rows} records ({args.requests} in one session, {args.sessions} sessions of 10), "
              f"{size_mb:.0f} MB, filled in {time.perf_counter() - began:.0f} s")
        token = warden("token", "mint", "--dir", str(directory), "--sub", "bob", "--groups", "leads",
                       "--audience", "warden-approvals").strip()
        serve = start_serve(directory, port)
        try:
            base = f"http://127.0.0.1:{port}"
            middle = START_MS + (args.requests // 2) * 4000
            pages = [
                ("session: first 50 turns", "/sessions/huge-session"),
                ("session: 50 turns from the middle", f"/sessions/huge-session?after={middle}.{args.requests // 2}"),
                ("session: last 50 turns", "/sessions/huge-session?at=last"),
                ("sessions: newest 50", "/sessions"),
                ("sessions: a one-day window", "/sessions?since=2027-01-15T12:00%2B01:00&until=2027-01-16"),
                ("sessions: an older page", f"/sessions?older={START_MS + 1000 * 400_000}:small-01000"),
                ("sessions: one user's", "/sessions?user=user7"),
            ]
            print(f"{'page':40} {'median ms':>10} {'worst ms':>10} {'bytes':>10}")
            for label, path in pages:
                median, worst, size = timed(base + path, token)
                print(f"{label:40} {median:10.1f} {worst:10.1f} {size:10}")
        finally:
            stop(serve)
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
