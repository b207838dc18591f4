#!/usr/bin/env python3
"""Load benchmark: Envoy with Warden against the same Envoy without it, in one run, as ratios.

What runs (everything on 127.0.0.1, on free ports; all processes are stopped at the end):

  upstream   a separate Envoy answering every POST /v1/messages with a canned Anthropic SSE stream
             (or a Message JSON with --no-stream) from a `direct_response`, after buffering the
             whole request body. It is fast and jitter-free, and it is not measured. It answers 200
             only to `x-api-key: <the gateway's key>` and no `authorization` header, so every 200
             also proves the gateway swapped the credential.
  warden     the real gateway: scripts/run_envoy.py renders envoy/policy.yaml (its identity
             providers replaced by a throw-away ES256 issuer) into the reference bootstrap,
             jwt_authn + warden.wasm + router, 1 worker (--concurrency 1; --workers changes it for
             every gateway).
  warden-budgets  warden with three budgets on the developer role (BENCH_BUDGETS: generous, so
             nothing is refused): each request reserves in, and settles, three shared-data ledger
             entries. Every request is the same subject's, so with --workers 2 both workers race
             on the same entries.
  baseline   the same bootstrap with jwt_authn and warden removed; the route removes
             `authorization` and adds the upstream key itself. As many workers as warden.
  others     --variants adds gateways that split Warden's cost (see --help): jwt_authn alone,
             probe wasm filters (scripts/bench-filters) that do part of Warden's work, the older
             jwt_authn rule that never uses its JWT cache (*-uncached, for comparison), and
             `direct` (wrk straight to the upstream).

The client is `wrk` (Debian's package) with a Lua script that sends the committed Claude-Code-shaped
request tests/fixtures/claude-code-request.json (57 KB, `stream: true`) with Claude Code's headers,
counts every status and reports latency percentiles. For each connection count (default 1 and 16)
the gateways are warmed up, then measured for --duration seconds each, --rounds times, in an
alternating order (baseline, warden | warden, baseline | ...) so drift cancels; the medians are
reported. Envoy's CPU per request is utime+stime of the gateway process (/proc/PID/stat) across a
phase divided by the requests completed in it. With 2 or more CPUs the gateways run on the last
one and the upstream and wrk on the others (--no-pin: anywhere). CPU used by other processes
during a phase is measured too, and the run warns when the machine was not quiet.

  .venv/bin/python scripts/bench.py [--duration 10] [--warmup 3] [--rounds 3]
                                    [--connections 1,16] [--workers 1] [--no-stream]
                                    [--variants baseline,warden]
                                    [--no-pin] [--json results.json] [--keep]

Every phase is bounded by --duration (wrk -d) and by --max-requests; every wrk run by a timeout.
Exits 1 when a gateway fails to start or answers anything but 200; timing is reported, never
asserted. Results and how to read them: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_envoy  # noqa: E402  (sibling module)

REPO = render_envoy.REPO
PY = sys.executable
WASM = Path(os.environ.get("WARDEN_WASM") or REPO / "target/wasm32-wasip1/release/warden.wasm")
FIXTURE = REPO / "tests/fixtures/claude-code-request.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PATH = "/v1/messages?beta=true"
ISSUER = "warden-bench"


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle so far (all CPUs; /proc/stat)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK


def envoy_binary() -> str:
    import envoy  # type: ignore[import-not-found]

    return str(Path(envoy.__file__).resolve().parent / "_bin" / "envoy")


def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    envoy_version = subprocess.run([envoy_binary(), "--version"], capture_output=True,
                                   text=True, timeout=30).stdout.strip().split("version:")[-1]
    wrk = shutil.which("wrk") or ""
    wrk_version = ""
    if wrk:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=30)
        wrk_version = (out.stdout + out.stderr).splitlines()[0] if (out.stdout + out.stderr) else ""
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "envoy": envoy_version.strip(), "wrk": wrk_version}


def approval_credential_args(policy: dict, tmp: Path) -> list[str]:
    """`--credential-file` arguments for the policy's approval-service credentials, if it has
    `approvals`. The benchmark's requests fire no approval trigger, so the service is never
    called: a random token and a random public key only let the filter start."""
    approvals = policy.get("approvals")
    if not approvals:
        return []
    credentials = policy.get("credentials") or {}
    values = {"token": secrets.token_urlsafe(32),
              "verdict_key": base64.b64encode(secrets.token_bytes(32)).decode()}
    args = []
    for field, value in values.items():
        variable = credentials[approvals["service"][field]]["env"]
        path = tmp / f"approvals-{field}"
        path.write_text(value)
        args += ["--credential-file", f"{variable}={path}"]
    return args


def start_audit_service(policy: dict, tmp: Path, db: Path, procs: list["Proc"],
                        cpus: set[int] | None) -> list[str]:
    """`warden serve` for the warden-audit variant (its keys made here, its policy the gateway's
    with the audit trail on); returns the gateway's `--credential-file` arguments."""
    policy.setdefault("audit", {})
    return start_service("audit", policy, tmp, db, procs, cpus)[0]


