"""Request policy through the real Envoy: every refusal reason, before anything reaches Claude,
plus the path tricks and malformed bodies a hostile client might try."""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import refusal
from test_dlp import wait_until

JSON = {"content-type": "application/json"}
HAIKU = {"model": "claude-haiku-4-5", "max_tokens": 100,
         "messages": [{"role": "user", "content": "hi"}]}
SONNET = {**HAIKU, "model": "claude-sonnet-4-5"}

# The default test policy plus two roles only this module needs.
EXTRA_ROLES = {
    "roles": {
        "batch": {"credential": "anthropic", "models": ["claude-*"], "streaming": False,
                  "endpoints": ["messages"], "tools": {"client": ["*"], "server": ["web_search_*"]},
                  "mcp_servers": ["https://*.corp.example/**"]},
    },
    "bindings": [
        {"group": "eng", "role": "developer"},
        {"group": "analysts", "role": "analyst"},
        {"group": "batch", "role": "batch"},
    ],
}


@pytest.fixture(scope="module")
def gateway(gateway_factory, make_policy):
    return gateway_factory(make_policy(EXTRA_ROLES))


@pytest.fixture
def as_dev(issuer):
    return {**JSON, "authorization": f"Bearer {issuer.mint(groups=['eng'])}"}


@pytest.fixture
def as_analyst(issuer):
    return {**JSON, "authorization": f"Bearer {issuer.mint(sub='ann', groups=['analysts'])}"}


@pytest.fixture
def as_batch(issuer):
    return {**JSON, "authorization": f"Bearer {issuer.mint(sub='job', groups=['batch'])}"}


# ---------------------------------------------------------------------------------------------
# body policy, one test per refusal reason


