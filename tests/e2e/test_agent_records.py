"""Subagent-aware records through the real Envoy and the real `warden serve`: requests Claude
Code's subagents mark with `x-claude-code-agent-id` / `x-claude-code-parent-agent-id` are recorded
with their agent, `warden audit replay` prints the tree of agents with each subagent's requests
under the agent that started it, each tool result is listed with the call it answers (a result
for a call nobody proposed is flagged), a tool result over the role's `tools.max_result_bytes`
is withheld before it reaches the upstream, and a hostile agent header is refused."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from conftest import deep_merge, refusal
from test_audit_trail import start_trail, wait_for_records, warden

SESSION = "sess-agents-0001"
LIMIT = 1024
TOOLS = [{"name": "Bash", "description": "run a command",
          "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
         {"name": "Task", "description": "start a subagent",
          "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}}}]


@pytest.fixture(scope="module")
def agents_trail(tmp_path_factory, gateway_factory, make_policy):
    limited = {"roles": {"developer": {"tools": {"max_result_bytes": f"{LIMIT}B"}}}}
    service, gateway, keys = start_trail(tmp_path_factory.mktemp("agents"), gateway_factory,
                                         lambda changes: make_policy(deep_merge(changes, limited)))
    yield service, gateway, keys
    service.stop()


def call(gateway, token: str, messages: list[dict], agent: str | None = None, parent: str | None = None):
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
               "anthropic-version": "2023-06-01", "x-claude-code-session-id": SESSION}
    if agent:
        headers["x-claude-code-agent-id"] = agent
    if parent:
        headers["x-claude-code-parent-agent-id"] = parent
    body: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": messages, "tools": TOOLS}
    return gateway.request("POST", "/v1/messages", headers, body)


def ok(r) -> dict:
    assert r.status == 200, r.text
    return r.json()


def result(tool_use_id: str, content: str) -> dict:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}


def test_a_subagents_requests_appear_under_its_parent_in_the_replay(agents_trail, token, script, upstream):
    service, gateway, keys = agents_trail
    # The main agent asks; Claude starts a subagent with the Task tool.
    main: list[dict] = [{"role": "user", "content": "Find the failing test."}]
    script("", tool={"name": "Task", "input": {"prompt": "run the tests"}})
    task = ok(call(gateway, token, main))
    [task_use] = [b for b in task["content"] if b["type"] == "tool_use"]
    # The subagent runs Bash; its output is far over the limit.
    sub: list[dict] = [{"role": "user", "content": "run the tests"}]
    script("", tool={"name": "Bash", "input": {"command": "make test"}})
    bash = ok(call(gateway, token, sub, agent="agent7f3c"))
    [bash_use] = [b for b in bash["content"] if b["type"] == "tool_use"]
    huge = "FAILED tests/test_parser.py::test_split\n" * 200
    sub += [{"role": "assistant", "content": bash["content"]},
            {"role": "user", "content": [result(bash_use["id"], huge)]}]
    script("test_split fails.")
    ok(call(gateway, token, sub, agent="agent7f3c"))
    forwarded = json.loads(upstream.last()["body"])
    sent = forwarded["messages"][-1]["content"][0]
    assert sent["tool_use_id"] == bash_use["id"]
    assert sent["content"].startswith("[Warden withheld this tool result"), sent
    assert "FAILED tests" not in upstream.last()["body"], "the oversized result never reached the upstream"
    # A nested subagent started by the first one.
    script("Nested look done.")
    ok(call(gateway, token, [{"role": "user", "content": "look closer"}], agent="agent9b", parent="agent7f3c"))
    # The main agent gets the subagent's answer back, and sends a result for a call never proposed.
    main += [{"role": "assistant", "content": task["content"]},
             {"role": "user", "content": [result(task_use["id"], "test_split fails."),
                                          result("toolu_01NeverProposed000000000", "made up")]}]
    script("The failing test is test_split.")
    ok(call(gateway, token, main))

    records = wait_for_records(service.db, lambda rs: sum(r.get("session_id") == SESSION for r in rs) >= 5)
    mine = sorted((r for r in records if r.get("session_id") == SESSION), key=lambda r: r["timings"]["start"])
    assert [r.get("agent") for r in mine] == [
        None, {"id": "agent7f3c", "parent": None}, {"id": "agent7f3c", "parent": None},
        {"id": "agent9b", "parent": "agent7f3c"}, None]
    [withheld] = mine[2]["tool_results"]
    assert (withheld["tool_use_id"], withheld["over_limit"]) == (bash_use["id"], True)
    assert withheld["bytes"] == len(json.dumps(huge)) > LIMIT
    assert [r["tool_use_id"] for r in mine[4]["tool_results"]] == [task_use["id"], "toolu_01NeverProposed000000000"]

    out = warden("audit", "replay", "--db", str(service.db), "--session", SESSION)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    head = [line.split(" · ")[0] for line in lines[:4]]
    assert head == ["agents:", "  main agent", "  └─ subagent agent7f3c", "     └─ subagent agent9b"], out.stdout
    # Each record once, in the tree: the subagents' turns framed under the main agent's first.
    ids = [r["id"] for r in mine]
    at = {i: next(n for n, line in enumerate(lines) if f"── {i} ·" in line) for i in ids}
    frame = {i: lines[at[i]].split("──")[0] for i in ids}
    assert frame == {ids[0]: "", ids[1]: "│ ", ids[2]: "│ ", ids[3]: "│ │ ", ids[4]: ""}, out.stdout
    assert at[ids[0]] < at[ids[1]] < at[ids[2]] < at[ids[3]] < at[ids[4]]
    opens = next(n for n, line in enumerate(lines) if line.startswith("┌ subagent agent7f3c"))
    closes = next(n for n, line in enumerate(lines) if line.startswith("└ end of subagent agent7f3c"))
    assert at[ids[0]] < opens < at[ids[1]] and at[ids[3]] < closes < at[ids[4]], out.stdout
    text = out.stdout
    assert f"↳ result {bash_use['id']}: {withheld['bytes']} bytes · over the role's limit, withheld" in text, text
    assert f"answers {ids[1]}'s call" in text, text
    assert f"↳ result {task_use['id']}: " in text and f"answers {ids[0]}'s call" in text, text
    assert "⚠ result toolu_01NeverProposed000000000: 9 bytes · answers no recorded call" in text, text
    # The records with agents and tool results are stored exactly as the gateway hashed them.
    pub = (keys / "approvals-verdict-key.pub").read_text().strip()
    verified = warden("audit", "verify", "--db", str(service.db), "--public-key", pub)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_hostile_agent_header_is_refused_and_nothing_is_forwarded(agents_trail, token, upstream):
    _, gateway, _ = agents_trail
    upstream.clear()
    for agent in ("x" * 5000, "agent\u202eevil", "a b"):
        r = call(gateway, token, [{"role": "user", "content": "hi"}], agent=agent.encode("utf-8").decode("latin-1"))
        status, kind, _ = refusal(r)
        assert (status, kind) == (400, "invalid_request_error"), r.text
    assert upstream.requests() == []


def test_the_session_page_shows_the_agent_tree_and_flags_the_unrecorded_result(agents_trail, issuer):
    """Runs after the session above: its page nests the subagents and flags the made-up result."""
    service, _, _ = agents_trail
    auditor = issuer.mint(sub="bob", groups=["leads"], aud="warden-approvals")
    request = urllib.request.Request(f"{service.url}/sessions/{SESSION}",
                                     headers={"authorization": f"Bearer {auditor}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        page = r.read().decode()
    tree = page[page.index('<section id="agents">'):page.index("</section>", page.index('<section id="agents">'))]
    main, sub, nested = (tree.index(label) for label in ("main agent", "subagent agent7f3c", "subagent agent9b"))
    assert main < sub < nested, tree
    assert nested < tree.index("</ul></li>", sub), "agent9b is listed inside agent7f3c's list"
    assert page.count('<span class="agent">subagent agent7f3c</span>') == 2
    assert '<li class="provenance suspicious">⚠ result toolu_01NeverProposed000000000' in page
