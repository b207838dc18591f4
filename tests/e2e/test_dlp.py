"""DLP masking through the real gateway: secrets the upstream leaks are masked in live SSE streams
(text, thinking and tool-call arguments, however the deltas cut them) and in JSON replies,
secrets an agent sends are masked before they leave, `block` profiles refuse, and the gateway's
log and stats count findings without ever showing a value.

Every secret-looking value here is fabricated (a seeded generator), never a real credential. The
fake upstream is scripted through POST /__fake/script (see scripts/fake_claude.py).
"""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
import random
import re
import string
import time
from dataclasses import dataclass

import anthropic
import pytest

from conftest import DLP_VISIBLE_PREFIXES, dlp_mask, refusal

# ------------------------------------------------------------------------------------------
# fabricated values

_rng = random.Random("warden e2e dlp: fabricated values")
_ALNUM = string.ascii_letters + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits


def _fab(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _luhn_complete(digits: str) -> str:
    """digits + the check digit that makes the whole number pass Luhn."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


GITHUB_PAT = "ghp_" + _fab(_ALNUM, 36)
AWS_KEY_ID = "AKIA" + _fab(_UPPER_DIGITS, 16)
ANTHROPIC_KEY = "sk-ant-api03-" + _fab(_ALNUM + "_-", 93) + "AA"
_card = _luhn_complete("4" + _fab(string.digits, 14))
CARD = " ".join(_card[i:i + 4] for i in range(0, 16, 4))
SSN = f"{_rng.randint(101, 665)}-{_rng.randint(10, 99)}-{_rng.randint(1000, 9999)}"
IBAN = _iban("DE", _fab(string.digits, 18))
EMAIL = "dana.whitfield@northwind-freight.io"
PEM_BODY = [_fab(_ALNUM + "+/", 64) for _ in range(4)]
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END PRIVATE KEY-----"
DOCUMENTED_AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documentation example: not a secret
# The strict gateway's `dlp.mask_key` credential (fabricated).
STRICT_MASK_SECRET = "warden-e2e-mask-key-" + _fab(_ALNUM, 32)

_PLACEHOLDER_WORDS = ("example", "placeholder", "changeme", "your", "dummy", "sample", "redacted",
                      "xxxx", "****")
for _value in (GITHUB_PAT, AWS_KEY_ID, ANTHROPIC_KEY):
    assert not any(w in _value.lower() for w in _PLACEHOLDER_WORDS), _value

SECRETS = {"github-pat": GITHUB_PAT, "aws-access-key": AWS_KEY_ID,
           "anthropic-api-key": ANTHROPIC_KEY}
MODEL = "claude-sonnet-4-6"
FAKE_SIGNATURE = "ZmFrZSB0aGlua2luZyBzaWduYXR1cmU="  # scripts/fake_claude.py


# ------------------------------------------------------------------------------------------
# helpers


def leaked(haystack: str | bytes, secret: str, window: int = 8) -> str | None:
    """The first `window`-character piece of `secret` found in `haystack`, or None. A vendor
    prefix Warden leaves visible (`ghp_`, `sk-ant-api03-`) is not part of the secret."""
    if isinstance(haystack, bytes):
        haystack = haystack.decode("utf-8", errors="replace")
    prefix = next((p for ps in DLP_VISIBLE_PREFIXES.values() for p in ps if secret.startswith(p)), "")
    secret = secret[len(prefix):]
    for i in range(len(secret) - window + 1):
        if secret[i:i + window] in haystack:
            return secret[i:i + window]
    return None


def headers_for(token: str, **extra: str) -> dict:
    return {"content-type": "application/json", "authorization": f"Bearer {token}",
            "anthropic-version": "2023-06-01", **extra}


def ask(text: str = "Say something.", stream: bool = False, **fields) -> dict:
    body = {"model": MODEL, "max_tokens": 512, "messages": [{"role": "user", "content": text}],
            **fields}
    if stream:
        body["stream"] = True
    return body


@dataclass
class Stream:
    status: int
    headers: list[tuple[str, str]]
    raw: bytes
    events: list[tuple[str, dict]]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def blocks(self) -> dict[int, str]:
        """What the deltas of each content block add up to (text, thinking or tool JSON)."""
        out: dict[int, str] = {}
        for name, data in self.events:
            if name != "content_block_delta":
                continue
            delta = data["delta"]
            piece = {"text_delta": "text", "thinking_delta": "thinking",
                     "input_json_delta": "partial_json"}.get(delta["type"])
            if piece is not None:
                out[data["index"]] = out.get(data["index"], "") + delta[piece]
        return out

    def text(self) -> str:
        return "".join(self.blocks().values())


def parse_event(block: str) -> tuple[str, dict]:
    """One SSE event (LF line ends): an `event:` line and `data:` lines holding JSON."""
    name, data = None, []
    for line in block.split("\n"):
        assert not line.startswith(":") and line, f"unexpected SSE line {line!r} in {block!r}"
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            assert name is None, block
            name = value
        elif field == "data":
            data.append(value)
        else:
            raise AssertionError(f"unexpected SSE field {field!r} in {block!r}")
    assert name and data, f"an event needs a name and data: {block!r}"
    payload = json.loads("\n".join(data))
    assert payload["type"] == name, block
    return name, payload


def parse_sse(raw: bytes) -> list[tuple[str, dict]]:
    """Every event of a complete stream; fails on anything that is not well-formed."""
    text = raw.decode("utf-8")
    assert "\r" not in text, "the gateway re-serializes events with LF line ends"
    assert text.endswith("\n\n"), f"the stream ends inside an event: {text[-200:]!r}"
    return [parse_event(block) for block in text[:-2].split("\n\n")]


def open_stream(port: int, token: str, body: dict,
                extra_headers: dict | None = None) -> tuple[http.client.HTTPConnection,
                                                            http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = json.dumps(body).encode()
    conn.putrequest("POST", "/v1/messages", skip_accept_encoding=True)
    for k, v in {**headers_for(token, accept="text/event-stream"), **(extra_headers or {}),
                 "content-length": str(len(data))}.items():
        conn.putheader(k, v)
    conn.endheaders(data)
    return conn, conn.getresponse()


def stream_raw(gw, token: str, body: dict, extra_headers: dict | None = None) -> Stream:
    """A streaming request with http.client: the raw bytes the client got, and their events."""
    conn, resp = open_stream(gw.port, token, {**body, "stream": True}, extra_headers)
    try:
        raw = resp.read()
        headers = list(resp.getheaders())
    finally:
        conn.close()
    is_sse = (dict((k.lower(), v) for k, v in headers).get("content-type", "")
              .startswith("text/event-stream"))
    return Stream(resp.status, headers, raw, parse_sse(raw) if is_sse and raw else [])


def findings(gw, action: str, detector: str | None = None) -> int:
    """DLP findings in `warden_dlp_findings` with this action (for one detector, or all)."""
    return int(sum(value for (name, labels), value in gw.prometheus().items()
                   if name == "warden_dlp_findings" and ("action", action) in labels
                   and (detector is None or ("detector", detector) in labels)))


def wait_until(condition, what: str, timeout: float = 15.0):
    """Polls `condition` until it returns something truthy (the gateway logs and counts an
    exchange after the response ends); fails with `what` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------
# fixtures

STRICT_PROFILE = {
    "request": [{"detectors": ["credentials"], "action": "block"}],
    "response": [{"detectors": ["aws-*"], "action": "block"},
                 {"detectors": ["*"], "action": "mask"}],
}


@pytest.fixture(scope="module")
def strict_gw(gateway_factory, make_policy, tmp_path_factory):
    """developer (group eng) has the `strict` profile and no tool rules; `unscanned` (group raw)
    has `off`; masks are keyed by the `masking` credential (dlp.mask_key), not by the upstream
    key."""
    base = make_policy.base
    key_file = tmp_path_factory.mktemp("mask-key") / "mask-key"
    key_file.write_text(STRICT_MASK_SECRET + "\n")
    key_file.chmod(0o600)
    return gateway_factory(make_policy({
        "credentials": {"masking": {"env": "WARDEN_E2E_MASK_KEY"}},
        "dlp": {"mask_key": "masking", "profiles": {"strict": STRICT_PROFILE}},
        # The DLP path alone: tool rules would hold a call whole until judged (test_tool_rules.py).
        "roles": {"developer": {"dlp": "strict", "tools": {"rules": []}},
                  "unscanned": {**base["roles"]["developer"], "dlp": "off"}},
        "bindings": base["bindings"] + [{"group": "raw", "role": "unscanned"}],
    }), extra_args=["--credential-file", f"WARDEN_E2E_MASK_KEY={key_file}"])


@pytest.fixture(scope="module")
def fresh_gw(gateway_factory):
    """A gateway only the log test uses (debug logs): its log lines and counters are exact."""
    return gateway_factory(log_level="debug")


def mask(detector: str, value: str, upstream) -> str:
    return dlp_mask(detector, value, upstream_key=upstream.api_key)


# ------------------------------------------------------------------------------------------
# responses: streams


@pytest.mark.parametrize("detector,piece", [("github-pat", 3), ("aws-access-key", 5),
                                            ("anthropic-api-key", 11)])
def test_secret_cut_across_stream_deltas_is_masked_in_well_formed_events(
        gateway, upstream, script, token, detector, piece):
    secret = SECRETS[detector]
    text = f"Found it in the build log: {secret} - rotate it now."
    script(text, piece=piece)
    # The secret really is cut across several deltas upstream.
    assert len(secret) // piece >= 3

    s = stream_raw(gateway, token, ask("where is the token?"))

    assert s.status == 200, s.raw
    assert s.header("content-type").startswith("text/event-stream")
    assert s.names()[0] == "message_start" and s.names()[-1] == "message_stop", s.names()
    assert "error" not in s.names()
    assert s.text() == text.replace(secret, mask(detector, secret, upstream))
    assert leaked(s.raw, secret) is None, f"{leaked(s.raw, secret)!r} of the secret got through"


def test_sdk_stream_assembles_the_masked_text(gateway, upstream, script, token):
    text = f"export GITHUB_TOKEN={GITHUB_PAT}\nexport AWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"
    script(text, piece=4)
    with gateway.sdk(token).messages.stream(
            model=MODEL, max_tokens=256,
            messages=[{"role": "user", "content": "show my env"}]) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    expected = (text.replace(GITHUB_PAT, mask("github-pat", GITHUB_PAT, upstream))
                .replace(AWS_KEY_ID, mask("aws-access-key", AWS_KEY_ID, upstream)))
    assert "".join(deltas) == expected
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == expected
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("detector,tool,field,secret", [
    ("github-pat", "Bash", "command", f"GITHUB_TOKEN={GITHUB_PAT} gh repo list --limit 5"),
    ("private-key", "Write", "content", PRIVATE_KEY + "\n"),
], ids=["token-in-a-command", "escaped-pem-in-a-file"])
def test_streamed_tool_call_arguments_are_masked_and_stay_valid_json(
        gateway, upstream, script, token, detector, tool, field, secret):
    value = GITHUB_PAT if detector == "github-pat" else PRIVATE_KEY
    tool_input = {field: secret, "description": "scripted by the test"}
    script("", tool={"name": tool, "input": tool_input}, piece=3)
    tools = [{"name": tool, "description": "a tool",
              "input_schema": {"type": "object", "properties": {
                  field: {"type": "string"}, "description": {"type": "string"}}}}]
    with gateway.sdk(token).messages.stream(
            model=MODEL, max_tokens=256, tools=tools,
            messages=[{"role": "user", "content": "go"}]) as stream:
        final = stream.get_final_message()
    [call] = final.content
    assert call.type == "tool_use" and call.name == tool
    assert final.stop_reason == "tool_use"
    assert isinstance(call.input, dict)
    assert call.input == {field: secret.replace(value, mask(detector, value, upstream)),
                          "description": "scripted by the test"}


def test_thinking_is_masked_and_its_signature_passes_unchanged(gateway, upstream, script, token):
    thinking = f"The user pasted {AWS_KEY_ID}; I must not repeat it."
    script("Done.", thinking=thinking, piece=4)
    with gateway.sdk(token).messages.stream(
            model=MODEL, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "think"}]) as stream:
        final = stream.get_final_message()
    thought, said = final.content
    assert thought.type == "thinking"
    assert thought.thinking == thinking.replace(AWS_KEY_ID,
                                                mask("aws-access-key", AWS_KEY_ID, upstream))
    assert thought.signature == FAKE_SIGNATURE
    assert said.text == "Done."

    script("Done.", thinking=thinking)
    message = gateway.sdk(token).messages.create(
        model=MODEL, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "think"}])
    assert message.content[0].model_dump() == thought.model_dump()