@pytest.mark.parametrize("who, body, expected", [
    ("analyst", SONNET, (403, "permission_error", "model_not_allowed")),
    ("analyst", {**HAIKU, "max_tokens": 2048}, (403, "permission_error", "max_tokens_exceeded")),
    ("analyst", {**HAIKU, "thinking": {"type": "enabled", "budget_tokens": 1024}},
     (403, "permission_error", "thinking_budget_exceeded")),
    ("analyst", {**HAIKU, "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]},
     (403, "permission_error", "tool_not_allowed")),
    ("analyst", {**HAIKU, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
     (403, "permission_error", "server_tool_not_allowed")),
    ("batch", {**SONNET, "tools": [{"type": "code_execution_20250522", "name": "code_execution"}]},
     (403, "permission_error", "server_tool_not_allowed")),
    ("analyst", {**HAIKU, "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "x"}]},
     (403, "permission_error", "mcp_server_not_allowed")),
    ("developer", {**SONNET, "mcp_servers": [{"type": "url", "url": "http://mcp.example.com/sse", "name": "x"}]},
     (403, "permission_error", "mcp_server_not_allowed")),
    ("batch", {**SONNET, "stream": True}, (403, "permission_error", "streaming_not_allowed")),
    # MCP URLs are matched by their parsed parts: tricks that put the allowed domain after the
    # real host are other hosts, and URLs parsers disagree on are refused outright.
    *[("batch", {**SONNET, "mcp_servers": [{"type": "url", "url": url, "name": "x"}]}, expected)
      for url, expected in [
          ("https://evil.example?.corp.example/x", (403, "permission_error", "mcp_server_not_allowed")),
          ("https://evil.example/.corp.example/x", (403, "permission_error", "mcp_server_not_allowed")),
          ("https://evil.example#.corp.example/x", (400, "invalid_request_error", "invalid_request")),
          ("https://evil.example\\.corp.example/x", (400, "invalid_request_error", "invalid_request")),
          ("https://mcp.corp.example@evil.example/x", (400, "invalid_request_error", "invalid_request")),
          ("https://2130706433/x", (400, "invalid_request_error", "invalid_request")),
      ]],
    # A tool_choice naming a tool is judged like declaring it.
    ("analyst", {**HAIKU, "tool_choice": {"type": "tool", "name": "Bash"}},
     (403, "permission_error", "tool_not_allowed")),
    # Identifiers are capped before any matching.
    ("developer", {**SONNET, "model": "claude-" + "x" * 4_000_000},
     (400, "invalid_request_error", "invalid_request")),
    ("developer", {"max_tokens": 10, "messages": []}, (400, "invalid_request_error", "invalid_request")),
    ("developer", {**SONNET, "max_tokens": "many"}, (400, "invalid_request_error", "invalid_request")),
])
def test_body_policy_refusals(gateway, upstream, as_dev, as_analyst, as_batch, who, body, expected):
    headers = {"developer": as_dev, "analyst": as_analyst, "batch": as_batch}[who]
    r = gateway.request("POST", "/v1/messages", headers, body)
    assert refusal(r) == expected, r.text
    assert upstream.requests() == [], "a refused request must never reach the upstream"


def test_allowed_requests_per_role(gateway, upstream, as_dev, as_analyst, as_batch):
    assert gateway.request("POST", "/v1/messages", as_analyst, HAIKU).status == 200
    tools = {**SONNET, "tools": [{"name": "Bash", "input_schema": {"type": "object"}},
                                 {"type": "web_search_20250305", "name": "web_search"}],
             "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "x"}]}
    assert gateway.request("POST", "/v1/messages", as_dev, tools).status == 200
    assert gateway.request("POST", "/v1/messages", as_batch, SONNET).status == 200
    corp = {**SONNET, "mcp_servers": [{"type": "url", "url": "https://MCP.corp.example:443/sse?s=1", "name": "x"}]}
    assert gateway.request("POST", "/v1/messages", as_batch, corp).status == 200
    assert len(upstream.requests()) == 4


def test_max_tokens_clamp_rewrites_only_that_value(gateway, upstream, as_dev):
    body = json.dumps({**SONNET, "max_tokens": 100000}, separators=(",", ":"))
    r = gateway.request("POST", "/v1/messages", as_dev, body)
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    assert seen["body"] == body.replace('"max_tokens":100000', '"max_tokens":64000')
    length = [v for k, v in seen["headers"] if k.lower() == "content-length"]
    assert length in ([str(len(seen["body"]))], []), "a rewritten body must carry a correct length"


def test_beta_header_is_checked_value_by_value(gateway, upstream, as_dev, as_analyst):
    betas = {"anthropic-beta": "interleaved-thinking-2025-05-14,context-management-2025-06-27"}
    assert gateway.request("POST", "/v1/messages", {**as_dev, **betas}, SONNET).status == 200
    r = gateway.request("POST", "/v1/messages", {**as_analyst, **betas}, HAIKU)
    assert refusal(r) == (403, "permission_error", "beta_not_allowed")
    assert len(upstream.requests()) == 1


# ---------------------------------------------------------------------------------------------
# endpoints and path tricks


@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/messages/batches"),
    ("GET", "/v1/messages/batches/msgbatch_01"),
    ("POST", "/v1/complete"),
    ("POST", "/v1/files"),
    ("GET", "/v1/messages"),
    ("DELETE", "/v1/models/claude-haiku-4-5"),
    ("POST", "/v1/messages/../complete"),
    ("POST", "/v1/messages/./batches"),
])
def test_other_endpoints_are_not_allowed(gateway, upstream, as_dev, method, path):
    r = gateway.request(method, path, as_dev, SONNET if method == "POST" else None)
    assert refusal(r) == (403, "permission_error", "endpoint_not_allowed"), r.text
    assert upstream.requests() == []


@pytest.mark.parametrize("path", ["/v1/messages%2Fbatches", "/admin", "/"])
def test_unknown_and_escaped_paths_are_404(gateway, upstream, as_dev, path):
    r = gateway.request("POST", path, as_dev, SONNET)
    assert refusal(r) == (404, "not_found_error", "unknown_endpoint"), r.text
    assert upstream.requests() == []


@pytest.mark.parametrize("path", ["//v1//messages", "/v1/%6dessages", "/v1/./messages", "/v1/%2e%2e/v1/messages"])
def test_normalized_paths_are_judged_as_the_upstream_sees_them(gateway, upstream, as_analyst, path):
    """Envoy normalizes (merges slashes, decodes unreserved escapes, resolves dot segments) before
    Warden judges, so the path Warden checks is exactly the path the upstream receives."""
    r = gateway.request("POST", path, as_analyst, SONNET)
    assert refusal(r) == (403, "permission_error", "model_not_allowed")
    assert gateway.request("POST", path, as_analyst, HAIKU).status == 200
    assert [s["path"] for s in upstream.requests()] == ["/v1/messages"]


def test_role_without_an_endpoint_is_refused_it(gateway, upstream, as_batch):
    r = gateway.request("POST", "/v1/messages/count_tokens", as_batch,
                        {"model": "claude-haiku-4-5", "messages": []})
    assert refusal(r) == (403, "permission_error", "endpoint_not_allowed")
    r = gateway.request("GET", "/v1/models", as_batch)
    assert refusal(r) == (403, "permission_error", "endpoint_not_allowed")
    assert upstream.requests() == []


def test_unexpected_query_is_refused(gateway, upstream, as_dev):
    r = gateway.request("POST", "/v1/messages?beta=true&debug=1", as_dev, SONNET)
    assert refusal(r) == (400, "invalid_request_error", "invalid_request")
    assert upstream.requests() == []


# ---------------------------------------------------------------------------------------------
# malformed bodies


@pytest.mark.parametrize("body", [
    b"{not json",
    b"",
    b"[1, 2]",
    b'{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"\xff\xfe"}]}',
    b'{"model":"claude-haiku-4-5","model":"claude-opus-4-1","max_tokens":10,"messages":[]}',
])
def test_malformed_bodies_are_400(gateway, upstream, as_analyst, body):
    r = gateway.request("POST", "/v1/messages", as_analyst, body)
    assert refusal(r) == (400, "invalid_request_error", "invalid_json"), r.text
    assert upstream.requests() == []


def test_wrong_content_type_is_400(gateway, upstream, as_dev):
    headers = {**as_dev, "content-type": "text/plain"}
    r = gateway.request("POST", "/v1/messages", headers, json.dumps(SONNET))
    assert refusal(r) == (400, "invalid_request_error", "invalid_content_type")
    assert upstream.requests() == []


def test_compressed_body_is_400(gateway, upstream, as_dev):
    headers = {**as_dev, "content-encoding": "gzip"}
    r = gateway.request("POST", "/v1/messages", headers, gzip.compress(json.dumps(SONNET).encode()))
    assert refusal(r) == (400, "invalid_request_error", "compressed_body")
    assert upstream.requests() == []


def test_oversize_body_is_413(gateway, upstream, as_analyst):
    filler = "x" * (1024 * 1024 + 1)
    body = {**HAIKU, "messages": [{"role": "user", "content": filler}]}
    r = gateway.request("POST", "/v1/messages", as_analyst, body)
    assert refusal(r) == (413, "request_too_large", "body_too_large")
    assert upstream.requests() == []


def test_oversize_chunked_body_is_413(gateway, upstream, as_analyst):
    """No content-length: the limit is enforced as the body streams in."""
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    headers = {**as_analyst, "transfer-encoding": "chunked"}
    r = gateway.request("POST", "/v1/messages", headers, body)
    assert refusal(r) == (413, "request_too_large", "body_too_large")
    assert upstream.requests() == []


def test_large_body_within_limits_passes_intact(gateway, upstream, as_dev):
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "y" * 4000 + str(i)}
               for i in range(2101)]
    body = json.dumps({**SONNET, "messages": history})
    assert len(body) > 8 * 1024 * 1024
    r = gateway.request("POST", "/v1/messages", as_dev, body, timeout=60)
    assert r.status == 200, r.text[:500]
    [seen] = upstream.requests()
    assert seen["body_length"] == len(body)
    assert seen["body"] == body