def start_revocation_service(policy: dict, tmp: Path, procs: list["Proc"],
                             cpus: set[int] | None) -> list[str]:
    """`warden serve` for the warden-revocation and warden-extauthz variants, holding
    BENCH_REVOCATIONS revocations of other identities (so every check looks through a real
    list), and their policies: policy-revocation.yaml (`identity.revocation` on: the filter's
    list) and policy-extauthz.yaml (without it: the gateway asks `/v1/authz`). Returns the
    gateways' `--credential-file` arguments."""
    policy = json.loads(json.dumps(policy))
    policy["identity"]["revocation"] = {}
    args, port, keys = start_service("revocation", policy, tmp, tmp / "revocation.db", procs, cpus)
    extauthz = json.loads(json.dumps(policy))
    del extauthz["identity"]["revocation"]
    (tmp / "policy-extauthz.yaml").write_text(yaml.safe_dump(extauthz, sort_keys=False))
    token = (keys / "approvals-token").read_text().strip()
    for i in range(BENCH_REVOCATIONS):
        kind = ("subject", "group", "token", "job")[i % 4]
        body = {"kind": kind, "reason": "bench"} | (
            {"claims": {"repository": f"bench/repo-{i}", "run_id": str(i)}} if kind == "job"
            else {"value": f"bench-{kind}-{i}"})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/revocations", data=json.dumps(body).encode(), method="POST",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            if answer.status != 201:
                raise BenchError(f"revoking for the benchmark answered {answer.status}")
    return args


def start_service(name: str, policy: dict, tmp: Path, db: Path, procs: list["Proc"],
                  cpus: set[int] | None) -> tuple[list[str], int, Path]:
    """`warden serve` (keys made here) with `policy` pointed at it, written to
    policy-<name>.yaml; returns the gateway's `--credential-file` arguments, the port and the
    keys' directory."""
    warden = REPO / "target/release/warden"
    keys = tmp / f"serve-keys-{name}"
    subprocess.run([str(warden), "serve", "init", "--dir", str(keys)], check=True,
                   capture_output=True, timeout=60)
    port = free_port()
    policy["approvals"]["service"]["url"] = f"http://127.0.0.1:{port}"
    path = tmp / f"policy-{name}.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    # Lowest CPU priority: in production the service runs on its own machine; here it shares the
    # upstream's and wrk's CPU, and its batch ingest must not slow the load generator.
    proc = Proc(f"warden-serve-{name}", ["nice", "-n", "19", str(warden), "serve", "--policy", str(path),
                                 "--listen", f"127.0.0.1:{port}", "--db", str(db),
                                 "--signing-key", str(keys / "approvals-signing-key.pem"),
                                 "--gateway-token-file", str(keys / "approvals-token")],
                tmp / f"warden-serve-{name}.log", cpus=cpus)
    procs.append(proc)
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                break
        except OSError:
            if proc.p.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"warden serve did not start:\n{proc.log_tail()}") from None
            time.sleep(0.05)
    credentials = policy["credentials"]
    service = policy["approvals"]["service"]
    return (["--credential-file", f"{credentials[service['token']]['env']}={keys / 'approvals-token'}",
             "--credential-file",
             f"{credentials[service['verdict_key']]['env']}={keys / 'approvals-verdict-key.pub'}"],
            port, keys)


def make_issuer(tmp: Path) -> tuple[Path, str]:
    """A throw-away ES256 key: (jwks path, a 50-minute token for alice in group eng)."""
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
    token = jwt.encode({"iss": ISSUER, "aud": "warden", "sub": "alice", "groups": ["eng"],
                        "iat": now, "exp": now + 3000},
                       key, algorithm="ES256", headers={"kid": "bench"})
    return jwks, token


def claude_code_headers(token: str) -> dict[str, str]:
    """The headers Claude Code (via the Anthropic TypeScript SDK) sends with /v1/messages."""
    return {
        "accept": "application/json",
        "accept-encoding": "gzip, deflate, br, zstd",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                          "fine-grained-tool-streaming-2025-05-14,context-management-2025-06-27",
        "anthropic-dangerous-direct-browser-access": "true",
        "anthropic-version": "2023-06-01",
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "user-agent": "claude-cli/2.0.14 (external, cli)",
        "x-app": "cli",
        "x-stainless-arch": "x64",
        "x-stainless-helper-method": "stream",
        "x-stainless-lang": "js",
        "x-stainless-os": "Linux",
        "x-stainless-package-version": "0.60.0",
        "x-stainless-retry-count": "0",
        "x-stainless-runtime": "node",
        "x-stainless-runtime-version": "v22.19.0",
        "x-stainless-timeout": "600",
    }


# --------------------------------------------------------------------------------------------
# the canned upstream


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def canned_response(model: str, stream: bool) -> tuple[str, str]:
    """(content type, body) of a short, realistic Messages answer."""
    words = ("I'll run the test suite now to check that the streaming handler refactor "
             "works as intended and that no existing behaviour changed.").split()
    pieces = [" ".join(words[i:i + 3]) + " " for i in range(0, len(words), 3)]
    usage = {"input_tokens": 4, "cache_creation_input_tokens": 512,
             "cache_read_input_tokens": 14336, "output_tokens": 1}
    if not stream:
        return "application/json", json.dumps({
            "id": "msg_01Bench0000000000000000", "type": "message", "role": "assistant",
            "model": model, "content": [{"type": "text", "text": "".join(pieces).strip()}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": dict(usage, output_tokens=28)}, separators=(",", ":"))
    events = [sse("message_start", {"type": "message_start", "message": {
        "id": "msg_01Bench0000000000000000", "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": usage}}),
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
        sse("ping", {"type": "ping"})]
    for p in pieces:
        events.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": p}}))
    events += [sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
               sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                     "usage": {"output_tokens": 28}}),
               sse("message_stop", {"type": "message_stop"})]
    return "text/event-stream; charset=utf-8", "".join(events)


def upstream_config(port: int, admin_port: int, api_key: str, content_type: str,
                    body: str) -> dict:
    """An Envoy that buffers each request body, then answers from a direct_response."""

    def reply(status: int, ctype: str, text: str) -> dict:
        return {"direct_response": {"status": status, "body": {"inline_string": text}},
                "response_headers_to_add": [
                    {"header": {"key": "content-type", "value": ctype},
                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
                    {"header": {"key": "request-id", "value": "req_bench_upstream"},
                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}

    def error(kind: str, message: str) -> str:
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}})

    routes = [
        # A client credential reaching the upstream is a gateway bug: refuse it loudly.
        dict(match={"prefix": "/", "headers": [{"name": "authorization", "present_match": True}]},
             **reply(400, "application/json",
                     error("invalid_request_error", "bench upstream: authorization leaked"))),
        dict(match={"prefix": "/v1/messages", "headers": [
            {"name": "x-api-key", "string_match": {"exact": api_key}}]},
             **reply(200, content_type, body)),
        dict(match={"prefix": "/"},
             **reply(401, "application/json",
                     error("authentication_error", "bench upstream: missing or wrong key"))),
    ]
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "upstream",
        "codec_type": "AUTO",
        "route_config": {"name": "upstream", "max_direct_response_body_size_bytes": 1 << 20,
                         "virtual_hosts": [{"name": "fake_claude", "domains": ["*"],
                                            "routes": routes}]},
        "http_filters": [
            # Read the whole request before answering, as the real API does: an early answer
            # would make Envoy close the gateway's pooled connection after every request.
            {"name": "envoy.filters.http.buffer", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": 64 << 20}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": admin_port}}},
        "static_resources": {"listeners": [{
            "name": "upstream",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "per_connection_buffer_limit_bytes": 64 << 20,
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}],
        }]},
    }