def test_documented_example_key_is_not_masked(gateway, upstream, script, token):
    text = f"The AWS docs use {DOCUMENTED_AWS_KEY_ID} as their example key id."
    script(text, piece=3)
    s = stream_raw(gateway, token, ask())
    assert s.text() == text


def test_crlf_upstream_stream_assembles_the_same_masked_text(gateway, upstream, script, token):
    text = f"token {GITHUB_PAT} and key {AWS_KEY_ID} done"
    script(text, piece=3)
    lf = stream_raw(gateway, token, ask())
    script(text, piece=3, crlf=True)
    crlf = stream_raw(gateway, token, ask())
    assert crlf.status == 200
    assert crlf.blocks() == lf.blocks()
    assert GITHUB_PAT not in crlf.text() and "[REDACTED:github-pat:" in crlf.text()
    assert [n for n in crlf.names() if n != "ping"] == [n for n in lf.names() if n != "ping"]


def test_stream_cut_anywhere_in_its_bytes_is_masked_and_keeps_utf8(gateway, upstream, script,
                                                                  token):
    """HTTP chunks of 5 bytes cut events, JSON strings and UTF-8 characters anywhere."""
    text = (f"Voilà — the clé is {AWS_KEY_ID} ✓; "
            f"and 日本語 {GITHUB_PAT}🙂 fin.")
    script(text, piece=2, chunk_bytes=5)
    s = stream_raw(gateway, token, ask())
    assert s.status == 200 and s.names()[-1] == "message_stop", s.names()
    assert s.text() == (text.replace(AWS_KEY_ID, mask("aws-access-key", AWS_KEY_ID, upstream))
                        .replace(GITHUB_PAT, mask("github-pat", GITHUB_PAT, upstream)))
    for value in (AWS_KEY_ID, GITHUB_PAT):
        assert leaked(s.raw, value) is None


