"""Workload identities and Claude Code's apiKeyHelper through the real Envoy: claim bindings give
GitHub-Actions- and Kubernetes-shaped tokens (which carry no groups) their role, each provider has
its own groups claim, and the same token may come in both Authorization and x-api-key — first with
Warden's own jwt_authn configuration, then with jwt_authn shaped the way Istio's
RequestAuthentication configures it (`render_envoy.py --jwt-shape istio`), under both of Istio's
metadata keys."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CLAUDE, WARDEN, Issuer, mint_with_warden_cli, refusal

GITHUB = "https://token.actions.githubusercontent.com"
KUBERNETES = "https://kubernetes.default.svc.cluster.local"
CORP = "https://login.corp.example/realms/eng"

HAIKU = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
SONNET = {**HAIKU, "model": "claude-sonnet-4-5"}
JSON = {"content-type": "application/json"}

# The claims the token service (and GitHub itself) puts in a workflow's token.
MAIN_BRANCH_JOB = {
    "repository": "org/app", "repository_owner": "org", "ref": "refs/heads/main", "ref_type": "branch",
    "workflow": "Claude review", "run_id": "4242", "run_attempt": "1", "environment": "prod",
    "actor": "octocat", "event_name": "push", "sha": "0" * 40,
}


def bearer(token: str) -> dict:
    return {**JSON, "authorization": f"Bearer {token}"}


def both_headers(token: str) -> dict:
    """What Claude Code sends with an apiKeyHelper: the helper's value in both headers."""
    return {**bearer(token), "x-api-key": token}


