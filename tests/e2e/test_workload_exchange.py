"""Workload identities end to end: a GitHub-Actions-shaped and a Kubernetes-shaped token from
test issuers are exchanged at the token service (RFC 8693) for Warden tokens carrying their job
claims; through the real Envoy, a claim binding gives the job its role, the job's claims are
attributed to its requests, and a near-miss repository or namespace gets no role."""

from __future__ import annotations

import time

import pytest

from conftest import Service, free_port, init_keys
from test_token_service import MESSAGE, exchange

REPOSITORY = "corp-example/app"


@pytest.fixture(scope="module")
def workloads(tmp_path_factory, make_policy, issuer):
    """A token service trusting the test issuer as a GitHub Actions and (under another issuer
    name) a Kubernetes workload source, and a policy binding both by claims."""
    tmp = tmp_path_factory.mktemp("workloads")
    keys = init_keys(tmp / "keys")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cluster = "https://kubernetes.default.svc.test"
    jwks = {"file": str(issuer.jwks_path)}
    policy = make_policy({
        "identity": {"providers": [{"name": "warden", "issuer": url, "audiences": ["warden"],
                                    "jwks": {"uri": f"{url}/.well-known/jwks.json"}}]},
        "bindings": [
            {"claims": {"repository": REPOSITORY, "ref": "refs/heads/main"}, "issuer": url, "role": "developer"},
            {"claims": {"namespace": "agents", "service_account": "reviewer"}, "issuer": url, "role": "developer"},
        ],
        "token_service": {
            "issuer": url,
            "workloads": [
                {"name": "github", "kind": "github_actions", "issuer": issuer.issuer,
                 "audiences": ["warden-ci"], "jwks": jwks, "algorithms": ["ES256"]},
                {"name": "cluster", "kind": "kubernetes", "issuer": cluster,
                 "audiences": ["warden-ci"], "jwks": jwks, "algorithms": ["ES256"]},
            ],
        },
    })
    service = Service(port, keys, tmp / "warden.db", policy, tmp / "serve.log",
                      extra_args=["--token-signing-key", str(keys / "tokens-signing-key.pem")])
    service.start()
    yield service, cluster
    service.stop()


def call(gateway, token: str, deadline_s: float = 15):
    """POST /v1/messages with `token`, waiting out Envoy's first JWKS fetch."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    deadline = time.monotonic() + deadline_s
    while True:
        r = gateway.request("POST", "/v1/messages", headers, MESSAGE)
        if r.status != 401 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_workload_tokens_are_exchanged_bound_by_claims_and_attributed(workloads, gateway_factory, issuer):
    service, cluster = workloads
    gateway = gateway_factory(service.policy, extra_args=["--", "--component-log-level", "wasm:debug"])

    status, answer = exchange(service, issuer.github_actions_token(REPOSITORY, aud="warden-ci"))
    assert status == 200, answer
    r = call(gateway, answer["access_token"])
    assert r.status == 200, r.text
    deadline = time.monotonic() + 5
    lines: list[str] = []
    while not lines and time.monotonic() < deadline:
        lines = [l for l in gateway.log().splitlines() if f'repository="{REPOSITORY}"' in l]
        time.sleep(0.1)
    assert lines, "the job's claims are attributed to its request"
    assert 'run_id="4242"' in lines[-1] and 'workflow="Claude review"' in lines[-1]

    # A repository whose name merely starts like the bound one gets a token, but no role.
    status, answer = exchange(service, issuer.github_actions_token(REPOSITORY + "-evil", aud="warden-ci"))
    assert status == 200, answer
    r = call(gateway, answer["access_token"])
    assert r.status == 403 and "no_role_binding" in r.text, r.text

    status, answer = exchange(service, issuer.kubernetes_token("agents", "reviewer", aud="warden-ci", iss=cluster))
    assert status == 200, answer
    r = call(gateway, answer["access_token"])
    assert r.status == 200, r.text
    status, answer = exchange(service, issuer.kubernetes_token("agents-sandbox", "reviewer", aud="warden-ci", iss=cluster))
    assert status == 200, answer
    r = call(gateway, answer["access_token"])
    assert r.status == 403 and "no_role_binding" in r.text, r.text
