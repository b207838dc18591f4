#!/usr/bin/env python3
"""DLP in Envoy: what masking Claude's streamed answers costs, with and without Warden, in one run.

Two measurements (everything on 127.0.0.1, on free ports; all processes stopped at the end):

  throughput  an upstream streams a large Messages SSE answer (default 8 MB: one text block of
              realistic prose, code and JSON in `text_delta` events of 12-40 characters) as fast
              as it can, in 16 KB HTTP chunks. Two versions: `plain`, and `secrets` with a
              fabricated credential or email every ~10 KB of text (ghp_ + 36 alnum, AKIA + 16,
              an address). The client measures the wall time from the first to the last byte of
              the answer; the gateway's CPU is utime+stime of its Envoy process (/proc/PID/stat)
              over each phase. Reported: MB/s of SSE bytes and of text bytes (MB = 10^6 bytes),
              Envoy CPU ms per MB, and the ratio to bare Envoy.
              Adversarial answers (--answers): `digits` (`1 ` per delta), `hex` (one upper-case
              hex word), `base64` (one base64 word), `onechar` (prose, one character per delta):
              streams that make a redactor hold text back; nothing in them is masked.
  slow stream the upstream sends one `text_delta` every --interval (20 ms) for --events (200)
              deltas; `plain` prose, then `pii` prose with emails and phone numbers. All gateways
              are read at once, their requests staggered inside one interval. The upstream
              records when it sent each delta (CLOCK_MONOTONIC, shared with the client); the
              client records when each byte arrived. Reported per gateway: time to the first
              byte and to the first text delta, the gaps between the text deltas the client got
              (p50/p99/max), and each upstream delta's latency (sent -> its last character at
              the client, masks mapped back), with its median and p99 added over bare Envoy.

Gateways (each Envoy --concurrency 1, pinned to the last CPU; upstream and client on the others):
  direct          no gateway: the client straight to the upstream (the harness's own ceiling)
  baseline        bare Envoy: scripts/bench.py's baseline (no jwt_authn, no Warden)
  warden-off      the real gateway (jwt_authn + warden.wasm), the role's DLP profile `off`
  warden-parse    ... a profile with one policy detector that never matches: answers go through
                  the stream rewriter (SSE parse, deltas re-written) but are hardly scanned
  warden-creds    ... profile `creds`: credentials masked, in both directions
  warden-default  ... the built-in `default` profile: credentials, and personal data in answers

Policy: envoy/policy.yaml with its identity providers replaced by a throw-away ES256 issuer (as
scripts/bench.py does); the token is for role `developer`. Every answer must be 200 and carry
the expected text: unchanged where nothing is masked, and otherwise with exactly the planted
values replaced by `[REDACTED:<detector>:<hex>]` masks and no secret left (checked in full on
the first transfer of every phase and on every slow stream; the mask count and the closing
event on every transfer). A failed check exits 1. Timings are reported, never asserted.

  .venv/bin/python scripts/bench_dlp.py [--sse-mb 8] [--delta-chars 12-40] [--rounds 3] [--phase 1.0]
                                        [--answers plain,secrets,digits,hex,base64,onechar]
                                        [--events 200] [--interval 0.02] [--slow-rounds 3]
                                        [--variants direct,baseline,warden-off,warden-parse,...]
                                        [--no-pin] [--json FILE] [--keep]

Results and how to read them: docs/benchmarks.md, section "DLP in Envoy".
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import http.client
import json
import os
import random
import re
import resource
import secrets
import selectors
import shutil
import socket
import statistics
import string
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (sibling module: the load benchmark's machinery)
import render_envoy  # noqa: E402
from bench import BenchError, Proc, cpu_seconds, free_port  # noqa: E402

REPO = bench.REPO
PATH = "/v1/messages"
VARIANTS = ("direct", "baseline", "warden-off", "warden-parse", "warden-creds", "warden-default")
PROFILES = {"warden-off": "off", "warden-parse": "parse", "warden-creds": "creds",
            "warden-default": "default"}
# What each gateway masks in answers (detector ids of the values this script plants).
MASKED = {"direct": set(), "baseline": set(), "warden-off": set(), "warden-parse": set(),
          "warden-creds": {"github-pat", "aws-access-key"},
          "warden-default": {"github-pat", "aws-access-key", "email", "phone"}}
CREDS_PROFILE = {"request": [{"detectors": ["credentials"], "action": "mask"}],
                 "response": [{"detectors": ["credentials"], "action": "mask"}]}
# A profile that is active (so answers go through the stream rewriter) but whose one detector
# never matches and almost never holds text back: the cost of parsing and re-writing the stream.
NEVER_DETECTOR = {"id": "bench-never", "keywords": ["qqzzqqzz-never-"],
                  "regex": "qqzzqqzz-never-[0-9]{4}"}
PARSE_PROFILE = {"request": [{"detectors": ["bench-never"], "action": "mask"}],
                 "response": [{"detectors": ["bench-never"], "action": "mask"}]}
MASK_RE = re.compile(r"\[REDACTED:([a-z0-9-]+):[0-9a-f]{6}\]")
# Vendor prefixes that stay visible in front of their mask (docs/dlp.md).
VISIBLE_PREFIXES = {"github-pat": ("ghp_",), "aws-access-key": ("AKIA", "ASIA")}
LEAK_RE = re.compile(r"ghp_[A-Za-z0-9]{36}|AKIA[A-Z0-9]{16}")
CHUNK = 16 * 1024
MB = 1e6


# --------------------------------------------------------------------------------------------
# the answers: deterministic text, split into text_delta events


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n"


def delta_event(text: str) -> str:
    return sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": text}})


def stream_head() -> str:
    return (sse("message_start", {"type": "message_start", "message": {
        "id": "msg_01DlpBench000000000000", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-6", "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 1}}})
        + sse("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})
        + sse("ping", {"type": "ping"}))


def stream_tail(output_tokens: int) -> str:
    return (sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            + sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                    "usage": {"output_tokens": output_tokens}})
            + sse("message_stop", {"type": "message_stop"}))


MODULES = ["parser", "scheduler", "session store", "billing service", "cache layer", "router",
           "token refresh logic", "retry policy", "config loader", "metrics exporter",
           "upload handler", "search index", "migration runner", "rate limiter", "auth middleware"]
VERBS = ["rewrites", "validates", "caches", "streams", "batches", "retries", "serializes",
         "normalizes", "deduplicates", "logs", "locks", "flushes"]
THINGS = ["the request body", "each incoming event", "the pending writes", "the user settings",
          "the response headers", "stale entries", "the connection pool", "the password hashes",
          "every partial chunk", "the feature flags", "the audit records", "the job queue"]
ADJ = ["subtle", "harmless", "surprising", "long-standing", "intermittent", "costly", "small",
       "clear", "risky", "straightforward"]
FILES = ["src/server.rs", "app/models.py", "lib/cache.ts", "cmd/worker/main.go",
         "internal/store/sql.go", "src/handlers/upload.rs", "web/src/api.ts", "tests/test_retry.py"]
IDENTS = ["buffer", "offset", "entries", "handler", "payload", "deadline", "cursor", "batch",
          "result", "limit", "pending", "window", "count", "state", "reader"]
FIRST = ["maria", "dana", "li", "oskar", "priya", "tomas", "amara", "jonas", "keiko", "rafael",
         "ines", "samir", "hannah", "wei", "lucia"]
LAST = ["kowalski", "whitfield", "chen", "lindqvist", "raman", "novak", "okafor", "berg",
        "tanaka", "moreno", "duarte", "haddad", "fischer", "zhang", "rossi"]
DOMAINS = ["northwind-freight.io", "acme-logistics.com", "fabrikam.co.uk", "contoso-labs.net",
           "tailspin-air.de", "lumen-health.org", "bluefin-capital.com"]
PLACEHOLDER_WORDS = ("example", "placeholder", "changeme", "your", "dummy", "sample", "redacted",
                     "xxxx")


def prose_sentence(rng: random.Random) -> str:
    m, v, t, a = rng.choice(MODULES), rng.choice(VERBS), rng.choice(THINGS), rng.choice(ADJ)
    f, i, n = rng.choice(FILES), rng.choice(IDENTS), rng.randint(2, 64)
    return rng.choice([
        f"The {m} {v} {t} before it hands them to the next stage.",
        f"I looked at `{f}` and found a {a} issue: `{i}` is read after the lock is released.",
        f"That change is {a}, but it means the {m} now {v} {t} twice on every retry.",
        f"Running the suite again, {n} tests pass and one still fails in `{f}`.",
        f"To fix it, move the call that {v} {t} out of the loop and keep `{i}` local.",
        f"Note that the {m} assumes {t} fit in memory; with {n} workers that is no longer true.",
        f"Here is why: when the deadline passes, the {m} {v} {t} but never clears `{i}`.",
        f"I’d keep the {a} part as it is and only change how the {m} {v} {t}.",
        f"The benchmark shows the {m} spending most of its time in `{i}` — about {n}% of it.",
        f"After the refactor, `{f}` no longer {v} {t}; the caller does it once instead.",
        f"One caveat: the café deployment still runs the old {m}, so both paths must work → for now.",
        f"Let me check whether the {m} also {v} {t} when the feature flag is off.",
    ])


def code_block(rng: random.Random) -> str:
    i, j, k = rng.sample(IDENTS, 3)
    n = rng.randint(2, 512)
    f = rng.choice(FILES)
    kind = rng.randrange(3)
    if kind == 0:
        return (f"```python\n# {f}\ndef process_{i}({j}, {k}=None):\n"
                f"    \"\"\"Return the {i} for {j}, at most {n} items.\"\"\"\n"
                f"    if not {j}:\n        return []\n"
                f"    out = [x for x in {j} if x.{k} is not None]\n"
                f"    log.debug(\"processed %d of %d\", len(out), len({j}))\n"
                f"    return out[:{n}]\n```\n")
    if kind == 1:
        return (f"```rust\n// {f}\npub fn {i}_{j}(&mut self, {k}: &[u8]) -> Result<usize, Error> {{\n"
                f"    let limit = self.{i}.len().min({n});\n"
                f"    for (idx, byte) in {k}.iter().enumerate().take(limit) {{\n"
                f"        if *byte == b'\\n' {{\n            return Ok(idx);\n        }}\n    }}\n"
                f"    Err(Error::Incomplete {{ needed: {n} }})\n}}\n```\n")
    return (f"```console\n$ cargo test --release -- {i}::{j}\n"
            f"running {n} tests\ntest {i}::{j}::{k}_is_stable ... ok\n"
            f"test result: ok. {n} passed; 0 failed; 0 ignored\n```\n")


def json_block(rng: random.Random) -> str:
    obj = {"id": f"job_{rng.randint(100, 99999)}", "status": rng.choice(["queued", "running", "done"]),
           "retries": rng.randint(0, 5), "owner": rng.choice(FIRST),
           "tags": rng.sample(IDENTS, 3), "limits": {"cpu": rng.randint(1, 16), "memory_mb": rng.randint(64, 4096)},
           "path": rng.choice(FILES), "enabled": rng.random() < 0.5}
    return "```json\n" + json.dumps(obj, indent=2) + "\n```\n"


def fabricated(rng: random.Random, alphabet: str, n: int) -> str:
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(n))
        if not any(w in value.lower() for w in PLACEHOLDER_WORDS):
            return value


def email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice(DOMAINS)}"


def phone(rng: random.Random) -> str:
    return f"+44 20 7{rng.randint(100, 999)} {rng.randint(1000, 9999)}"


@dataclass
class Answer:
    """One generated answer: its text, the planted values and the text's delta pieces."""
    text: str
    spans: list[tuple[int, int, str]]  # (start, end, detector id), in text order
    pieces: list[str]

    def canonical(self, masked: set[str]) -> str:
        """The text with each planted value whose detector is masked replaced by a marker (after
        the vendor prefix Warden leaves visible: `ghp_[REDACTED:github-pat:…]`)."""
        out, pos = [], 0
        for start, end, kind in self.spans:
            if kind in masked:
                value = self.text[start:end]
                visible = next((p for p in VISIBLE_PREFIXES.get(kind, ()) if value.startswith(p)), "")
                out += [self.text[pos:start], visible, f"\0{kind}\0"]
                pos = end
        out.append(self.text[pos:])
        return "".join(out)

    def count(self, masked: set[str]) -> int:
        return sum(1 for *_, kind in self.spans if kind in masked)


