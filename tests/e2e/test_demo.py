"""`make demo` as a user runs it: scripts/demo.sh starts the gateway, the approval service (with the
token service), the test identity provider and the offline fake upstream, prints the client
settings, accepts tokens from `warden token mint`, holds a developer's Opus request until a lead
approves it, and stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
import yaml

from conftest import REPO, free_port, http_request, mint_with_warden_cli

WARDEN = REPO / "target" / "release" / "warden"


BANNER_END = "Ctrl-C stops the gateway, the approval service and the test identity providers."


def mint(sub: str, groups: str, audience: str = "warden") -> str:
    """A token for the demo's issuer, as the banner tells users to mint it."""
    return mint_with_warden_cli(sub, groups.split(","), audience=audience)


def start_demo(log_path, **env_extra) -> tuple[subprocess.Popen, int]:
    """scripts/demo.sh on free ports, in its own session; returns once Envoy is LIVE."""
    if not WARDEN.is_file() or not (REPO / ".demo" / "jwks.json").is_file():
        pytest.fail("run `make build` first (warden binary and .demo keys)", pytrace=False)
    port, admin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "UPSTREAM_URL")}
    env.update(WARDEN_PORT=str(port), WARDEN_ADMIN_PORT=str(admin_port), **env_extra)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
                live = r.read().strip() == b"LIVE"
            # The demo's gateway fails closed until its first revocation list arrives (~1 s).
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats/prometheus", timeout=1) as r:
                refreshed = re.search(r'revocation_refreshes\{outcome="changed"\} [1-9]', r.read().decode())
            # The banner comes once Envoy is ready: it is the last thing the demo prints.
            if live and refreshed and BANNER_END in log_path.read_text():
                return proc, port
            time.sleep(0.2)
        except OSError:
            time.sleep(0.2)
    stop_demo(proc)
    pytest.fail(f"demo not ready:\n{log_path.read_text()}")


def stop_demo(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("demo") / "demo.log"
    proc, port = start_demo(log_path)
    yield proc, port, log_path
    stop_demo(proc)


def test_demo_prints_the_client_settings(demo):
    _, port, log_path = demo
    banner = log_path.read_text()
    assert f"export ANTHROPIC_BASE_URL=http://127.0.0.1:{port}" in banner
    assert "export ANTHROPIC_AUTH_TOKEN=$(target/release/warden token mint --sub alice --groups eng --ttl 15m)" in banner
    assert "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1" in banner
    assert not re.search(r"sk-fake-[0-9a-f]{8,}", banner), "the upstream key must not be printed"
    # Envoy's start-up log goes to .demo/envoy.log: the banner is the last thing on screen.
    assert [line for line in banner.splitlines() if line.strip()][-1].strip() == BANNER_END
    assert "][info][" not in banner and "Envoy's log: .demo/envoy.log" in banner
    assert "Mint a short-lived demo token (group eng -> role developer):" in banner
    assert "role developer: a request with models claude-*opus* waits for a member of leads (opus_model)." in banner
    assert "role analyst: budget analyst-daily per subject and day: requests 5, tokens 20000, cost 0.05." in banner


def test_minted_token_works_offline_against_the_fake(demo):
    _, port, _ = demo
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01",
               "authorization": f"Bearer {mint('alice', 'eng')}"}
    r = http_request(port, "POST", "/v1/messages", headers,
                     {"model": "claude-sonnet-4-6", "max_tokens": 64,
                      "messages": [{"role": "user", "content": "Hello"}]})
    assert r.status == 200, r.text
    assert r.json()["content"][0]["text"].startswith("Hello from the fake Claude upstream.")


def test_demo_holds_opus_for_a_lead_to_approve(demo):
    _, port, log_path = demo
    service = "http://127.0.0.1:8787"
    assert f"open {service}/reviews" in log_path.read_text()
    prompt = f"Hello Opus {os.getpid()}-{time.monotonic_ns()}"
    headers = {"content-type": "application/json",
               "authorization": f"Bearer {mint('alice', 'eng')}"}
    result: dict = {}
    held = threading.Thread(target=lambda: result.update(r=http_request(
        port, "POST", "/v1/messages", headers,
        {"model": "claude-opus-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": prompt}]}, timeout=150)))
    held.start()
    # An approver's token carries the approvers' audience (approvals.approver_audience).
    lead = {"authorization": f"Bearer {mint('bob', 'leads', 'warden-approvals')}", "content-type": "application/json"}
    review = None
    deadline = time.monotonic() + 20
    while review is None and time.monotonic() < deadline:
        req = urllib.request.Request(f"{service}/v1/reviews", headers=lead)
        with urllib.request.urlopen(req, timeout=5) as r:
            review = next((rv for rv in json.load(r)["reviews"] if prompt in rv["excerpt"]), None)
        time.sleep(0.1)
    assert review is not None, "the held request shows up as a review"
    assert review["reasons"] == ["opus_model"] and review["requester"]["subject"] == "alice"
    approve = urllib.request.Request(f"{service}/v1/reviews/{review['id']}/approve",
                                     data=b'{"comment": "demo"}', headers=lead, method="POST")
    with urllib.request.urlopen(approve, timeout=5) as r:
        assert r.status == 200
    held.join(30)
    assert not held.is_alive()
    assert result["r"].status == 200, result["r"].text


