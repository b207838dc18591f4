"""What the Envoy configuration itself guarantees, independent of Warden's policy decisions:
credentials and gateway internals never reach the upstream, upstream failures are answered in
Anthropic's error shape with a request-id, large bodies pass, an invalid policy stops Envoy."""

from __future__ import annotations

from conftest import free_port

MODELS = "/v1/models"


def test_client_credentials_and_internal_headers_never_reach_upstream(gateway, upstream, token):
    r = gateway.request("GET", MODELS, {
        "authorization": f"Bearer {token}",
        "x-forwarded-for": "203.0.113.9",
        "anthropic-version": "2023-06-01",
    })
    assert r.status == 200, r.text
    sent = upstream.last()
    names = [k.lower() for k, _ in sent["headers"]]
    assert "authorization" not in names
    for internal in ("x-forwarded-for", "x-forwarded-proto", "x-envoy-external-address",
                     "x-envoy-original-host"):
        assert internal not in names, f"{internal} leaked upstream"
    assert [v for k, v in sent["headers"] if k.lower() == "x-api-key"] == [upstream.api_key]
    # The upstream's own request-id wins over the gateway's.
    assert r.header_all("request-id") == [r.header("request-id")]
    assert r.header("request-id").startswith("req_fake_")
    assert r.header("x-envoy-upstream-service-time") is None


def test_the_upstream_key_is_in_no_file_and_no_log(gateway, upstream, token):
    # run_envoy.py --credential-file puts it into Envoy's environment only.
    gateway.request("GET", MODELS, {"authorization": f"Bearer {token}"})
    assert upstream.api_key not in gateway.config_path.read_text()
    assert upstream.api_key not in gateway.log()


def test_upstream_down_gives_api_error_with_request_id(gateway_factory, token):
    closed = free_port()  # nothing listens there
    gw = gateway_factory(upstream_url=f"http://127.0.0.1:{closed}")
    r = gw.request("GET", MODELS, {"authorization": f"Bearer {token}"})
    assert r.status == 503, r.text
    assert r.header("content-type") == "application/json"
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "api_error"
    assert body["error"]["message"].startswith("warden: upstream_unavailable: ")
    assert r.header("request-id").startswith("req_warden_")


def test_bodies_over_one_mebibyte_are_accepted(gateway, upstream, token):
    big = "x" * (3 * 1024 * 1024)
    r = gateway.request("POST", "/v1/messages/count_tokens", {
        "authorization": f"Bearer {token}", "content-type": "application/json",
        "anthropic-version": "2023-06-01",
    }, {"model": "claude-sonnet-4-5-20250929",
        "messages": [{"role": "user", "content": big}]})
    assert r.status == 200, r.text[:500]
    assert r.json()["input_tokens"] > 700_000
    assert upstream.last()["body_length"] > 3 * 1024 * 1024


def test_invalid_policy_makes_envoy_refuse_to_start(gateway_factory, make_policy):
    good = make_policy()
    rc, out = gateway_factory.validate(good)
    assert rc == 0, out
    bad = make_policy({"no_such_field": True})
    rc, out = gateway_factory.validate(bad)
    assert rc != 0, out