def split_pieces(rng: random.Random, text: str, lo: int = 12, hi: int = 40) -> list[str]:
    pieces, pos = [], 0
    while pos < len(text):
        n = rng.randint(lo, hi)
        pieces.append(text[pos:pos + n])
        pos += n
    return pieces


def build_fast(sse_bytes: int, with_secrets: bool, delta_chars: tuple[int, int] = (12, 40),
               every: int = 10_000) -> tuple[Answer, bytes]:
    """A long answer of about `sse_bytes` bytes of SSE (the same text with or without secrets)."""
    rng = random.Random("bench_dlp fast text")
    srng = random.Random("bench_dlp fabricated secrets")
    parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    length = 0
    since = 0
    kinds = ["github-pat", "aws-access-key", "email"]
    # Generate a little more text than the target needs (each event adds ~110 bytes), trim later.
    avg = sum(delta_chars) / 2
    while length < sse_bytes * min(1.0, 1.4 * avg / (avg + 110)):
        r = rng.random()
        seg = (" ".join(prose_sentence(rng) for _ in range(rng.randint(2, 6))) + "\n\n" if r < 0.6
               else code_block(rng) + "\n" if r < 0.85 else json_block(rng) + "\n")
        parts.append(seg)
        length += len(seg)
        since += len(seg)
        if since >= every:
            since = 0
            kind = kinds[len(spans) % 3]
            if kind == "github-pat":
                value = "ghp_" + fabricated(srng, string.ascii_letters + string.digits, 36)
                before, after = "I found a personal access token `", "` committed in the deploy script; revoke it.\n\n"
            elif kind == "aws-access-key":
                value = "AKIA" + fabricated(srng, string.ascii_uppercase + string.digits, 16)
                before, after = "The AWS access key id ", " also shows up in the CI logs from last week.\n\n"
            else:
                value = email(srng)
                before, after = "The failing job belongs to ", ", who owns the nightly pipeline.\n\n"
            if with_secrets:
                start = length + len(before)
                spans.append((start, start + len(value), kind))
                seg = before + value + after
            else:
                seg = before + "the on-call engineer" + after
                spans.append((0, 0, "none"))  # keeps the rotation identical in both versions
            parts.append(seg)
            length += len(seg)
    spans = [s for s in spans if s[2] != "none"]
    text = "".join(parts)
    pieces = split_pieces(rng, text, *delta_chars)
    # Keep whole pieces until the SSE reaches the target size.
    head = stream_head()
    out, size, kept = [head], len(head.encode()), []
    for p in pieces:
        ev = delta_event(p)
        out.append(ev)
        kept.append(p)
        size += len(ev.encode())
        if size >= sse_bytes:
            break
    text = "".join(kept)
    spans = [s for s in spans if s[1] <= len(text)]
    out.append(stream_tail(len(kept)))
    return Answer(text, spans, kept), "".join(out).encode()


