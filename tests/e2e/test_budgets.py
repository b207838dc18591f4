"""Budgets through the real Envoy with two workers sharing the ledger (Envoy's shared data): 50
parallel streaming requests against a small budget never charge more than its limit; a refusal is
Anthropic's 429 `rate_limit_error` with `retry-after`, naming the budget and its reset; and the
official Python SDK waits as `retry-after` says and then gets its answer."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from conftest import FakeScript

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