@pytest.mark.parametrize("piece", [1, 2, 7])
def test_personal_data_cut_across_stream_deltas_is_masked(gateway, upstream, script, token,
                                                          piece):
    text = (f"Reach {EMAIL} or call +44 20 7946 0321; card {CARD}; SSN {SSN}; "
            f"IBAN {IBAN}.")
    script(text, piece=piece)
    s = stream_raw(gateway, token, ask())
    expected = text
    for detector, value in [("email", EMAIL), ("phone", "+44 20 7946 0321"),
                            ("payment-card", CARD), ("us-ssn", SSN), ("iban", IBAN)]:
        expected = expected.replace(value, mask(detector, value, upstream))
    assert s.text() == expected


@pytest.mark.parametrize("tail", [GITHUB_PAT[:14], "AKIA12", "sk-ant-api03-abc", "dana@",
                                  "4111 1111"], ids=["ghp", "akia", "sk-ant", "at", "digits"])
def test_possible_secret_prefix_at_the_end_of_a_block_is_delivered_whole(
        gateway, upstream, script, token, tail):
    """What was held back as a possible secret start is flushed at content_block_stop."""
    text = f"The answer ends with {tail}"
    script(text, piece=3)
    s = stream_raw(gateway, token, ask())
    assert s.text() == text
    assert s.names()[-1] == "message_stop"


