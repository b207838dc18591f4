"""Identity through the real Envoy: jwt_authn verifies, Warden maps claims to a role, and no client
credential or identity header ever reaches the upstream."""

from __future__ import annotations

import base64
import json
import time

import pytest

from conftest import refusal

MESSAGE = {"model": "claude-sonnet-4-5", "max_tokens": 16,
           "messages": [{"role": "user", "content": "hi"}]}
HAIKU = {**MESSAGE, "model": "claude-haiku-4-5"}
JSON = {"content-type": "application/json"}


def bearer(token: str) -> dict:
    return {**JSON, "authorization": f"Bearer {token}"}


def test_valid_token_reaches_upstream_with_only_the_role_key(gateway, upstream, issuer):
    token = issuer.mint(groups=["eng"])
    r = gateway.request("POST", "/v1/messages", bearer(token), MESSAGE)
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    names = [name.lower() for name, _ in seen["headers"]]
    assert names.count("x-api-key") == 1
    assert dict((k.lower(), v) for k, v in seen["headers"])["x-api-key"] == upstream.api_key
    assert "authorization" not in names
    assert not [n for n in names if n.startswith("x-jwt-") or n.startswith("x-warden-")]
    assert token not in json.dumps(seen), "the client's token must never reach the upstream"


def test_missing_token_is_401_without_retry(gateway, upstream):
    r = gateway.request("POST", "/v1/messages", JSON, MESSAGE)
    assert refusal(r) == (401, "authentication_error", "token_missing")
    assert upstream.requests() == []


@pytest.mark.parametrize("case, mint_args", [
    ("wrong audience", {"aud": "someone-else"}),
    ("wrong signing key", {"wrong_key": True}),
    ("unknown issuer", {"iss": "https://evil.example"}),
    ("not yet valid", {"nbf": int(time.time()) + 3600}),
])
def test_tokens_failing_verification_are_401(gateway, upstream, issuer, case, mint_args):
    r = gateway.request("POST", "/v1/messages", bearer(issuer.mint(**mint_args)), MESSAGE)
    assert refusal(r) == (401, "authentication_error", "token_invalid"), case
    assert upstream.requests() == []


def test_expired_token_is_401_saying_how_to_get_a_fresh_one(gateway, upstream, issuer):
    r = gateway.request("POST", "/v1/messages",
                        bearer(issuer.mint(iat=int(time.time()) - 1200, ttl=600)), MESSAGE)
    assert refusal(r) == (401, "authentication_error", "token_expired")
    message = r.json()["error"]["message"]
    assert "expired" in message and "`warden token`" in message and "`warden login`" in message
    assert upstream.requests() == []


def test_garbage_token_is_401(gateway, upstream):
    r = gateway.request("POST", "/v1/messages", bearer("not-a-jwt"), MESSAGE)
    assert refusal(r)[:2] == (401, "authentication_error")
    assert upstream.requests() == []


def test_too_long_lived_token_is_refused(gateway, upstream, issuer):
    r = gateway.request("POST", "/v1/messages", bearer(issuer.mint(ttl=2 * 3600)), MESSAGE)
    assert refusal(r) == (401, "authentication_error", "token_lifetime_too_long")
    assert upstream.requests() == []


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_token_without_exp_or_iat_is_refused(gateway, upstream, issuer, claim):
    r = gateway.request("POST", "/v1/messages", bearer(issuer.mint(omit=[claim])), MESSAGE)
    assert refusal(r) == (401, "authentication_error", "token_lifetime_unknown")
    assert upstream.requests() == []


def test_token_without_subject_is_refused(gateway, issuer):
    r = gateway.request("POST", "/v1/messages", bearer(issuer.mint(sub=None)), MESSAGE)
    assert refusal(r) == (401, "authentication_error", "token_subject_missing")


@pytest.mark.parametrize("groups", [[], ["marketing"], None])
def test_group_less_caller_has_no_role(gateway, upstream, issuer, groups):
    r = gateway.request("POST", "/v1/messages", bearer(issuer.mint(groups=groups)), MESSAGE)
    assert refusal(r) == (403, "permission_error", "no_role_binding")
    assert upstream.requests() == []


def test_single_string_groups_claim_is_accepted(gateway, issuer):
    r = gateway.request("POST", "/v1/messages", bearer(issuer.mint(groups="eng")), MESSAGE)
    assert r.status == 200, r.text


