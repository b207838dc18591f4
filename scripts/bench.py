#!/usr/bin/env python3
"""Load benchmark: Envoy with Warden against the same Envoy without it, in one run, as ratios.

By default (`make bench`) it measures what issue 16 asks: bare Envoy (`baseline`) against Warden
with every feature of the demo policy on, its audit trail delivered to a real `warden serve`
(`warden-audit`), in a matrix of Envoy worker counts (--workers 1,2) x answers (--answers
json,sse: the fixture with stream false or true) x connection counts (--connections 1,16); each
(workers, answer) cell starts its own upstream, audit service and gateways and stops them after.
Then a multi-turn Claude Code session: --sessions conversations growing over --turns turns (see
session_parts), sent turn by turn, interleaved, one measured phase per --turns-per-phase turns,
so Warden's CPU per request can be read against the conversation's length. It prints every
phase, then markdown tables for docs/benchmarks.md (medians of --rounds; ratios against the
targets: <= 2x bare Envoy's CPU per request, <= +0.5 ms p99), and the audit trails' `warden
audit verify`. A refusal (an answer other than 200) is counted per phase and reported, not fatal.
--smoke runs the same harness briefly (the end-to-end suite does).

With --variants the older comparison runs instead: the gateways named, at one worker count and
one answer, every answer required to be 200:

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

  .venv/bin/python scripts/bench.py [--duration 5] [--warmup 2] [--rounds 3]
                                    [--connections 1,16] [--workers 1,2] [--answers json,sse]
                                    [--turns 20] [--turns-per-phase 5] [--sessions 200]
                                    [--no-matrix] [--smoke]
                                    [--variants baseline,warden [--no-stream]]
                                    [--no-pin] [--json results.json] [--keep]

Every phase is bounded by --duration (wrk -d) and by --max-requests, a session phase by its
number of requests; every wrk run by a timeout. Exits 1 when a gateway fails to start, on a
socket error, or (with --variants) when a gateway answers anything but 200; timing is reported,
never asserted. Results and how to read them: docs/benchmarks.md.
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
                        cpus: set[int] | None, name: str = "audit") -> list[str]:
    """`warden serve` for the warden-audit variant (its keys made here, its policy the gateway's
    with the audit trail on, its files named after `name`); returns the gateway's
    `--credential-file` arguments."""
    policy.setdefault("audit", {})
    return start_service(name, policy, tmp, db, procs, cpus)[0]


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


# --------------------------------------------------------------------------------------------
# the multi-turn Claude Code session

# Stands for the session id in the turns' messages; replaced per session (here and in wrk's Lua).
SESSION_TAG = "SESSIONTAG"
# Each added turn's tool result is the fixture's (a ~1.2 KB file) this many times: ~3.6 KB, a
# file read of realistic size, so the history grows ~4 KB per turn.
SESSION_RESULT_REPEAT = 3


@dataclass
class SessionParts:
    """A Claude Code request cut where a session's bodies differ: the body of turn k of session
    `sid` is head + ",".join(turns[:k]) (SESSION_TAG replaced by sid) + middle + sid + tail."""
    head: str
    turns: list[str]
    middle: str
    tail: str

    def body(self, sid: str, turn: int) -> bytes:
        """Turn `turn` (1-based) of session `sid`, exactly as the wrk script builds it."""
        if not 1 <= turn <= len(self.turns):
            raise ValueError(f"turn {turn} is outside 1..{len(self.turns)}")
        messages = ",".join(self.turns[:turn]).replace(SESSION_TAG, sid)
        return (self.head + messages + self.middle + sid + self.tail).encode()

    def write(self, folder: Path) -> Path:
        """The parts as files for the wrk script (head, middle, tail, turn-1 ...)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in (("head", self.head), ("middle", self.middle), ("tail", self.tail)):
            (folder / name).write_bytes(text.encode())
        for t, text in enumerate(self.turns, 1):
            (folder / f"turn-{t}").write_bytes(text.encode())
        return folder


def session_id(nonce: str, index: int) -> str:
    """The session id of the index-th simulated conversation of a phase set (a UUID, as Claude
    Code's); the same format as the wrk script's."""
    return f"{nonce}-b0a1-4000-8000-{index:012x}"


def session_parts(request: dict, turns: int) -> SessionParts:
    """A conversation growing over `turns` turns from the Claude Code fixture: its system prompt,
    tools and settings unchanged; turn 1 is the fixture's first user message, and each later
    turn adds one of the fixture's (assistant text + tool_use, user tool_result) pairs in order
    (cycling), the tool result enlarged to SESSION_RESULT_REPEAT copies. Every turn's messages
    carry the session id (in the first message's text, in tool ids), so two sessions never send
    the same message: whatever a gateway remembers can only help within a session. The session
    id is also in `metadata.user_id`, as Claude Code 2 writes it (a JSON string)."""
    messages = request["messages"]
    pairs = [(messages[i], messages[i + 1]) for i in range(1, len(messages) - 1, 2)
             if messages[i]["role"] == "assistant" and messages[i + 1]["role"] == "user"]
    if turns < 1 or not pairs or messages[0]["role"] != "user":
        raise ValueError("the fixture needs a first user message and assistant/user pairs")

    def compact(value) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    first = json.loads(json.dumps(messages[0]))
    blocks = first["content"] if isinstance(first["content"], list) else \
        [{"type": "text", "text": first["content"]}]
    blocks.append({"type": "text", "text": f"(ticket {SESSION_TAG})"})
    first["content"] = blocks
    chunks = [compact(first)]
    for t in range(2, turns + 1):
        assistant, user = json.loads(json.dumps(pairs[(t - 2) % len(pairs)]))
        tool_id = f"toolu_{SESSION_TAG}_{t:02d}"
        for block in assistant["content"]:
            if block.get("type") == "tool_use":
                block["id"] = tool_id
        for block in user["content"]:
            if block.get("type") == "tool_result":
                block["tool_use_id"] = tool_id
                if isinstance(block.get("content"), str):
                    block["content"] *= SESSION_RESULT_REPEAT
        chunks.append(compact(assistant) + "," + compact(user))
    template = json.loads(json.dumps(request))
    template["messages"] = ["@@MESSAGES@@"]
    user_id = {"device_id": "0" * 64, "account_uuid": "", "session_id": "@@SID@@"}
    template.setdefault("metadata", {})["user_id"] = json.dumps(user_id)
    template["stream"] = True
    text = compact(template)
    head, rest = text.split('"@@MESSAGES@@"')
    middle, tail = rest.split("@@SID@@")
    return SessionParts(head, chunks, middle, tail)