ADVERSARIAL = ("digits", "hex", "base64", "onechar")


def build_adversarial(kind: str, sse_bytes: int) -> tuple[Answer, bytes]:
    """An answer built to make a stream redactor hold text back (docs/dlp.md, "hold-back bound"),
    with nothing in it to mask: `digits` is `1 ` in every delta (a number-like run that never
    ends), `hex` a single upper-case hex word (at most three digits in a row: no number a
    detector could take), `base64` a single base64 word, both in deltas of 12-40 characters,
    and `onechar` prose one character per delta (the most events per byte)."""
    rng = random.Random("bench_dlp adversarial " + kind)
    head = stream_head()
    out, size, kept = [head], len(head.encode()), []
    hexdigits, run = "0123456789ABCDEF", 0
    b64 = string.ascii_letters + string.digits + "+/"
    prose = ""
    while size < sse_bytes:
        if kind == "digits":
            piece = "1 "
        elif kind == "hex":
            chars = []
            for _ in range(rng.randint(12, 40)):
                c = rng.choice(hexdigits if run < 3 else "ABCDEF")
                run = run + 1 if c.isdigit() else 0
                chars.append(c)
            piece = "".join(chars)
        elif kind == "base64":
            piece = "".join(rng.choice(b64) for _ in range(rng.randint(12, 40)))
        else:
            if not prose:
                prose = " ".join(prose_sentence(rng) for _ in range(8)) + "\n\n"
            piece, prose = prose[0], prose[1:]
        ev = delta_event(piece)
        out.append(ev)
        kept.append(piece)
        size += len(ev.encode())
    out.append(stream_tail(len(kept)))
    return Answer("".join(kept), [], kept), "".join(out).encode()


def build_slow(n: int, with_pii: bool) -> Answer:
    rng = random.Random("bench_dlp slow text " + ("pii" if with_pii else "plain"))
    parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    length = 0
    while length < n * 40:
        seg = prose_sentence(rng) + " "
        if with_pii and rng.random() < 0.5:
            who = f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
            mail, tel = email(rng), phone(rng)
            a = f"You can reach {who} at "
            b = f" or on {tel} about it. "
            seg = a + mail + b
            at = length + len(a)
            spans.append((at, at + len(mail), "email"))
            at = length + seg.index(tel)
            spans.append((at, at + len(tel), "phone"))
        parts.append(seg)
        length += len(seg)
    text = "".join(parts)
    pieces = split_pieces(rng, text)[:n]
    text = "".join(pieces)
    spans = [s for s in spans if s[1] <= len(text)]
    return Answer(text, spans, pieces)


# --------------------------------------------------------------------------------------------
# the upstream (a separate process: `bench_dlp.py --serve-upstream ...`)


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [b"%x\r\n" % len(data[i:i + size]) + data[i:i + size] + b"\r\n"
            for i in range(0, len(data), size)]


