"""Audit delivery through the real Envoy: every exchange leaves a record that reaches the audit
service in batches off the request path, numbered in one gap-free sequence across workers, kept
and re-sent while the service is down, and `fail_closed` refuses new requests once the queue is
full — but a flood of requests without a token cannot fill it (they are summarised); a restart
with a fixed `audit.source` starts a new run; a gateway stopped with SIGTERM under load loses no
record. The service here is a small recorder; `warden serve`'s store has its own tests."""

from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import PostServer, refusal

TOKEN = "audit-gateway-token-" + secrets.token_hex(8)


class Recorder(PostServer):
    """Accepts `POST /v1/audit/records` (NDJSON) while `up`, answering as `warden serve` does
    (every line accounted for), after `delay` seconds; answers 503 otherwise."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.up = True
        self.delay = 0.0
        self.lock = threading.Lock()

        def respond(path: str, headers: Any, body: bytes) -> tuple[int, bytes, float]:
            ok = self.up and path == "/v1/audit/records" and headers.get("authorization") == f"Bearer {TOKEN}"
            if not ok:
                return 503, b"{}", 0.0
            lines = [json.loads(line) for line in body.splitlines() if line]
            with self.lock:
                self.records.extend(lines)
            answer = {"stored": len(lines), "duplicates": 0, "refused": []}
            return 200, json.dumps(answer).encode(), self.delay

        super().__init__(respond)

    def by_request(self) -> dict[str, dict]:
        """Records by the `request-id` the client saw: Anthropic's for forwarded requests,
        Warden's for refusals."""
        with self.lock:
            return {r.get("upstream_request_id") or r["request_id"]: r for r in self.records
                    if r.get("request_id")}

    def summaries(self, source: str | None = None) -> list[dict]:
        """Summaries of unauthenticated refusals (of one gateway run)."""
        with self.lock:
            return [r for r in self.records if "summary" in r and source in (None, r["source"])]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.records) >= count:
                    return list(self.records)
            time.sleep(0.05)
        pytest.fail(f"{len(self.records)} records arrived, expected {count}")


@pytest.fixture(scope="module")
def recorder():
    r = Recorder()
    yield r
    r.close()


def audit_gateway(gateway_factory, make_policy, tmp_path_factory, recorder: Recorder,
                  concurrency: int = 1, **audit: Any):
    token_file = tmp_path_factory.mktemp("audit") / "token"
    token_file.write_text(TOKEN)
    policy = make_policy({
        "credentials": {"audit-token": {"env": "WARDEN_AUDIT_TOKEN"}},
        "audit": {"service": {"url": recorder.url, "token": "audit-token"}, "source": None, **audit},
    })
    text = policy.read_text().replace("  source: null\n", "")
    policy.write_text(text)
    return gateway_factory(policy, concurrency=concurrency,
                           extra_args=["--credential-file", f"WARDEN_AUDIT_TOKEN={token_file}"])


@pytest.fixture(scope="module")
def gateway(gateway_factory, make_policy, tmp_path_factory, recorder):
    return audit_gateway(gateway_factory, make_policy, tmp_path_factory, recorder)