def test_secret_ending_the_block_is_masked_at_its_end(gateway, upstream, script, token):
    text = f"last: {GITHUB_PAT}"
    script(text, piece=6)
    s = stream_raw(gateway, token, ask())
    assert s.text() == f"last: {mask('github-pat', GITHUB_PAT, upstream)}"
    assert leaked(s.raw, GITHUB_PAT) is None


def test_citations_are_masked(gateway, upstream, script, token):
    cited = f"deploy key {AWS_KEY_ID} (rotated monthly)"
    script("Per the notes, rotate it.", citations=[cited], piece=5)
    with gateway.sdk(token).messages.stream(
            model=MODEL, max_tokens=256,
            messages=[{"role": "user", "content": "what do the notes say?"}]) as stream:
        final = stream.get_final_message()
    [block] = final.content
    assert block.text == "Per the notes, rotate it."
    assert [c.cited_text for c in block.citations] == [
        cited.replace(AWS_KEY_ID, mask("aws-access-key", AWS_KEY_ID, upstream))]


@pytest.mark.parametrize("first,live,rest", [
    ("Plain text, ", "Plain text, ", "then the rest of the answer."),
    ("Deploy with ghp_", "Deploy with ", GITHUB_PAT[4:] + " now."),
], ids=["plain", "possible-token-prefix-held"])
def test_text_is_delivered_live_while_the_upstream_is_paused(gateway, upstream, script, token,
                                                            first, live, rest):
    """The upstream sends its first delta and waits: the client gets that delta (less a possible
    secret prefix) while the upstream is still waiting."""
    text = first + rest
    script(text, piece=len(first), pause_after_first_delta=True)
    conn, resp = open_stream(gateway.port, token, ask(stream=True))
    try:
        assert resp.status == 200
        received = ""
        buffer = b""
        # Read until the first text delta: the upstream is paused right after sending it.
        while not received:
            line = resp.readline()
            assert line, "the stream ended before any text"
            buffer += line
            if line.startswith(b"data: "):
                data = json.loads(line[6:])
                if data["type"] == "content_block_delta":
                    received += data["delta"]["text"]
        was = script.release()
        assert was == "paused", (f"the first delta reached the client only once the upstream's "
                                 f"pause was over (pause state {was!r})")
        assert received == live
        buffer += resp.read()
    finally:
        conn.close()
    events = parse_sse(buffer)
    assert Stream(200, [], buffer, events).text() == text.replace(
        GITHUB_PAT, mask("github-pat", GITHUB_PAT, upstream))


