#!/usr/bin/env python3
"""Load benchmark: Envoy CPU per request with Warden versus the same Envoy without filters.

Starts the fake Claude upstream and two gateways on free 127.0.0.1 ports — `warden` (jwt_authn +
warden.wasm, the demo policy with a throw-away issuer) and `baseline` (the same bootstrap with both
filters removed and the upstream key added by the route) — then sends the same requests through
each with keep-alive client threads and reads each Envoy's CPU time from /proc. The fake upstream's
and the client's CPU are not counted, so a slow fake does not skew the per-request figure.

  .venv/bin/python scripts/bench.py [--requests 2000] [--concurrency 4] [--body-kb 60]
                                    [--stream] [--max-seconds 120]

Traffic goes only to 127.0.0.1, and every run is bounded by --requests and --max-seconds.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_envoy  # noqa: E402

REPO = render_envoy.REPO
PY = sys.executable
WASM = Path(os.environ.get("WARDEN_WASM") or REPO / "target/wasm32-wasip1/release/warden.wasm")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def make_issuer(tmp: Path) -> tuple[Path, str]:
    """A throw-away ES256 key: (jwks path, a 1-hour token for alice/eng)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    nums = key.public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()

    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256",
                                          "use": "sig", "kid": "bench", "x": b64(nums.x),
                                          "y": b64(nums.y)}]}))
    now = int(time.time())
    token = jwt.encode({"iss": "warden-bench", "aud": "warden", "sub": "alice",
                        "groups": ["eng"], "iat": now, "exp": now + 3000},
                       key, algorithm="ES256", headers={"kid": "bench"})
    return jwks, token


def request_body(kb: int, stream: bool) -> bytes:
    """A Claude-Code-like Messages request of about `kb` KiB: history, tools, system prompt."""
    messages = []
    filler = "The quick brown fox jumps over the lazy dog while the build runs. "
    i = 0
    while len(json.dumps(messages)) < kb * 1024:
        role = "user" if i % 2 == 0 else "assistant"
        messages.append({"role": role, "content": [{"type": "text",
                                                     "text": f"turn {i}: " + filler * 20}]})
        i += 1
    if messages[-1]["role"] != "user":
        messages.append({"role": "user", "content": "Continue."})
    tools = [{"name": f"tool_{n}", "description": "A tool.",
              "input_schema": {"type": "object", "properties": {"arg": {"type": "string"}},
                               "required": ["arg"]}} for n in range(12)]
    return json.dumps({"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024,
                       "stream": stream, "system": "You are a helpful assistant.",
                       "tools": tools, "messages": messages}).encode()


