"""The stream cut as the real clients see it (docs/budgets.md, "The stream cut").

When a streamed answer passes its budget's output allowance, Warden delivers an ending and then
resets the stream (so the upstream stops generating): the client receives the ending, then its
connection closes without the end of the chunked body. Each test here has the fake upstream
serve exactly those bytes — tests/fixtures/stream_cut/*.sse, rendered by Warden's own cut
component (tests/stream_cut.rs) — and closes the connection the same way (`abort`), through
Envoy and the gateway, to the official Python SDK and the real Claude Code CLI.

The two candidate endings, as each client shows them (what the tests assert):
- the error ending (`event: error`, `rate_limit_error`, naming the budget): the Python SDK raises
  it as an API error naming the budget; Claude Code ends the turn with what it completed before
  the cut and does not show the budget;
- the message ending (`stop_reason: "max_tokens"` with a note naming the budget): the Python SDK
  streams the note, then fails on the reset with a transport error; Claude Code drops the cut
  turn, asks again without streaming, and shows the 429 admission answers with (emulated here
  by the fake, as Warden's budgets would answer) — it never runs a cut tool call.
So Warden sends Claude Code (user-agent claude-cli/…) the message ending and every other client
the error ending.
"""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest

from conftest import REPO, run_claude

FIXTURES = REPO / "tests" / "fixtures" / "stream_cut"
BUDGET = "demo-daily"
# What admission answers once the budget is used up (emulated by the fake upstream).
REFUSAL = (f'warden: budget_exhausted: budget "{BUDGET}" (role developer): 0 of 1000 tokens per day left, '
           "this request needs an estimated 700; it resets at 2026-12-08T00:00:00Z")


@pytest.fixture(scope="module")
def gateway(gateway_factory, make_policy):
    """The e2e gateway without the demo's tool rules. The fixtures stand in for Warden's own cut,
    which the gateway applies after the tool-call hold (docs/tools.md), so they are served to a
    role whose answers are not held: a governed role would hold the cut call (and the error
    inside it) until the call ended."""
    return gateway_factory(make_policy({"roles": {"developer": {"tools": {"rules": []}}}}))


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.sse").read_text()


def sdk_stream(client: anthropic.Anthropic) -> tuple[str, Exception | None]:
    """Streams an answer; returns the text the SDK yielded and what it raised."""
    texts: list[str] = []
    try:
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=512,
                                    messages=[{"role": "user", "content": "cut-probe"}]) as stream:
            for text in stream.text_stream:
                texts.append(text)
            stream.get_final_message()
    except Exception as error:  # noqa: BLE001 - what the client raises is the result
        return "".join(texts), error
    return "".join(texts), None


@pytest.mark.parametrize("answer", ["text", "tool"])
def test_the_python_sdk_raises_the_error_ending_as_an_api_error_naming_the_budget(
        gateway, issuer, script, answer):
    script(raw=fixture(f"{answer}-error"), abort=True)
    text, error = sdk_stream(gateway.sdk(token=issuer.mint(groups=["eng"])))
    assert isinstance(error, anthropic.APIStatusError), repr(error)
    assert error.body["error"]["type"] == "rate_limit_error"
    message = error.body["error"]["message"]
    assert message.startswith(f'warden: budget_exhausted: budget "{BUDGET}" exhausted'), message
    expected = "Sentence 03" if answer == "text" else "I will run the command."
    assert expected in text and "Sentence 04" not in text


def test_the_python_sdk_fails_on_the_reset_after_the_message_ending(gateway, issuer, script):
    script(raw=fixture("text-max_tokens"), abort=True)
    text, error = sdk_stream(gateway.sdk(token=issuer.mint(groups=["eng"])))
    assert f'[warden: budget "{BUDGET}" exhausted' in text
    assert isinstance(error, httpx2.RemoteProtocolError), repr(error)


def claude_requests(upstream) -> list[dict]:
    return [json.loads(r["body"]) for r in upstream.requests()
            if r["path"].startswith("/v1/messages") and "cut-probe" in r["body"]]


@pytest.mark.parametrize("answer", ["text", "tool"])
def test_claude_code_drops_a_turn_cut_with_the_message_ending_and_shows_the_budget(
        gateway, issuer, upstream, script, answer, tmp_path):
    script(raw=fixture(f"{answer}-max_tokens"), abort=True, match="cut-probe")
    script(REFUSAL, status=429, match="cut-probe")
    done = run_claude(gateway, issuer.mint(groups=["eng"]), "cut-probe: run the probe", tmp_path)
    output = done.stdout + done.stderr
    # Claude Code shows the 429's JSON body as it came: the budget's quotes are escaped.
    assert f'budget_exhausted: budget \\"{BUDGET}\\"' in output, output
    bodies = claude_requests(upstream)
    assert [b.get("stream") for b in bodies] == [True, None], "one stream, then one request without"
    assert not any("tool_result" in json.dumps(b) for b in bodies), "the cut tool call never ran"


def test_claude_code_ends_the_turn_silently_on_the_error_ending_after_a_completed_block(
        gateway, issuer, upstream, script, tmp_path):
    script(raw=fixture("tool-error"), abort=True, match="cut-probe")
    done = run_claude(gateway, issuer.mint(groups=["eng"]), "cut-probe: run the probe", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "I will run the command.", done.stdout
    assert "budget" not in done.stdout + done.stderr
    bodies = claude_requests(upstream)
    assert len(bodies) == 1 and "tool_result" not in json.dumps(bodies), bodies