# ------------------------------------------------------------------------------------------
# responses: JSON, encodings


def test_json_reply_masks_personal_data(gateway, upstream, script, token):
    text = (f"Customer: {EMAIL}, card {CARD}, SSN {SSN}, IBAN {IBAN}. "
            f"Leaked token {GITHUB_PAT}.")
    script(text)
    r = gateway.request("POST", "/v1/messages", headers_for(token), ask())
    assert r.status == 200, r.text
    body = r.json()
    expected = text
    for detector, value in [("email", EMAIL), ("payment-card", CARD), ("us-ssn", SSN),
                            ("iban", IBAN), ("github-pat", GITHUB_PAT)]:
        expected = expected.replace(value, mask(detector, value, upstream))
    assert body["content"] == [{"type": "text", "text": expected}]
    assert body["id"].startswith("msg_fake_") and body["type"] == "message"
    assert body["model"] == MODEL and body["stop_reason"] == "end_turn"
    for value in (EMAIL, CARD, SSN, IBAN, GITHUB_PAT):
        assert value not in r.text


def test_json_reply_tool_input_is_masked_and_structure_untouched(gateway, upstream, script,
                                                                 token):
    tool_input = {"command": f"aws configure set aws_access_key_id {AWS_KEY_ID}",
                  "note": f"PEM follows\n{PRIVATE_KEY}"}
    script("Running it.", tool={"name": "Bash", "input": tool_input})
    message = gateway.sdk(token).messages.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "configure aws"}])
    text, call = message.content
    assert text.text == "Running it."
    assert call.type == "tool_use" and call.name == "Bash" and call.id.startswith("toolu_fake_")
    assert call.input == {
        "command": tool_input["command"].replace(
            AWS_KEY_ID, mask("aws-access-key", AWS_KEY_ID, upstream)),
        "note": "PEM follows\n" + mask("private-key", PRIVATE_KEY, upstream)}
    assert message.stop_reason == "tool_use"


def test_json_reply_masks_tool_input_values_under_id_like_keys(gateway, upstream, script,
                                                                token):
    """Tool arguments are free text whatever their names: a `data`, `name` or `id` argument of a
    tool call is not a structural field of the message."""
    tool_input = {"data": f"key {AWS_KEY_ID}", "name": GITHUB_PAT, "id": EMAIL}
    expected = {"data": f"key {mask('aws-access-key', AWS_KEY_ID, upstream)}",
                "name": mask("github-pat", GITHUB_PAT, upstream),
                "id": mask("email", EMAIL, upstream)}
    script("", tool={"name": "Write", "input": tool_input}, piece=3)
    streamed = stream_raw(gateway, token, ask())
    assert json.loads(streamed.blocks()[0]) == expected
    script("", tool={"name": "Write", "input": tool_input})
    r = gateway.request("POST", "/v1/messages", headers_for(token), ask())
    assert r.status == 200, r.text
    assert r.json()["content"][0]["input"] == expected, "the JSON reply differs from the stream"
    for value in (AWS_KEY_ID, GITHUB_PAT, EMAIL):
        assert leaked(r.body, value) is None, f"{value[:6]}… leaked in the JSON reply"


def test_json_reply_masks_a_secret_used_as_a_tool_input_key_like_a_stream(gateway, upstream,
                                                                           script, token):
    tool_input = {"tokens": {GITHUB_PAT: "ci"}}
    script("", tool={"name": "Write", "input": tool_input}, piece=3)
    streamed = json.loads(stream_raw(gateway, token, ask()).blocks()[0])
    assert streamed == {"tokens": {mask("github-pat", GITHUB_PAT, upstream): "ci"}}
    script("", tool={"name": "Write", "input": tool_input})
    r = gateway.request("POST", "/v1/messages", headers_for(token), ask())
    assert r.json()["content"][0]["input"] == streamed, "the JSON reply differs from the stream"
    assert leaked(r.body, GITHUB_PAT) is None


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_client_accepting_gzip_gets_masked_plain_bytes(gateway, upstream, script, token, stream):
    text = f"key {AWS_KEY_ID} end"
    script(text, piece=3)
    accept = {"accept-encoding": "gzip, deflate, br, zstd"}
    expected = text.replace(AWS_KEY_ID, mask("aws-access-key", AWS_KEY_ID, upstream))
    if stream:
        s = stream_raw(gateway, token, ask(), accept)
        assert s.status == 200
        assert s.header("content-encoding") in (None, "identity")
        assert s.text() == expected
        raw = s.raw
    else:
        r = gateway.request("POST", "/v1/messages", {**headers_for(token), **accept}, ask())
        assert r.status == 200
        assert r.header("content-encoding") in (None, "identity")
        assert r.json()["content"][0]["text"] == expected
        raw = r.body
    assert leaked(raw, AWS_KEY_ID) is None
    [seen] = upstream.requests()
    assert "accept-encoding" not in [k.lower() for k, _ in seen["headers"]]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_compressed_upstream_reply_is_refused_as_uninspectable(gateway, upstream, script, token,
                                                              stream):
    script(f"key {GITHUB_PAT} end", piece=3, force_gzip=True)
    r = gateway.request("POST", "/v1/messages", headers_for(token), ask(stream=stream))
    assert refusal(r) == (500, "api_error", "response_uninspectable")
    assert r.header("content-encoding") in (None, "identity")
    assert leaked(r.body, GITHUB_PAT) is None
    assert len(upstream.requests()) == 1  # the upstream did answer: the reply was withheld