def test_demo_records_each_exchange_in_the_audit_trail(demo, tmp_path):
    _, port, _ = demo
    prompt = f"audit me {os.getpid()}-{time.monotonic_ns()}"
    headers = {"content-type": "application/json", "authorization": f"Bearer {mint('alice', 'eng')}"}
    r = http_request(port, "POST", "/v1/messages", headers,
                     {"model": "claude-sonnet-4-6", "max_tokens": 16,
                      "messages": [{"role": "user", "content": prompt}]})
    assert r.status == 200, r.text
    deadline = time.monotonic() + 15
    record_id = None
    while record_id is None and time.monotonic() < deadline:
        out = subprocess.run([str(WARDEN), "audit", "export", "--db", str(REPO / ".demo" / "approvals.db")],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        records = [json.loads(line["record"]) for line in map(json.loads, out.stdout.splitlines())
                   if line.get("type") == "record"]
        # The newest match: the fake upstream's request ids start over with each demo run.
        record_id = next((rec["id"] for rec in reversed(records)
                          if rec.get("upstream_request_id") == r.header("request-id")), None)
        time.sleep(0.3)
    assert record_id, "the exchange's record reached the demo's audit store"
    # Envoy flushes its access-log file about once a second.
    access_log = REPO / ".demo" / "envoy-access.log"
    while f"audit_record={record_id} " not in access_log.read_text() and time.monotonic() < deadline + 5:
        time.sleep(0.3)
    lines = [line for line in access_log.read_text().splitlines() if f"audit_record={record_id} " in line]
    assert lines and "audit_hash=" in lines[0], "Envoy logs the record with its hash"
    # This exchange's line (the demo's files also hold earlier runs).
    ours = tmp_path / "access.log"
    ours.write_text(lines[0] + "\n")
    verified = subprocess.run([str(WARDEN), "audit", "verify", "--db", str(REPO / ".demo" / "approvals.db"),
                               "--access-log", str(ours)], capture_output=True, text=True, timeout=60)
    assert "1 access-log entries checked" in verified.stdout, verified.stdout + verified.stderr
    assert f"record {record_id}" not in verified.stdout, "the stored record is the one the gateway sent"


def test_demo_analyst_is_limited_to_haiku(demo):
    _, port, _ = demo
    headers = {"content-type": "application/json",
               "authorization": f"Bearer {mint('ann', 'analysts')}"}
    body = {"model": "claude-opus-4-6", "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hello"}]}
    r = http_request(port, "POST", "/v1/messages", headers, body)
    assert r.status == 403
    assert r.json()["error"]["message"].startswith("warden: model_not_allowed:")
    r = http_request(port, "POST", "/v1/messages", headers, {**body, "model": "claude-haiku-4-5"})
    assert r.status == 200
    r = http_request(port, "POST", "/v1/messages", headers,
                     {**body, "model": "claude-haiku-4-5", "max_tokens": 2048})
    assert r.json()["error"]["message"].startswith("warden: max_tokens_exceeded:")


def test_demo_analyst_meets_the_daily_budget_with_a_429(demo):
    _, port, log = demo
    headers = {"content-type": "application/json", "authorization": f"Bearer {mint('ada', 'analysts')}"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 256, "messages": [{"role": "user", "content": "Hi"}]}
    for _ in range(5):
        r = http_request(port, "POST", "/v1/messages", headers, body)
        assert r.status == 200, r.text
    r = http_request(port, "POST", "/v1/messages", headers, body)
    assert r.status == 429, r.text
    assert r.json()["error"]["type"] == "rate_limit_error"
    message = r.json()["error"]["message"]
    assert message.startswith('warden: budget_exhausted: budget "analyst-daily" (subject ada)'), message
    assert re.search(r"resets at \d{4}-\d\d-\d\dT00:00:00Z", message), message
    assert 1 <= int(r.header("retry-after")) <= 86400
    # The banner shows how to meet it.
    assert "analyst-daily" in log.read_text()


def test_demo_signs_in_with_its_saml_idp_simulator(demo):
    """The demo's SAML IdP (TEST ONLY) answers the service's AuthnRequest; the service verifies
    the signed response and hands the sign-in on (no browser sign-in of that id exists: the
    completion says so)."""
    from test_saml import acs, sign_in_at_the_idp
    service = "http://127.0.0.1:8787"
    auto_post = sign_in_at_the_idp(service, "demo-login", "alice@example.com", "eng", provider="demo-saml")
    assert auto_post["action"] == f"{service}/saml/demo-saml/acs"
    status, text = acs(service, auto_post["fields"], provider="demo-saml")
    assert status == 400 and "this sign-in is unknown" in text, text


