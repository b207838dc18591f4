"""The real Claude Code CLI (pinned in tests/e2e/claude-code) pointed at the gateway the way the
README tells users to: ANTHROPIC_BASE_URL + ANTHROPIC_AUTH_TOKEN +
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1, with the fake Claude upstream behind Envoy."""

from __future__ import annotations

import json
import time

from conftest import run_claude


def test_claude_code_answers_through_the_gateway(gateway, upstream, issuer, tmp_path):
    token = issuer.mint(sub="alice", groups=["eng"])
    done = run_claude(gateway, token, "say hi", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Hello from the fake Claude upstream." in done.stdout

    seen = upstream.requests()
    assert seen, "Claude Code must have reached the upstream through the gateway"
    for request in seen:
        assert request["path"] == "/v1/messages?beta=true"
        names = [k.lower() for k, _ in request["headers"]]
        assert [v for k, v in request["headers"] if k.lower() == "x-api-key"] == [upstream.api_key]
        assert "authorization" not in names and "accept-encoding" not in names
        assert token not in json.dumps(request)
        assert json.loads(request["body"])["stream"] is True
    assert any(json.loads(r["body"]).get("tools") for r in seen), "a real Claude Code request"


def test_claude_code_agent_loop_runs_a_tool_through_the_gateway(gateway, upstream, issuer, tmp_path):
    (tmp_path / "notes.txt").write_text("warden notes\n")
    token = issuer.mint(sub="alice", groups=["eng"])
    done = run_claude(gateway, token, "Use the Glob tool to list files", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Tool result:" in done.stdout, done.stdout
    bodies = [json.loads(r["body"]) for r in upstream.requests()]
    results = [b for b in bodies if any(
        isinstance(block, dict) and block.get("type") == "tool_result"
        for msg in b["messages"] if isinstance(msg.get("content"), list) for block in msg["content"])]
    assert results, "the tool result must go back to Claude through the gateway"


def test_claude_code_shows_warden_refusals(gateway, upstream, issuer, tmp_path):
    token = issuer.mint(sub="ann", groups=["analysts"])
    done = run_claude(gateway, token, "say hi", tmp_path, "--model", "claude-opus-4-6")
    output = done.stdout + done.stderr
    assert "warden: " in output and "not allowed for role analyst" in output, output
    assert upstream.requests() == []


def test_claude_code_with_an_expired_token_stops_without_retrying(gateway, upstream, issuer, tmp_path):
    def refused() -> int:
        return int(gateway.metric("warden_requests", role="none", decision="denied", reason="token_expired"))

    before = refused()
    token = issuer.mint(iat=int(time.time()) - 3000, ttl=600)
    done = run_claude(gateway, token, "say hi", tmp_path)
    output = done.stdout + done.stderr
    assert "warden: token_expired" in output, output
    # A fixed ANTHROPIC_AUTH_TOKEN (no apiKeyHelper) gets x-should-retry: false: Claude Code gives
    # up at once. Without it, a 401 is retried up to 10
    # times with backoff for minutes (and run_claude's timeout would fail the test). Claude Code
    # sends a few requests at start (the prompt and warm-ups), each refused once or twice.
    attempts = refused() - before
    assert 1 <= attempts < 10, attempts
    assert upstream.requests() == []
