"""`make demo` as a user runs it: scripts/demo.sh starts the gateway and the offline fake upstream,
prints the client settings, accepts tokens from `warden token mint`, and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import REPO, free_port, http_request

WARDEN = REPO / "target" / "release" / "warden"


def mint(sub: str, groups: str) -> str:
    out = subprocess.run([str(WARDEN), "token", "mint", "--sub", sub, "--groups", groups,
                          "--ttl", "15m"], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not WARDEN.is_file() or not (REPO / ".demo" / "jwks.json").is_file():
        pytest.fail("run `make build` first (warden binary and .demo keys)", pytrace=False)
    port, admin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "UPSTREAM_URL")}
    env.update(WARDEN_PORT=str(port), WARDEN_ADMIN_PORT=str(admin_port))
    log_path = tmp_path_factory.mktemp("demo") / "demo.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
                if r.read().strip() == b"LIVE":
                    break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail(f"demo not ready:\n{log_path.read_text()}")
    yield proc, port, log_path
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


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
                     {"model": "claude-opus-4-6", "max_tokens": 64,
                      "messages": [{"role": "user", "content": "Hello"}]})
    assert r.status == 200, r.text
    assert r.json()["content"][0]["text"].startswith("Hello from the fake Claude upstream.")


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
    proc, port, _ = demo
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "the demo must stop Envoy and the fake upstream"
    with pytest.raises(OSError):
        http_request(port, "GET", "/api/hello", timeout=2)
