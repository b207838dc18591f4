"""Budgets through the real Envoy with two workers sharing the ledger (Envoy's shared data): 50
parallel streaming requests against a small budget never charge more than its limit; a refusal is
Anthropic's 429 `rate_limit_error` with `retry-after`, naming the budget and its reset; the
official Python SDK waits as `retry-after` says and then gets its answer; and a stream that runs
past what its budget has left is cut (the upstream sees its stream closed early, the client the
ending, the record says `budget_cut`) and charged, with the refusal, the cut and the cost in the
metrics."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

import anthropic

from conftest import FakeScript
from test_audit import TOKEN as AUDIT_TOKEN, recorder  # noqa: F401 - the module's audit service
from test_dlp import wait_until

LIMIT = 12_000
MAX_TOKENS = 1000
# About 900 output tokens per answer: the fake reports len(json.dumps(content)) // 4.
TEXT = "budget " * 514


def actual_tokens(body_length: int) -> int:
    """The tokens the fake upstream reports for one scripted answer (scripts/fake_claude.py)."""
    output = max(1, len(json.dumps([{"type": "text", "text": TEXT}])) // 4)
    return max(1, body_length // 4) + output


@pytest.fixture(scope="module")
def budget_gateway(gateway_factory, make_policy):
    policy = make_policy({"roles": {"analyst": {"budgets": [
        {"name": "e2e-daily", "per": "role", "window": "day", "tokens": LIMIT},
        {"name": "e2e-one-at-a-time", "per": "subject", "concurrent": 1},
    ]}}})
    return gateway_factory(policy, concurrency=2)


def analyst_headers(issuer, sub: str) -> dict:
    return {"content-type": "application/json", "anthropic-version": "2023-06-01",
            "authorization": f"Bearer {issuer.mint(sub=sub, groups=['analysts'])}"}


def test_fifty_parallel_streams_on_two_workers_never_overshoot(budget_gateway, issuer, upstream):
    scripted = FakeScript(upstream)
    scripted.reset()
    markers = [f"parallel-{i:02d}" for i in range(50)]
    for marker in markers:
        # Each answer takes a moment, so many reservations are in flight at once.
        scripted(TEXT, match=marker, delay=0.3, piece=8)

    def send(i: int):
        body = {"model": "claude-haiku-4-5", "max_tokens": MAX_TOKENS, "stream": True,
                "messages": [{"role": "user", "content": f"{markers[i]}: say budget"}]}
        # One subject per request: only the role's daily budget binds.
        return budget_gateway.request("POST", "/v1/messages", analyst_headers(issuer, f"ana-{i}"), body)

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            replies = list(pool.map(send, range(50)))
    finally:
        scripted.reset()
    statuses = sorted(r.status for r in replies)
    admitted = [r for r in replies if r.status == 200]
    refused = [r for r in replies if r.status == 429]
    assert len(admitted) + len(refused) == 50, statuses
    assert admitted and refused, statuses
    forwarded = [r for r in upstream.requests() if r["path"].startswith("/v1/messages")]
    assert len(forwarded) == len(admitted), "a refused request never reaches the upstream"
    charged = sum(actual_tokens(r["body_length"]) for r in forwarded)
    assert charged <= LIMIT, f"{len(admitted)} answers used {charged} tokens, over the limit of {LIMIT}"
    for reply in admitted:
        assert "event: message_stop" in reply.text
    for reply in refused:
        error = reply.json()["error"]
        assert error["type"] == "rate_limit_error"
        assert error["message"].startswith('warden: budget_exhausted: budget "e2e-daily" (role analyst): ')
        assert re.search(r"it resets at \d{4}-\d\d-\d\dT00:00:00Z$", error["message"]), error["message"]
        assert 1 <= int(reply.header("retry-after")) <= 86_400
        assert reply.header("x-should-retry") == "true"


def test_the_sdk_waits_as_retry_after_says_then_gets_its_answer(budget_gateway, issuer, upstream):
    scripted = FakeScript(upstream)
    scripted.reset()
    headers = analyst_headers(issuer, "sam")
    # Sam's first stream stays open (paused upstream) and holds his one concurrent slot.
    scripted("held", match="first-of-two", pause_after_first_delta=True, pause_timeout=30)
    first_body = {"model": "claude-haiku-4-5", "max_tokens": 64, "stream": True,
                  "messages": [{"role": "user", "content": "first-of-two"}]}
    first = {}
    holder = threading.Thread(target=lambda: first.update(
        reply=budget_gateway.request("POST", "/v1/messages", headers, first_body)))
    holder.start()
    try:
        polls = 0
        while scripted.pending()["pause"] != "paused":
            polls += 1
            assert polls < 1_000, "the first stream never reached the upstream"
            time.sleep(0.02)
        seen: list[httpx2.Response] = []

        def on_response(response: httpx2.Response) -> None:
            seen.append(response)
            if response.status_code == 429:
                # The first stream may end now: its slot frees before the SDK's retry.
                scripted.release()

        http_client = httpx2.Client(event_hooks={"response": [on_response]})
        client = budget_gateway.sdk(token=headers["authorization"].removeprefix("Bearer "),
                                    max_retries=3, http_client=http_client)
        message = client.messages.create(model="claude-haiku-4-5", max_tokens=64,
                                         messages=[{"role": "user", "content": "second-of-two"}])
        holder.join(timeout=30)
    finally:
        scripted.reset()
    assert message.content[0].text
    statuses = [r.status_code for r in seen]
    assert statuses[0] == 429 and statuses[-1] == 200, statuses
    refused = seen[0]
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-should-retry"] == "true"
    message = refused.json()["error"]["message"]
    assert message.startswith('warden: budget_exhausted: budget "e2e-one-at-a-time" (subject sam) allows 1 '
                              'concurrent requests'), message
    assert first["reply"].status == 200
    bodies = [r["body"] for r in upstream.requests() if r["path"].startswith("/v1/messages")]
    assert sum("second-of-two" in b for b in bodies) == 1, "the retried request went upstream once"


CUT_LIMIT = 2000
CUT_RESERVED_OUTPUT = 64


@pytest.fixture(scope="module")
def cut_gateway(gateway_factory, make_policy, tmp_path_factory, recorder):
    """Reservations of 64 output tokens (`expected_output_tokens`) against a 2000-token daily
    budget per subject: a stream may run past its reservation up to what the budget has left."""
    audit_token = tmp_path_factory.mktemp("cut-audit") / "token"
    audit_token.write_text(AUDIT_TOKEN)
    policy = make_policy({
        "credentials": {"audit-token": {"env": "WARDEN_AUDIT_TOKEN"}},
        "audit": {"service": {"url": recorder.url, "token": "audit-token"}},
        "accounting": {"expected_output_tokens": CUT_RESERVED_OUTPUT},
        "roles": {"developer": {"budgets": [
            {"name": "e2e-cut", "per": "subject", "window": "day", "tokens": CUT_LIMIT}]}},
    })
    return gateway_factory(policy, extra_args=["--credential-file", f"WARDEN_AUDIT_TOKEN={audit_token}"])


def test_a_stream_past_its_budget_is_cut_closes_the_upstream_and_is_charged(
        cut_gateway, recorder, issuer, upstream):
    scripted = FakeScript(upstream)
    scripted.reset()
    upstream.clear()
    # ~15000 bytes of text in 150 deltas: the cut (about one token per 3 bytes, at what the
    # 2000-token budget has left) comes near the 60th delta; the fake pauses after the 120th and
    # sees its connection closed while it waits.
    scripted("word " * 3000, match="cut-me", piece=100, pause_after_text_deltas=120, pause_timeout=30)
    token = issuer.mint(sub="cora", groups=["eng"])
    texts: list[str] = []
    error: Exception | None = None

    def cut_upstream() -> list[dict]:
        forwarded = [r for r in upstream.requests() if "cut-me" in r["body"]]
        return forwarded if any(r["stream_closed_early"] for r in forwarded) else []

    try:
        with cut_gateway.sdk(token=token).messages.stream(
                model="claude-sonnet-4-6", max_tokens=8000,
                messages=[{"role": "user", "content": "cut-me: write a lot"}]) as stream:
            for text in stream.text_stream:
                texts.append(text)
    except anthropic.APIStatusError as raised:
        error = raised
    try:
        # The upstream sees its stream closed before its end, while it waits at its pause (the
        # pause stays until then: a release would let it finish into socket buffers).
        assert len(wait_until(cut_upstream, "the upstream stream closed early")) == 1
    finally:
        scripted.reset()
    # The client saw the ending: the error event naming the budget, after part of the answer.
    assert error is not None, "the stream was not cut"
    assert error.body["error"]["type"] == "rate_limit_error"
    assert error.body["error"]["message"].startswith('warden: budget_exhausted: budget "e2e-cut" exhausted: ')
    delivered = "".join(texts)
    assert 0 < len(delivered) < len("word " * 3000)
    # The record: budget_cut, charged the running count at the cut.
    record = wait_until(lambda: next((r for r in list(recorder.records) if r.get("outcome") == "budget_cut"),
                                     None), "the cut answer's record")
    usage = record["usage"]
    assert usage["output_tokens"] >= len(delivered) // 3 > CUT_RESERVED_OUTPUT
    charged = usage["input_tokens"] + usage["output_tokens"]
    assert record["cost_nanos"] == usage["input_tokens"] * 3000 + usage["output_tokens"] * 15_000
    # The budget was charged exactly that: the next request is refused with what is left.
    left = max(0, CUT_LIMIT - charged)
    refused = cut_gateway.request("POST", "/v1/messages", {
        "content-type": "application/json", "authorization": f"Bearer {token}"},
        {"model": "claude-sonnet-4-6", "max_tokens": 8000, "stream": True,
         "messages": [{"role": "user", "content": "after the cut " + "x" * 400}]})
    assert refused.status == 429, refused.text
    message = refused.json()["error"]["message"]
    assert message.startswith(f'warden: budget_exhausted: budget "e2e-cut" (subject cora): {left} of {CUT_LIMIT} '
                              "tokens per day left"), message
    # The metrics: one cut and one refusal by this budget, and the cost of the cut answer.
    wait_until(lambda: cut_gateway.metric("warden_budget_refusals", budget="e2e-cut") == 1, "the refusal counted")
    assert cut_gateway.metric("warden_stream_cuts", budget="e2e-cut") == 1
    assert cut_gateway.metric("warden_cost_nano_usd", role="developer", model="claude-sonnet-4-6") == \
        record["cost_nanos"]
