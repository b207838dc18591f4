"""Smoke tests of the end-to-end harness: Envoy starts with the built wasm, the local route and the
gateway's refusal path work, and the fake upstream is reachable only through the gateway."""

from __future__ import annotations

import json

from conftest import http_request


def test_api_hello_head_is_answered_locally_without_credentials(gateway, upstream):
    r = gateway.request("HEAD", "/api/hello")
    assert r.status == 200
    assert r.header("request-id").startswith("req_warden_")
    r = gateway.request("GET", "/api/hello")
    assert r.status == 200
    assert upstream.requests() == [], "/api/hello must never reach the upstream"


def test_request_without_token_is_refused_in_anthropic_error_shape(gateway, upstream):
    r = gateway.request("POST", "/v1/messages", {"content-type": "application/json"},
                        {"model": "claude-sonnet-4-5", "max_tokens": 16,
                         "messages": [{"role": "user", "content": "hi"}]})
    assert r.status == 401, r.text
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert r.header("request-id").startswith("req_warden_")
    assert upstream.requests() == []


def test_fake_upstream_requires_its_key(fake_upstream):
    r = http_request(fake_upstream.port, "GET", "/v1/models")
    assert r.status == 401
    assert r.json()["error"]["type"] == "authentication_error"
    r = http_request(fake_upstream.port, "GET", "/v1/models", {"x-api-key": fake_upstream.api_key})
    assert r.status == 200
    assert r.header("request-id").startswith("req_fake_")
    assert [m["type"] for m in r.json()["data"]] == ["model"] * len(r.json()["data"])


def test_admin_is_live_and_listener_on_loopback(gateway):
    assert gateway.admin("/ready").strip() == "LIVE"
    listeners = json.loads(gateway.admin("/listeners?format=json"))
    addrs = [l["local_address"]["socket_address"] for l in listeners["listener_statuses"]]
    assert addrs == [{"address": "127.0.0.1", "port_value": gateway.port}]
