#!/usr/bin/env python3
"""How fast spend is summed on a big audit store: ingests N synthetic records (with usage and
cost) into a real `warden serve` over its ingest API, then times `warden usage` (several
groupings, the whole store and a one-week window) and the `/usage` page.

    .venv/bin/python scripts/bench_usage.py [--records 219000]

Needs the release binary (`cargo build --release --bin warden`). Prints one line per measurement
(the median of 5 runs); docs/usage.md records the numbers."""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WARDEN = REPO / "target" / "release" / "warden"
DAY_MS = 86_400_000
START = 1_793_577_600_000  # 2026-11-02T00:00:00Z
POLICY = (REPO / "tests" / "fixtures" / "audit-policy.yaml").read_text().replace("auditors: [audit]", "auditors: [leads]")


def warden(*args: str) -> str:
    return subprocess.run([str(WARDEN), *args], check=True, capture_output=True, text=True).stdout


def records(count: int, seed: int = 7):
    rng = random.Random(seed)
    roles = ["developer", "analyst", "ci", "support", "research"]
    models = ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-1"]
    for seq in range(1, count + 1):
        subject = f"user-{rng.randrange(200):03d}"
        usage = {"input_tokens": rng.randrange(5000), "output_tokens": rng.randrange(2000),
                 "cache_read_input_tokens": rng.randrange(50_000), "cache_creation_input_tokens": rng.randrange(3000)}
        yield {"version": 1, "source": "gw-bench", "seq": seq, "id": f"gw-bench-{seq}",
               "session_id": f"s-{seq // 50}", "job_id": None,
               "identity": {"subject": subject, "role": rng.choice(roles), "issuer": "warden-demo"},
               "model": rng.choice(models), "outcome": "completed", "decision": {"allowed": True},
               "timings": {"start": START + rng.randrange(60 * DAY_MS), "end": 0}, "usage": usage,
               "cost_nanos": rng.randrange(100_000_000)}


def timed(label: str, run) -> None:
    samples = []
    for _ in range(5):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    print(f"{label}: {statistics.median(samples) * 1000:.0f} ms (median of 5)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=219_000)
    args = parser.parse_args()
    if not WARDEN.exists():
        print(f"{WARDEN} is missing: cargo build --release --bin warden", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        warden("token", "init", "--dir", tmp)
        warden("serve", "init", "--dir", tmp)
        (d / "policy.yaml").write_text(POLICY)
        db = d / "warden.db"
        serve = subprocess.Popen([str(WARDEN), "serve", "--policy", str(d / "policy.yaml"), "--listen", "127.0.0.1:0",
                                  "--db", str(db), "--signing-key", str(d / "approvals-signing-key.pem"),
                                  "--gateway-token-file", str(d / "approvals-token")],
                                 stderr=subprocess.PIPE, text=True)
        try:
            base = None
            assert serve.stderr is not None
            for line in serve.stderr:
                found = re.search(r"listening on (http://\S+)", line)
                if found:
                    base = found.group(1)
                    break
            if base is None:
                print("warden serve did not start", file=sys.stderr)
                return 1
            threading.Thread(target=lambda: [None for _ in serve.stderr], daemon=True).start()  # keep the pipe drained
            token = (d / "approvals-token").read_text().strip()
            batch: list[str] = []
            began = time.perf_counter()

            def send() -> None:
                req = urllib.request.Request(f"{base}/v1/audit/records", data="".join(batch).encode(), method="POST",
                                             headers={"authorization": f"Bearer {token}",
                                                      "content-type": "application/x-ndjson"})
                with urllib.request.urlopen(req, timeout=120) as r:
                    assert r.status == 200
                batch.clear()

            for record in records(args.records):
                batch.append(json.dumps(record) + "\n")
                if len(batch) == 5000:
                    send()
            if batch:
                send()
            elapsed = time.perf_counter() - began
            print(f"ingest: {args.records} records in {elapsed:.1f} s ({args.records / elapsed:.0f} records/s, "
                  "usage rows written by the trigger included)")
            for by in ("subject", "role,model", "day", "role,day"):
                timed(f"warden usage --by {by} (whole store)",
                      lambda by=by: warden("usage", "--db", str(db), "--by", by, "--json"))
            timed("warden usage --by subject (one week)", lambda: warden(
                "usage", "--db", str(db), "--since", "2026-11-10", "--until", "2026-11-16", "--json"))
            auditor = warden("token", "mint", "--dir", tmp, "--sub", "bench", "--groups", "leads",
                             "--audience", "warden-approvals").strip()

            def page(query: str) -> None:
                req = urllib.request.Request(f"{base}/usage?{query}", headers={"authorization": f"Bearer {auditor}"})
                with urllib.request.urlopen(req, timeout=60) as r:
                    assert r.status == 200 and b'id="usage-chart"' in r.read()

            timed("GET /usage, 60 days", lambda: page("from=2026-11-02&to=2026-12-31&tz=0"))
            timed("GET /usage, 14 days", lambda: page("from=2026-11-10&to=2026-11-23&tz=0"))
        finally:
            serve.terminate()
            serve.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