class Upstream:
    """HTTP/1.1 keep-alive server: streams the prebuilt answers; records slow-stream send times."""

    def __init__(self, data_dir: Path, api_key: str, interval: float) -> None:
        self.api_key = api_key
        self.interval = interval
        self.fast = {p.stem.removeprefix("fast-"): chunked(p.read_bytes())
                     for p in data_dir.glob("fast-*.sse")}
        self.slow = {p.stem.removeprefix("slow-"): json.loads(p.read_text())
                     for p in data_dir.glob("slow-*.json")}
        self.sends: dict[str, dict] = {}
        self.lock = threading.Lock()

    def serve(self, port: int) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(64)
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    def connection(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        while b"\r\n" not in buf:
                            buf += conn.recv(65536)
                        size_line, _, buf = buf.partition(b"\r\n")
                        size = int(size_line.split(b";")[0], 16)
                        while len(buf) < size + 2:
                            buf += conn.recv(65536)
                        body, buf = body + buf[:size], buf[size + 2:]
                        if size == 0:
                            break
                else:
                    n = int(headers.get("content-length", "0"))
                    while len(buf) < n:
                        buf += conn.recv(65536)
                    body, buf = buf[:n], buf[n:]
                self.respond(conn, method, target, headers, body)
                if headers.get("connection", "").lower() == "close":
                    conn.shutdown(socket.SHUT_WR)
                    return
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def plain(conn: socket.socket, status: str, body: bytes, ctype: str = "application/json") -> None:
        conn.sendall(f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n"
                     f"content-length: {len(body)}\r\n\r\n".encode() + body)

    def respond(self, conn, method: str, target: str, headers: dict, body: bytes) -> None:
        if method == "GET" and target == "/__ready":
            return self.plain(conn, "200 OK", b"ok", "text/plain")
        if method == "GET" and target.startswith("/__sends/"):
            with self.lock:
                rec = self.sends.pop(target.removeprefix("/__sends/"), None)
            return self.plain(conn, "200 OK" if rec else "404 Not Found", json.dumps(rec).encode())
        if "authorization" in headers or headers.get("x-api-key") != self.api_key:
            return self.plain(conn, "401 Unauthorized", b'{"type":"error","error":{"type":'
                              b'"authentication_error","message":"bench upstream: wrong key"}}')
        scenario = headers.get("x-bench-scenario", "")
        kind, _, name = scenario.partition(":")
        if method != "POST" or not target.startswith(PATH) or (
                (kind != "fast" or name not in self.fast) and (kind != "slow" or name not in self.slow)):
            return self.plain(conn, "404 Not Found", b'{"type":"error","error":{"type":'
                              b'"not_found_error","message":"bench upstream: unknown scenario"}}')
        start = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                 b"cache-control: no-cache\r\nrequest-id: req_bench_dlp\r\n"
                 b"transfer-encoding: chunked\r\n\r\n")
        if kind == "fast":
            conn.sendall(start)
            for piece in self.fast[name]:
                conn.sendall(piece)
            conn.sendall(b"0\r\n\r\n")
            return None
        script = self.slow[name]
        t0 = time.monotonic()
        conn.sendall(start + chunked(script["head"].encode(), 1 << 20)[0])
        sends = []
        for i, ev in enumerate(script["deltas"]):
            wait = t0 + (i + 1) * self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            conn.sendall(chunked(ev.encode(), 1 << 20)[0])
            sends.append(time.monotonic())
        wait = t0 + (len(script["deltas"]) + 1) * self.interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        conn.sendall(chunked(script["tail"].encode(), 1 << 20)[0] + b"0\r\n\r\n")
        tail = time.monotonic()
        with self.lock:
            self.sends[headers.get("x-bench-id", "")] = {"t0": t0, "sends": sends, "tail": tail}
        return None


def serve_upstream(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve-upstream", action="store_true")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--interval", type=float, required=True)
    a = ap.parse_args(argv)
    Upstream(Path(a.data), Path(a.key_file).read_text().strip(), a.interval).serve(a.port)
    return 0


# --------------------------------------------------------------------------------------------
# the client: raw HTTP/1.1 over a socket, every arrival timestamped


@dataclass
class Reply:
    t_sent: float
    recvs: list[tuple[float, int]]  # (time, raw end offset) of every recv
    raw: bytes
    status: int = 0
    body: bytes = b""
    segments: list[tuple[int, int]] = field(default_factory=list)  # (body start, raw start)

    def parse(self) -> "Reply":
        head_end = self.raw.find(b"\r\n\r\n")
        if head_end < 0:
            raise BenchError(f"incomplete response: {self.raw[:300]!r}")
        lines = self.raw[:head_end].decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        pos = head_end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts, blen = [], 0
            while True:
                eol = self.raw.find(b"\r\n", pos)
                if eol < 0:
                    raise BenchError("truncated chunked response")
                size = int(self.raw[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    break
                self.segments.append((blen, pos))
                parts.append(self.raw[pos:pos + size])
                blen += size
                pos += size + 2
            self.body = b"".join(parts)
        else:
            self.segments.append((0, pos))
            self.body = self.raw[pos:]
        return self

    def arrival(self, body_offset: int) -> float:
        """When the byte at `body_offset` of the body reached the client."""
        i = bisect.bisect_right([s[0] for s in self.segments], body_offset) - 1
        raw = self.segments[i][1] + body_offset - self.segments[i][0]
        j = bisect.bisect_right([e for _, e in self.recvs], raw)
        return self.recvs[min(j, len(self.recvs) - 1)][0]

    @property
    def ttfb(self) -> float:
        return self.recvs[0][0] - self.t_sent

    @property
    def transfer(self) -> float:
        """Request sent -> last byte. (Not first -> last byte: the client shares a CPU with the
        upstream and may first be scheduled when much of the answer is already buffered.)"""
        return self.recvs[-1][0] - self.t_sent


def request_bytes(port: int, token: str | None, api_key: str | None, scenario: str,
                  bench_id: str) -> bytes:
    body = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 4096, "stream": True,
                       "messages": [{"role": "user", "content": "Review the streaming handler "
                                     "and explain what you would change."}]}).encode()
    headers = {"host": f"127.0.0.1:{port}", "content-type": "application/json",
               "accept": "text/event-stream", "anthropic-version": "2023-06-01",
               "x-bench-scenario": scenario, "x-bench-id": bench_id, "connection": "close",
               "content-length": str(len(body))}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if api_key:
        headers["x-api-key"] = api_key
    return (f"POST {PATH} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n").encode() + body


def fetch(req: bytes, port: int, timeout: float = 120) -> Reply:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(req)
        t_sent = time.monotonic()
        chunks, recvs, total = [], [], 0
        while True:
            data = s.recv(1 << 18)
            if not data:
                break
            total += len(data)
            recvs.append((time.monotonic(), total))
            chunks.append(data)
    if not recvs:
        raise BenchError(f"empty response from port {port}")
    return Reply(t_sent, recvs, b"".join(chunks)).parse()


def events_of(body: bytes) -> list[tuple[int, str, dict | None]]:
    """(end offset, event name, data) of every SSE event; data parsed only for deltas and
    message_stop (to keep checking an 8 MB stream cheap)."""
    out, pos = [], 0
    while True:
        end = body.find(b"\n\n", pos)
        if end < 0:
            if body[pos:].strip():
                raise BenchError(f"stream ends inside an event: {body[pos:pos + 200]!r}")
            return out
        block = body[pos:end]
        name, data = "", None
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:") and name in ("content_block_delta", "error"):
                data = json.loads(line[5:])
        out.append((end + 2, name, data))
        pos = end + 2