class CliIssuer:
    """An issuer whose tokens `warden token mint` signs (the key from `warden token init`)."""

    def __init__(self, directory: Path, issuer: str):
        out = subprocess.run([str(WARDEN), "token", "init", "--dir", str(directory)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        self.issuer = issuer
        self.jwks_path = directory / "jwks.json"
        self.key_path = directory / "signing-key.pem"

    def mint(self, sub: str, claims: dict[str, str], ttl: str = "10m") -> str:
        return mint_with_warden_cli(sub, issuer=self.issuer, key=self.key_path, ttl=ttl, claims=claims)


@pytest.fixture(scope="module")
def github(tmp_path_factory) -> CliIssuer:
    return CliIssuer(tmp_path_factory.mktemp("github"), GITHUB)


@pytest.fixture(scope="module")
def kubernetes(tmp_path_factory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("kubernetes"), issuer=KUBERNETES, kid="cluster-1")


@pytest.fixture(scope="module")
def corp(tmp_path_factory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("corp"), issuer=CORP, kid="corp-1")


def workload_policy(make_policy, issuer: Issuer, github: CliIssuer, kubernetes: Issuer, corp: Issuer,
                    **identity: str) -> Path:
    base = make_policy.base
    providers = [
        *base["identity"]["providers"],
        {"name": "github", "issuer": GITHUB, "audiences": ["warden"], "jwks": {"file": str(github.jwks_path)}},
        {"name": "cluster", "issuer": KUBERNETES, "audiences": ["warden"],
         "jwks": {"file": str(kubernetes.jwks_path)}},
        {"name": "corp", "issuer": CORP, "audiences": ["warden"], "jwks": {"file": str(corp.jwks_path)},
         "groups_claim": "realm_access.roles"},
    ]
    bindings = [
        *base["bindings"],
        {"issuer": GITHUB, "role": "analyst",
         "claims": {"repository": "org/app", "ref": ["refs/heads/main", "refs/tags/v*"], "environment": "prod"}},
        {"issuer": KUBERNETES, "role": "analyst",
         "claims": {"kubernetes.io.namespace": "agents", "kubernetes.io.serviceaccount.name": "review-*"}},
    ]
    return make_policy({
        "identity": {"providers": providers, **identity,
                     "job_claims": ["repository", "run_id", "kubernetes.io.namespace"]},
        "bindings": bindings,
    })


@pytest.fixture(scope="module")
def workloads(gateway_factory, make_policy, issuer, github, kubernetes, corp):
    return gateway_factory(workload_policy(make_policy, issuer, github, kubernetes, corp))


def role_of(gateway, headers: dict) -> str:
    """The role a request runs under, read from the refusal of a model only `developer` may use
    (or `developer` when it passes)."""
    r = gateway.request("POST", "/v1/messages", headers, SONNET)
    if r.status == 200:
        return "developer"
    message = r.json()["error"]["message"]
    assert "model_not_allowed" in message, message
    return message.rsplit("role ", 1)[1]


# ------------------------------------------------------------------------------------------
# claim bindings


def test_a_github_actions_token_gets_its_role_from_claims(workloads, upstream, github):
    token = github.mint("repo:org/app:environment:prod", MAIN_BRANCH_JOB)
    r = workloads.request("POST", "/v1/messages", bearer(token), HAIKU)
    assert r.status == 200, r.text
    assert role_of(workloads, bearer(token)) == "analyst"
    [seen, *_] = upstream.requests()
    assert token not in json.dumps(seen)


@pytest.mark.parametrize("change", [
    {"repository": "org/app-evil"},
    {"repository": "org-evil/app"},
    {"ref": "refs/heads/feature"},
    {"environment": "staging"},
])
def test_a_near_miss_of_the_bound_claims_gets_no_role(workloads, upstream, github, change):
    token = github.mint("repo:org/app-evil:ref:refs/heads/main", {**MAIN_BRANCH_JOB, **change})
    r = workloads.request("POST", "/v1/messages", bearer(token), HAIKU)
    assert refusal(r) == (403, "permission_error", "no_role_binding"), change
    assert upstream.requests() == []


def test_a_tag_matches_the_glob_of_a_list(workloads, github):
    token = github.mint("repo:org/app:ref:refs/tags/v1.2", {**MAIN_BRANCH_JOB, "ref": "refs/tags/v1.2"})
    assert workloads.request("POST", "/v1/messages", bearer(token), HAIKU).status == 200


def test_the_same_claims_from_another_issuer_grant_nothing(workloads, upstream, issuer):
    forged = issuer.mint(sub="mallory", groups=[], extra=MAIN_BRANCH_JOB)
    r = workloads.request("POST", "/v1/messages", bearer(forged), HAIKU)
    assert refusal(r) == (403, "permission_error", "no_role_binding")
    assert upstream.requests() == []


def test_a_kubernetes_service_account_is_bound_by_its_nested_claims(workloads, upstream, kubernetes):
    assert role_of(workloads, bearer(kubernetes.kubernetes_token())) == "analyst"
    for namespace, account in [("default", "review-bot"), ("agents", "builder")]:
        r = workloads.request("POST", "/v1/messages", bearer(kubernetes.kubernetes_token(namespace, account)), HAIKU)
        assert refusal(r) == (403, "permission_error", "no_role_binding"), (namespace, account)


def test_the_role_header_picks_only_a_role_the_claims_grant(workloads, github):
    token = github.mint("repo:org/app:environment:prod", MAIN_BRANCH_JOB)
    r = workloads.request("POST", "/v1/messages", {**bearer(token), "x-warden-role": "developer"}, HAIKU)
    assert refusal(r) == (403, "permission_error", "role_not_entitled")


def test_each_provider_reads_its_own_groups_claim(workloads, corp, issuer):
    keycloak_shaped = corp.mint(sub="kim", groups=None, extra={"realm_access": {"roles": ["eng"]}})
    assert role_of(workloads, bearer(keycloak_shaped)) == "developer"
    # The corp provider's groups are not read from `groups`, nor the test provider's from there.
    flat = corp.mint(sub="kim", groups=["eng"])
    assert refusal(workloads.request("POST", "/v1/messages", bearer(flat), HAIKU))[2] == "no_role_binding"
    nested_elsewhere = issuer.mint(sub="kim", groups=None, extra={"realm_access": {"roles": ["eng"]}})
    assert refusal(workloads.request("POST", "/v1/messages", bearer(nested_elsewhere), HAIKU))[2] == "no_role_binding"


# ------------------------------------------------------------------------------------------
# Claude Code's apiKeyHelper: the same token in both headers


def test_the_same_token_in_both_headers_is_accepted_and_neither_reaches_the_upstream(workloads, upstream, issuer):
    token = issuer.mint(groups=["eng"])
    r = workloads.request("POST", "/v1/messages", both_headers(token), HAIKU)
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    headers = [(k.lower(), v) for k, v in seen["headers"]]
    assert [v for k, v in headers if k == "x-api-key"] == [upstream.api_key]
    assert "authorization" not in dict(headers)
    assert token not in json.dumps(seen)


def test_two_different_valid_tokens_are_refused(workloads, upstream, issuer):
    alice, bob = issuer.mint(sub="alice", groups=["analysts"]), issuer.mint(sub="bob", groups=["eng"])
    r = workloads.request("POST", "/v1/messages", {**bearer(alice), "x-api-key": bob}, HAIKU)
    assert refusal(r) == (401, "authentication_error", "token_invalid")
    assert "two different credentials" in r.json()["error"]["message"]
    assert upstream.requests() == []


def test_a_client_key_beside_the_token_is_refused_with_the_hint(workloads, upstream, issuer):
    r = workloads.request("POST", "/v1/messages", {**bearer(issuer.mint()), "x-api-key": "sk-ant-api03-own"}, HAIKU)
    assert refusal(r)[:2] == (401, "authentication_error")
    assert "send the token in only one" in r.json()["error"]["message"]
    assert upstream.requests() == []


def test_an_expired_helper_token_is_401_without_x_should_retry(workloads, upstream, issuer):
    expired = issuer.mint(iat=int(time.time()) - 1200, ttl=600)
    r = workloads.request("POST", "/v1/messages", both_headers(expired), HAIKU)
    assert r.status == 401
    message = r.json()["error"]["message"]
    assert message.startswith("warden: token_expired:") and "`warden token`" in message and "`warden login`" in message
    assert r.header("x-should-retry") is None, "Claude Code must run its apiKeyHelper again and retry"
    # A fixed ANTHROPIC_AUTH_TOKEN would be retried unchanged: that refusal says not to.
    fixed = workloads.request("POST", "/v1/messages", bearer(expired), HAIKU)
    assert refusal(fixed) == (401, "authentication_error", "token_expired")
    assert upstream.requests() == []


# ------------------------------------------------------------------------------------------
# jwt_authn as Istio configures it


@pytest.fixture(scope="module", params=["payload", "{issuer}"], ids=["istio-1.21+", "istio-before-1.21"])
def istio(request, gateway_factory, make_policy, issuer, github, kubernetes, corp):
    policy = workload_policy(make_policy, issuer, github, kubernetes, corp, payload_metadata_key=request.param)
    gateway = gateway_factory(policy, extra_args=["--jwt-shape", "istio"])
    config = gateway.config_path.read_text()
    assert "origins-0" in config and "allow_missing:" in config and "jwt_failure" not in config
    assert "allow_missing_or_failed" not in config
    yield gateway
    gateway.stop()


def test_istio_shape_valid_tokens_get_their_roles(istio, upstream, issuer, github, kubernetes, corp):
    assert istio.request("POST", "/v1/messages", bearer(issuer.mint(groups=["eng"])), HAIKU).status == 200
    assert role_of(istio, bearer(issuer.mint(groups=["analysts"]))) == "analyst"
    assert role_of(istio, bearer(github.mint("repo:org/app:environment:prod", MAIN_BRANCH_JOB))) == "analyst"
    assert role_of(istio, bearer(kubernetes.kubernetes_token())) == "analyst"
    keycloak_shaped = corp.mint(sub="kim", groups=None, extra={"realm_access": {"roles": ["eng"]}})
    assert role_of(istio, bearer(keycloak_shaped)) == "developer"


def test_istio_shape_refuses_near_misses_and_missing_tokens(istio, upstream, github):
    evil = github.mint("repo:org/app-evil:ref:refs/heads/main", {**MAIN_BRANCH_JOB, "repository": "org/app-evil"})
    assert refusal(istio.request("POST", "/v1/messages", bearer(evil), HAIKU))[2] == "no_role_binding"
    # Istio lets a request without a token through jwt_authn; Warden refuses it.
    assert refusal(istio.request("POST", "/v1/messages", JSON, HAIKU)) == (401, "authentication_error", "token_missing")
    assert upstream.requests() == []


@pytest.mark.parametrize("case, mint_args", [
    ("expired", {"iat": int(time.time()) - 1200, "ttl": 600}),
    ("wrong signing key", {"wrong_key": True}),
])
def test_istio_shape_invalid_tokens_are_rejected_by_jwt_authn_with_401(istio, upstream, issuer, case, mint_args):
    token = issuer.mint(**mint_args)
    for headers in (bearer(token), both_headers(token)):
        r = istio.request("POST", "/v1/messages", headers, HAIKU)
        # Under Istio, jwt_authn answers an invalid token itself: a 401 in its words, without
        # x-should-retry (Claude Code runs its apiKeyHelper again), never forwarded.
        assert r.status == 401, (case, r.text)
        assert r.header("x-should-retry") is None
        assert "Jwt" in r.text, r.text
    assert upstream.requests() == []


def test_istio_shape_accepts_the_helper_token_in_both_headers(istio, upstream, issuer):
    token = issuer.mint(groups=["eng"])
    assert istio.request("POST", "/v1/messages", both_headers(token), HAIKU).status == 200
    [seen] = upstream.requests()
    assert token not in json.dumps(seen)


# ------------------------------------------------------------------------------------------
# the real Claude Code with an apiKeyHelper


def test_claude_code_runs_its_helper_again_after_an_expired_token(workloads, upstream, issuer, tmp_path):
    """The helper's first token has expired: the gateway's 401 carries no x-should-retry, so
    Claude Code runs the helper again and the turn succeeds with the fresh token."""
    (tmp_path / "expired.jwt").write_text(issuer.mint(sub="hana", iat=int(time.time()) - 1200, ttl=600))
    (tmp_path / "fresh.jwt").write_text(issuer.mint(sub="hana", groups=["eng"]))
    helper = tmp_path / "helper.sh"
    helper.write_text(f"""#!/bin/sh
cd {tmp_path}
echo x >> calls
if [ "$(wc -l < calls)" -eq 1 ]; then cat expired.jwt; else cat fresh.jwt; fi
""")
    helper.chmod(0o755)
    before = workloads.metric("warden_requests", role="none", decision="denied", reason="token_expired")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(HOME=str(tmp_path), ANTHROPIC_BASE_URL=workloads.url, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
               DISABLE_AUTOUPDATER="1", NO_PROXY="127.0.0.1", CI="true")
    done = subprocess.run([str(CLAUDE), "-p", "say hi", "--settings", json.dumps({"apiKeyHelper": str(helper)})],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert workloads.metric("warden_requests", role="none", decision="denied", reason="token_expired") > before
    assert len((tmp_path / "calls").read_text().split()) >= 2, "the helper must run again after the 401"
    seen = [r for r in upstream.requests() if r["path"].startswith("/v1/messages")]
    assert seen, "the retried request must reach Claude"
    for request in seen:
        assert [v for k, v in request["headers"] if k.lower() == "x-api-key"] == [upstream.api_key]