# ------------------------------------------------------------------------------------------
# requests


def outbound_body() -> bytes:
    """A Claude Code-like turn: `cat .env` returned credentials, the user pastes a key, a text
    document carries another. Compact JSON, ASCII only."""
    env = (f"AWS_REGION=eu-west-1\nAWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"
           f"GITHUB_TOKEN={GITHUB_PAT}\nLOG_LEVEL=debug\n")
    body = {
        "model": MODEL, "max_tokens": 256,
        "system": "You are a coding agent.",
        "messages": [
            {"role": "user", "content": f"What is in my .env? GitHub gave me {GITHUB_PAT}"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash",
                 "input": {"command": "cat .env"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": env},
                {"type": "tool_result", "tool_use_id": "toolu_02",
                 "content": [{"type": "text", "text": f"token: {GITHUB_PAT}"}]},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                "data": f"deploy key {AWS_KEY_ID}"}},
                {"type": "text", "text": f"Also my Anthropic key is {ANTHROPIC_KEY} - why?"},
            ]},
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def masked_outbound(upstream) -> bytes:
    out = outbound_body()
    for detector, value in SECRETS.items():
        out = out.replace(value.encode(), mask(detector, value, upstream).encode())
    return out


def test_secrets_in_tool_results_documents_and_user_text_are_masked_before_upstream(
        gateway, upstream, token):
    r = gateway.request("POST", "/v1/messages", headers_for(token), outbound_body())
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    for value in SECRETS.values():
        assert leaked(seen["body"], value) is None, f"{value[:4]}… reached the upstream"
    # Only the secrets changed: every other byte of the body is the client's.
    assert seen["body"].encode() == masked_outbound(upstream)
    assert leaked(r.body, GITHUB_PAT) is None  # the fake quotes the (masked) tool result back


def test_masked_request_bodies_are_byte_identical_across_sends(gateway, upstream, token):
    for _ in range(2):
        r = gateway.request("POST", "/v1/messages", headers_for(token), outbound_body())
        assert r.status == 200, r.text
    first, second = upstream.requests()
    assert first["body"] == second["body"]
    assert first["body"].encode() == masked_outbound(upstream)


def test_chunked_request_body_is_masked(gateway, upstream, token):
    data = json.dumps(ask(f"key {AWS_KEY_ID}")).encode()
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        conn.request("POST", "/v1/messages", body=iter([data[:40], data[40:]]),
                     headers=headers_for(token), encode_chunked=True)
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    assert resp.status == 200
    [seen] = upstream.requests()
    assert seen["body"].encode() == data.replace(
        AWS_KEY_ID.encode(), mask("aws-access-key", AWS_KEY_ID, upstream).encode())


def test_clamped_request_is_also_masked(gateway, upstream, token):
    """max_tokens above the role's limit is clamped, and the same body is masked."""
    r = gateway.request("POST", "/v1/messages", headers_for(token),
                        ask(f"token {GITHUB_PAT}", max_tokens=100_000))
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    sent = json.loads(seen["body"])
    assert sent["max_tokens"] == 64000
    assert sent["messages"][0]["content"] == f"token {mask('github-pat', GITHUB_PAT, upstream)}"


def test_count_tokens_request_is_masked(gateway, upstream, token):
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"count {GITHUB_PAT}"}]}
    r = gateway.request("POST", "/v1/messages/count_tokens", headers_for(token), body)
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    assert json.loads(seen["body"])["messages"][0]["content"] == (
        f"count {mask('github-pat', GITHUB_PAT, upstream)}")