def test_demo_runs_the_token_service_with_the_test_identity_provider(demo):
    service, idp = "http://127.0.0.1:8787", "http://127.0.0.1:8788"
    with urllib.request.urlopen(f"{service}/.well-known/openid-configuration", timeout=10) as r:
        discovery = json.load(r)
    assert discovery["authorization_endpoint"] == f"{service}/oauth/authorize"
    assert discovery["device_authorization_endpoint"] == f"{service}/oauth/device_authorization"
    with urllib.request.urlopen(f"{idp}/.well-known/openid-configuration", timeout=10) as r:
        assert json.load(r)["issuer"] == idp
    with urllib.request.urlopen(f"{service}/login", timeout=10) as r:
        assert 'id="sign-in-test-idp"' in r.read().decode(), "the console offers the test provider"


def test_demo_stops_with_everything_it_started_and_loses_no_record(demo):
    """Runs after the other tests of the shared demo: it stops it right after a request."""
    proc, port, _ = demo
    headers = {"content-type": "application/json", "authorization": f"Bearer {mint('alice', 'eng')}"}
    r = http_request(port, "POST", "/v1/messages", headers,
                     {"model": "claude-sonnet-4-6", "max_tokens": 16,
                      "messages": [{"role": "user", "content": "the last words"}]})
    assert r.status == 200, r.text
    stop_demo(proc)
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "the demo must stop the fake upstream"
    for pattern, name in ((f"envoy-{port}.yaml", "Envoy"), ("serve --policy .* --db .demo/approvals.db", "warden serve"),
                          ("scripts/test_idp.py --port", "the test identity provider")):
        left = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        assert left.stdout.strip() == "", f"the demo must stop {name} (it runs in a session of its own)"
    with pytest.raises(OSError):
        http_request(port, "GET", "/api/hello", timeout=2)
    # The last exchange's record, named in the access log Envoy flushed on exit, was delivered.
    last = [line for line in (REPO / ".demo" / "envoy-access.log").read_text().splitlines()
            if "audit_record=" in line][-1]
    record_id = re.search(r"audit_record=(\S+)", last).group(1)
    out = subprocess.run([str(WARDEN), "audit", "export", "--db", str(REPO / ".demo" / "approvals.db")],
                         capture_output=True, text=True, timeout=30)
    assert f'"id":"{record_id}"' in out.stdout.replace("\\", ""), f"{record_id} was lost at shutdown"


def test_demo_with_an_api_key_proxies_to_the_configured_upstream(fake_upstream, tmp_path):
    """ANTHROPIC_API_KEY set: no local fake; requests go to UPSTREAM_URL with that key."""
    fake_upstream.clear()
    proc, port = start_demo(tmp_path / "demo.log", ANTHROPIC_API_KEY=fake_upstream.api_key,
                            UPSTREAM_URL=fake_upstream.url)
    try:
        assert fake_upstream.url in (tmp_path / "demo.log").read_text()
        headers = {"content-type": "application/json",
                   "authorization": f"Bearer {mint('alice', 'eng')}"}
        r = http_request(port, "POST", "/v1/messages", headers,
                         {"model": "claude-sonnet-4-6", "max_tokens": 16,
                          "messages": [{"role": "user", "content": "via the real path"}]})
        assert r.status == 200, r.text
        [seen] = fake_upstream.requests()
        assert [v for k, v in seen["headers"] if k.lower() == "x-api-key"] == [fake_upstream.api_key]
        assert fake_upstream.api_key not in (tmp_path / "demo.log").read_text()
    finally:
        stop_demo(proc)


def test_the_banner_follows_the_policy_the_demo_runs(tmp_path):
    """WARDEN_POLICY names another policy: the banner's tokens, approvals and budgets are that
    policy's, not the demo policy's."""
    policy = yaml.safe_load((REPO / "envoy" / "policy.yaml").read_text())
    policy["identity"]["providers"][0]["jwks"]["file"] = str(REPO / ".demo" / "jwks.json")
    policy["bindings"] = [{"group": "platform", "role": "developer"}, {"group": "leads", "role": "developer"}]
    policy["roles"]["developer"]["approval"]["triggers"] = [{"reason": "sonnet_model", "models": ["claude-sonnet-*"]}]
    del policy["roles"]["analyst"]["budgets"]
    chosen = tmp_path / "platform.yaml"
    chosen.write_text(yaml.safe_dump(policy, sort_keys=False))
    proc, port = start_demo(tmp_path / "demo.log", WARDEN_POLICY=str(chosen))
    try:
        banner = (tmp_path / "demo.log").read_text()
        assert "Mint a short-lived demo token (group platform -> role developer):" in banner
        assert "token mint --sub alice --groups platform --ttl 15m" in banner
        assert "--groups eng" not in banner.split("Sign-in")[0], "no token of the demo policy's groups"
        assert "(sonnet_model)" in banner and "opus_model" not in banner
        assert "This policy sets no budget." in banner and "analyst-daily" not in banner
        # The token the banner shows works with that policy.
        headers = {"content-type": "application/json", "authorization": f"Bearer {mint('alice', 'platform')}"}
        r = http_request(port, "POST", "/v1/messages", headers,
                         {"model": "claude-haiku-4-5", "max_tokens": 16,
                          "messages": [{"role": "user", "content": "hello"}]})
        assert r.status == 200, r.text
    finally:
        stop_demo(proc)
