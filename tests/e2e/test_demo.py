"""`make demo` as a user runs it: scripts/demo.sh starts the gateway, the approval service and the
offline fake upstream, prints the client settings, accepts tokens from `warden token mint`, holds a
developer's Opus request until a lead approves it, and stops cleanly."""

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

from conftest import REPO, free_port, http_request

WARDEN = REPO / "target" / "release" / "warden"


def mint(sub: str, groups: str) -> str:
    out = subprocess.run([str(WARDEN), "token", "mint", "--sub", sub, "--groups", groups,
                          "--ttl", "15m"], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip()


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
                if r.read().strip() == b"LIVE":
                    return proc, port
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
    lead = {"authorization": f"Bearer {mint('bob', 'leads')}", "content-type": "application/json"}
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


def test_demo_records_each_exchange_in_the_audit_trail(demo):
    _, port, _ = demo
    prompt = f"audit me {os.getpid()}-{time.monotonic_ns()}"
    headers = {"content-type": "application/json", "authorization": f"Bearer {mint('alice', 'eng')}"}
    r = http_request(port, "POST", "/v1/messages", headers,
                     {"model": "claude-sonnet-4-6", "max_tokens": 16,
                      "messages": [{"role": "user", "content": prompt}]})
    assert r.status == 200, r.text
    deadline = time.monotonic() + 15
    found = False
    while not found and time.monotonic() < deadline:
        out = subprocess.run([str(WARDEN), "audit", "export", "--db", str(REPO / ".demo" / "approvals.db")],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        found = r.header("request-id") in out.stdout
        time.sleep(0.3)
    assert found, "the exchange's record reached the demo's audit store"


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


def test_demo_stops_with_everything_it_started(demo):
    """Runs after the other tests of the shared demo: it stops it."""
    proc, port, _ = demo
    stop_demo(proc)
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "the demo must stop Envoy, warden serve and the fake upstream"
    with pytest.raises(OSError):
        http_request(port, "GET", "/api/hello", timeout=2)


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