def delta_texts(events) -> list[tuple[int, str]]:
    out = []
    for end, name, data in events:
        if name == "error":
            raise BenchError(f"the stream ended with an error event: {data}")
        if name == "content_block_delta" and data and data["delta"].get("type") == "text_delta":
            out.append((end, data["delta"]["text"]))
    return out


def first_difference(a: str, b: str) -> str:
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    return (f"first difference at character {i} of {len(a)}/{len(b)}: "
            f"got {a[max(0, i - 80):i + 80]!r}, expected {b[max(0, i - 80):i + 80]!r}")


def check_text(variant: str, what: str, reply: Reply, answer: Answer, full: bool) -> list:
    """Status, closing event and masks; with `full`, the whole text against the expected one.
    Returns the parsed events (empty unless `full`)."""
    if reply.status != 200:
        raise BenchError(f"{variant} {what}: status {reply.status}: {reply.body[:400]!r}")
    if not reply.body.rstrip().endswith(b'data: {"type":"message_stop"}'):
        raise BenchError(f"{variant} {what}: the stream does not end with message_stop: "
                         f"{reply.body[-300:]!r}")
    masked = MASKED[variant]
    want = answer.count(masked)
    got = reply.body.count(b"[REDACTED:")
    if got != want:
        raise BenchError(f"{variant} {what}: {got} masks in the stream, expected {want}")
    if not full:
        return []
    events = events_of(reply.body)
    text = "".join(t for _, t in delta_texts(events))
    canonical = MASK_RE.sub(lambda m: f"\0{m[1]}\0", text)
    expected = answer.canonical(masked)
    if canonical != expected:
        raise BenchError(f"{variant} {what}: the text is not the expected one: "
                         + first_difference(canonical, expected))
    if masked & {"github-pat", "aws-access-key"} and LEAK_RE.search(text):
        raise BenchError(f"{variant} {what}: a credential was delivered unmasked")
    return events


# --------------------------------------------------------------------------------------------
# the run


@dataclass
class Target:
    name: str
    port: int
    proc: Proc  # the process whose CPU is measured (for direct: the upstream)

    def request(self, token: str, api_key: str, scenario: str, bench_id: str) -> bytes:
        if self.name == "direct":
            return request_bytes(self.port, None, api_key, scenario, bench_id)
        return request_bytes(self.port, token, None, scenario, bench_id)


