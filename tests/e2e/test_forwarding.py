"""What the gateway forwards and how: plain-byte responses whatever the client accepts, live SSE,
one upstream key, and a gateway that refuses to start without its key."""

from __future__ import annotations

import http.client
import json
import time

JSON = {"content-type": "application/json"}
SONNET = {"model": "claude-sonnet-4-6", "max_tokens": 64,
          "messages": [{"role": "user", "content": "hi"}]}
CLAUDE_CODE_ENCODINGS = "gzip, deflate, br, zstd"


def bearer(issuer, groups=("eng",)) -> dict:
    return {**JSON, "authorization": f"Bearer {issuer.mint(groups=list(groups))}"}


def test_upstream_answers_in_plain_bytes_even_when_client_accepts_compression(gateway, upstream, issuer):
    headers = {**bearer(issuer), "accept-encoding": CLAUDE_CODE_ENCODINGS}
    r = gateway.request("POST", "/v1/messages", headers, SONNET)
    assert r.status == 200
    assert r.header("content-encoding") in (None, "identity")
    assert r.json()["type"] == "message"
    [seen] = upstream.requests()
    assert "accept-encoding" not in [k.lower() for k, _ in seen["headers"]]


def test_streaming_response_arrives_event_by_event(gateway, upstream, issuer):
    headers = {**bearer(issuer), "accept-encoding": CLAUDE_CODE_ENCODINGS,
               "accept": "text/event-stream"}
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.putrequest("POST", "/v1/messages?beta=true", skip_accept_encoding=True)
        body = json.dumps({**SONNET, "stream": True}).encode()
        for k, v in {**headers, "content-length": str(len(body))}.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("content-type", "").startswith("text/event-stream")
        assert resp.getheader("content-encoding") in (None, "identity")
        events = []
        for raw in resp.read().decode().split("\n\n"):
            if raw.strip():
                name = [l[7:] for l in raw.splitlines() if l.startswith("event: ")][0]
                events.append(name)
    finally:
        conn.close()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.count("content_block_delta") >= 2


def test_client_key_beside_the_token_is_refused_with_a_hint(gateway, upstream, issuer):
    """jwt_authn reads tokens from Authorization and x-api-key and checks both: a client's own
    Anthropic key beside a valid bearer token fails, and the refusal says why."""
    token = issuer.mint(groups=["eng"])
    headers = [("content-type", "application/json"), ("authorization", f"Bearer {token}"),
               ("x-api-key", "sk-ant-client-1")]
    r = gateway.request("POST", "/v1/messages", headers, SONNET)
    assert r.status == 401
    message = r.json()["error"]["message"]
    assert message.startswith("warden: token_invalid:")
    assert "both Authorization and x-api-key" in message
    assert "sk-ant-client" not in r.text
    assert upstream.requests() == []


def test_client_identity_headers_become_exactly_one_role_key(gateway, upstream, issuer):
    token = issuer.mint(groups=["eng"])
    headers = [("content-type", "application/json"), ("authorization", f"Bearer {token}"),
               ("proxy-authorization", "Basic c2VjcmV0"), ("cookie", "session=abc")]
    r = gateway.request("POST", "/v1/messages", headers, SONNET)
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    assert [v for k, v in seen["headers"] if k.lower() == "x-api-key"] == [upstream.api_key]
    names = [k.lower() for k, _ in seen["headers"]]
    assert not {"authorization", "proxy-authorization", "cookie"} & set(names)


def test_second_invalid_token_refuses_the_request(gateway, upstream, issuer):
    headers = [("content-type", "application/json"),
               ("authorization", f"Bearer {issuer.mint(groups=['eng'])}"),
               ("authorization", "Bearer not-a-jwt")]
    r = gateway.request("POST", "/v1/messages", headers, SONNET)
    assert r.status == 401
    assert r.json()["error"]["message"].startswith("warden: token_invalid:")
    assert upstream.requests() == []


def test_models_and_count_tokens_are_forwarded(gateway, upstream, issuer):
    assert gateway.request("GET", "/v1/models?limit=20", bearer(issuer)).status == 200
    r = gateway.request("POST", "/v1/messages/count_tokens?beta=true", bearer(issuer),
                        {"model": "claude-sonnet-4-6", "messages": SONNET["messages"]})
    assert r.status == 200 and r.json()["input_tokens"] > 0
    assert [s["path"] for s in upstream.requests()] == [
        "/v1/models?limit=20", "/v1/messages/count_tokens?beta=true"]


def test_claude_code_preconnect_needs_no_credentials(gateway, upstream):
    for method in ("HEAD", "GET"):
        r = gateway.request(method, "/api/hello")
        assert r.status == 200
    assert upstream.requests() == []


def test_gateway_refuses_to_start_without_its_key(gateway_factory, make_policy):
    policy = make_policy({"credentials": {"anthropic": {"env": "WARDEN_TEST_UNSET_KEY"}}})
    gw = gateway_factory(policy, wait=False)
    deadline = time.monotonic() + 60
    while gw.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gw.proc.returncode not in (None, 0), "Envoy must not run without the role's key"
    log = gw.log()
    assert "credentials.anthropic.env: environment variable WARDEN_TEST_UNSET_KEY is not set" in log


def test_key_never_appears_in_logs_or_replies(gateway, upstream, issuer):
    r = gateway.request("POST", "/v1/messages", bearer(issuer, groups=["analysts"]),
                        {**SONNET, "model": "claude-opus-4-6"})
    assert r.status == 403
    assert upstream.api_key not in r.text
    time.sleep(0.2)
    assert upstream.api_key not in gateway.log()
    assert upstream.api_key not in gateway.config_path.read_text(), \
        "the rendered Envoy config must not contain the key"


def test_each_role_uses_its_own_anthropic_key(gateway_factory, make_policy, issuer, tmp_path):
    """Two roles on two workspace keys: each request carries its role's key and no other."""
    from conftest import start_fake_upstream, stop_process

    keys = {"DEV_KEY": "sk-fake-dev-workspace", "ANALYST_KEY": "sk-fake-analyst-workspace"}
    upstream = start_fake_upstream(tmp_path, ",".join(keys.values()))
    try:
        policy = make_policy({
            "credentials": {"dev": {"env": "DEV_KEY"}, "analysts": {"env": "ANALYST_KEY"}},
            "roles": {"developer": {"credential": "dev"}, "analyst": {"credential": "analysts"}},
        })
        files = []
        for var, key in keys.items():
            path = tmp_path / var
            path.write_text(key)
            files += ["--credential-file", f"{var}={path}"]
        gateway = gateway_factory(policy, upstream_url=upstream.url, extra_args=files)
        for groups, model, expected in ((["eng"], "claude-sonnet-4-6", keys["DEV_KEY"]),
                                        (["analysts"], "claude-haiku-4-5", keys["ANALYST_KEY"])):
            upstream.clear()
            headers = {**JSON, "authorization": f"Bearer {issuer.mint(groups=groups)}"}
            r = gateway.request("POST", "/v1/messages", headers, {**SONNET, "model": model})
            assert r.status == 200, r.text
            [seen] = upstream.requests()
            assert [v for k, v in seen["headers"] if k.lower() == "x-api-key"] == [expected]
    finally:
        stop_process(upstream.proc)
