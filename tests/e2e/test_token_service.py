"""The token service through the real Envoy: `warden serve` exchanges an OIDC-shaped token from a
test issuer for a Warden token (RFC 8693), and a gateway whose `identity.providers` trusts the
service through `jwks.uri: http://127.0.0.1:<port>/.well-known/jwks.json` (Envoy's remote_jwks)
lets that token call Claude, while a token signed by a key the service never published is
refused with 401."""

from __future__ import annotations

import time

import jwt
import pytest

from conftest import Service, free_port, init_keys

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def token_service(tmp_path_factory, make_policy, issuer):
    """`warden serve` running only the token service, trusting the test issuer as `corp`."""
    tmp = tmp_path_factory.mktemp("token-service")
    keys = init_keys(tmp / "keys")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # One policy for the service and the gateway, as deployed: the gateway trusts only the service.
    policy = make_policy({
        "identity": {"providers": [{"name": "warden", "issuer": url, "audiences": ["warden"],
                                    "jwks": {"uri": f"{url}/.well-known/jwks.json"}}]},
        "token_service": {
            "issuer": url,
            "oidc": [{"name": "corp", "issuer": issuer.issuer, "audiences": ["warden-cli"],
                      "jwks": {"file": str(issuer.jwks_path)}, "algorithms": ["ES256"]}],
        },
    })
    service = Service(port, keys, tmp / "warden.db", policy, tmp / "serve.log",
                      extra_args=["--token-signing-key", str(keys / "tokens-signing-key.pem")])
    service.start()
    yield service
    service.stop()


def exchange(service: Service, subject_token: str) -> tuple[int, dict]:
    return service.post_form("/oauth/token", {"grant_type": TOKEN_EXCHANGE, "subject_token": subject_token,
                                              "subject_token_type": ID_TOKEN})


def test_an_exchanged_token_calls_claude_through_the_gateway_and_an_unknown_key_is_refused(
        token_service, gateway_factory, issuer, upstream):
    assert "running: token service;" in token_service.log()
    status, answer = exchange(token_service, issuer.mint(sub="alice", groups=["eng"], aud="warden-cli"))
    assert status == 200, answer
    warden_token = answer["access_token"]
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 600

    gw = gateway_factory(token_service.policy)
    headers = {"authorization": f"Bearer {warden_token}", "content-type": "application/json"}
    deadline = time.monotonic() + 15
    while True:  # Envoy fetches the JWKS asynchronously: the listener does not wait for it
        r = gw.request("POST", "/v1/messages", headers, MESSAGE)
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status == 200, r.text
    assert all(warden_token not in v for _, v in upstream.last()["headers"]), "the Warden token stays at the gateway"

    # Same issuer, audience and claims, but signed by a key the service never published.
    forged = issuer.mint(iss=token_service.url, sub="mallory", ttl=300, wrong_key=True,
                         kid=jwt.get_unverified_header(warden_token)["kid"])
    r = gw.request("POST", "/v1/messages", {"authorization": f"Bearer {forged}",
                                            "content-type": "application/json"}, MESSAGE)
    assert r.status == 401, r.text
    # And the exchange itself refuses a token from a key its sources do not hold.
    status, answer = exchange(token_service, issuer.mint(sub="alice", aud="warden-cli", wrong_key=True))
    assert (status, answer["error"]) == (400, "invalid_grant"), answer