def ask(gateway, token: str | None, prompt: str, stream: bool = False, model: str = "claude-sonnet-4-6",
        timeout: float = 30.0):
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01",
               "x-claude-code-session-id": "sess-audit-1", "x-warden-job-id": "nightly-build-7"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = {"model": model, "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}
    return gateway.request("POST", "/v1/messages", headers, body, timeout=timeout)


def test_allowed_and_refused_exchanges_leave_records(gateway, recorder, issuer, script):
    script("Recorded answer.")
    before = len(recorder.records)
    token = issuer.mint(extra={"jti": "tok-audit-1"})
    ok = ask(gateway, token, "hello audit", stream=True)
    assert ok.status == 200
    refused = ask(gateway, None, "no token")
    assert refusal(refused)[2] == "token_missing"
    recorder.wait_for(before + 1)
    by_id = recorder.by_request()
    allowed = by_id[ok.header("request-id")]
    assert allowed["decision"]["allowed"] is True and allowed["outcome"] == "completed"
    assert allowed["identity"]["subject"] == "alice" and allowed["identity"]["role"] == "developer"
    assert allowed["identity"]["token_id"] == "tok-audit-1"
    assert abs(allowed["identity"]["token_expires_at"] - (time.time() + 900) * 1000) < 60_000
    assert allowed["session_id"] == "sess-audit-1"
    assert (allowed["job_id"], allowed["identity"]["job"]) == ("nightly-build-7", {}), "declared by the client"
    assert allowed["response"]["stream"] is True
    assert allowed["response"]["content"] == [{"type": "text", "text": "Recorded answer."}]
    assert allowed["request"]["params"]["model"] == "claude-sonnet-4-6"
    [message] = allowed["request"]["messages"]
    assert json.loads(allowed["blobs"][message])["content"] == "hello audit"
    assert allowed["source"].startswith("gw-")
    # A refusal before authentication is counted in the run's summary of such refusals.
    deadline = time.monotonic() + 15
    while not recorder.summaries(allowed["source"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    [summary] = recorder.summaries(allowed["source"])[:1]
    assert summary["outcome"] == "refused" and summary["identity"] is None
    assert summary["summary"]["reasons"].get("token_missing", 0) >= 1
    assert refused.header("request-id") not in json.dumps(summary), "a summary names no request"


def test_secrets_never_reach_the_record(gateway, recorder, token, script):
    secret = "ghp_Q7rM2zXp9TlWb3KvN8yCd4Sj6Hf1Ga5Eu0Io"
    script(f"Your token is {secret}.")
    r = ask(gateway, token, f"use {secret} and mail ann.smith@northwind-mail.com")
    assert r.status == 200
    record = None
    deadline = time.monotonic() + 10
    while record is None and time.monotonic() < deadline:
        record = recorder.by_request().get(r.header("request-id"))
        time.sleep(0.05)
    assert record is not None
    text = json.dumps(record)
    assert secret not in text and "ann.smith@northwind-mail.com" not in text, text
    assert "[REDACTED:github-pat:" in text


def test_two_workers_share_one_gap_free_sequence(gateway_factory, make_policy, tmp_path_factory,
                                                 recorder, token):
    gw = audit_gateway(gateway_factory, make_policy, tmp_path_factory, recorder, concurrency=2)
    first = len(recorder.records)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda i: ask(gw, token, f"load {i}").status, range(200)))
    assert statuses == [200] * 200
    records = recorder.wait_for(first + 200)
    mine = [r for r in records[first:] if r["source"] != records[0]["source"]] or records[first:]
    seqs = sorted(r["seq"] for r in mine)
    assert len(seqs) == 200
    assert seqs == list(range(seqs[0], seqs[0] + 200)), "one gap-free sequence"
    gw.stop()


def test_records_wait_while_the_service_is_down_and_none_is_lost(gateway, recorder, token):
    recorder.up = False
    try:
        sent = [ask(gateway, token, f"while down {i}") for i in range(20)]
        assert all(r.status == 200 for r in sent), "fail_closed still admits while the queue has room"
        time.sleep(1.5)
        missing = [r.header("request-id") for r in sent if r.header("request-id") not in recorder.by_request()]
        assert len(missing) == 20, "nothing was stored while the service was down"
    finally:
        recorder.up = True
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(r.header("request-id") in recorder.by_request() for r in sent):
            break
        time.sleep(0.1)
    assert all(r.header("request-id") in recorder.by_request() for r in sent), "every record arrived"


def test_fail_closed_refuses_new_requests_when_the_queue_is_full(gateway_factory, make_policy,
                                                                tmp_path_factory, recorder, token):
    gw = audit_gateway(gateway_factory, make_policy, tmp_path_factory, recorder, buffer_records=3)
    recorder.up = False
    try:
        for i in range(3):
            assert ask(gw, token, f"fills the queue {i}").status == 200
        r = ask(gw, token, "one too many")
        assert r.status == 503
        body = r.json()
        assert body["error"]["type"] == "api_error"
        assert body["error"]["message"].startswith("warden: audit_unavailable:")
        assert r.header("x-should-retry") == "true"
    finally:
        recorder.up = True
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if ask(gw, token, "after the service is back").status == 200:
            break
        time.sleep(0.5)
    else:
        pytest.fail("requests were still refused after the service came back")
    gw.stop()


def test_fail_open_admits_everything_and_counts_the_records_it_drops(gateway_factory, make_policy,
                                                                    tmp_path_factory, recorder, token):
    gw = audit_gateway(gateway_factory, make_policy, tmp_path_factory, recorder,
                       buffer_records=2, mode="fail_open")
    recorder.up = False
    try:
        sent = [ask(gw, token, f"fail open {i}") for i in range(5)]
        assert [r.status for r in sent] == [200] * 5, "fail_open never refuses"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and gw.stats("wasmcustom.warden.audit.dropped").get(
                "wasmcustom.warden.audit.dropped") != "3":
            time.sleep(0.1)
        assert gw.stats("wasmcustom.warden.audit.dropped") == {"wasmcustom.warden.audit.dropped": "3"}
    finally:
        recorder.up = True
    ids = [r.header("request-id") for r in sent]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sum(i in recorder.by_request() for i in ids) < 2:
        time.sleep(0.1)
    time.sleep(0.5)
    kept = [recorder.by_request()[i] for i in ids if i in recorder.by_request()]
    assert len(kept) == 2, "the two records the queue held arrived; the dropped ones left gaps"
    assert "records dropped in this worker" in gw.log(), "drops are logged loudly"
    gw.stop()


def test_an_unauthenticated_flood_never_closes_the_gateway(gateway_factory, make_policy,
                                                          tmp_path_factory, recorder, token):
    gw = audit_gateway(gateway_factory, make_policy, tmp_path_factory, recorder, buffer_records=3)
    recorder.up = False
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            flood = list(pool.map(lambda i: ask(gw, None, f"flood {i}").status, range(300)))
        assert flood == [401] * 300
        r = ask(gw, token, "an authenticated request after the flood")
        assert r.status == 200, "the flood took none of the room authenticated records need"
    finally:
        recorder.up = True
    deadline = time.monotonic() + 20
    counted = 0
    while counted < 300 and time.monotonic() < deadline:
        counted = sum(s["summary"]["count"] for s in recorder.summaries()
                      if s["source"] == recorder.by_request().get(r.header("request-id"), {}).get("source"))
        time.sleep(0.2)
    assert counted == 300, "every refusal is counted in the run's summaries"
    gw.stop()


def test_a_restarted_gateway_with_a_fixed_source_loses_nothing(gateway_factory, make_policy,
                                                              tmp_path_factory, recorder, token):
    sources = []
    for run in range(2):
        gw = audit_gateway(gateway_factory, make_policy, tmp_path_factory, recorder, source="gw-fixed")
        r = ask(gw, token, f"run {run}")
        assert r.status == 200
        deadline = time.monotonic() + 10
        while r.header("request-id") not in recorder.by_request() and time.monotonic() < deadline:
            time.sleep(0.05)
        record = recorder.by_request()[r.header("request-id")]
        sources.append((record["source"], record["seq"]))
        gw.stop()
    (first, seq1), (second, seq2) = sources
    assert first.startswith("gw-fixed-") and second.startswith("gw-fixed-")
    assert first != second, "each start has its own epoch: (source, seq) never collides"
    assert seq1 == seq2 == 1


def test_a_gateway_stopped_with_sigterm_under_load_loses_no_record(gateway_factory, make_policy,
                                                                   tmp_path_factory, recorder, token):
    """A rolling restart: Envoy gets SIGTERM while clients keep sending and the audit service
    answers slowly (records queue up); the service stays up. Every request that got an answer
    has its record stored."""
    gw = audit_gateway(gateway_factory, make_policy, tmp_path_factory, recorder, concurrency=2)
    recorder.delay = 0.4
    answered: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                r = ask(gw, token, f"rolling {n}-{i}", timeout=5)
            except Exception:  # noqa: BLE001 (the gateway goes away mid-request)
                return
            if r.status == 200:
                with lock:
                    answered.append(r.header("request-id"))
            i += 1

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(answered) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        waiting = gw.stats("wasmcustom.warden.audit.waiting")
        assert "wasmcustom.warden.audit.waiting" in waiting, "the gauge the launcher drains by"
        gw.proc.send_signal(signal.SIGTERM)
        gw.proc.wait(timeout=60)
        stop.set()
        for t in threads:
            t.join(timeout=10)
    finally:
        recorder.delay = 0.0
        gw.stopped = True
    assert len(answered) >= 150
    stored = recorder.by_request()
    missing = [i for i in answered if i not in stored]
    envoy_log = "\n".join(line for line in gw.log().splitlines() if '"POST ' not in line)
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no record:\n{envoy_log[-6000:]}"