def test_personal_data_is_counted_in_requests_but_masked_in_responses(gateway, upstream, token):
    audited = findings(gateway, "audited", "email")
    text = f"Please write to {EMAIL} about the invoice."
    # The fake echoes the user's text back: the same email goes up and comes down.
    r = gateway.request("POST", "/v1/messages", headers_for(token), ask(text))
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    assert json.loads(seen["body"])["messages"][0]["content"] == text
    reply = r.json()["content"][0]["text"]
    assert text.replace(EMAIL, mask("email", EMAIL, upstream)) in reply
    assert EMAIL not in r.text
    wait_until(lambda: findings(gateway, "audited", "email") > audited,
               "warden_dlp_findings{action=audited} counts the email of the request")


def test_concurrent_streams_are_masked_independently(gateway, upstream, token):
    """Eight streams at once, each echoing its own email (the fake quotes the user's text): each
    client gets the mask of its own email only."""
    emails = [f"agent{i}.{_fab(string.ascii_lowercase, 6)}@northwind-freight.io"
              for i in range(8)]

    def one(email: str) -> str:
        return stream_raw(gateway, token, ask(f"write to {email} today")).text()

    with ThreadPoolExecutor(len(emails)) as pool:
        texts = list(pool.map(one, emails))
    for email, text in zip(emails, texts):
        assert text.endswith(f"You said: write to {mask('email', email, upstream)} today"), text
    assert len(upstream.requests()) == len(emails)


# ------------------------------------------------------------------------------------------
# block profiles and the off profile


def test_block_request_profile_refuses_before_the_upstream(strict_gw, upstream, token):
    r = strict_gw.request("POST", "/v1/messages", headers_for(token),
                          ask(f"use this token: {GITHUB_PAT}"))
    assert refusal(r) == (403, "permission_error", "sensitive_data_blocked")
    assert r.json()["error"]["message"].startswith("warden: sensitive_data_blocked: ")
    assert leaked(r.body, GITHUB_PAT) is None
    assert upstream.requests() == []


def test_block_response_profile_ends_the_stream_with_an_error_event(strict_gw, upstream, script,
                                                                   token):
    # No secret name right before the key: the text after a name (`key`, `token`) waits until
    # its value is decided, so it would be held back too.
    before = "Deploy with this: "
    script(f"{before}{AWS_KEY_ID} and then restart the service.", piece=3)
    s = stream_raw(strict_gw, token, ask("how do I deploy?"))
    assert s.status == 200
    name, error = s.events[-1]
    assert name == "error", s.names()
    assert error["error"]["type"] == "permission_error"
    assert error["error"]["message"].startswith("warden: sensitive_data_blocked: ")
    assert s.text() == before
    assert "message_stop" not in s.names()
    assert leaked(s.raw, AWS_KEY_ID, window=5) is None
    assert "restart" not in s.raw.decode()


def test_block_response_profile_ends_a_tool_call_stream_before_the_key(strict_gw, upstream,
                                                                        script, token):
    script("", tool={"name": "Bash", "input": {"command": f"export ID={AWS_KEY_ID}; deploy"}},
           piece=3)
    s = stream_raw(strict_gw, token, ask())
    name, error = s.events[-1]
    assert name == "error" and error["error"]["type"] == "permission_error", s.names()
    assert "sensitive_data_blocked" in error["error"]["message"]
    assert leaked(s.raw, AWS_KEY_ID, window=5) is None
    # Only the vendor prefix, which every AWS key id shares, came before the error.
    # Everything before the key is delivered; of the key, at most its public prefix `AKIA`
    # (a stream may still hold the prefix while the key's match is undecided when it blocks).
    assert s.text().startswith('{"command": "export ID=')
    assert '{"command": "export ID=AKIA'.startswith(s.text())


def test_sdk_sees_a_blocked_stream_as_an_api_error(strict_gw, upstream, script, token):
    script(f"key {AWS_KEY_ID} end", piece=3)
    with pytest.raises(anthropic.APIError, match="sensitive_data_blocked"):
        with strict_gw.sdk(token).messages.stream(
                model=MODEL, max_tokens=64,
                messages=[{"role": "user", "content": "go"}]) as stream:
            stream.get_final_message()


def test_block_response_profile_refuses_a_json_reply(strict_gw, upstream, script, token):
    script(f"Here: {AWS_KEY_ID}.")
    r = strict_gw.request("POST", "/v1/messages", headers_for(token), ask())
    assert refusal(r) == (403, "permission_error", "sensitive_data_blocked")
    assert leaked(r.body, AWS_KEY_ID, window=5) is None