def test_token_in_x_api_key_is_accepted_and_replaced(gateway, upstream, issuer):
    """Claude Code with ANTHROPIC_API_KEY sends the token as x-api-key."""
    token = issuer.mint(groups=["eng"])
    r = gateway.request("POST", "/v1/messages", {**JSON, "x-api-key": token}, MESSAGE)
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    keys = [v for k, v in seen["headers"] if k.lower() == "x-api-key"]
    assert keys == [upstream.api_key]


def test_first_binding_decides_and_role_header_selects(gateway, upstream, issuer):
    both = issuer.mint(groups=["analysts", "eng"])
    # Without the header the first binding in policy order (eng → developer) applies.
    assert gateway.request("POST", "/v1/messages", bearer(both), MESSAGE).status == 200
    # Asking for analyst narrows the caller to haiku.
    as_analyst = {**bearer(both), "x-warden-role": "analyst"}
    r = gateway.request("POST", "/v1/messages", as_analyst, MESSAGE)
    assert refusal(r) == (403, "permission_error", "model_not_allowed")
    assert gateway.request("POST", "/v1/messages", as_analyst, HAIKU).status == 200
    for _, headers in [(s["path"], s["headers"]) for s in upstream.requests()]:
        assert "x-warden-role" not in [k.lower() for k, _ in headers]


def test_role_header_cannot_grant_a_role_the_groups_do_not(gateway, upstream, issuer):
    headers = {**bearer(issuer.mint(groups=["analysts"])), "x-warden-role": "developer"}
    r = gateway.request("POST", "/v1/messages", headers, MESSAGE)
    assert refusal(r) == (403, "permission_error", "role_not_entitled")
    assert upstream.requests() == []


def test_spoofed_identity_headers_change_nothing(gateway, upstream, issuer):
    forged = base64.urlsafe_b64encode(json.dumps(
        {"iss": issuer.issuer, "sub": "root", "groups": ["eng"]}).encode()).decode().rstrip("=")
    headers = {**bearer(issuer.mint(sub="bob", groups=["analysts"])),
               "x-jwt-payload": forged, "x-jwt-claim-groups": "eng",
               "x-warden-subject": "root", "x-warden-groups": "eng"}
    r = gateway.request("POST", "/v1/messages", headers, MESSAGE)
    assert refusal(r) == (403, "permission_error", "model_not_allowed"), \
        "bob is an analyst whatever the forged headers say"
    assert gateway.request("POST", "/v1/messages", headers, HAIKU).status == 200
    [seen] = upstream.requests()
    names = [k.lower() for k, _ in seen["headers"]]
    assert not [n for n in names if n.startswith("x-jwt-") or n.startswith("x-warden-")], names


def test_forged_unsigned_token_is_refused(gateway, upstream, issuer):
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    now = int(time.time())
    payload = base64.urlsafe_b64encode(json.dumps(
        {"iss": issuer.issuer, "aud": "warden", "sub": "root", "groups": ["eng"],
         "iat": now, "exp": now + 600}).encode()).decode().rstrip("=")
    r = gateway.request("POST", "/v1/messages", bearer(f"{header}.{payload}."), MESSAGE)
    assert refusal(r)[:2] == (401, "authentication_error")
    assert upstream.requests() == []


def test_job_claims_are_attributed_in_the_debug_log(gateway_factory, issuer):
    """Allowed requests are logged at debug level (refusals at info), with the job claims."""
    gateway = gateway_factory(extra_args=["--", "--component-log-level", "wasm:debug"])
    token = issuer.mint(sub="repo:org/app:ref:refs/heads/main", groups=["eng"],
                        extra={"repository": "org/app", "run_id": "4242", "actor": "octocat"})
    r = gateway.request("POST", "/v1/messages", bearer(token), MESSAGE)
    assert r.status == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [l for l in gateway.log().splitlines() if 'repository="org/app"' in l]
        if lines:
            break
        time.sleep(0.1)
    assert lines, "the allowed-request log line must carry the job claims"
    assert 'run_id="4242"' in lines[-1] and 'actor="octocat"' in lines[-1]
    assert token not in gateway.log(), "tokens are never logged"


def test_verified_tokens_are_served_from_the_jwt_cache(gateway, issuer):
    """jwt_authn verifies a token's signature once per worker, then serves it from its cache."""
    hits = "http.warden.jwt_authn.jwt_cache_hit"
    before = int(gateway.stats(hits)[hits])
    token = issuer.mint(groups=["eng"])
    for _ in range(3):
        assert gateway.request("GET", "/v1/models", {"authorization": f"Bearer {token}"}).status == 200
    assert int(gateway.stats(hits)[hits]) - before == 2