def turn_buckets(turns: int, size: int) -> list[tuple[int, int]]:
    """Turns 1..turns in consecutive buckets of `size` (the last may be shorter)."""
    return [(first, min(first + size - 1, turns)) for first in range(1, turns + 1, size)]


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

WRK_FIXED = r"""
-- Generated by scripts/bench.py: one fixed POST with Claude Code's headers; counts statuses.
local f = assert(io.open(%(body)s, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
%(headers)s
"""

# The 20-turn sessions (see session_parts): `sessions` conversations, each a session of its own,
# sent turn-major (turn k of every session, then turn k+1 of every session, ...) from turn
# `first` to turn `last`; the messages of turns before `first` were sent in an earlier phase.
WRK_SESSION = r"""
-- Generated by scripts/bench.py: Claude Code sessions growing turn by turn; counts statuses.
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end
local dir = %(dir)s
local head, middle, tail = slurp(dir .. "/head"), slurp(dir .. "/middle"), slurp(dir .. "/tail")
local chunks = {}
for t = 1, %(last)d do
  chunks[t] = slurp(dir .. "/turn-" .. t)
end
local first, last, sessions, nonce = %(first)d, %(last)d, %(sessions)d, %(nonce)s
%(headers)s
local ids, history = {}, {}
local function append(s, t)
  local chunk = chunks[t]:gsub("%(tag)s", ids[s])
  history[s] = (history[s] == "") and chunk or (history[s] .. "," .. chunk)
end
for s = 1, sessions do
  ids[s] = string.format("%%s-b0a1-4000-8000-%%012x", nonce, s)
  history[s] = ""
  for t = 1, first - 1 do
    append(s, t)
  end
end
local next_session, next_turn = 1, first
local checked = false

function request()
  if not checked then
    -- wrk calls request() once before it connects, to check the script: nothing is sent.
    checked = true
    return wrk.format("POST", nil, wrk.headers, "{}")
  end
  local s, t = next_session, next_turn
  next_session = next_session + 1
  if next_session > sessions then
    next_session, next_turn = 1, (next_turn < last) and next_turn + 1 or first
  end
  append(s, t)
  wrk.headers["x-claude-code-session-id"] = ids[s]
  return wrk.format("POST", nil, wrk.headers, head .. history[s] .. middle .. ids[s] .. tail)
end
"""

# Shared by both scripts: counts statuses, stops at max_requests, prints one JSON line.
WRK_COUNT = r"""
local max_requests = %(max_requests)d
local done_file = %(done)s
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, bad, statuses, seen, capped, first_bad = 0, 0, "", {}, 0, ""
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then
      -- the first refusal's start, on one line: what it was, for the failure's message
      first_bad = status .. " " .. string.sub(body or "", 1, 300):gsub("%%s+", " ")
    end
    -- "503 x12 429 x3 ": how many of each status (rebuilt only on this rare path)
    seen[status] = (seen[status] or 0) + 1
    statuses = ""
    for s, n in pairs(seen) do
      statuses = statuses .. s .. " x" .. n .. " "
    end
  end
  if ok + bad >= max_requests and capped == 0 then
    capped = 1
    if done_file then
      local f = io.open(done_file, "w")
      if f then f:close() end
    end
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
  for _, t in ipairs(threads) do
    if t:get("first_bad") ~= "" then
      io.write("BENCH_BAD " .. t:get("first_bad") .. "\n")
    end
  end
end
"""


def lua_headers(headers: dict) -> str:
    return "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())


def write_wrk_script(script: Path, body_path: Path, headers: dict, max_requests: int) -> Path:
    script.write_text(WRK_FIXED % {"body": json.dumps(str(body_path)),
                                   "headers": lua_headers(headers)}
                      + WRK_COUNT % {"max_requests": max_requests, "done": "nil"})
    return script


