"""Approvals of tool calls and session grants, through the real Envoy and the real `warden serve`:
an approver approves "for this session for N minutes" (API and web page in a real browser), the
next turns of that Claude Code session by the same caller for the same reasons pass without a
human, while another caller sending the same session id, another session or another reason is
still held, and an ended grant stops covering at once; the audit records and the replay name the
grant. A tool-call hold (as the filter sends it) is shown with its tool, rule, agent and full
input, escaped, and a session grant for its rule answers the next such call at once."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, Service, free_port, init_keys, refusal
from test_approvals import OPUS, approvals_policy, approver, gateway_with, unique
from test_audit_trail import wait_for_records, warden

BROWSER = REPO / "tests" / "e2e" / "browser"
HOLD_SECONDS = 3
FP_A = "a" * 64
FP_B = "b" * 64


@dataclass
class Setup:
    service: Service
    gateway: Any
    keys: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory, gateway_factory, make_policy):
    tmp = tmp_path_factory.mktemp("tool-approvals")
    keys = init_keys(tmp / "keys")
    port = free_port()
    policy = approvals_policy(make_policy, f"http://127.0.0.1:{port}", hold=HOLD_SECONDS,
                              max_session_grant="2h")
    # The audit trail too (to the same service), so the records of covered turns can be read.
    with_audit = yaml.safe_load(policy.read_text()) | {"audit": {"max_outage": "120s"}}
    policy = make_policy(text=yaml.safe_dump(with_audit, sort_keys=False))
    service = Service(port, keys, tmp / "approvals.db", policy, tmp / "serve.log")
    service.start()
    gateway = gateway_with(gateway_factory, policy, keys)
    yield Setup(service, gateway, keys)
    service.stop()


@pytest.fixture
def lead(issuer) -> str:
    return approver(issuer, "bob", ["leads"])


def turn(gateway, token: str, session: str | None, prompt: str, timeout: float = 60.0):
    """One Claude Code turn: an Opus request (held by `opus_model`) naming `session`."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
               "anthropic-version": "2023-06-01"}
    if session is not None:
        headers["x-claude-code-session-id"] = session
    body = {"model": OPUS, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
    return gateway.request("POST", "/v1/messages", headers, body, timeout=timeout)


def approved_for_session(setup: Setup, lead: str, token: str, session: str) -> dict:
    """Sends a turn in `session` (refused as pending after the hold), approves it for the session
    (30 minutes) and sends it again; returns the review as the API shows it after the decision."""
    prompt = unique("push the release branch")
    still_held(setup, token, session, prompt)
    review = setup.service.wait_for_review(lead, prompt)
    assert review["session_id"] == session
    status, body = setup.service.api("POST", f"/v1/reviews/{review['id']}/approve", lead,
                                     {"comment": "agent loop", "session_minutes": 30})
    assert status == 200, body
    assert body["outcome"] == "approved"
    retry = turn(setup.gateway, token, session, prompt)
    assert retry.status == 200, retry.text
    return body["review"]


def still_held(setup: Setup, token: str, session: str | None, prompt: str) -> None:
    assert refusal(turn(setup.gateway, token, session, prompt))[2] == "approval_pending"


def session_id() -> str:
    return f"sess-{secrets.token_hex(8)}"


def test_a_session_grant_covers_the_next_turns_of_the_session_and_nothing_else(setup, issuer, token,
                                                                                 lead, upstream):
    session = session_id()
    review = approved_for_session(setup, lead, token, session)
    grant = review["session_grant"]
    assert grant["live"] and grant["session_id"] == session and grant["reasons"] == ["opus_model"]
    assert grant["granted_by"] == "bob" and grant["caller"]["subject"] == "alice"

    # The next turns of the session: no human, no review.
    for _ in range(2):
        prompt = unique("and now the tag")
        r = turn(setup.gateway, token, session, prompt)
        assert r.status == 200, r.text
        assert prompt in json.dumps(upstream.last()), "the covered turn reached Claude"
        assert not any(prompt in rv["excerpt"] for rv in setup.service.pending(lead))

    # Another caller who sends the same session id is not covered; nor another session, a turn
    # without a session, or a turn held for a reason outside the grant.
    carol = issuer.mint(sub="carol", groups=["eng"])
    still_held(setup, carol, session, unique("spoofed session"))
    still_held(setup, token, session_id(), unique("another session"))
    still_held(setup, token, None, unique("no session"))
    still_held(setup, token, session, unique("deploy to production"))

    status, body = setup.service.api("GET", "/v1/grants", lead)
    assert status == 200, body
    listed = [g for g in body["grants"] if g["id"] == grant["id"]]
    assert listed and listed[0]["holds_covered"] == 3, listed  # the approved turn and two more

    # The records of the covered turns name the grant; the replay says so.
    def covered(records: list[dict]) -> list[dict]:
        return [r for r in records if r.get("session_id") == session
                and (r.get("approval") or {}).get("grant", {}).get("id") == grant["id"]]
    records = covered(wait_for_records(setup.service.db, lambda rs: len(covered(rs)) >= 3))
    assert all(r["approval"]["decision"] == "approved" and r["approval"]["reviewer"] == "bob" for r in records)
    assert records[0]["approval"]["grant"]["session_id"] == session
    replay = warden("audit", "replay", "--db", str(setup.service.db), "--session", session)
    assert replay.returncode == 0, replay.stderr
    assert f"approved by bob (review {review['id']}), by grant {grant['id']} (for session {session}" in replay.stdout

    # Ending is immediate; ending twice is a conflict.
    status, body = setup.service.api("POST", f"/v1/grants/{grant['id']}/end", lead)
    assert status == 200 and body["grant"]["ended_by"] == "bob", body
    still_held(setup, token, session, unique("after the end"))
    status, body = setup.service.api("POST", f"/v1/grants/{grant['id']}/end", lead)
    assert status == 409, body
    status, body = setup.service.api("GET", "/v1/grants", lead)
    assert grant["id"] not in [g["id"] for g in body["grants"]]


def test_a_session_grant_needs_a_session_and_a_length_within_the_policy(setup, token, lead):
    prompt = unique("no session here")
    still_held(setup, token, None, prompt)
    review = setup.service.wait_for_review(lead, prompt)
    status, body = setup.service.api("POST", f"/v1/reviews/{review['id']}/approve", lead,
                                     {"session_minutes": 30})
    assert status == 409 and "names no agent session" in body["error"]["message"], body

    session = session_id()
    prompt = unique("too long a grant")
    still_held(setup, token, session, prompt)
    review = setup.service.wait_for_review(lead, prompt)
    for minutes in (0, 121, -1):
        status, body = setup.service.api("POST", f"/v1/reviews/{review['id']}/approve", lead,
                                         {"session_minutes": minutes})
        assert status == 400 and "between 1 and 120" in body["error"]["message"], body
    status, body = setup.service.api("POST", f"/v1/reviews/{review['id']}/deny", lead,
                                     {"comment": "no", "session_minutes": 5})
    assert status == 400, body
    assert setup.service.wait_for_review(lead, prompt)["status"] == "pending", "nothing was decided"


# ------------------------------------------------------------------------------------------
# tool-call holds, as the filter sends them


def post_hold(setup: Setup, hold: dict) -> tuple[int, dict]:
    """Sends `hold` as the gateway does (its bearer token)."""
    return setup.service.api("POST", "/v1/holds", (setup.keys / "approvals-token").read_text().strip(), hold)


def claims(verdict: str) -> dict:
    payload = verdict.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


HOSTILE_COMMAND = 'git push --force origin main # <img id="injected" src=x onerror="alert(1)">'


def tool_hold(session: str, fingerprint: str, command: str = HOSTILE_COMMAND) -> dict:
    return {
        "version": 1, "request_id": f"req_{secrets.token_hex(4)}", "fingerprint": fingerprint,
        "caller": {"subject": "alice", "issuer": "warden-e2e", "groups": ["eng"]},
        "role": "developer", "reasons": [], "model": OPUS, "hold_seconds": 0,
        "excerpt": unique("ship it"), "session_id": session,
        "agent": {"id": "agent-b", "parent": "agent-a"},
        "tool_call": {"id": "toolu_01", "kind": "tool_use", "name": "Bash",
                      "input": json.dumps({"command": command, "description": "push"}),
                      "rule": "git-push-force", "reason": "force pushes rewrite history"},
    }


def test_a_tool_call_is_shown_escaped_and_a_session_grant_answers_the_next_call(setup, lead, tmp_path):
    session = session_id()
    status, body = post_hold(setup, tool_hold(session, FP_A))
    assert status == 200, body
    first = claims(body["verdict"])
    assert first["decision"] == "pending"
    review_id = first["review"]

    outcome = browser("look", setup.service.url, review_id, "-", tmp_path / "tool-call.png", lead)
    text = outcome["cardText"]
    for shown in ("Bash", "tool_use", "git-push-force", "force pushes rewrite history", "agent-b",
                  "agent-a", session, json.dumps(HOSTILE_COMMAND)):
        assert shown in text, (shown, text)
    assert outcome["toolInput"].startswith("{\n"), "the input is pretty JSON"
    assert outcome["toolInputChildren"] == 0 and outcome["injected"] == 0, "the input is text, not HTML"
    assert outcome["sessionButtonEnabled"], outcome

    status, body = setup.service.api("POST", f"/v1/reviews/{review_id}/approve", lead,
                                     {"session_minutes": 10})
    assert status == 200, body
    grant = body["review"]["session_grant"]
    assert grant["reasons"] == ["git-push-force"], "a tool call's reason is its rule id"

    # The agent's next force push in the session: answered at once, for its own fingerprint.
    status, body = post_hold(setup, tool_hold(session, FP_B, "git push --force origin next"))
    assert status == 200, body
    second = claims(body["verdict"])
    assert second["decision"] == "approved" and second["fp"] == FP_B
    assert second["review"] == review_id and second["reviewer"] == "bob"
    assert second["grant"]["id"] == grant["id"] and second["grant"]["session_id"] == session
    # Garbage session ids are refused.
    status, body = post_hold(setup, tool_hold("two words", FP_B))
    assert status == 400 and "session_id" in body["error"]["message"], body


# ------------------------------------------------------------------------------------------
# the page in a real browser


def browser(mode: str, base: str, target: str, minutes: str, screenshot: Path, token: str) -> dict:
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        assert Path(tool).exists(), f"{tool} is missing: run `make build` (scripts/bootstrap.sh installs it)"
    assert (BROWSER / "node_modules" / "selenium-webdriver").is_dir(), "run `make build` (npm ci in tests/e2e/browser)"
    run = subprocess.run(["node", str(BROWSER / "session_grant.mjs"), mode, base, target, minutes,
                          str(screenshot)], input=token, capture_output=True, text=True, timeout=60,
                         cwd=BROWSER)
    outcome = json.loads(run.stdout.strip().splitlines()[-1]) if run.stdout.strip() else {}
    assert outcome.get("ok"), run.stdout + run.stderr
    return outcome


def test_an_approver_approves_for_the_session_in_the_browser_and_ends_the_grant(setup, token, lead,
                                                                                 tmp_path):
    session = session_id()
    prompt = unique("run the migration")
    still_held(setup, token, session, prompt)
    review = setup.service.wait_for_review(lead, prompt)
    approved = browser("approve", setup.service.url, review["id"], "15", tmp_path / "approve.png", lead)
    assert session in approved["cardText"], "the card names the session"
    assert f"granted session {session}" in approved["flash"], approved
    assert session in approved["grantsText"] and "alice" in approved["grantsText"], approved
    retry = turn(setup.gateway, token, session, prompt)
    assert retry.status == 200, retry.text

    covered = turn(setup.gateway, token, session, unique("next step of the migration"))
    assert covered.status == 200, covered.text

    status, body = setup.service.api("GET", f"/v1/reviews/{review['id']}", lead)
    grant_id = body["review"]["session_grant"]["id"]
    ended = browser("end", setup.service.url, grant_id, "-", tmp_path / "end.png", lead)
    assert f"Ended {grant_id}" in ended["flash"], ended
    assert "No session grant is live" in ended["grantsText"] or grant_id not in ended["grantsText"], ended
    still_held(setup, token, session, unique("after the grant ended"))
