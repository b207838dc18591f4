"""The session prefix memo in Envoy: two workers share it through Envoy's shared data. A session
grows turn by turn over new connections (so turns land on either worker); whatever the memo knows,
the upstream receives exactly the client's bytes with every secret masked — an earlier message
edited to hold a secret (same length, so only its bytes differ) and a second caller reusing the
session id are scanned again."""

from __future__ import annotations

import json

import pytest

from test_dlp import GITHUB_PAT, headers_for, leaked


@pytest.fixture(scope="module")
def two_workers(gateway_factory):
    return gateway_factory(concurrency=2)


def body(messages: list[dict]) -> bytes:
    return json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": messages}).encode()


def user(text: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def send(gw, upstream, token: str, session: str, messages: list[dict]) -> str:
    """Sends on a new connection; the body the upstream received."""
    upstream.clear()
    sent = body(messages)
    r = gw.request("POST", "/v1/messages", headers_for(token, **{"x-claude-code-session-id": session}), sent)
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    return seen["body"]


def test_a_growing_session_on_two_workers_is_forwarded_as_sent_and_history_edits_are_masked(
        two_workers, upstream, issuer):
    alice, mallory = issuer.mint(sub="alice"), issuer.mint(sub="mallory")
    first = "Find the bug in " + "x" * len(GITHUB_PAT)
    history = [user(first)]
    for turn in range(1, 11):
        seen = send(two_workers, upstream, alice, "sess-e2e-1", history)
        assert seen.encode() == body(history), f"turn {turn}: a clean turn is forwarded byte for byte"
        history += [{"role": "assistant", "content": f"answer {turn}"}, user(f"go on with step {turn}")]
    # The first message, edited to hold a token of the same length as what it replaces.
    history[0] = user("Find the bug in " + GITHUB_PAT)
    for _ in range(4):
        seen = send(two_workers, upstream, alice, "sess-e2e-1", history)
        assert leaked(seen, GITHUB_PAT) is None, "an edited earlier message reached the upstream unmasked"
    # Another caller with the same session id and a secret in the history Alice sent clean.
    forged = [user(first), user(f"token {GITHUB_PAT}")]
    for _ in range(4):
        assert leaked(send(two_workers, upstream, mallory, "sess-e2e-1", forged), GITHUB_PAT) is None