def write_session_script(script: Path, parts_dir: Path, headers: dict, first: int, last: int,
                         sessions: int, nonce: str) -> Path:
    """A wrk script sending turns first..last of `sessions` sessions once each, turn-major;
    it stops after exactly that many answers."""
    script.write_text(WRK_SESSION % {"dir": json.dumps(str(parts_dir)), "first": first,
                                     "last": last, "sessions": sessions,
                                     "nonce": json.dumps(nonce), "tag": SESSION_TAG,
                                     "headers": lua_headers(headers)}
                      + WRK_COUNT % {"max_requests": sessions * (last - first + 1),
                                   "done": json.dumps(str(script) + ".done")})
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
    refused: int = 0  # answers other than 200 (only a tolerant phase completes with any)
    first_refusal: str = ""  # the first such answer's status and body start

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
            cpus: set[int] | None = None, script: Path | None = None,
            bounded: bool = False, tolerate: bool = False) -> Phase:
    """One phase: wrk against the gateway for `seconds` (`bounded`: until `script` stops it
    after its fixed number of requests, within `seconds`), with the gateway's script or
    `script`; fails on a socket error, and unless every answer was 200 (`tolerate`: the
    refusals are counted in the phase instead, the first one kept)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "--latency",
           "-s", str(script or gw.script), f"http://127.0.0.1:{gw.port}{PATH}"]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = machine_busy_seconds()
    cpu0, up0 = cpu_seconds(gw.proc.pid), cpu_seconds(upstream.pid)
    done = Path(str(script or gw.script) + ".done")
    done.unlink(missing_ok=True)  # a script run again (the next round) must start without it
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL, preexec_fn=pinner(cpus))
    try:
        if bounded:
            # wrk runs for its whole -d even when the script stops its thread: the script
            # touches <script>.done after its last answer, and SIGINT ends wrk, which reports.
            deadline = time.monotonic() + seconds
            while wrk.poll() is None and not done.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            if wrk.poll() is None:
                wrk.send_signal(signal.SIGINT)
        stdout, stderr = wrk.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        wrk.kill()
        wrk.communicate()
        raise BenchError(f"{gw.name}: wrk did not finish within {seconds + 60:.0f}s") from None
    out = subprocess.CompletedProcess(cmd, wrk.returncode, stdout, stderr)
    cpu1, up1 = cpu_seconds(gw.proc.pid), cpu_seconds(upstream.pid)
    busy1 = machine_busy_seconds()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    m = re.search(r"^BENCH_JSON (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise BenchError(f"{gw.name}: wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    w = json.loads(m.group(1))
    errors = {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]}
    if tolerate and errors.get("status") == w["bad"]:
        errors.pop("status")  # wrk counts every answer >= 400 as a "status" error too
    first_refusal = ", ".join(re.findall(r"^BENCH_BAD (.*)$", out.stdout, re.M))
    if ((w["bad"] and not tolerate) or errors or w["ok"] + w["bad"] != w["requests"]
            or not w["requests"]):
        raise BenchError(
            f"{gw.name} at {connections} connections: {w['ok']} of {w['requests']} requests got "
            f"200; other statuses: {w['bad_statuses'].strip() or 'none'}; socket errors: "
            f"{errors or 'none'}; the first: {first_refusal or '(none)'}"
            f" (gateway log {gw.proc.log}):\n{gw.proc.log_tail()}")
    if bounded and not w["capped"]:
        raise BenchError(f"{gw.name}: the phase ran out of time ({seconds:g}s) before its last "
                         "request")
    if w["capped"] and not bounded:
        print(f"bench: {gw.name}: the phase stopped at --max-requests; its req/s is understated "
              "and its CPU per request includes idle time")
    return Phase(gateway=gw.name, connections=connections, requests=w["requests"],
                 seconds=w["duration_us"] / 1e6, cpu_s=cpu1 - cpu0, upstream_cpu_s=up1 - up0,
                 client_cpu_s=client,
                 other_cpu_s=max(0.0, (busy1 - busy0) - (up1 - up0) - client
                                 - (0 if gw.proc is upstream else cpu1 - cpu0)),
                 p50_ms=w["p50_us"] / 1e3, p90_ms=w["p90_us"] / 1e3, p99_ms=w["p99_us"] / 1e3,
                 max_ms=w["max_us"] / 1e3, wrk=w, refused=w["bad"],
                 first_refusal=first_refusal)


# --------------------------------------------------------------------------------------------
# report


# The targets of issue 16 (reported, never asserted).
TARGET_CPU_RATIO = 2.0
TARGET_P99_ADDED_MS = 0.5


def compare(base: dict, gateway: dict) -> dict:
    """A gateway's medians against bare Envoy's (both with cpu_us, p50_ms, p99_ms, rps); a ratio
    to a zero (a phase too short for the CPU clock's 10 ms ticks) is NaN."""
    return {
        "cpu_ratio": ratio(gateway["cpu_us"], base["cpu_us"]),
        "cpu_added_us": gateway["cpu_us"] - base["cpu_us"],
        "p50_added_ms": gateway["p50_ms"] - base["p50_ms"],
        "p99_added_ms": gateway["p99_ms"] - base["p99_ms"],
        "rps_ratio": ratio(gateway["rps"], base["rps"]),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def medians(phases: list[Phase]) -> dict:
    """The medians of a gateway's phases (one cell of a table)."""
    return {k: med(phases, k) for k in ("rps", "cpu_us", "p50_ms", "p90_ms", "p99_ms",
                                        "other_load")} | {"refused": sum(p.refused for p in phases)}


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def matrix_markdown(cells: list[dict]) -> str:
    """The matrix as a markdown table: one row per (workers, answer, connections) cell, each with
    `base` and `warden` medians and their `compare`."""
    lines = ["| Envoy workers | answer | connections | bare Envoy CPU µs/req | Warden CPU µs/req "
             "| CPU ratio (≤ 2×) | p50 added | p99 bare → Warden | p99 added (≤ +0.5 ms) "
             "| throughput ratio | refused | other load |",
             "| ---: | --- | ---: | ---: | ---: | --- | ---: | --- | --- | ---: | ---: | ---: |"]
    for c in cells:
        b, w, r = c["base"], c["warden"], c["ratios"]
        lines.append(
            f"| {c['workers']} | {c['answer']} | {c['connections']} | {b['cpu_us']:.1f} "
            f"| {w['cpu_us']:.1f} | **{r['cpu_ratio']:.2f}×** "
            f"{verdict(r['cpu_ratio'] <= TARGET_CPU_RATIO)} | {r['p50_added_ms']:+.3f} ms "
            f"| {b['p99_ms']:.3f} → {w['p99_ms']:.3f} ms | **{r['p99_added_ms']:+.3f} ms** "
            f"{verdict(r['p99_added_ms'] <= TARGET_P99_ADDED_MS)} | {r['rps_ratio']:.2f}× "
            f"| {b.get('refused', 0) + w.get('refused', 0)} "
            f"| {max(b['other_load'], w['other_load']):.2f} |")
    return "\n".join(lines)


def session_markdown(rows: list[dict]) -> str:
    """The session's per-turn table: one row per turn bucket (`first`, `last`, `body_kb` range,
    `base` and `warden` medians), then how the added CPU moved from the first bucket to the last."""
    lines = ["| turns | body KB | bare Envoy CPU µs/req | Warden CPU µs/req | CPU ratio "
             "| Warden − bare µs/req | p50 added | p99 added |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ratios = compare(r["base"], r["warden"])
        lines.append(
            f"| {r['first']}–{r['last']} | {r['body_kb'][0]:.0f}–{r['body_kb'][1]:.0f} "
            f"| {r['base']['cpu_us']:.1f} | {r['warden']['cpu_us']:.1f} "
            f"| {ratios['cpu_ratio']:.2f}× | {ratios['cpu_added_us']:+.1f} "
            f"| {ratios['p50_added_ms']:+.3f} ms | {ratios['p99_added_ms']:+.3f} ms |")
    if len(rows) >= 2:
        growth = session_growth(rows)
        lines.append("")
        last, first = rows[-1], rows[0]
        lines.append(f"Warden's added CPU per turn, turns {last['first']}–{last['last']} "
                     f"÷ turns {first['first']}–{first['last']}: **{growth['added']:.2f}×** "
                     f"(bare Envoy's own CPU per turn: {growth['base']:.2f}×; flat is 1.00×).")
    return "\n".join(lines)


def session_growth(rows: list[dict]) -> dict:
    """How the last bucket's CPU per request compares with the first's: Warden's added CPU
    (`added`) and bare Envoy's (`base`), as ratios."""
    first, last = rows[0], rows[-1]

    def added(r: dict) -> float:
        return r["warden"]["cpu_us"] - r["base"]["cpu_us"]

    return {"added": ratio(added(last), added(first)),
            "base": ratio(last["base"]["cpu_us"], first["base"]["cpu_us"])}


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
            row[f"{name}_vs_baseline"] = ratios = compare(b, w)
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


def parse_list(ap: argparse.ArgumentParser, option: str, text: str, low: int,
               high: int) -> list[int]:
    """A comma-separated list of whole numbers, each in low..high (argparse error otherwise)."""
    try:
        values = [int(c) for c in text.split(",")]
    except ValueError:
        ap.error(f"{option}: comma-separated numbers")
    if not values or any(not low <= v <= high for v in values):
        ap.error(f"{option}: each between {low} and {high}")
    return list(dict.fromkeys(values))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="variants: " + "; ".join(f"{k}: {v}" for k, v in VARIANT_HELP.items()))
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per gateway "
                                                             "and connection count")
    ap.add_argument("--rounds", type=int, default=None,
                    help="measured phases per gateway and connection count, the median reported "
                         "(default 3; 1 with --smoke)")
    ap.add_argument("--connections", default="1,16", help="comma-separated connection counts")
    ap.add_argument("--workers", default=None,
                    help="Envoy worker threads per gateway (--concurrency), comma-separated in the "
                         "matrix (default 1,2), one number with --variants (default 1). A gateway "
                         "with 2 or more workers runs unpinned in the matrix; with --variants add "
                         "--no-pin so that the workers really run in parallel")
    ap.add_argument("--answers", default="json,sse",
                    help="the matrix's answers: json (stream: false, a Message JSON), sse "
                         "(stream: true, an event stream) or both (default json,sse)")
    ap.add_argument("--turns", type=int, default=20,
                    help="the session's length in turns (default 20; 0: no session)")
    ap.add_argument("--turns-per-phase", type=int, default=5,
                    help="turns per measured session phase (default 5: 1-5, 6-10, ...)")
    ap.add_argument("--sessions", type=int, default=200,
                    help="conversations per session phase, each a session of its own, sent turn by "
                         "turn interleaved (default 200)")
    ap.add_argument("--no-matrix", action="store_true",
                    help="only the session (e.g. to repeat it with more --sessions or --rounds)")
    ap.add_argument("--smoke", action="store_true",
                    help="check the harness: 1 s phases, no warm-up, 4 sessions, one round unless "
                         "--rounds says otherwise")
    ap.add_argument("--variants", default=None,
                    help="instead of the matrix, compare these gateways at one worker count and "
                         "one answer; baseline is required (e.g. baseline,warden; any of "
                         f"{', '.join(VARIANTS)})")
    ap.add_argument("--no-stream", action="store_true",
                    help="with --variants: send the fixture with stream: false (a Message JSON "
                         "answer)")
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

    if args.smoke:
        args.duration, args.warmup, args.sessions = 1.0, 0.0, 4
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 3
    conns = parse_list(ap, "--connections", args.connections, 1, 256)
    workers = parse_list(ap, "--workers", args.workers or ("1" if args.variants else "1,2"), 1, 64)
    if not 0 < args.duration <= 60 or not 0 <= args.warmup <= 60 or not 1 <= args.rounds <= 10:
        ap.error("--duration must be in (0, 60], --warmup in [0, 60] and --rounds in 1..10")
    if not 0 <= args.turns <= 100 or not 1 <= args.turns_per_phase <= 100 \
            or not 1 <= args.sessions <= 10_000:
        ap.error("--turns in 0..100, --turns-per-phase in 1..100, --sessions in 1..10000")
    if args.no_matrix and not args.turns:
        ap.error("--no-matrix with --turns 0 measures nothing")
    answers = list(dict.fromkeys(a.strip() for a in args.answers.split(",") if a.strip()))
    if not answers or any(a not in ("json", "sse") for a in answers):
        ap.error("--answers: json, sse or json,sse")
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is missing: apt-get install -y wrk (make bench does it)")
    if not WASM.is_file():
        sys.exit(f"bench: {WASM} is missing: run `make build` first")
    if args.variants is None:
        return run_in_workdir("bench", args.keep, lambda tmp, procs: run_matrix(
            args, conns, workers, answers, tmp, procs))
    variants = list(dict.fromkeys(v.strip() for v in args.variants.split(",") if v.strip()))
    unknown = [v for v in variants if v not in VARIANTS]
    if "baseline" not in variants or unknown:
        ap.error(f"--variants: baseline plus any of {', '.join(VARIANTS)}"
                 + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    if len(workers) != 1:
        ap.error("--workers: one number with --variants")
    args.workers = workers[0]
    return run_in_workdir("bench", args.keep,
                          lambda tmp, procs: run(args, variants, conns, tmp, procs))


def run_in_workdir(name: str, keep: bool, body) -> int:
    """Runs `body(tmp, procs)` in a fresh temporary folder, then stops every process it started
    (newest first) and removes the folder, unless `keep` or the run failed (then it says where
    the logs are). A BenchError is reported and gives exit status 1."""
    tmp = Path(tempfile.mkdtemp(prefix=f"warden-{name.replace('_', '-')}-"))
    procs: list[Proc] = []
    # SIGTERM (a timeout, a kill) stops the run through the `finally` below, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"{name}: terminated"))
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


@dataclass
class Setup:
    """What every gateway of a run shares: the issuer's token, the policies, the upstream key,
    the filter's private copy, the services' credentials and the CPU placement."""
    args: argparse.Namespace
    tmp: Path
    procs: list[Proc]
    info: dict
    token: str
    request: dict
    policy: dict
    audit_policy: dict
    policy_path: Path
    api_key: str
    key_file: Path
    wasm: Path
    probe_wasm: Path | None
    gateway_cpus: set[int] | None
    other_cpus: set[int] | None
    audit_args: list[str]
    audit_db: Path
    revocation_args: list[str]


def prepare(args: argparse.Namespace, variants: list[str], tmp: Path, procs: list[Proc],
            services: bool = True) -> Setup:
    """The run's shared pieces, and (`services`) the services the variants need, started now
    for the whole run."""
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

    # CPU placement: the gateway under test gets a CPU of its own; the upstream and wrk share the
    # others, so the gateway never waits for a CPU behind the load generator.
    allowed = sorted(os.sched_getaffinity(0))
    gateway_cpus = other_cpus = None
    if args.pin and len(allowed) >= 2:
        gateway_cpus, other_cpus = {allowed[-1]}, set(allowed[:-1])

    audit_args: list[str] = []
    audit_db = tmp / "audit.db"
    if services and "warden-audit" in variants:
        audit_args = start_audit_service(audit_policy, tmp, audit_db, procs, other_cpus)
    revocation_args: list[str] = []
    if services and ("warden-revocation" in variants or "warden-extauthz" in variants):
        revocation_args = start_revocation_service(policy, tmp, procs, other_cpus)
    return Setup(args=args, tmp=tmp, procs=procs, info=info, token=token,
                 request=json.loads(Path(args.fixture).read_text()), policy=policy,
                 audit_policy=audit_policy,
                 policy_path=policy_path, api_key=api_key, key_file=key_file, wasm=wasm,
                 probe_wasm=probe_wasm, gateway_cpus=gateway_cpus, other_cpus=other_cpus,
                 audit_args=audit_args, audit_db=audit_db, revocation_args=revocation_args)


def fixture_body(setup: Setup, stream: bool) -> tuple[bytes, dict[str, str]]:
    """The fixture with `stream` set, and the headers Claude Code sends with it."""
    request = dict(setup.request, stream=stream)
    body = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()
    headers = claude_code_headers(setup.token)
    if not stream:
        headers.pop("x-stainless-helper-method")
    return body, headers


def start_upstream(setup: Setup, stream: bool, label: str) -> tuple[Proc, int, int, str]:
    """The canned upstream answering SSE (`stream`) or JSON: (process, port, admin port, answer)."""
    content_type, answer = canned_response(setup.request.get("model", "claude-sonnet-4-6"), stream)
    port, admin = free_port(), free_port()
    config = setup.tmp / f"upstream-{label}.json"  # JSON: the canned body's newlines survive
    config.write_text(json.dumps(upstream_config(port, admin, setup.api_key, content_type, answer),
                                 indent=1))
    proc = Proc(f"upstream-{label}", [envoy_binary(), "-c", str(config), "--concurrency", "1",
                                      "--log-level", "warning", "--disable-hot-restart"],
                setup.tmp / f"upstream-{label}.log", cpus=setup.other_cpus)
    setup.procs.append(proc)
    wait_ready(proc, admin, port)
    return proc, port, admin, answer


def start_gateway(setup: Setup, name: str, label: str, workers: int, up_port: int,
                  script: Path, cpus: set[int] | None) -> Gateway:
    """Gateway `name` (a variant) with `workers` Envoy workers in front of the upstream on
    `up_port`, started and ready; `label` names its files."""
    port, admin = free_port(), free_port()
    render_args = ["--policy", str(setup.policy_path), "--wasm", str(setup.wasm), "--upstream",
                   f"http://127.0.0.1:{up_port}", "--port", str(port), "--admin-port", str(admin)]
    if name in WARDEN_VARIANTS:
        if name != "warden":
            render_args[1] = str(setup.tmp / f"policy-{name.removeprefix('warden-')}.yaml")
        config = setup.tmp / f"{label}.yaml"
        cmd = [PY, str(REPO / "scripts/run_envoy.py"), *render_args, "--config-out",
               str(config), "--log-level", "warning", "--concurrency", str(workers),
               # The launcher execs Envoy (no drain supervisor), so the measured process is
               # Envoy itself: its CPU is what the benchmark reports.
               "--drain-timeout", "0",
               "--credential-file", f"ANTHROPIC_API_KEY={setup.key_file}",
               *(setup.audit_args if name == "warden-audit" else
                 setup.revocation_args if name in ("warden-revocation", "warden-extauthz") else
                 approval_credential_args(setup.policy, setup.tmp)),
               *(["--revocation-ext-authz"] if name == "warden-extauthz" else [])]
        env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    else:
        config = setup.tmp / f"{label}.json"
        rendered = setup.tmp / f"{label}-rendered.yaml"
        if render_envoy.main([*render_args, "--out", str(rendered)]) != 0:
            raise BenchError("render_envoy failed")
        derive_config(rendered, config, name, setup.probe_wasm)
        cmd = [envoy_binary(), "-c", str(config), "--concurrency", str(workers),
               "--log-level", "warning", "--disable-hot-restart"]
        env = dict(os.environ, ANTHROPIC_API_KEY=setup.api_key)
    proc = Proc(label, cmd, setup.tmp / f"{label}.log", env, cpus=cpus)
    setup.procs.append(proc)
    wait_ready(proc, admin, port)
    return Gateway(name, proc, port, admin, script)


def measure(gateways: dict[str, Gateway], upstream: Proc, variants: list[str], conns: list[int],
            args: argparse.Namespace, cpus: set[int] | None, label: str = "",
            tolerate: bool = False) -> dict[int, dict[str, list[Phase]]]:
    """Per connection count: warm every gateway up, then --rounds phases each in alternating
    order (so drift cancels); prints every phase. `tolerate`: see run_wrk."""
    results: dict[int, dict[str, list[Phase]]] = {}
    width = max(len(v) for v in variants)
    for c in conns:
        results[c] = {name: [] for name in variants}
        if args.warmup:
            for name in variants:
                run_wrk(gateways[name], upstream, c, args.warmup, cpus, tolerate=tolerate)
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for name in order:
                ph = run_wrk(gateways[name], upstream, c, args.duration, cpus, tolerate=tolerate)
                results[c][name].append(ph)
                print_phase(f"{label}c={c:<2d} round {rnd + 1} {name:{width}s}", ph)
    return results


def print_phase(label: str, ph: Phase) -> None:
    print(f"  {label} {ph.requests:7d} req {ph.rps:6.0f}/s  CPU {ph.cpu_us:6.1f} µs/req  "
          f"p50 {ph.p50_ms:6.3f}  p99 {ph.p99_ms:6.3f}  max {ph.max_ms:6.2f} ms  "
          f"other load {ph.other_load:4.2f} CPU"
          + (f"  REFUSED {ph.refused}: {ph.first_refusal}" if ph.refused else ""), flush=True)


def verify_trail(setup: Setup, settle: float = 0.0) -> str:
    """`warden audit verify` on the audit service's store: its last line and exit status. With
    `settle`, first waits (at most that many seconds) until the stored record count stops
    growing for 2 s: the records still queued in the gateway's workers when the load stopped
    are delivered by then, and a gap left after that is not one still in flight."""
    def verify() -> subprocess.CompletedProcess:
        return subprocess.run([str(REPO / "target/release/warden"), "audit", "verify", "--db",
                               str(setup.audit_db)], capture_output=True, text=True, timeout=600)

    def records(out: subprocess.CompletedProcess) -> str:
        found = re.search(r"(\d+) records", out.stdout)
        return found.group(1) if found else ""

    verified = verify()
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        time.sleep(2)
        again = verify()
        if records(again) == records(verified):
            break
        verified = again
    lines = verified.stdout.strip().splitlines() or ["(no output)"]
    # Intact: its summary line. Otherwise every line (the breaks and gaps it found).
    shown = lines[-1] if verified.returncode == 0 else "\n    ".join(lines[-20:])
    return f"{shown} (exit {verified.returncode})"


def print_machine(setup: Setup) -> None:
    info = setup.info
    print(f"bench: machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}; "
          f"Envoy {info['envoy']}; {info['wrk']}")
    print(f"bench: warden.wasm {info['wasm']} ({info['commit']})")


# The matrix's gateways: bare Envoy, and Warden with everything of the demo policy on (the audit
# trail included, delivered to a real `warden serve`).
MATRIX_VARIANTS = ["baseline", "warden-audit"]


def run_matrix(args: argparse.Namespace, conns: list[int], workers: list[int], answers: list[str],
               tmp: Path, procs: list[Proc]) -> int:
    """The default run: bare Envoy against Warden with everything on, for every (workers, answer,
    connections) cell, then the multi-turn session; prints markdown tables."""
    t_start = time.monotonic()
    setup = prepare(args, MATRIX_VARIANTS, tmp, procs, services=False)
    print_machine(setup)
    print(f"bench: matrix: Envoy workers {workers} x answers {answers} x connections {conns}; "
          f"bare Envoy (baseline) vs Warden with the demo policy's every feature on "
          f"(warden-audit); {args.rounds} x {args.duration:g}s per gateway and cell after "
          f"{args.warmup:g}s warm-up, order alternating each round")
    cells: list[dict] = []
    trails: list[str] = []  # each cell's audit trail, checked while its gateway still runs
    for n_workers in [] if args.no_matrix else workers:
        # One worker: the gateway on a CPU of its own. More: on every CPU, or they would share one.
        cpus = setup.gateway_cpus if n_workers == 1 else None
        placement = (f"gateway on CPU {sorted(cpus)}, upstream and wrk on "
                     f"{sorted(setup.other_cpus or [])}" if cpus else "gateway on every CPU")
        for answer in answers:
            stream = answer == "sse"
            label = f"w{n_workers}-{answer}"
            print(f"\nbench: {n_workers} worker{'s' if n_workers > 1 else ''}, {answer} answers "
                  f"({placement})")
            body, headers = fixture_body(setup, stream)
            body_path = tmp / f"request-{answer}.json"
            body_path.write_bytes(body)
            script = write_wrk_script(tmp / f"{label}.lua", body_path, headers, args.max_requests)
            cell_procs = len(procs)
            start_cell_audit(setup, label)
            upstream, up_port, _, expect = start_upstream(setup, stream, label)
            gateways = {name: start_gateway(setup, name, f"{name}-{label}", n_workers, up_port,
                                            script, cpus) for name in MATRIX_VARIANTS}
            for gw in gateways.values():
                probe(gw, body, headers, expect)
            results = measure(gateways, upstream, MATRIX_VARIANTS, conns, args, setup.other_cpus,
                              f"{label} ", tolerate=True)
            for c in conns:
                base = medians(results[c]["baseline"])
                warden = medians(results[c]["warden-audit"])
                cells.append({"workers": n_workers, "answer": answer, "connections": c,
                              "body_bytes": len(body), "base": base, "warden": warden,
                              "ratios": compare(base, warden),
                              "phases": {name: [phase_json(p) for p in ph]
                                         for name, ph in results[c].items()}})
            trails.append(f"{label}: {verify_trail(setup, settle=20)}")
            stop_since(procs, cell_procs)
    sessions = run_session(setup, trails) if args.turns else []

    print("\nbench: warden-audit's trails (`warden audit verify`, each once delivery settled, "
          "before its gateway stopped):")
    for trail in trails:
        print(f"  {trail}")
    if cells:
        print(f"\n## Matrix: bare Envoy vs Warden with everything on ({setup.info['commit']}, "
              f"{args.rounds} x {args.duration:g}s)\n")
        print(matrix_markdown(cells))
    if sessions:
        print(f"\n## A {args.turns}-turn Claude Code session: CPU per request by turn "
              f"({args.sessions} sessions interleaved, 1 worker, SSE, 1 connection)\n")
        print(session_markdown(sessions))
    phases = [p for c in cells for ph in c["phases"].values() for p in ph] \
        + [p for r in sessions for ph in r["phases"].values() for p in ph]
    noisy = max(p["other_load"] for p in phases)
    refusals = [p for p in phases if p["refused"]]
    for p in refusals:
        print(f"bench: WARNING: {p['gateway']} refused {p['refused']} of {p['requests']} requests "
              f"in a phase at {p['connections']} connections; the first: {p['first_refusal']}")
    print(f"\nbench: {sum(p['requests'] for p in phases):,} measured requests, "
          f"{sum(p['refused'] for p in phases)} refused, the rest 200; the run "
          f"took {time.monotonic() - t_start:.0f}s; other load up to {noisy:.2f} CPU")
    if noisy > 0.15:
        print(f"bench: WARNING: other processes kept up to {noisy:.2f} CPU busy during a phase; "
              "compare the ratios within this run, and run again on a quiet machine for clean "
              "absolute numbers")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": setup.info, "duration_s": args.duration, "rounds": args.rounds,
            "warmup_s": args.warmup, "matrix": cells, "session": sessions,
            "session_growth": session_growth(sessions) if len(sessions) >= 2 else None,
        }, indent=2))
    return 0