def test_strict_profile_masks_what_it_does_not_block_with_the_policy_mask_key(
        strict_gw, upstream, script, token):
    text = f"token {GITHUB_PAT}, mail {EMAIL}"
    script(text, piece=4)
    s = stream_raw(strict_gw, token, ask())
    assert s.names()[-1] == "message_stop"
    keyed = {value: dlp_mask(detector, value, upstream_key=STRICT_MASK_SECRET)
             for detector, value in [("github-pat", GITHUB_PAT), ("email", EMAIL)]}
    assert s.text() == text.replace(GITHUB_PAT, keyed[GITHUB_PAT]).replace(EMAIL, keyed[EMAIL])
    # dlp.mask_key replaces the key derived from the upstream key.
    assert keyed[GITHUB_PAT] != mask("github-pat", GITHUB_PAT, upstream)


def test_off_profile_leaves_both_directions_alone(strict_gw, upstream, script, issuer):
    token = issuer.mint(sub="robot", groups=["raw"])
    script(f"token {GITHUB_PAT}", piece=3)
    s = stream_raw(strict_gw, token, ask(f"my key {AWS_KEY_ID}"))
    assert s.text() == f"token {GITHUB_PAT}"
    [seen] = upstream.requests()
    assert AWS_KEY_ID in seen["body"]


# ------------------------------------------------------------------------------------------
# observability


def test_log_and_stats_count_findings_but_never_show_values(fresh_gw, upstream, script, token):
    masked, audited = findings(fresh_gw, "masked"), findings(fresh_gw, "audited")
    script(f"The token: {GITHUB_PAT}", piece=3)
    s = stream_raw(fresh_gw, token, ask(f"key {AWS_KEY_ID}, mail me at {EMAIL}"))
    assert s.status == 200 and s.names()[-1] == "message_stop"

    line = wait_until(
        lambda: re.search(r"dlp: masked [^\n]*", fresh_gw.log()),
        "a `dlp: masked` line in the gateway log").group(0)
    assert line == "dlp: masked aws-access-key=1 github-pat=1; audited email=1", line
    wait_until(lambda: findings(fresh_gw, "masked") - masked == 2,
               "warden_dlp_findings{action=masked} grows by 2")
    wait_until(lambda: findings(fresh_gw, "audited") - audited == 1,
               "warden_dlp_findings{action=audited} grows by 1")
    # Per detector (each series is defined when first needed, so it starts here).
    wait_until(lambda: findings(fresh_gw, "masked", "github-pat") >= 1,
               "warden_dlp_findings{detector=github-pat,action=masked} counts the token")
    log = fresh_gw.log()
    for value in (GITHUB_PAT, AWS_KEY_ID, EMAIL):
        assert leaked(log, value) is None, f"{leaked(log, value)!r} is in the gateway log"


def test_system_prompt_assistant_turns_and_document_fields_are_masked_before_upstream(
        gateway, upstream, token):
    body = {
        "model": MODEL, "max_tokens": 256,
        "system": [{"type": "text", "text": f"Deploy with {GITHUB_PAT}"}],
        "messages": [
            {"role": "user", "content": [
                {"type": "search_result", "source": "https://wiki.example/deploy",
                 "title": f"key {AWS_KEY_ID}", "content": [{"type": "text", "text": "see title"}]},
                {"type": "document", "title": "notes", "context": f"ctx {ANTHROPIC_KEY}",
                 "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
                {"type": "text", "text": "Deploy it."}]},
            {"role": "assistant", "content": f"Using {GITHUB_PAT} now"},
        ],
    }
    r = gateway.request("POST", "/v1/messages", headers_for(token), json.dumps(body).encode())
    assert r.status == 200, r.text
    [seen] = upstream.requests()
    for value in SECRETS.values():
        assert leaked(seen["body"], value) is None, f"{value[:4]}… reached the upstream"
    assert seen["body"].count("[REDACTED:") == 4


def test_an_over_deep_body_is_refused_and_the_worker_keeps_serving(gateway, upstream, token):
    levels = 4_000
    content = ('[{"type":"tool_result","tool_use_id":"t","content":' * levels + '"x"'
               + "}]" * levels)
    deep = f'{{"model":"{MODEL}","max_tokens":16,"messages":[{{"role":"user","content":{content}}}]}}'
    r = gateway.request("POST", "/v1/messages", headers_for(token), deep.encode())
    assert r.status == 400, r.text
    assert "invalid_request_error" in r.text
    assert upstream.requests() == []
    r = gateway.request("POST", "/v1/messages", headers_for(token), json.dumps(ask()).encode())
    assert r.status == 200, r.text