# --------------------------------------------------------------------------------------------
# gateway variants


PROBE_MODES = ("noop", "headers", "buffer", "parse", "ledger")
# The gateways run by scripts/run_envoy.py, each with its own policy (policy-<suffix>.yaml).
WARDEN_VARIANTS = ("warden", "warden-budgets", "warden-budgets-counts", "warden-audit",
                   "warden-revocation", "warden-extauthz", "warden-tools-off")
# Revocations of other identities the kill-switch variants' service holds (a quarter of each kind).
BENCH_REVOCATIONS = 200
VARIANTS = ("baseline",) + WARDEN_VARIANTS + ("jwt", "direct", "jwt-uncached", "warden-uncached") \
    + tuple(f"probe-{m}" for m in PROBE_MODES)
VARIANT_HELP = {
    "baseline": "Envoy without jwt_authn and Warden; the route swaps the credential",
    "warden": "the real gateway: jwt_authn + warden.wasm (the demo policy without its audit trail; "
              "its developer role's tool rules judge the answer: every event passes the tool-call hold)",
    "warden-tools-off": "warden with the demo policy's tool rules removed: the answer takes the "
                        "ungoverned path (compare with warden: the cost of governing tool calls)",
    "warden-budgets": "warden with three budgets on the role (BENCH_BUDGETS, none ever reached): "
                      "every request is admitted against, and settled in, three ledger entries",
    "warden-budgets-counts": "warden-budgets with request counts as the only limits: the same three "
                             "ledger entries, but no tokens or cost, so no estimate is priced and no "
                             "answer is watched for the stream cut",
    "warden-audit": "warden with the demo policy's audit trail on: every record goes to a real "
                    "`warden serve` (run beside the upstream at the lowest CPU priority, off the gateway's CPU)",
    "warden-revocation": "warden with the kill switch's list (identity.revocation): the filter "
                         "refreshes BENCH_REVOCATIONS revocations from a real `warden serve` every "
                         "second and checks each request against its worker's copy",
    "warden-extauthz": "warden with the kill switch asked per request instead: Envoy's ext_authz "
                       "sends each request's verified payload to `warden serve`'s /v1/authz "
                       "(render_envoy.py --revocation-ext-authz), same service and list",
    "jwt": "jwt_authn only (no wasm), with the gateway's rule; the route swaps the credential",
    "direct": "no gateway: wrk straight to the upstream (the machine's own latency floor)",
    "jwt-uncached": "jwt, with the older rule `allow_missing_or_failed` alone instead of the "
                    "gateway's requires_any [each provider, allow_missing_or_failed]: jwt_authn "
                    "then never consults its JWT cache and checks the signature on every request",
    "warden-uncached": "warden, with that same older rule",
    "probe-noop": "jwt_authn + a wasm filter that does nothing (scripts/bench-filters)",
    "probe-headers": "jwt_authn + a wasm filter that copies the request headers",
    "probe-buffer": "... + holds the request until the whole body is in and copies it",
    "probe-parse": "... + checks the body is JSON (serde_json, IgnoredAny)",
    "probe-ledger": "probe-noop + the budget check's shared-data calls: a read and a CAS write of "
                    "three keys on the request and again at the end (12 host calls)",
}

# The warden-budgets variant's budgets on the benchmark's role (docs/budgets.md): one of each kind
# the issue names, with limits no run can reach. Each request reserves ~28,500 input tokens (57 KB
# at 2 bytes per token) plus its max_tokens (32,000), ~0.65 USD at Sonnet's prices, and is charged
# the canned answer's ~14,900 tokens (~0.007 USD) when it ends. (A `cost` above 1e6 compiles to a
# limit of 0 at this build, refusing everything: keep these at 1e6.)
BENCH_BUDGETS = [
    {"name": "bench-role-month", "per": "role", "window": "month", "cost": 1e6},
    {"name": "bench-subject-day", "per": "subject", "window": "day", "tokens": 10**15, "cost": 1e6},
    {"name": "bench-subject-minute", "per": "subject", "window": "minute", "requests": 10**9,
     "concurrent": 100_000},
]
# warden-budgets-counts: the same keys, counting requests only (no cost or token limit).
BENCH_BUDGETS_COUNTS = [{k: v for k, v in b.items() if k not in ("tokens", "cost")}
                        | {"requests": 10**9} for b in BENCH_BUDGETS]


