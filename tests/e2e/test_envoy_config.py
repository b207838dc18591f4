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


# ------------------------------------------------------------------------------------------
# No client is trusted: Envoy honours x-envoy-* control headers and keeps x-request-id only
# from clients it considers internal, and every client reaches the gateway over the network
# (127.0.0.1 here, a container bridge under Compose).


def test_a_client_sent_request_id_is_not_honoured(gateway, upstream, token):
    chosen = "client-chosen-id-0001"
    r = gateway.request("GET", MODELS, {"authorization": f"Bearer {token}", "x-request-id": chosen})
    assert r.status == 200, r.text
    seen = [v for k, v in upstream.last()["headers"] if k.lower() == "x-request-id"]
    assert chosen not in seen, "the upstream saw the client's request id"
    # Warden's own refusals name the request by the id Envoy made, never the client's.
    refused = gateway.request("GET", MODELS, {"x-request-id": chosen})
    assert refused.status == 401, refused.text
    assert chosen not in refused.header("request-id")
    assert f"x-request-id={chosen}" not in gateway.log()


def test_client_sent_envoy_control_headers_are_not_honoured(gateway, upstream, token):
    """A trusted x-envoy-retry-on would make Envoy re-send the request; any x-envoy-* header
    would also reach the upstream."""
    upstream.clear()
    r = gateway.request("GET", "/v1/models/claude-no-such-model-9", {
        "authorization": f"Bearer {token}",
        "x-envoy-retry-on": "retriable-status-codes",
        "x-envoy-retriable-status-codes": "404",
        "x-envoy-max-retries": "3",
        "x-envoy-upstream-rq-per-try-timeout-ms": "60000",
        "x-envoy-force-trace": "true",
        "x-envoy-ip-tags": "internal",
    })
    assert r.status == 404, r.text
    sent = upstream.requests()
    assert len(sent) == 1, f"Envoy retried on the client's say: {len(sent)} upstream requests"
    names = [k.lower() for k, _ in sent[0]["headers"]]
    assert not [n for n in names if n.startswith("x-envoy-")], names


# ------------------------------------------------------------------------------------------
# Envoy's own protocol refusals (before any filter runs) in Anthropic's error shape.


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Sends raw bytes on a fresh connection; returns (status, headers, body) of the answer."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if length and len(rest) >= int(length[0].split(b":")[1]):
                    break
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1."), raw[:200]
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def assert_anthropic_error(status: int, headers: dict[str, str], body: bytes, error_type: str) -> str:
    import json

    assert headers.get("content-type") == "application/json", (status, headers, body)
    payload = json.loads(body)
    assert payload["type"] == "error", payload
    assert payload["error"]["type"] == error_type, (status, payload)
    message = payload["error"]["message"]
    assert message.startswith("warden: "), message
    assert headers.get("request-id", "").startswith("req_warden_"), headers
    return message


def test_http_1_0_requests_get_an_anthropic_error(gateway):
    status, headers, body = raw_exchange(
        gateway.port, b"GET /v1/models HTTP/1.0\r\nHost: gateway\r\n\r\n")
    assert status == 426, (status, body)
    message = assert_anthropic_error(status, headers, body, "invalid_request_error")
    assert "HTTP/1.1" in message, message


def test_malformed_requests_get_an_anthropic_error(gateway):
    for raw in (b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\nbad header\r\n\r\n",
                b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\nContent-Length: x\r\n\r\n",
                b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\nContent-Length: 1\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"):
        status, headers, body = raw_exchange(gateway.port, raw)
        assert status == 400, (raw, status, body)
        assert_anthropic_error(status, headers, body, "invalid_request_error")


def test_over_large_headers_get_an_anthropic_error(gateway):
    raw = (b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\nx-big: " + b"a" * (100 * 1024) + b"\r\n\r\n")
    status, headers, body = raw_exchange(gateway.port, raw)
    assert status == 431, (status, body)
    assert_anthropic_error(status, headers, body, "invalid_request_error")