def phase_json(p: Phase) -> dict:
    return {k: v for k, v in vars(p).items() if k != "wrk"} | {
        "rps": p.rps, "cpu_us": p.cpu_us, "other_load": p.other_load}


def stop_since(procs: list[Proc], start: int) -> None:
    """Stops the processes started since procs had `start` entries (newest first)."""
    for proc in reversed(procs[start:]):
        proc.stop()
    del procs[start:]


def start_cell_audit(setup: Setup, label: str) -> None:
    """A `warden serve` with a store of its own for the warden-audit gateway of one cell: a
    gateway stopped at the end of its cell loses the records it had not yet delivered, which
    a store shared with the next cell would report as a gap."""
    setup.audit_db = setup.tmp / f"audit-{label}.db"
    setup.audit_args = start_audit_service(json.loads(json.dumps(setup.audit_policy)), setup.tmp,
                                           setup.audit_db, setup.procs, setup.other_cpus,
                                           f"audit-{label}")
    # The warden-audit gateway reads policy-audit.yaml: this cell's, pointed at this service.
    shutil.copyfile(setup.tmp / f"policy-audit-{label}.yaml", setup.tmp / "policy-audit.yaml")


def run_session(setup: Setup, trails: list[str]) -> list[dict]:
    """The multi-turn session on fresh 1-worker gateways (SSE answers, 1 connection): per round
    and gateway, --sessions new sessions sent turn by turn, one measured phase per
    --turns-per-phase turns, so each phase's turns follow the turns the phase before sent."""
    args = setup.args
    session = session_parts(setup.request, args.turns)
    parts_dir = session.write(setup.tmp / "session")
    buckets = turn_buckets(args.turns, args.turns_per_phase)
    headers = claude_code_headers(setup.token)
    print(f"\nbench: session: {args.sessions} Claude Code sessions of {args.turns} turns "
          f"({len(session.body(session_id('0' * 8, 0), 1)):,} B at turn 1, "
          f"{len(session.body(session_id('0' * 8, 0), args.turns)):,} B at turn {args.turns}), "
          f"turns interleaved across sessions; phases of turns "
          f"{', '.join(f'{a}-{b}' for a, b in buckets)}; {args.rounds} rounds")
    start = len(setup.procs)
    start_cell_audit(setup, "session")
    upstream, up_port, _, expect = start_upstream(setup, True, "session")
    gateways = {name: start_gateway(setup, name, f"{name}-session", 1, up_port,
                                    setup.tmp / "unused.lua", setup.gateway_cpus)
                for name in MATRIX_VARIANTS}
    for gw in gateways.values():
        sid = session_id(secrets.token_hex(4), 0)
        probe(gw, session.body(sid, 1), headers | {"x-claude-code-session-id": sid}, expect)
    phases: dict[tuple[int, int], dict[str, list[Phase]]] = {
        b: {name: [] for name in MATRIX_VARIANTS} for b in buckets}
    width = max(len(v) for v in MATRIX_VARIANTS)
    for rnd in range(args.rounds):
        order = MATRIX_VARIANTS if rnd % 2 == 0 else list(reversed(MATRIX_VARIANTS))
        for name in order:
            nonce = secrets.token_hex(4)
            for first, last in buckets:
                script = write_session_script(setup.tmp / f"session-{name}-{first}.lua",
                                              parts_dir, headers, first, last, args.sessions,
                                              nonce)
                ph = run_wrk(gateways[name], upstream, 1, 600, setup.other_cpus, script,
                             bounded=True, tolerate=True)
                phases[(first, last)][name].append(ph)
                print_phase(f"session round {rnd + 1} {name:{width}s} turns {first:2d}-{last:<2d}",
                            ph)
    trails.append(f"session: {verify_trail(setup, settle=20)}")
    stop_since(setup.procs, start)
    sid = session_id("0" * 8, 0)
    return [{"first": a, "last": b,
             "body_kb": (len(session.body(sid, a)) / 1024, len(session.body(sid, b)) / 1024),
             "base": medians(phases[(a, b)]["baseline"]),
             "warden": medians(phases[(a, b)]["warden-audit"]),
             "phases": {name: [phase_json(p) for p in ph]
                        for name, ph in phases[(a, b)].items()}}
            for a, b in buckets]


