"""The audit trail end to end: the real Envoy sends every exchange to the real `warden serve`, the
stored chain verifies, a multi-turn agent session with a tool call replays turn by turn as the
client received it, and a service stopped in the middle of traffic loses nothing."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, WARDEN, Service, free_port, init_keys

BROWSER = REPO / "tests" / "e2e" / "browser"

SESSION = "sess-trail-0001"


def warden(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WARDEN), *args], capture_output=True, text=True, timeout=60)


def export(db: Path) -> list[dict]:
    out = warden("audit", "export", "--db", str(db))
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def stored_records(db: Path) -> list[dict]:
    return [json.loads(line["record"]) for line in export(db) if line.get("type") == "record"]


def wait_for_records(db: Path, predicate, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = stored_records(db)
        if predicate(records):
            return records
        time.sleep(0.2)
    pytest.fail(f"the records did not arrive: {len(stored_records(db))} stored")


@pytest.fixture(scope="module")
def trail(tmp_path_factory, gateway_factory, make_policy):
    tmp = tmp_path_factory.mktemp("trail")
    keys = init_keys(tmp / "keys")
    port = free_port()
    changes = {
        "credentials": {"approvals-token": {"env": "WARDEN_APPROVALS_TOKEN"},
                        "approvals-verdict-key": {"env": "WARDEN_APPROVALS_VERDICT_KEY"}},
        "bindings": [{"group": "eng", "role": "developer"}, {"group": "leads", "role": "developer"}],
        "approvals": {"service": {"url": f"http://127.0.0.1:{port}", "token": "approvals-token",
                                  "verdict_key": "approvals-verdict-key"}},
        "audit": {"max_outage": "120s"},
        "roles": {"developer": {"approval": {"approvers": ["leads"], "triggers": [
            {"reason": "opus_model", "models": ["claude-opus-*"]}]}}},
    }
    policy = make_policy(changes)
    service = Service(port, keys, tmp / "warden.db", policy, tmp / "serve.log")
    service.start()
    gateway = gateway_factory(policy, concurrency=2, extra_args=[
        "--credential-file", f"WARDEN_APPROVALS_TOKEN={keys / 'approvals-token'}",
        "--credential-file", f"WARDEN_APPROVALS_VERDICT_KEY={keys / 'approvals-verdict-key.pub'}",
    ])
    yield service, gateway, keys
    service.stop()


def messages_call(gateway, token: str, messages: list[dict], tools: list[dict] | None = None) -> Any:
    body: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": messages}
    if tools:
        body["tools"] = tools
    r = gateway.request("POST", "/v1/messages",
                        {"authorization": f"Bearer {token}", "content-type": "application/json",
                         "anthropic-version": "2023-06-01", "x-claude-code-session-id": SESSION},
                        body)
    assert r.status == 200, r.text
    return r.json()


def test_an_agent_session_replays_turn_by_turn_as_the_client_received_it(trail, token, script):
    service, gateway, keys = trail
    tools = [{"name": "Bash", "description": "run a command",
              "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]
    history: list[dict] = [{"role": "user", "content": "What is in the build directory?"}]
    script("", tool={"name": "Bash", "input": {"command": "ls build"}})
    first = messages_call(gateway, token, history, tools)
    [tool_use] = [b for b in first["content"] if b["type"] == "tool_use"]
    history.append({"role": "assistant", "content": first["content"]})
    history.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "app.bin\nREADME.md"}]})
    script("The build directory holds app.bin and a README.")
    second = messages_call(gateway, token, history, tools)
    history.append({"role": "assistant", "content": second["content"]})
    history.append({"role": "user", "content": "Thanks, delete nothing."})
    script("Understood.")
    messages_call(gateway, token, history, tools)

    records = wait_for_records(service.db, lambda rs: sum(r.get("session_id") == SESSION for r in rs) >= 3)
    # Two workers deliver independently: storage order is not request order.
    mine = sorted((r for r in records if r.get("session_id") == SESSION), key=lambda r: r["timings"]["start"])
    assert mine[0]["response"]["content"][0]["input"] == {"command": "ls build"}
    assert [r["response"]["content"] for r in mine][1:] == [
        [{"type": "text", "text": "The build directory holds app.bin and a README."}],
        [{"type": "text", "text": "Understood."}],
    ]
    out = warden("audit", "replay", "--db", str(service.db), "--session", SESSION)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for once in ("What is in the build directory?", "ls build", "app.bin", "Thanks, delete nothing.",
                 "The build directory holds app.bin and a README.", "Understood."):
        assert text.count(once) >= 1, f"{once!r} missing from the replay:\n{text}"
    assert text.count("What is in the build directory?") == 1, "each turn once, not the history N times"
    assert text.count("Thanks, delete nothing.") == 1
    pub = (keys / "approvals-verdict-key.pub").read_text().strip()
    verified = warden("audit", "verify", "--db", str(service.db), "--public-key", pub)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_an_investigator_reads_the_session_in_the_browser(trail, issuer, tmp_path):
    """Runs after the agent session above: its transcript is on the session page."""
    service, _, _ = trail
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        assert Path(tool).exists(), f"{tool} is missing: run `make build` (scripts/bootstrap.sh installs it)"
    lead = issuer.mint(sub="bob", groups=["leads"])
    screenshot = tmp_path / "session-page.png"
    browser = subprocess.run(["node", str(BROWSER / "session.mjs"), service.url, SESSION, str(screenshot)],
                             input=lead, capture_output=True, text=True, timeout=60, cwd=BROWSER)
    outcome = json.loads(browser.stdout.strip().splitlines()[-1]) if browser.stdout.strip() else {}
    assert outcome.get("ok"), browser.stdout + browser.stderr
    assert "alice" in outcome["rowText"]
    transcript = outcome["transcript"]
    for line in ("What is in the build directory?", "ls build", "app.bin",
                 "The build directory holds app.bin and a README.", "Understood."):
        assert line in transcript, f"{line!r} missing from the page:\n{transcript}"
    assert transcript.count("What is in the build directory?") == 1
    assert outcome["turns"] >= 3


def test_stopping_the_service_mid_traffic_loses_no_record(trail, token):
    service, gateway, keys = trail
    sent: list[str] = []

    def burst(n: int, prefix: str) -> None:
        for i in range(n):
            r = gateway.request("POST", "/v1/messages",
                                {"authorization": f"Bearer {token}", "content-type": "application/json",
                                 "anthropic-version": "2023-06-01"},
                                {"model": "claude-sonnet-4-6", "max_tokens": 16,
                                 "messages": [{"role": "user", "content": f"{prefix} {i}"}]})
            assert r.status == 200, r.text
            sent.append(r.header("request-id"))

    burst(20, "before the stop")
    service.stop()
    burst(30, "while stopped")
    service.start()
    burst(20, "after the restart")
    records = wait_for_records(service.db, lambda rs: {r.get("upstream_request_id") for r in rs} >= set(sent))
    by_source: dict[str, list[int]] = {}
    for record in records:
        by_source.setdefault(record["source"], []).append(record["seq"])
    for source, seqs in by_source.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"{source}: a gap in {sorted(seqs)}"
    pub = (keys / "approvals-verdict-key.pub").read_text().strip()
    verified = warden("audit", "verify", "--db", str(service.db), "--public-key", pub)
    assert verified.returncode == 0, verified.stdout + verified.stderr