class Proc:
    def __init__(self, cmd: list[str], log: Path, env: dict | None = None) -> None:
        self.log = log
        self.fh = open(log, "wb")
        self.p = subprocess.Popen(cmd, stdout=self.fh, stderr=subprocess.STDOUT, env=env,
                                  cwd=REPO, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        self.fh.close()


def wait_ready(proc: Proc, admin_port: int, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            sys.exit(f"bench: Envoy exited during start-up; log: {proc.log}\n"
                     + proc.log.read_text(errors="replace")[-4000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=2) as r:
                if r.read().strip() == b"LIVE":
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"bench: Envoy not ready after {timeout}s; log: {proc.log}")


def baseline_config(warden_config: Path, out: Path, api_key_header: bool) -> None:
    """The Warden bootstrap with jwt_authn and the wasm removed (the 'bare Envoy' reference)."""
    cfg = yaml.safe_load(warden_config.read_text())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [f for f in hcm["http_filters"]
                           if f["name"] == "envoy.filters.http.router"]
    for vh in hcm["route_config"]["virtual_hosts"]:
        for route in vh["routes"]:
            route.pop("typed_per_filter_config", None)
            if "route" in route and api_key_header:
                route["request_headers_to_add"] = [{
                    "header": {"key": "x-api-key", "value": "%ENVIRONMENT(ANTHROPIC_API_KEY)%"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]
                route["request_headers_to_remove"] = route.get("request_headers_to_remove", []) \
                    + ["authorization"]
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))


def load(port: int, body: bytes, headers: dict, n: int, concurrency: int,
         deadline: float) -> tuple[int, int, float, dict[int, int]]:
    """Send n POSTs with `concurrency` keep-alive connections: (ok, errors, seconds, statuses)."""
    lock = threading.Lock()
    state = {"left": n, "ok": 0, "err": 0}
    statuses: dict[int, int] = {}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if state["left"] <= 0 or time.monotonic() > deadline:
                    break
                state["left"] -= 1
            try:
                conn.request("POST", "/v1/messages?beta=true", body, headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = 0
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                state["ok" if status == 200 else "err"] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return state["ok"], state["err"], time.monotonic() - t0, statuses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--body-kb", type=int, default=60)
    ap.add_argument("--stream", action="store_true", help="stream: true requests (SSE answers)")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--max-seconds", type=float, default=120.0,
                    help="stop each measured run after this long (default 120)")
    ap.add_argument("--policy", default=str(REPO / "envoy/policy.yaml"))
    args = ap.parse_args()
    if not WASM.is_file():
        sys.exit(f"bench: {WASM} is missing: run `make build` first")

    tmp = Path(tempfile.mkdtemp(prefix="warden-bench-"))
    jwks, token = make_issuer(tmp)
    policy = yaml.safe_load(Path(args.policy).read_text())
    policy.setdefault("identity", {})["providers"] = [{
        "name": "bench", "issuer": "warden-bench", "audiences": ["warden"],
        "jwks": {"file": str(jwks)}}]
    policy_path = tmp / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
    api_key = "sk-bench-" + secrets.token_hex(12)
    key_file = tmp / "key"
    key_file.write_text(api_key)

    procs: list[Proc] = []
    try:
        fake_port = free_port()
        fake = Proc([PY, str(REPO / "scripts/fake_claude.py"), "--port", str(fake_port),
                     "--api-key", api_key], tmp / "fake.log")
        procs.append(fake)
        upstream = f"http://127.0.0.1:{fake_port}"
        for _ in range(100):
            if b"listening" in fake.log.read_bytes():
                break
            time.sleep(0.05)

        gateways = {}
        for name in ("warden", "baseline"):
            port, admin = free_port(), free_port()
            config = tmp / f"{name}.yaml"
            render_args = ["--policy", str(policy_path), "--wasm", str(WASM), "--upstream",
                           upstream, "--port", str(port), "--admin-port", str(admin)]
            if name == "warden":
                cmd = [PY, str(REPO / "scripts/run_envoy.py"), *render_args,
                       "--config-out", str(config), "--log-level", "warning",
                       "--credential-file", f"ANTHROPIC_API_KEY={key_file}"]
                env = dict(os.environ)
            else:
                render_envoy.main([*render_args, "--out", str(tmp / "w.yaml")])
                baseline_config(tmp / "w.yaml", config, api_key_header=True)
                cmd = [str(envoy_path()), "-c", str(config), "--concurrency", "1",
                       "--log-level", "warning", "--disable-hot-restart"]
                env = dict(os.environ, ANTHROPIC_API_KEY=api_key)
            proc = Proc(cmd, tmp / f"{name}.log", env)
            procs.append(proc)
            wait_ready(proc, admin, port)
            gateways[name] = (proc, port)

        body = request_body(args.body_kb, args.stream)
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
                   "anthropic-version": "2023-06-01"}
        print(f"bench: {args.requests} POST /v1/messages of {len(body) // 1024} KiB "
              f"(stream={args.stream}), {args.concurrency} connections, 1 Envoy worker each")
        results = {}
        for name, (proc, port) in gateways.items():
            load(port, body, headers, args.warmup, args.concurrency, time.monotonic() + 60)
            cpu0 = cpu_seconds(proc.p.pid)
            ok, err, secs, statuses = load(port, body, headers, args.requests, args.concurrency,
                                           time.monotonic() + args.max_seconds)
            cpu = cpu_seconds(proc.p.pid) - cpu0
            done = ok + err
            results[name] = cpu / max(done, 1)
            print(f"  {name:9s} {done:6d} requests in {secs:6.1f}s ({done / secs:7.0f} req/s), "
                  f"statuses {dict(sorted(statuses.items()))}, "
                  f"Envoy CPU {cpu * 1e6 / max(done, 1):8.1f} µs/request")
            if err:
                print(f"  {name}: {err} requests did not get 200 (log: {proc.log})")
        ratio = results["warden"] / results["baseline"] if results["baseline"] else float("nan")
        print(f"bench: Warden costs {ratio:.2f}x the CPU of bare Envoy per request "
              f"(target: <= 2x)")
        return 0
    finally:
        for p in reversed(procs):
            p.stop()


def envoy_path() -> Path:
    import envoy  # type: ignore[import-not-found]

    return Path(envoy.__file__).resolve().parent / "_bin" / "envoy"


if __name__ == "__main__":
    sys.exit(main())