def test_nul_in_path_is_rejected_by_envoy_in_anthropic_shape(gateway, upstream, as_dev):
    r = gateway.request("POST", "/v1/messages%00", as_dev, SONNET)
    assert r.status == 400
    assert r.json()["error"] == {
        "type": "invalid_request_error",
        "message": "warden: invalid_request: rejected by the gateway (path_normalization_failed)"}
    assert len(r.header_all("request-id")) == 1 and r.header("request-id").startswith("req_warden_")
    assert upstream.requests() == []


def test_decisions_are_counted_in_envoy_stats(gateway, upstream, as_dev, as_analyst):
    def count(role: str, decision: str, reason: str = "none") -> float:
        return gateway.metric("warden_requests", role=role, decision=decision, reason=reason)

    cases = [("analyst", "denied", "model_not_allowed"), ("developer", "clamped"), ("analyst", "allowed")]
    before = {case: count(*case) for case in cases}
    assert gateway.request("POST", "/v1/messages", as_analyst, SONNET).status == 403
    assert gateway.request("POST", "/v1/messages", as_dev, {**SONNET, "max_tokens": 100000}).status == 200
    assert gateway.request("POST", "/v1/messages", as_analyst, HAIKU).status == 200
    # Each request is counted once, when its stream ends (just after the client has its answer).
    wait_until(lambda: all(count(*case) - before[case] == 1 for case in cases),
               "one request counted for each of the three decisions")
    # The labels are cut out of the stat name by the rendered config's stats_tags.
    stats = gateway.stats("wasmcustom.warden.role.analyst.decision.denied.reason.model_not_allowed.requests")
    assert list(stats.values()) == [str(int(count("analyst", "denied", "model_not_allowed")))]