def run(args: argparse.Namespace, variants: list[str], conns: list[int], tmp: Path,
        procs: list[Proc]) -> int:
    """--variants: the gateways compared at one worker count and one answer (the older run)."""
    t_start = time.monotonic()
    setup = prepare(args, variants, tmp, procs)
    info = setup.info
    stream = not args.no_stream
    body, headers = fixture_body(setup, stream)
    body_path = tmp / "request.json"
    body_path.write_bytes(body)
    upstream, up_port, up_admin, answer = start_upstream(setup, stream, "main")
    gateway_script = write_wrk_script(tmp / "gateway.lua", body_path, headers, args.max_requests)
    direct_headers = {k: v for k, v in headers.items() if k != "authorization"}
    direct_headers["x-api-key"] = setup.api_key

    # The gateways, all started now and kept running for the whole run.
    gateways: dict[str, Gateway] = {}
    for name in variants:
        if name == "direct":
            gateways[name] = Gateway(name, upstream, up_port, up_admin, write_wrk_script(
                tmp / "direct.lua", body_path, direct_headers, args.max_requests))
            continue
        gateways[name] = start_gateway(setup, name, name, args.workers, up_port, gateway_script,
                                       setup.gateway_cpus)
    for gw in gateways.values():
        probe(gw, body, direct_headers if gw.name == "direct" else headers, answer)

    print(f"bench: POST {PATH}, {len(body):,} B Claude-Code-shaped body ({Path(args.fixture).name},"
          f" stream={str(stream).lower()}), {len(headers)} headers; "
          f"{args.workers} Envoy worker{'s' if args.workers > 1 else ''} per gateway")
    print_machine(setup)
    pinning = (f"gateways on CPU {sorted(setup.gateway_cpus)}, upstream and wrk on CPU "
               f"{sorted(setup.other_cpus or [])}" if setup.gateway_cpus else "no CPU pinning")
    print(f"bench: connections {conns}; {args.rounds} x {args.duration:g}s per gateway after "
          f"{args.warmup:g}s warm-up, order alternating each round; {pinning}")

    results = measure(gateways, upstream, variants, conns, args, setup.other_cpus)
    if "warden-audit" in variants:
        print(f"bench: warden-audit's trail: {verify_trail(setup)}")
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