def pctl(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_throughput(args, targets: dict[str, Target], upstream: Proc, token: str, api_key: str,
                   answers: dict[str, Answer], sse_sizes: dict[str, int], variants: list[str]) -> dict:
    print(f"\n== throughput: {len(variants)} targets x {len(answers)} answers; "
          f"{args.rounds} phases of >= {args.phase:g}s each, order alternating", flush=True)
    results: dict = {}
    counter = 0
    for dataset, answer in answers.items():
        scenario = f"fast:{dataset}"
        for name in variants:  # warm-up (V8 tier-up, connection pools), checked in full
            for _ in range(2):
                counter += 1
                rep = fetch(targets[name].request(token, api_key, scenario, str(counter)),
                            targets[name].port)
                check_text(name, f"{dataset} warm-up", rep, answer, full=True)
        results[dataset] = {name: [] for name in variants}
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for name in order:
                t = targets[name]
                busy0, gw0, up0, me0 = (bench.machine_busy_seconds(), cpu_seconds(t.proc.pid),
                                        cpu_seconds(upstream.pid), self_cpu())
                w0 = time.monotonic()
                walls, ttfbs = [], []
                while True:
                    counter += 1
                    rep = fetch(t.request(token, api_key, scenario, str(counter)), t.port)
                    walls.append(rep.transfer)
                    ttfbs.append(rep.ttfb)
                    check_text(name, f"{dataset} round {rnd + 1}", rep, answer, full=False)
                    if len(walls) == 1:
                        first = rep
                    if (time.monotonic() - w0 >= args.phase and len(walls) >= 2) or len(walls) >= 50:
                        break
                elapsed = time.monotonic() - w0
                gw, up, me = (cpu_seconds(t.proc.pid) - gw0, cpu_seconds(upstream.pid) - up0,
                              self_cpu() - me0)
                other = bench.machine_busy_seconds() - busy0 - (gw if name != "direct" else 0) - up - me
                check_text(name, f"{dataset} round {rnd + 1}", first, answer, full=True)
                mb = sse_sizes[dataset] * len(walls) / MB
                ph = {"transfers": len(walls), "sse_mb_s": mb / sum(walls),
                      "text_mb_s": len(answer.text.encode()) * len(walls) / MB / sum(walls),
                      "transfer_ms_p50": statistics.median(walls) * 1e3,
                      "ttfb_ms_p50": statistics.median(ttfbs) * 1e3,
                      "cpu_ms_per_mb": None if name == "direct" else gw * 1e3 / mb,
                      "upstream_cpu_ms_per_mb": up * 1e3 / mb, "client_cpu_ms_per_mb": me * 1e3 / mb,
                      "other_load": max(0.0, other) / elapsed}
                results[dataset][name].append(ph)
                cpu = "-" if ph["cpu_ms_per_mb"] is None else f"{ph['cpu_ms_per_mb']:.1f}"
                print(f"  {dataset:7s} round {rnd + 1} {name:14s} {len(walls):2d} x "
                      f"{ph['transfer_ms_p50']:7.1f} ms  {ph['sse_mb_s']:7.1f} MB/s SSE "
                      f"{ph['text_mb_s']:6.1f} MB/s text  Envoy CPU {cpu:>6s} ms/MB  "
                      f"other load {ph['other_load']:.2f}", flush=True)
    return results


def run_slow(args, targets: dict[str, Target], token: str, api_key: str, up_port: int,
             answers: dict[str, Answer], variants: list[str]) -> dict:
    print(f"\n== slow stream: {args.events} deltas every {args.interval * 1e3:g} ms, all targets "
          f"at once (staggered), {args.slow_rounds} rounds per answer", flush=True)
    results: dict = {}
    stagger = args.interval / len(variants)
    for dataset, answer in answers.items():
        results[dataset] = {name: [] for name in variants}
        for rnd in range(args.slow_rounds):
            order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
            sel = selectors.DefaultSelector()
            state: dict[str, dict] = {}
            start = time.monotonic() + 0.05
            pending = list(enumerate(order))
            deadline = start + (args.events + 2) * args.interval + 30
            while pending or state and any(not s["done"] for s in state.values()):
                now = time.monotonic()
                while pending and now >= start + pending[0][0] * stagger:
                    _, name = pending.pop(0)
                    bid = f"slow-{dataset}-{rnd}-{name}"
                    s = socket.create_connection(("127.0.0.1", targets[name].port), timeout=10)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    s.sendall(targets[name].request(token, api_key, f"slow:{dataset}", bid))
                    t_sent = time.monotonic()
                    s.setblocking(False)
                    state[name] = {"sock": s, "id": bid, "t_sent": t_sent, "chunks": [],
                                   "recvs": [], "total": 0, "done": False}
                    sel.register(s, selectors.EVENT_READ, name)
                    now = time.monotonic()
                timeout = (start + pending[0][0] * stagger - now) if pending else 1.0
                for key, _ in sel.select(max(0.0, timeout)):
                    st = state[key.data]
                    data = st["sock"].recv(1 << 18)
                    t = time.monotonic()
                    if not data:
                        st["done"] = True
                        sel.unregister(st["sock"])
                        st["sock"].close()
                        continue
                    st["total"] += len(data)
                    st["recvs"].append((t, st["total"]))
                    st["chunks"].append(data)
                if time.monotonic() > deadline:
                    raise BenchError("slow stream: timed out")
            sel.close()
            for name in variants:
                st = state[name]
                rep = Reply(st["t_sent"], st["recvs"], b"".join(st["chunks"])).parse()
                events = check_text(name, f"slow {dataset} round {rnd + 1}", rep, answer, full=True)
                conn = http.client.HTTPConnection("127.0.0.1", up_port, timeout=10)
                conn.request("GET", f"/__sends/{st['id']}")
                resp = conn.getresponse()
                sends = json.loads(resp.read())
                conn.close()
                if resp.status != 200:
                    raise BenchError(f"slow stream {st['id']}: the upstream has no send times")
                results[dataset][name].append(slow_metrics(rep, events, sends, answer, MASKED[name],
                                                           args.interval))
            line = "  ".join(f"{n} {statistics.median(results[dataset][n][-1]['latency_ms']):.2f}"
                             for n in variants)
            print(f"  {dataset:5s} round {rnd + 1}: delta latency p50 (ms): {line}", flush=True)
    return results


def slow_metrics(rep: Reply, events, sends: dict, answer: Answer, masked: set[str],
                 interval: float) -> dict:
    deltas = delta_texts(events)
    arrivals = [rep.arrival(end - 1) for end, _ in deltas]
    # Map the client's cumulative text back to positions in the upstream text: a mask stands
    # for its whole planted value (masks are delivered whole).
    spans = [s for s in answer.spans if s[2] in masked]
    pos_after, pos, k = [], 0, 0
    for _, text in deltas:
        last = 0
        for m in MASK_RE.finditer(text):
            pos = spans[k][1]  # the text before the mask ended where the value starts
            k += 1
            last = m.end()
        pos += len(text) - last
        pos_after.append(pos)
    ends, acc = [], 0
    for p in answer.pieces:
        acc += len(p)
        ends.append(acc)
    # latency: upstream sent delta i -> its last character reached the client. withheld: how
    # much of the text sent so far had not reached the client half an interval after delta i.
    latency, withheld = [], []
    send_times = sends["sends"] + [sends["tail"]]
    for i, end in enumerate(ends):
        j = bisect.bisect_left(pos_after, end)
        latency.append((arrivals[j] - send_times[i]) * 1e3)
        k = bisect.bisect_right(arrivals, send_times[i] + interval / 2) - 1
        withheld.append(max(0, end - (pos_after[k] if k >= 0 else 0)))
    gaps = [(b - a) * 1e3 for a, b in zip(arrivals, arrivals[1:])]
    return {"ttfb_ms": rep.ttfb * 1e3, "ttft_ms": (arrivals[0] - rep.t_sent) * 1e3,
            "first_send_ms": (send_times[0] - rep.t_sent) * 1e3,
            "gap_ms": gaps, "latency_ms": latency, "withheld": withheld,
            "held": sum(1 for w in withheld if w), "client_deltas": len(deltas)}


# --------------------------------------------------------------------------------------------
# report


def report_throughput(res: dict, variants: list[str]) -> dict:
    summary: dict = {}
    for dataset, by in res.items():
        print(f"\nthroughput, {dataset} (median of {len(by[variants[0]])} phases)")
        print(f"  {'':14s} {'SSE MB/s':>9s} {'text MB/s':>9s} {'ms/answer':>9s} "
              f"{'CPU ms/MB':>9s} {'x bare':>7s} {'CPU-bound MB/s':>14s} | upstream client ms/MB")
        row = {}
        for name in variants:
            ph = by[name]
            r = {k: statistics.median(p[k] for p in ph) for k in
                 ("sse_mb_s", "text_mb_s", "transfer_ms_p50", "ttfb_ms_p50",
                  "upstream_cpu_ms_per_mb", "client_cpu_ms_per_mb")}
            r["cpu_ms_per_mb"] = None if name == "direct" else statistics.median(
                p["cpu_ms_per_mb"] for p in ph)
            r["other_load_max"] = max(p["other_load"] for p in ph)
            row[name] = r
        base = row.get("baseline", {}).get("cpu_ms_per_mb")
        for name in variants:
            r = row[name]
            cpu = r["cpu_ms_per_mb"]
            r["cpu_ratio"] = cpu / base if cpu is not None and base else None
            ratio = r["cpu_ratio"]
            cpu_s = "-" if cpu is None else f"{cpu:.2f}"
            ratio_s = "-" if ratio is None else f"{ratio:.2f}"
            bound_s = "-" if not cpu else f"{1e3 / cpu:.0f}"
            print(f"  {name:14s} {r['sse_mb_s']:9.1f} {r['text_mb_s']:9.1f} "
                  f"{r['transfer_ms_p50']:9.1f} {cpu_s:>9s} {ratio_s:>7s} {bound_s:>14s} | "
                  f"{r['upstream_cpu_ms_per_mb']:8.2f} {r['client_cpu_ms_per_mb']:6.2f}")
        summary[dataset] = row
    return summary


def report_slow(res: dict, variants: list[str]) -> dict:
    summary: dict = {}
    for dataset, by in res.items():
        print(f"\nslow stream, {dataset}: medians over rounds; gaps and latencies pooled over rounds"
              " (ms)")
        print(f"  {'':14s} {'TTFB':>6s} {'1st text':>8s} {'gap p50':>7s} {'p99':>6s} {'max':>6s} "
              f"| {'latency p50':>11s} {'p99':>6s} {'max':>6s} {'held':>7s} {'chars':>9s} "
              f"| added p50 / p99 / 1st text")
        row = {}
        for name in variants:
            rs = by[name]
            gaps = [g for r in rs for g in r["gap_ms"]]
            lat = [x for r in rs for x in r["latency_ms"]]
            held_chars = [w for r in rs for w in r["withheld"] if w]
            row[name] = {"ttfb_ms": statistics.median(r["ttfb_ms"] for r in rs),
                         "ttft_ms": statistics.median(r["ttft_ms"] for r in rs),
                         "gap_p50_ms": pctl(gaps, 50), "gap_p99_ms": pctl(gaps, 99),
                         "gap_max_ms": max(gaps), "latency_p50_ms": pctl(lat, 50),
                         "latency_p99_ms": pctl(lat, 99), "latency_max_ms": max(lat),
                         "held": statistics.median(r["held"] for r in rs),
                         "withheld_chars_p50": pctl(held_chars, 50) if held_chars else 0,
                         "withheld_chars_max": max(held_chars, default=0),
                         "deltas": len(rs[0]["latency_ms"]),
                         "client_deltas": statistics.median(r["client_deltas"] for r in rs)}
        base = row.get("baseline")
        for name in variants:
            r = row[name]
            if base:
                r["added_latency_p50_ms"] = r["latency_p50_ms"] - base["latency_p50_ms"]
                r["added_latency_p99_ms"] = r["latency_p99_ms"] - base["latency_p99_ms"]
                r["added_ttfb_ms"] = r["ttfb_ms"] - base["ttfb_ms"]
                r["added_ttft_ms"] = r["ttft_ms"] - base["ttft_ms"]
            added = (f"{r['added_latency_p50_ms']:+.3f} / {r['added_latency_p99_ms']:+.3f} / "
                     f"{r['added_ttft_ms']:+.3f}" if base and name != "baseline" else "")
            print(f"  {name:14s} {r['ttfb_ms']:6.2f} {r['ttft_ms']:8.2f} {r['gap_p50_ms']:7.2f} "
                  f"{r['gap_p99_ms']:6.2f} {r['gap_max_ms']:6.2f} | {r['latency_p50_ms']:11.3f} "
                  f"{r['latency_p99_ms']:6.3f} {r['latency_max_ms']:6.2f} "
                  f"{r['held']:3.0f}/{r['deltas']:<3d} {r['withheld_chars_p50']:3d}/{r['withheld_chars_max']:<5d} "
                  f"| {added}")
        summary[dataset] = row
    return summary


# --------------------------------------------------------------------------------------------
# main


def main() -> int:
    if "--serve-upstream" in sys.argv[1:]:
        return serve_upstream(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sse-mb", type=float, default=8.0, help="size of the fast answer (MB of SSE)")
    ap.add_argument("--delta-chars", default="12-40", metavar="LO-HI",
                    help="characters per text_delta of the fast answer (default 12-40, as Claude)")
    ap.add_argument("--answers", default="plain,secrets," + ",".join(ADVERSARIAL),
                    help="fast answers to stream: plain, secrets, and the adversarial "
                         + ", ".join(ADVERSARIAL))
    ap.add_argument("--rounds", type=int, default=3, help="throughput phases per target and answer")
    ap.add_argument("--phase", type=float, default=1.0, help="least seconds per throughput phase")
    ap.add_argument("--events", type=int, default=200, help="text deltas of the slow stream")
    ap.add_argument("--interval", type=float, default=0.02, help="seconds between slow deltas")
    ap.add_argument("--slow-rounds", type=int, default=3, help="slow-stream rounds per answer")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated targets (baseline required; any of {', '.join(VARIANTS)})")
    ap.add_argument("--skip", choices=["throughput", "slow"], help="skip one of the measurements")
    ap.add_argument("--policy", default=str(REPO / "envoy/policy.yaml"))
    ap.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                    help="gateways on the last CPU, upstream and client on the others")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = ap.parse_args()
    variants = [v for v in VARIANTS if v in {x.strip() for x in args.variants.split(",")}]
    unknown = {x.strip() for x in args.variants.split(",")} - set(VARIANTS)
    if "baseline" not in variants or unknown:
        ap.error(f"--variants: baseline plus any of {', '.join(VARIANTS)}")
    if not 0.5 <= args.sse_mb <= 64 or not 1 <= args.rounds <= 10 or not 0 < args.phase <= 30 \
            or not 2 <= args.events <= 5000 or not 0.001 <= args.interval <= 1 \
            or not 1 <= args.slow_rounds <= 10:
        ap.error("an option is out of range")
    try:
        lo, hi = (int(x) for x in args.delta_chars.split("-"))
        if not 1 <= lo <= hi <= 100_000:
            raise ValueError
    except ValueError:
        ap.error("--delta-chars: LO-HI, e.g. 12-40")
    if not bench.WASM.is_file():
        sys.exit(f"bench_dlp: {bench.WASM} is missing: run `make build` first")
    return bench.run_in_workdir("bench_dlp", args.keep, lambda tmp, procs: run(args, variants, tmp, procs))


def run(args, variants: list[str], tmp: Path, procs: list[Proc]) -> int:
    t_start = time.monotonic()
    info = bench.machine()
    info.pop("wrk", None)
    jwks, token = bench.make_issuer(tmp)
    api_key = "sk-ant-bench-" + secrets.token_hex(16)
    key_file = tmp / "anthropic-key"
    key_file.write_text(api_key)
    wasm = tmp / "warden.wasm"
    shutil.copyfile(bench.WASM, wasm)
    info["wasm"] = f"{wasm.stat().st_size:,} B, sha256 {hashlib.sha256(wasm.read_bytes()).hexdigest()[:12]}"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, timeout=30).stdout.strip()
    changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src", "Cargo.toml"],
                             cwd=REPO, timeout=30).returncode != 0
    info["commit"] = (os.environ.get("WARDEN_WASM") and f"WARDEN_WASM={os.environ['WARDEN_WASM']}") \
        or f"HEAD {head}" + (", uncommitted changes in src/" if changed else "")

    # The answers, and the upstream that serves them.
    delta_chars = tuple(int(x) for x in args.delta_chars.split("-"))
    data = tmp / "data"
    data.mkdir()
    fast, sse_sizes = {}, {}
    for name in args.answers.split(","):
        if name in ("plain", "secrets"):
            answer, stream = build_fast(int(args.sse_mb * MB), name == "secrets", delta_chars)
        elif name in ADVERSARIAL:
            answer, stream = build_adversarial(name, int(args.sse_mb * MB))
        else:
            raise BenchError(f"unknown answer {name!r}")
        (data / f"fast-{name}.sse").write_bytes(stream)
        fast[name], sse_sizes[name] = answer, len(stream)
    slow = {"plain": build_slow(args.events, False), "pii": build_slow(args.events, True)}
    for name, answer in slow.items():
        (data / f"slow-{name}.json").write_text(json.dumps({
            "head": stream_head(), "deltas": [delta_event(p) for p in answer.pieces],
            "tail": stream_tail(len(answer.pieces))}))
    allowed = sorted(os.sched_getaffinity(0))
    gateway_cpus = other_cpus = None
    if args.pin and len(allowed) >= 2:
        gateway_cpus, other_cpus = {allowed[-1]}, set(allowed[:-1])
    up_port = free_port()
    upstream = Proc("upstream", [bench.PY, str(Path(__file__).resolve()), "--serve-upstream",
                                 "--port", str(up_port), "--data", str(data), "--key-file",
                                 str(key_file), "--interval", str(args.interval)],
                    tmp / "upstream.log", cpus=other_cpus)
    procs.append(upstream)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", up_port), timeout=1):
                break
        except OSError:
            if upstream.p.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the upstream did not start:\n{upstream.log_tail()}") from None
            time.sleep(0.05)

    # The gateways: one policy per profile, rendered and started as scripts/bench.py does.
    base_policy = yaml.safe_load(Path(args.policy).read_text())
    # No audit service runs here: without it fail_closed would refuse requests after a minute.
    base_policy.pop("audit", None)
    base_policy.setdefault("identity", {})["providers"] = [{
        "name": "bench", "issuer": bench.ISSUER, "audiences": ["warden"], "jwks": {"file": str(jwks)}}]
    targets: dict[str, Target] = {}
    for name in variants:
        if name == "direct":
            targets[name] = Target(name, up_port, upstream)
            continue
        port, admin = free_port(), free_port()
        policy = json.loads(json.dumps(base_policy))
        if name in PROFILES:
            dlp = policy.setdefault("dlp", {})
            dlp.setdefault("detectors", []).append(NEVER_DETECTOR)
            dlp.setdefault("profiles", {}).update(creds=CREDS_PROFILE, parse=PARSE_PROFILE)
            if PROFILES[name] != "default":
                policy["roles"]["developer"]["dlp"] = PROFILES[name]
            else:
                policy["roles"]["developer"].pop("dlp", None)
        policy_path = tmp / f"policy-{name}.yaml"
        policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
        render_args = ["--policy", str(policy_path), "--wasm", str(wasm), "--upstream",
                       f"http://127.0.0.1:{up_port}", "--port", str(port), "--admin-port", str(admin)]
        if name == "baseline":
            config = tmp / "baseline.json"
            if render_envoy.main([*render_args, "--out", str(tmp / "rendered.yaml")]) != 0:
                raise BenchError("render_envoy failed")
            bench.derive_config(tmp / "rendered.yaml", config, "baseline")
            cmd = [bench.envoy_binary(), "-c", str(config), "--concurrency", "1",
                   "--log-level", "warning", "--disable-hot-restart"]
            env = dict(os.environ, ANTHROPIC_API_KEY=api_key)
        else:
            cmd = [bench.PY, str(REPO / "scripts/run_envoy.py"), *render_args, "--config-out",
                   str(tmp / f"{name}.yaml"), "--log-level", "warning", "--concurrency", "1",
                   # Exec Envoy (no drain supervisor): the measured process is Envoy itself.
                   "--drain-timeout", "0",
                   "--credential-file", f"ANTHROPIC_API_KEY={key_file}",
                   *bench.approval_credential_args(policy, tmp)]
            env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
        proc = Proc(name, cmd, tmp / f"{name}.log", env, cpus=gateway_cpus)
        procs.append(proc)
        bench.wait_ready(proc, admin, port)
        targets[name] = Target(name, port, proc)
    if other_cpus:
        os.sched_setaffinity(0, other_cpus)

    print(f"bench_dlp: machine: {info['nproc']} CPUs, {info['cpu']}, Linux {info['kernel']}; "
          f"Envoy {info['envoy']}")
    print(f"bench_dlp: warden.wasm {info['wasm']} ({info['commit']})")
    for name, answer in fast.items():
        print(f"bench_dlp: fast answer {name}: {sse_sizes[name]:,} B of SSE, "
              f"{len(answer.text.encode()):,} B of text in {len(answer.pieces):,} text_delta "
              f"events; {len(answer.spans)} planted values "
              f"({', '.join(f'{k} {sum(1 for s in answer.spans if s[2] == k)}' for k in ('github-pat', 'aws-access-key', 'email'))})")
    for name, answer in slow.items():
        kinds = sorted({s[2] for s in answer.spans})
        print(f"bench_dlp: slow answer {name}: {len(answer.pieces)} deltas, "
              f"{len(answer.text.encode()):,} B of text, "
              f"{len(answer.spans)} planted values{' (' + ', '.join(kinds) + ')' if kinds else ''}")
    print("bench_dlp: " + (f"gateways on CPU {sorted(gateway_cpus)}, upstream and client on CPU "
                           f"{sorted(other_cpus)}" if gateway_cpus else "no CPU pinning"))

    out: dict = {"machine": info, "args": vars(args), "variants": variants,
                 "fast": {k: {"sse_bytes": sse_sizes[k], "text_bytes": len(a.text.encode()),
                              "deltas": len(a.pieces), "planted": len(a.spans)} for k, a in fast.items()}}
    if args.skip != "throughput":
        res = run_throughput(args, targets, upstream, token, api_key, fast, sse_sizes, variants)
        out["throughput"] = report_throughput(res, variants)
        out["throughput_phases"] = res
    if args.skip != "slow":
        res = run_slow(args, targets, token, api_key, up_port, slow, variants)
        out["slow"] = report_slow(res, variants)
    noisy = max((r["other_load_max"] for row in out.get("throughput", {}).values()
                 for r in row.values()), default=0.0)
    print(f"\nbench_dlp: every answer was 200 with the expected text and masks; the run took "
          f"{time.monotonic() - t_start:.0f}s")
    if noisy > 0.15:
        print(f"bench_dlp: WARNING: other processes kept up to {noisy:.2f} CPU busy during a "
              "throughput phase; run again on a quiet machine for clean numbers")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