def derive_config(warden_config: Path, out: Path, name: str,
                  probe_wasm: Path | None = None) -> None:
    """The Warden bootstrap changed into variant `name` (see VARIANT_HELP). Without warden.wasm
    the route removes `authorization` and adds the upstream key itself, as Warden would."""
    cfg = yaml.safe_load(warden_config.read_text())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    keep = {"envoy.filters.http.router"}
    if name != "baseline":
        keep.add("envoy.filters.http.jwt_authn")
    if name.startswith(("probe-", "warden")):
        keep.add("warden")
    route_swaps = not name.startswith("warden")
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] in keep]
    for f in hcm["http_filters"]:
        if f["name"] == "warden" and name.startswith("probe-"):
            plugin = f["typed_config"]["config"]
            plugin["vm_config"]["vm_id"] = "probe"
            plugin["vm_config"]["code"]["local"]["filename"] = str(probe_wasm)
            plugin["configuration"]["value"] = name.removeprefix("probe-")
        if f["name"] == "envoy.filters.http.jwt_authn" and name.endswith("-uncached"):
            f["typed_config"]["rules"] = [{"match": {"prefix": "/"},
                                           "requires": {"allow_missing_or_failed": {}}}]
    for vh in hcm["route_config"]["virtual_hosts"]:
        for route in vh["routes"]:
            tpfc = route.get("typed_per_filter_config", {})
            for filter_name in list(tpfc):
                if filter_name not in keep:
                    del tpfc[filter_name]
            if not tpfc:
                route.pop("typed_per_filter_config", None)
            if "route" in route and route_swaps:
                route["request_headers_to_add"] = [{
                    "header": {"key": "x-api-key", "value": "%ENVIRONMENT(ANTHROPIC_API_KEY)%"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]
                route["request_headers_to_remove"] = route.get("request_headers_to_remove", []) \
                    + ["authorization"]
    # JSON, not YAML: strings (the access-log format's final newline) reach Envoy unchanged.
    out.write_text(json.dumps(cfg, indent=1))


def build_probe_filters() -> Path:
    """Build scripts/bench-filters into target/bench-filters (needed only for probe-* variants)."""
    target = REPO / "target/bench-filters"
    out = subprocess.run(["cargo", "build", "--release", "--target", "wasm32-wasip1", "--quiet",
                          "--manifest-path", str(REPO / "scripts/bench-filters/Cargo.toml")],
                         env=dict(os.environ, CARGO_TARGET_DIR=str(target)), cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    wasm = target / "wasm32-wasip1/release/warden_bench_filters.wasm"
    if out.returncode != 0 or not wasm.is_file():
        raise BenchError(f"building the probe filters failed:\n{out.stderr[-3000:]}")
    return wasm


def pinner(cpus: set[int] | None):
    """preexec_fn: run the child on these CPUs only (None: anywhere)."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


class Proc:
    """A child process, its stdout discarded (the access log), stderr kept in a log file."""

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict | None = None,
                 cpus: set[int] | None = None) -> None:
        self.name = name
        self.log = log
        self.fh = open(log, "wb")
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.fh, env=env,
                                  cwd=REPO, stdin=subprocess.DEVNULL, preexec_fn=pinner(cpus))

    @property
    def pid(self) -> int:
        return self.p.pid

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        self.fh.close()


@dataclass
class Gateway:
    name: str
    proc: Proc  # the process whose CPU is measured (for `direct`, the upstream)
    port: int
    admin: int
    script: Path  # the wrk script (request and headers) for this target


def wait_ready(proc: Proc, admin_port: int, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise BenchError(f"{proc.name}: Envoy exited during start-up (log {proc.log}):\n"
                             + proc.log_tail())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=2) as r:
                if r.read().strip() == b"LIVE":
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{proc.name}: Envoy not ready after {timeout:.0f}s (log {proc.log})")


def budget_refusals(gw: Gateway) -> dict[str, int]:
    """Requests the gateway refused for a budget, by reason (its `warden.…reason.<r>.requests`
    counters), and settlements it could not write (each logged as an error)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin}/stats?filter=budget_",
                                timeout=5) as r:
        lines = r.read().decode().splitlines()
    counts = {"budget_exhausted": 0, "budget_unavailable": 0}
    for line in lines:
        key, _, value = line.partition(": ")
        for reason in counts:
            if f".reason.{reason}." in key:
                counts[reason] += int(value)
    counts["settlements_failed"] = gw.proc.log_tail(1 << 30).count("settling a budget failed")
    return counts


def counter(admin_port: int, name: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats?filter=^{re.escape(name)}$",
                                timeout=5) as r:
        for line in r.read().decode().splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
    return 0


def probe(gw: Gateway, body: bytes, headers: dict, expect: str, attempt: int = 0) -> None:
    """One request through the gateway: 200 and exactly the upstream's canned answer."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        conn.putrequest("POST", PATH, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("content-length", str(len(body)))
        conn.endheaders()
        conn.send(body)
        resp = conn.getresponse()
        data = resp.read().decode(errors="replace")
    finally:
        conn.close()
    if resp.status == 503 and "revocation_unavailable" in data and attempt < 50:
        # The kill switch's gateway refuses until its first list arrives (about a second).
        time.sleep(0.1)
        return probe(gw, body, headers, expect, attempt + 1)
    if resp.status != 200 or data != expect:
        raise BenchError(f"{gw.name}: probe got {resp.status} {data[:400]!r} "
                         f"(log {gw.proc.log}):\n{gw.proc.log_tail()}")


# --------------------------------------------------------------------------------------------
# wrk

WRK_LUA = r"""
-- Generated by scripts/bench.py: one fixed POST with Claude Code's headers; counts statuses.
local f = assert(io.open(%(body)s, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
%(headers)s
local max_requests = %(max_requests)d
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, bad, statuses, seen, capped = 0, 0, "", {}, 0
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    bad = bad + 1
    -- "503 x12 429 x3 ": how many of each status (rebuilt only on this rare path)
    seen[status] = (seen[status] or 0) + 1
    statuses = ""
    for s, n in pairs(seen) do
      statuses = statuses .. s .. " x" .. n .. " "
    end
  end
  if ok + bad >= max_requests then
    capped = 1
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local o, b, s, c = 0, 0, "", 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad"); s = s .. t:get("statuses"); c = c + t:get("capped")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"ok":%%d,"bad":%%d,"bad_statuses":"%%s",' ..
    '"capped":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\n',
    summary.requests, summary.duration, o, b, s, c, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def write_wrk_script(script: Path, body_path: Path, headers: dict, max_requests: int) -> Path:
    lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}"
                      for k, v in headers.items())
    script.write_text(WRK_LUA % {"body": json.dumps(str(body_path)), "headers": lines,
                                 "max_requests": max_requests})
    return script


@dataclass
class Phase:
    gateway: str
    connections: int
    requests: int
    seconds: float
    cpu_s: float
    upstream_cpu_s: float
    client_cpu_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    other_cpu_s: float
    wrk: dict = field(repr=False)

    @property
    def other_load(self) -> float:
        """CPUs kept busy by everything else on the machine during the phase (0 = quiet)."""
        return self.other_cpu_s / self.seconds

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_s * 1e6 / self.requests


def run_wrk(gw: Gateway, upstream: Proc, connections: int, seconds: float,
            cpus: set[int] | None = None) -> Phase:
    """One phase: wrk against the gateway for `seconds`; fails unless every answer was 200."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "--latency",
           "-s", str(gw.script), f"http://127.0.0.1:{gw.port}{PATH}"]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = machine_busy_seconds()
    cpu0, up0 = cpu_seconds(gw.proc.pid), cpu_seconds(upstream.pid)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                             preexec_fn=pinner(cpus))
    except subprocess.TimeoutExpired:
        raise BenchError(f"{gw.name}: wrk did not finish within {seconds + 60:.0f}s") from None
    cpu1, up1 = cpu_seconds(gw.proc.pid), cpu_seconds(upstream.pid)
    busy1 = machine_busy_seconds()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    m = re.search(r"^BENCH_JSON (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise BenchError(f"{gw.name}: wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    w = json.loads(m.group(1))
    errors = {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]}
    if (w["bad"] or errors or w["ok"] != w["requests"] or not w["requests"]):
        raise BenchError(
            f"{gw.name} at {connections} connections: {w['ok']} of {w['requests']} requests got "
            f"200; other statuses: {w['bad_statuses'].strip() or 'none'}; socket errors: "
            f"{errors or 'none'}"
            f" (gateway log {gw.proc.log}):\n{gw.proc.log_tail()}")
    if w["capped"]:
        print(f"bench: {gw.name}: the phase stopped at --max-requests; its req/s is understated "
              "and its CPU per request includes idle time")
    return Phase(gateway=gw.name, connections=connections, requests=w["requests"],
                 seconds=w["duration_us"] / 1e6, cpu_s=cpu1 - cpu0, upstream_cpu_s=up1 - up0,
                 client_cpu_s=client,
                 other_cpu_s=max(0.0, (busy1 - busy0) - (up1 - up0) - client
                                 - (0 if gw.proc is upstream else cpu1 - cpu0)),
                 p50_ms=w["p50_us"] / 1e3, p90_ms=w["p90_us"] / 1e3, p99_ms=w["p99_us"] / 1e3,
                 max_ms=w["max_us"] / 1e3, wrk=w)


# --------------------------------------------------------------------------------------------
# report


def med(phases: list[Phase], attr: str) -> float:
    return statistics.median(getattr(p, attr) for p in phases)


def report(results: dict[int, dict[str, list[Phase]]], variants: list[str]) -> dict:
    summary: dict = {}
    width = max(len(v) for v in variants)
    for conns, by_gw in results.items():
        n = len(by_gw["baseline"])
        print(f"\n{conns} connection{'s' if conns > 1 else ''} (median of {n} phases each)")
        print(f"  {'':{width}s} {'req/s':>7s} {'CPU µs/req':>10s} {'p50 ms':>7s} {'p90 ms':>7s} "
              f"{'p99 ms':>7s} | {'upstream':>8s} {'client':>6s} µs/req")
        row: dict = {}
        for name in variants:
            ph = by_gw[name]
            r = row[name] = {k: med(ph, k) for k in ("rps", "cpu_us", "p50_ms", "p90_ms",
                                                     "p99_ms")}
            r["upstream_cpu_us"] = statistics.median(p.upstream_cpu_s * 1e6 / p.requests
                                                     for p in ph)
            r["client_cpu_us"] = statistics.median(p.client_cpu_s * 1e6 / p.requests for p in ph)
            cpu = "-" if name == "direct" else f"{r['cpu_us']:.1f}"
            if name == "direct":
                r["cpu_us"] = None
            print(f"  {name:{width}s} {r['rps']:7.0f} {cpu:>10s} {r['p50_ms']:7.3f} "
                  f"{r['p90_ms']:7.3f} {r['p99_ms']:7.3f} | {r['upstream_cpu_us']:8.0f} "
                  f"{r['client_cpu_us']:6.0f}")
        b = row["baseline"]
        for name in variants:
            if name in ("baseline", "direct"):
                continue
            w = row[name]
            row[f"{name}_vs_baseline"] = ratios = {
                "cpu_ratio": w["cpu_us"] / b["cpu_us"],
                "cpu_added_us": w["cpu_us"] - b["cpu_us"],
                "p50_added_ms": w["p50_ms"] - b["p50_ms"],
                "p99_added_ms": w["p99_ms"] - b["p99_ms"],
                "rps_ratio": w["rps"] / b["rps"],
            }
            print(f"  {name} vs baseline: CPU {ratios['cpu_ratio']:.2f}x "
                  f"({ratios['cpu_added_us']:+.0f} µs/req), p50 {ratios['p50_added_ms']:+.3f} ms, "
                  f"p99 {ratios['p99_added_ms']:+.3f} ms, throughput {ratios['rps_ratio']:.2f}x")
        summary[conns] = row
    if "warden" in variants:
        print("\ntargets (reported, never asserted): Warden ≤ 2x bare Envoy's CPU per request, "
              "≤ +0.5 ms p99")
        for conns, row in summary.items():
            r = row["warden_vs_baseline"]
            cpu_ok = "met" if r["cpu_ratio"] <= 2 else "MISSED"
            p99_ok = "met" if r["p99_added_ms"] <= 0.5 else "MISSED"
            print(f"  {conns:2d} connection{'s' if conns > 1 else ' '}: CPU {r['cpu_ratio']:.2f}x "
                  f"({cpu_ok}), p99 {r['p99_added_ms']:+.3f} ms ({p99_ok})")
    for name in ("warden-budgets", "warden-budgets-counts"):
        if "warden" not in variants or name not in variants:
            continue
        print(f"\nthe budget check: {name} - warden (reported, never asserted; target ≤ 10 µs "
              "of Envoy CPU per request, no measurable change in p50)")
        for conns, by_gw in results.items():
            with_budgets, without = summary[conns][name], summary[conns]["warden"]
            # Same round, adjacent phases: the per-round differences show the run's noise.
            rounds = [b.cpu_us - w.cpu_us for w, b in zip(by_gw["warden"], by_gw[name])]
            summary[conns][f"{name}_vs_warden"] = check = {
                "cpu_added_us": with_budgets["cpu_us"] - without["cpu_us"],
                "cpu_added_us_per_round": rounds,
                "cpu_added_us_round_median": statistics.median(rounds),
                "p50_added_ms": with_budgets["p50_ms"] - without["p50_ms"],
                "p99_added_ms": with_budgets["p99_ms"] - without["p99_ms"],
            }
            print(f"  {conns:2d} connection{'s' if conns > 1 else ' '}: CPU "
                  f"{check['cpu_added_us']:+.1f} µs/req (per round: "
                  f"{', '.join(f'{d:+.1f}' for d in rounds)}; their median "
                  f"{check['cpu_added_us_round_median']:+.1f}), p50 {check['p50_added_ms']:+.3f} ms, "
                  f"p99 {check['p99_added_ms']:+.3f} ms")
    return summary


# --------------------------------------------------------------------------------------------
# main


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="variants: " + "; ".join(f"{k}: {v}" for k, v in VARIANT_HELP.items()))
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per gateway "
                                                              "and connection count")
    ap.add_argument("--rounds", type=int, default=3, help="measured phases per gateway and "
                                                          "connection count (median reported)")
    ap.add_argument("--connections", default="1,16", help="comma-separated connection counts")
    ap.add_argument("--variants", default="baseline,warden",
                    help="comma-separated gateways to compare; baseline is required "
                         f"(default baseline,warden; any of {', '.join(VARIANTS)})")
    ap.add_argument("--workers", type=int, default=1,
                    help="Envoy worker threads per gateway (--concurrency; default 1). With 2 on a "
                         "2-CPU machine, add --no-pin so that the workers really run in parallel")
    ap.add_argument("--no-stream", action="store_true",
                    help="send the fixture with stream: false (a Message JSON answer)")
    ap.add_argument("--fixture", default=str(FIXTURE), help="the request body (JSON)")
    ap.add_argument("--max-requests", type=int, default=500_000,
                    help="stop a phase after this many requests per wrk thread")
    ap.add_argument("--policy", default=str(REPO / "envoy/policy.yaml"))
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                    help="run the gateways on the last CPU, upstream and wrk on the others "
                         "(default: on when there are 2 or more CPUs)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = ap.parse_args()

    variants = list(dict.fromkeys(v.strip() for v in args.variants.split(",") if v.strip()))
    unknown = [v for v in variants if v not in VARIANTS]
    if "baseline" not in variants or unknown:
        ap.error(f"--variants: baseline plus any of {', '.join(VARIANTS)}"
                 + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    try:
        conns = [int(c) for c in args.connections.split(",")]
    except ValueError:
        ap.error("--connections: comma-separated numbers")
    if any(not 1 <= c <= 256 for c in conns):
        ap.error("--connections: each between 1 and 256")
    if not 1 <= args.workers <= 64:
        ap.error("--workers: between 1 and 64")
    if not 0 < args.duration <= 60 or not 0 <= args.warmup <= 60 or not 1 <= args.rounds <= 10:
        ap.error("--duration must be in (0, 60], --warmup in [0, 60] and --rounds in 1..10")
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is missing: apt-get install -y wrk (make bench does it)")
    if not WASM.is_file():
        sys.exit(f"bench: {WASM} is missing: run `make build` first")

    return run_in_workdir("bench", args.keep, lambda tmp, procs: run(args, variants, conns, tmp, procs))


def run_in_workdir(name: str, keep: bool, body) -> int:
    """Runs `body(tmp, procs)` in a fresh temporary folder, then stops every process it started
    (newest first) and removes the folder, unless `keep` or the run failed (then it says where
    the logs are). A BenchError is reported and gives exit status 1."""
    tmp = Path(tempfile.mkdtemp(prefix=f"warden-{name.replace('_', '-')}-"))
    procs: list[Proc] = []
    try:
        return body(tmp, procs)
    except BenchError as exc:
        print(f"\n{name}: FAILED: {exc}", file=sys.stderr)
        keep = True
        return 1
    finally:
        for p in reversed(procs):
            p.stop()
        if keep:
            print(f"{name}: logs and configs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, variants: list[str], conns: list[int], tmp: Path,
        procs: list[Proc]) -> int:
    t_start = time.monotonic()
    info = machine()
    jwks, token = make_issuer(tmp)
    policy = yaml.safe_load(Path(args.policy).read_text())
    policy.setdefault("identity", {})["providers"] = [{
        "name": "bench", "issuer": ISSUER, "audiences": ["warden"], "jwks": {"file": str(jwks)}}]
    audit_policy = json.loads(json.dumps(policy))
    # Only warden-audit runs an audit service: elsewhere fail_closed would refuse requests after
    # a minute of records going nowhere.
    policy.pop("audit", None)
    policy_path = tmp / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
    for suffix, budgets in (("budgets", BENCH_BUDGETS), ("budgets-counts", BENCH_BUDGETS_COUNTS)):
        budgets_policy = json.loads(json.dumps(policy))
        budgets_policy["roles"]["developer"]["budgets"] = budgets  # alice's role (group eng)
        (tmp / f"policy-{suffix}.yaml").write_text(yaml.safe_dump(budgets_policy, sort_keys=False))
    tools_off = json.loads(json.dumps(policy))
    for role in tools_off["roles"].values():
        role.get("tools", {}).pop("rules", None)
    (tmp / "policy-tools-off.yaml").write_text(yaml.safe_dump(tools_off, sort_keys=False))
    api_key = "sk-ant-bench-" + secrets.token_hex(16)
    key_file = tmp / "anthropic-key"
    key_file.write_text(api_key)

    # A private copy of the filter: a rebuild during the run cannot change what is measured.
    wasm = tmp / "warden.wasm"
    shutil.copyfile(WASM, wasm)
    digest = hashlib.sha256(wasm.read_bytes()).hexdigest()[:12]
    info["wasm"] = f"{wasm.stat().st_size:,} B, sha256 {digest}"
    if os.environ.get("WARDEN_WASM"):
        info["commit"] = f"WARDEN_WASM={os.environ['WARDEN_WASM']}"
    else:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=30).stdout.strip()
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src", "Cargo.toml",
                                  "Cargo.lock"], cwd=REPO, timeout=30).returncode != 0
        info["commit"] = (f"built from {head or 'unknown commit'}"
                          + (" with uncommitted changes in src/" if changed else ""))
    probe_wasm = build_probe_filters() if any(v.startswith("probe-") for v in variants) else None

    request = json.loads(Path(args.fixture).read_text())
    stream = not args.no_stream
    request["stream"] = stream
    body = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()
    body_path = tmp / "request.json"
    body_path.write_bytes(body)
    headers = claude_code_headers(token)
    if not stream:
        headers.pop("x-stainless-helper-method")
    content_type, answer = canned_response(request.get("model", "claude-sonnet-4-6"), stream)

    # CPU placement: the gateway under test gets a CPU of its own; the upstream and wrk share the
    # others, so the gateway never waits for a CPU behind the load generator.
    allowed = sorted(os.sched_getaffinity(0))
    gateway_cpus = other_cpus = None
    if args.pin and len(allowed) >= 2:
        gateway_cpus, other_cpus = {allowed[-1]}, set(allowed[:-1])

    # The upstream.
    up_port, up_admin = free_port(), free_port()
    up_cfg = tmp / "upstream.json"  # JSON: the canned body's newlines survive exactly
    up_cfg.write_text(json.dumps(upstream_config(up_port, up_admin, api_key, content_type, answer),
                                 indent=1))
    upstream = Proc("upstream", [envoy_binary(), "-c", str(up_cfg), "--concurrency", "1",
                                 "--log-level", "warning", "--disable-hot-restart"],
                    tmp / "upstream.log", cpus=other_cpus)
    procs.append(upstream)
    wait_ready(upstream, up_admin, up_port)
    upstream_url = f"http://127.0.0.1:{up_port}"

    gateway_script = write_wrk_script(tmp / "gateway.lua", body_path, headers, args.max_requests)
    direct_headers = {k: v for k, v in headers.items() if k != "authorization"}
    direct_headers["x-api-key"] = api_key

    audit_args: list[str] = []
    audit_db = tmp / "audit.db"
    if "warden-audit" in variants:
        audit_args = start_audit_service(audit_policy, tmp, audit_db, procs, other_cpus)
    revocation_args: list[str] = []
    if "warden-revocation" in variants or "warden-extauthz" in variants:
        revocation_args = start_revocation_service(policy, tmp, procs, other_cpus)

    # The gateways, all started now and kept running for the whole run.
    gateways: dict[str, Gateway] = {}
    for name in variants:
        if name == "direct":
            gateways[name] = Gateway(name, upstream, up_port, up_admin, write_wrk_script(
                tmp / "direct.lua", body_path, direct_headers, args.max_requests))
            continue
        port, admin = free_port(), free_port()
        render_args = ["--policy", str(policy_path), "--wasm", str(wasm), "--upstream",
                       upstream_url, "--port", str(port), "--admin-port", str(admin)]
        if name in WARDEN_VARIANTS:
            if name != "warden":
                render_args[1] = str(tmp / f"policy-{name.removeprefix('warden-')}.yaml")
            config = tmp / f"{name}.yaml"
            cmd = [PY, str(REPO / "scripts/run_envoy.py"), *render_args, "--config-out",
                   str(config), "--log-level", "warning", "--concurrency", str(args.workers),
                   # The launcher execs Envoy (no drain supervisor), so the measured process is
                   # Envoy itself: its CPU is what the benchmark reports.
                   "--drain-timeout", "0",
                   "--credential-file", f"ANTHROPIC_API_KEY={key_file}",
                   *(audit_args if name == "warden-audit" else
                     revocation_args if name in ("warden-revocation", "warden-extauthz") else
                     approval_credential_args(policy, tmp)),
                   *(["--revocation-ext-authz"] if name == "warden-extauthz" else [])]
            env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
        else:
            config = tmp / f"{name}.json"
            if render_envoy.main([*render_args, "--out", str(tmp / "rendered.yaml")]) != 0:
                raise BenchError("render_envoy failed")
            derive_config(tmp / "rendered.yaml", config, name, probe_wasm)
            cmd = [envoy_binary(), "-c", str(config), "--concurrency", str(args.workers),
                   "--log-level", "warning", "--disable-hot-restart"]
            env = dict(os.environ, ANTHROPIC_API_KEY=api_key)
        proc = Proc(name, cmd, tmp / f"{name}.log", env, cpus=gateway_cpus)
        procs.append(proc)
        wait_ready(proc, admin, port)
        gateways[name] = Gateway(name, proc, port, admin, gateway_script)
    for gw in gateways.values():
        probe(gw, body, direct_headers if gw.name == "direct" else headers, answer)

    print(f"bench: POST {PATH}, {len(body):,} B Claude-Code-shaped body ({Path(args.fixture).name},"
          f" stream={str(stream).lower()}), {len(headers)} headers; "
          f"{args.workers} Envoy worker{'s' if args.workers > 1 else ''} per gateway")
    print(f"bench: machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}; "
          f"Envoy {info['envoy']}; {info['wrk']}")
    print(f"bench: warden.wasm {info['wasm']} ({info['commit']})")
    pinning = (f"gateways on CPU {sorted(gateway_cpus)}, upstream and wrk on CPU "
               f"{sorted(other_cpus)}" if gateway_cpus else "no CPU pinning")
    print(f"bench: connections {conns}; {args.rounds} x {args.duration:g}s per gateway after "
          f"{args.warmup:g}s warm-up, order alternating each round; {pinning}")

    results: dict[int, dict[str, list[Phase]]] = {}
    width = max(len(v) for v in variants)
    for c in conns:
        results[c] = {name: [] for name in variants}
        if args.warmup:
            for name in variants:
                run_wrk(gateways[name], upstream, c, args.warmup, other_cpus)
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for name in order:
                ph = run_wrk(gateways[name], upstream, c, args.duration, other_cpus)
                results[c][name].append(ph)
                print(f"  c={c:<2d} round {rnd + 1} {name:{width}s} {ph.requests:7d} req "
                      f"{ph.rps:6.0f}/s  CPU {ph.cpu_us:6.1f} µs/req  p50 {ph.p50_ms:6.3f}  "
                      f"p99 {ph.p99_ms:6.3f}  max {ph.max_ms:6.2f} ms  "
                      f"other load {ph.other_load:4.2f} CPU", flush=True)

    if "warden-audit" in variants:
        verified = subprocess.run([str(REPO / "target/release/warden"), "audit", "verify", "--db",
                                   str(audit_db)], capture_output=True, text=True, timeout=600)
        last = (verified.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"bench: warden-audit's trail: {last} (exit {verified.returncode})")
    summary = report(results, variants)
    phases = [p for by in results.values() for ph in by.values() for p in ph]
    total = sum(p.requests for p in phases)
    # The gateways reuse their upstream connections (a few per gateway, not one per request).
    up_cx = counter(up_admin, "http.upstream.downstream_cx_total")
    for gw in gateways.values():
        if gw.name not in ("baseline", "direct"):
            hits = counter(gw.admin, "http.warden.jwt_authn.jwt_cache_hit")
            misses = counter(gw.admin, "http.warden.jwt_authn.jwt_cache_miss")
            allowed = counter(gw.admin, "http.warden.jwt_authn.allowed")
            print(f"bench: {gw.name}: jwt_authn passed {allowed:,} requests; its JWT cache: "
                  f"{hits:,} hits, {misses:,} misses")
        if gw.name == "probe-ledger":
            retries = counter(gw.admin, "wasmcustom.bench_probe.ledger_cas_retries")
            print(f"bench: {gw.name}: {retries:,} compare-and-swap writes lost a race and were "
                  f"retried ({retries / max(allowed, 1):.4f} per request)")
        if gw.name.startswith("warden-budgets"):
            refused = budget_refusals(gw)
            print(f"bench: {gw.name}: refused for a budget: {refused['budget_exhausted']} "
                  f"budget_exhausted (429), {refused['budget_unavailable']} budget_unavailable "
                  f"(503: the ledger's compare-and-swap gave up); settlements not written: "
                  f"{refused['settlements_failed']}")
            if any(refused.values()):
                raise BenchError(f"{gw.name}: the budgets refused or failed to settle: {refused}")
    print(f"\nbench: {total:,} measured requests, all 200; the upstream saw {up_cx} connections; "
          f"the run took {time.monotonic() - t_start:.0f}s")
    noisy = max(p.other_load for p in phases)
    if noisy > 0.15:
        print(f"bench: WARNING: other processes kept up to {noisy:.2f} CPU busy during a phase; "
              "run again on a quiet machine for clean numbers")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": info, "body_bytes": len(body), "stream": stream,
            "duration_s": args.duration, "rounds": args.rounds, "warmup_s": args.warmup,
            "pinning": pinning, "summary": summary,
            "phases": [{k: v for k, v in vars(p).items() if k != "wrk"}
                       | {"rps": p.rps, "cpu_us": p.cpu_us, "other_load": p.other_load}
                       for p in phases],
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
