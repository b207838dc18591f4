"""The audit trail end to end: the real Envoy sends every exchange to the real `warden serve`, the
stored chain verifies, a multi-turn agent session with a tool call replays turn by turn as the
client received it (a scripted client, then the real Claude Code CLI), and a service stopped in the
middle of traffic loses nothing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, WARDEN, Service, auditor_service_changes, free_port, init_keys, run_claude

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


def start_trail(tmp: Path, gateway_factory, make_policy) -> tuple[Service, Any, Path]:
    """A `warden serve` of its own and a gateway (2 workers) sending it every exchange."""
    keys = init_keys(tmp / "keys")
    port = free_port()
    policy = make_policy(auditor_service_changes(port) | {
        "bindings": [{"group": "eng", "role": "developer"}, {"group": "leads", "role": "developer"},
                     {"group": "analysts", "role": "analyst"}],
        "audit": {"max_outage": "120s"},
    })
    service = Service(port, keys, tmp / "warden.db", policy, tmp / "serve.log")
    service.start()
    gateway = gateway_factory(policy, concurrency=2, extra_args=[
        "--credential-file", f"WARDEN_APPROVALS_TOKEN={keys / 'approvals-token'}",
        "--credential-file", f"WARDEN_APPROVALS_VERDICT_KEY={keys / 'approvals-verdict-key.pub'}",
    ])
    return service, gateway, keys


@pytest.fixture(scope="module")
def trail(tmp_path_factory, gateway_factory, make_policy):
    service, gateway, keys = start_trail(tmp_path_factory.mktemp("trail"), gateway_factory, make_policy)
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
    # An auditor's token: the approvers' audience (approvals.approver_audience) and a group of
    # approvals.auditors.
    lead = issuer.mint(sub="bob", groups=["leads"], aud="warden-approvals")
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


def claude_code_session(request: dict) -> str | None:
    """The session a Claude Code request (the fake upstream's log entry) names: its
    X-Claude-Code-Session-Id header, else metadata.user_id: a JSON text with a session_id, or
    `user_<device>_account_<account>_session_<session>` (Claude Code 2.0)."""
    header = [v for k, v in request["headers"] if k.lower() == "x-claude-code-session-id"]
    if header:
        return header[0]
    user_id = (json.loads(request["body"]).get("metadata") or {}).get("user_id") or ""
    try:
        return json.loads(user_id).get("session_id")
    except ValueError:
        return user_id.rpartition("_session_")[2] or None


def plain(message: dict) -> dict:
    """A message as its author meant it: without cache_control markers, its content as blocks."""
    content = message["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    return {"role": message["role"],
            "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in blocks]}


def test_a_real_claude_code_session_replays_each_turn_once(trail, issuer, upstream, tmp_path):
    """The real Claude Code CLI through the audited gateway: one invocation runs a tool (two
    requests), a second one `--resume`s the session with a follow-up (one more request carrying the
    whole history). Replay shows each turn once."""
    service, gateway, keys = trail
    prompt, follow_up = "Use the Glob tool to list files", "Thanks, that is all for now."
    greeting = "Hello from the fake Claude upstream."
    token = issuer.mint(sub="carol", groups=["eng"])
    first = run_claude(gateway, token, prompt, tmp_path, "--output-format", "json")
    assert first.returncode == 0, first.stdout + first.stderr
    session = json.loads(first.stdout)["session_id"]
    second = run_claude(gateway, token, follow_up, tmp_path, "--resume", session,
                        "--output-format", "json")
    assert second.returncode == 0, second.stdout + second.stderr
    assert json.loads(second.stdout)["session_id"] == session, "--resume goes on in the same session"

    # What Claude Code 2.0.76 sends, all `POST /v1/messages?beta=true`, streamed: per invocation
    # two "Warmup" requests (sub-agent system prompts, no tools) and the agent loop's requests (its
    # own system prompt, the built-in tools), each re-sending the whole history. No
    # X-Claude-Code-Session-Id header: the session is in metadata.user_id (the warm-ups of the
    # resumed invocation name a new session). The history is re-sent with the same text but not
    # the same bytes: the cache_control breakpoint moves to the newest messages, and the first
    # prompt goes as a block list, then as a string, then as a block list again. (Here: three
    # agent-loop requests, of 1, 3 and 5 messages.)
    seen = upstream.requests()
    loop = [r for r in seen
            if r["path"].startswith("/v1/messages?") and json.loads(r["body"]).get("tools")]
    assert {claude_code_session(r) for r in loop} == {session}
    histories = [[plain(m) for m in json.loads(r["body"])["messages"]] for r in loop]
    assert len(histories) >= 3, [len(h) for h in histories]
    for before, after in zip(histories, histories[1:]):
        assert len(after) > len(before) and after[:len(before)] == before, "each re-sends the last"
    assert sum(prompt in r["body"] for r in loop) == len(loop)

    records = wait_for_records(service.db, lambda rs: sum(
        (r.get("identity") or {}).get("subject") == "carol" for r in rs) >= len(seen))
    mine = [r for r in records if (r.get("identity") or {}).get("subject") == "carol"]
    agent = [r for r in mine if r["endpoint"] == "messages" and (r.get("request") or {}).get("tools")]
    assert len(mine) == len(seen) and len(agent) == len(loop), (len(mine), len(agent))
    assert {r["session_id"] for r in agent} == {session}, "the records name Claude Code's session"

    out = warden("audit", "replay", "--db", str(service.db), "--session", session)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # The first invocation's warm-ups are in the session too (a "user: Warmup" turn): not checked.
    turns = [f"  user: {prompt}", "  assistant → tool call Glob (toolu_", "  tool result (toolu_",
             f"  assistant: {greeting} Tool result: ", f"  user: {follow_up}",
             f"  assistant: {greeting} You said: {follow_up}"]
    at = []
    for turn in turns:
        found = [i for i, line in enumerate(lines) if line.startswith(turn)]
        assert len(found) == 1, f"{turn!r} {len(found)} times, not once, in the replay:\n{out.stdout}"
        at += found
    assert at == sorted(at), f"the turns are out of order in the replay:\n{out.stdout}"
    pub = (keys / "approvals-verdict-key.pub").read_text().strip()
    verified = warden("audit", "verify", "--db", str(service.db), "--public-key", pub)
    assert verified.returncode == 0, verified.stdout + verified.stderr


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


def rewrite_chain(db: Path, edit) -> None:
    """What an attacker with write access to the store does: `edit(cursor)` changes rows, then
    every chain hash is recomputed and the signed checkpoints are dropped, so the chain alone
    looks whole."""
    con = sqlite3.connect(db)
    edit(con.cursor())
    prev = "0" * 64
    for position, record in con.execute("SELECT position, record FROM audit_records ORDER BY position").fetchall():
        digest = hashlib.sha256((prev + record).encode()).hexdigest()
        con.execute("UPDATE audit_records SET prev_hash = ?, hash = ? WHERE position = ?", (prev, digest, position))
        prev = digest
    con.execute("DELETE FROM audit_checkpoints")
    con.commit()
    con.close()


def test_envoys_access_log_is_a_second_trail_that_catches_a_rewritten_chain(trail, token, tmp_path):
    service, gateway, keys = trail
    sent = []
    for i in range(5):
        r = gateway.request("POST", "/v1/messages",
                            {"authorization": f"Bearer {token}", "content-type": "application/json"},
                            {"model": "claude-sonnet-4-6", "max_tokens": 16,
                             "messages": [{"role": "user", "content": f"second trail {i}"}]})
        assert r.status == 200, r.text
        sent.append(r.header("request-id"))
    records = wait_for_records(service.db, lambda rs: {r.get("upstream_request_id") for r in rs} >= set(sent))
    ids = [r["id"] for r in records if r.get("upstream_request_id") in sent]
    log = gateway.log_path
    deadline = time.monotonic() + 10
    while not all(f"audit_record={i} " in gateway.log() for i in ids) and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = [line for line in gateway.log().splitlines() if "audit_record=" in line]
    assert all(any(f"audit_record={i} audit_hash=" in line for line in lines) for i in ids), lines[-5:]

    intact = warden("audit", "verify", "--db", str(service.db), "--access-log", str(log))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "access-log entries checked" in intact.stdout

    edited, deleted = ids[1], ids[3]
    copy = tmp_path / "rewritten.db"
    with sqlite3.connect(service.db) as source, sqlite3.connect(copy) as target:
        source.backup(target)

    def tamper(cur) -> None:
        cur.execute("UPDATE audit_records SET record = replace(record, 'second trail', 'harmless') WHERE id = ?",
                    (edited,))
        assert cur.rowcount == 1
        cur.execute("DELETE FROM audit_records WHERE id = ?", (deleted,))

    rewrite_chain(copy, tamper)
    alone = warden("audit", "verify", "--db", str(copy))
    assert f"record {edited}" not in alone.stdout, "the chain alone cannot tell"
    crossed = warden("audit", "verify", "--db", str(copy), "--access-log", str(log))
    assert crossed.returncode == 1, crossed.stdout
    assert f"record {edited} differs from what the gateway sent" in crossed.stdout, crossed.stdout
    assert f"record {deleted} is not in the store" in crossed.stdout, crossed.stdout


def test_one_users_hostile_request_costs_no_other_users_record(trail, issuer, tmp_path):
    """A top-level field nested 125 levels, a credential in `mcp_servers`, a finding in
    `metadata`, and a request without a token, then another user's requests: every record is
    stored, the hostile one bounded and masked, and the access log verifies against the store."""
    service, gateway, keys = trail
    mallory, alice = issuer.mint(sub="mallory"), issuer.mint(sub="alice")
    headers = {"authorization": f"Bearer {mallory}", "content-type": "application/json"}
    deep = "[" * 125 + "1" + "]" * 125
    body = ('{"model":"claude-sonnet-4-6","max_tokens":16,"deep_field":' + deep
            + ',"metadata":{"user_id":"u","note":"mail ann.smith@northwind-mail.com"},'
            + '"messages":[{"role":"user","content":"deep"}]}')
    hostile = gateway.request("POST", "/v1/messages", headers, body.encode())
    assert hostile.status in (200, 400), hostile.text
    tokenless = gateway.request("POST", "/v1/messages", {"content-type": "application/json"},
                                {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": []})
    assert tokenless.status == 401
    sent = []
    for i in range(8):
        r = gateway.request("POST", "/v1/messages",
                            {"authorization": f"Bearer {alice}", "content-type": "application/json"},
                            {"model": "claude-sonnet-4-6", "max_tokens": 16,
                             "messages": [{"role": "user", "content": f"after the hostile one {i}"}]})
        assert r.status == 200, r.text
        sent.append(r.header("request-id"))
    wanted = set(sent) | {hostile.header("request-id")}
    records = wait_for_records(
        service.db, lambda rs: wanted <= {r.get("upstream_request_id") or r.get("request_id") for r in rs})
    [record] = [r for r in records if hostile.header("request-id") in (r.get("upstream_request_id"), r.get("request_id"))]
    assert "stand_in" not in record, "stored whole"
    if record["request"]:
        params = record["request"]["params"]
        assert params["deep_field"]["$warden"] == "omitted"
        assert "ann.smith@northwind-mail.com" not in json.dumps(params)
    # The summary of the refusal without a token arrives within its interval.
    wait_for_records(service.db, lambda rs: any("summary" in r for r in rs), timeout=20)
    time.sleep(1.5)  # Envoy flushes its access log about once a second
    verified = warden("audit", "verify", "--db", str(service.db), "--access-log", str(gateway.log_path))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_records_that_die_with_the_gateway_are_named_lost_at_shutdown(trail, gateway_factory, token, tmp_path):
    """The audit service is down and the gateway is stopped at once (no drain): its queued
    records cannot be saved. `verify --access-log` names them lost at shutdown, not deleted."""
    service, gateway, keys = trail
    doomed = gateway_factory(gateway.policy_path, extra_args=[
        "--credential-file", f"WARDEN_APPROVALS_TOKEN={keys / 'approvals-token'}",
        "--credential-file", f"WARDEN_APPROVALS_VERDICT_KEY={keys / 'approvals-verdict-key.pub'}",
        "--drain-timeout", "0",
    ])
    first = doomed.request("POST", "/v1/messages",
                           {"authorization": f"Bearer {token}", "content-type": "application/json"},
                           {"model": "claude-sonnet-4-6", "max_tokens": 16,
                            "messages": [{"role": "user", "content": "delivered before"}]})
    assert first.status == 200
    wait_for_records(service.db, lambda rs: first.header("request-id") in {r.get("upstream_request_id") for r in rs})
    service.stop()
    try:
        for i in range(3):
            r = doomed.request("POST", "/v1/messages",
                               {"authorization": f"Bearer {token}", "content-type": "application/json"},
                               {"model": "claude-sonnet-4-6", "max_tokens": 16,
                                "messages": [{"role": "user", "content": f"queued when it stops {i}"}]})
            assert r.status == 200, r.text
        time.sleep(1.5)  # Envoy flushes its access log about once a second
        doomed.stop()
    finally:
        service.start()
    log = tmp_path / "doomed-access.log"
    log.write_text("\n".join(line for line in doomed.log().splitlines() if "audit_record=" in line) + "\n")
    verified = warden("audit", "verify", "--db", str(service.db), "--access-log", str(log))
    assert verified.returncode == 1, verified.stdout
    lost = [line for line in verified.stdout.splitlines() if "lost at shutdown" in line]
    assert len(lost) == 3, verified.stdout
    assert "deleted" not in verified.stdout, verified.stdout


def test_every_filter_refusal_has_one_record_and_an_access_log_reference(trail, issuer, token):
    """Refusals at the headers and at the body, and a filtered model list: each leaves exactly one
    stored record with its reason and caller, and its access-log line names that record."""
    service, gateway, keys = trail
    analyst = issuer.mint(groups=["analysts"])
    json_headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}

    def body(model: str, **extra: Any) -> dict:
        return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], **extra}

    tool = {"name": "Bash", "input_schema": {"type": "object"}}
    # (method, path, token, body, status, reason, subject, role)
    # A request no verified token names is counted in a summary record, not recorded alone.
    tokenless = gateway.request("POST", "/v1/messages", json_headers, body("claude-sonnet-4-6"))
    assert tokenless.status == 401, tokenless.text
    cases = [
        ("POST", "/v1/messages", issuer.mint(groups=["nobody"]), body("claude-sonnet-4-6"), 403,
         "no_role_binding", "alice", ""),
        ("POST", "/v1/messages", analyst, body("claude-opus-4-1"), 403, "model_not_allowed", "alice", "analyst"),
        ("POST", "/v1/messages", analyst, body("claude-haiku-4-5", tools=[tool]), 403, "tool_not_allowed",
         "alice", "analyst"),
        ("POST", "/v1/messages", analyst, body("claude-haiku-4-5", metadata={"pad": "x" * (2 << 20)}), 413,
         "body_too_large", "alice", "analyst"),
        ("GET", "/v1/models/claude-opus-4-1-20250805", analyst, None, 403, "model_not_allowed", "alice", "analyst"),
        ("GET", "/v1/models", analyst, None, 200, None, "alice", "analyst"),
    ]
    sent: dict[str, tuple] = {}
    for method, path, bearer, payload, status, reason, subject, role in cases:
        headers = dict(json_headers, **({"authorization": f"Bearer {bearer}"} if bearer else {}))
        r = gateway.request(method, path, headers, payload)
        assert r.status == status, (reason, r.text)
        if path == "/v1/models":
            assert [m["id"] for m in r.json()["data"]] == ["claude-haiku-4-5-20251001"], r.text
            assert r.json()["first_id"] == r.json()["last_id"] == "claude-haiku-4-5-20251001"
        sent[r.header("request-id")] = (reason, subject, role)

    def answered(record: dict) -> set:
        # The client sees Warden's request-id on a refusal, the upstream's on an answer.
        return {record["request_id"], record.get("upstream_request_id")}

    records = wait_for_records(service.db, lambda rs: set().union(*map(answered, rs)) >= set(sent))
    for request_id, (reason, subject, role) in sent.items():
        mine = [r for r in records if request_id in answered(r)]
        assert len(mine) == 1, (reason, len(mine))
        record = mine[0]
        assert record["decision"]["reason"] == reason, record["decision"]
        assert record["decision"]["allowed"] == (reason is None)
        identity = record["identity"]
        assert (identity and (identity["subject"], identity["role"])) == (subject and (subject, role)), identity
        envoy_id = record["request_id"].removeprefix("req_warden_")
        deadline = time.monotonic() + 10
        while f"audit_record={record['id']} " not in gateway.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        lines = [line for line in gateway.log().splitlines() if f"x-request-id={envoy_id}" in line]
        assert len(lines) == 1 and f"audit_record={record['id']} audit_hash=" in lines[0], (reason, lines)
    tokenless_id = tokenless.header("request-id").removeprefix("req_warden_")
    [line] = [line for line in gateway.log().splitlines() if f"x-request-id={tokenless_id}" in line]
    assert "audit_hash=summary" in line, line
    # The summary took its sequence number when it opened and is sent when its interval closes
    # (5 s): wait for it, or verify would see a gap the later records skipped over.
    summary_id = line.split("audit_record=", 1)[1].split()[0]
    wait_for_records(service.db, lambda rs: summary_id in {r["id"] for r in rs})
    verified = warden("audit", "verify", "--db", str(service.db), "--access-log", str(gateway.log_path))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_store_pruned_under_the_running_service_still_verifies_against_envoys_access_log(
        gateway_factory, make_policy, token, tmp_path):
    service, gateway, keys = start_trail(tmp_path, gateway_factory, make_policy)
    try:
        def send(text: str) -> str:
            r = gateway.request("POST", "/v1/messages",
                                {"authorization": f"Bearer {token}", "content-type": "application/json"},
                                {"model": "claude-sonnet-4-6", "max_tokens": 16,
                                 "messages": [{"role": "user", "content": text}]})
            assert r.status == 200, r.text
            return r.header("request-id")

        old = [send(f"old turn {i}") for i in range(3)]
        ids = [r["id"] for r in wait_for_records(
            service.db, lambda rs: {r.get("upstream_request_id") for r in rs} >= set(old))]
        cut = max(line["time"] for line in export(service.db) if line.get("type") == "record") + 1
        pruned = warden("audit", "prune", "--db", str(service.db), "--before", str(cut),
                        "--signing-key", str(keys / "approvals-signing-key.pem"), "--allow-recent")
        assert pruned.returncode == 0, pruned.stdout + pruned.stderr
        assert "removed 3 records (positions 1–3) and 3 blobs" in pruned.stdout, pruned.stdout

        new = send("new turn")
        records = wait_for_records(service.db, lambda rs: any(r.get("upstream_request_id") == new for r in rs))
        assert len(records) == 1
        ids.append(records[0]["id"])
        deadline = time.monotonic() + 10
        while not all(f"audit_record={i} " in gateway.log() for i in ids) and time.monotonic() < deadline:
            time.sleep(0.2)
        pub = (keys / "approvals-verdict-key.pub").read_text().strip()
        verified = warden("audit", "verify", "--db", str(service.db), "--public-key", pub,
                          "--access-log", str(gateway.log_path))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "pruned: records 1–3 removed under retention" in verified.stdout, verified.stdout
        assert "4 access-log entries checked (3 of them pruned under retention)" in verified.stdout, verified.stdout
        assert "OK: 1 records" in verified.stdout, verified.stdout
    finally:
        service.stop()
