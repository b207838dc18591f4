#!/usr/bin/env python3
"""A fake Claude API upstream for Warden's demo and end-to-end tests (standard library only).

It speaks just enough of the Anthropic API for the official clients to work through the gateway:

  POST /v1/messages               Message JSON, or an SSE stream when "stream": true
  POST /v1/messages/count_tokens  {"input_tokens": N}
  GET  /v1/models, /v1/models/ID  a small fixed model list

and it lets a test see what the gateway sent upstream:

  GET    /__fake/requests         every request received so far (JSON list, oldest first):
                                  {method, path (with query), headers: [[name, value], ...] in the
                                  order and multiplicity received, body (text), body_length,
                                  stream_closed_early: true when the gateway closed a stream
                                  before its end (seen while paused or as a failed write)}
  DELETE /__fake/requests         forget them

and it lets a test make the next /v1/messages reply say chosen things (to leak fabricated secrets
through the gateway, for its masking tests):

  POST   /__fake/script           {"text": "...", "thinking": "..." (optional),
                                   "tool": {"name": "Bash", "input": {...}} (optional),
                                   "tools": [{"name": ..., "input": {...}, "type": ...,
                                              "server_name": ...}, ...] (optional),
                                   "citations": ["cited text", ...] (optional),
                                   "piece": 3, "chunk_bytes": 0, "force_gzip": false,
                                   "crlf": false, "pause_after_first_delta": false,
                                   "pause_after_text_deltas": 0, "pause_timeout": 30,
                                   "blocks": [...] (optional), "delay": 0,
                                   "match": "..." (optional), "raw": "..." (optional),
                                   "abort": false, "status": 200}
                                  The next /v1/messages reply (a stream or JSON, as that request
                                  asks) has these blocks in this order: thinking (with a fake
                                  signature), text (omitted when "" and another block exists),
                                  tool_use; stop_reason "tool_use" with a tool, else "end_turn".
                                  tools: several calls after the text (parallel calls), each
                                  a tool_use unless "type" says server_tool_use or
                                  mcp_tool_use (with "server_name"); each streams its input
                                  as input_json_delta like "tool" (ids toolu_fake_<n>_<i>);
                                  stop_reason "tool_use" when one is a tool_use.
                                  A stream cuts the thinking, the text and the tool input's JSON
                                  (input_json_delta, after one empty fragment) into deltas of
                                  `piece` characters; each citation (a char_location citing
                                  document 0) is a citations_delta before the text deltas.
                                  chunk_bytes > 0: the stream's bytes go out in HTTP chunks of
                                  that many bytes, cutting events (and UTF-8 characters)
                                  anywhere; 0: one chunk per event. force_gzip: the reply is
                                  gzip-compressed whatever the request accepts. crlf: SSE lines
                                  end with CRLF. Non-ASCII text goes out as UTF-8 (not as
                                  JSON escapes), as Anthropic sends it.
                                  pause_after_first_delta: the stream stops after its first
                                  text_delta until POST /__fake/release, or until pause_timeout
                                  seconds have passed (a safety net; then it goes on).
                                  pause_after_text_deltas: n > 0: the same pause, after the
                                  n-th text_delta (1 is pause_after_first_delta).
                                  blocks: content blocks sent verbatim before the text block
                                  (e.g. a server_tool_use and its web_fetch_tool_result); a
                                  stream carries each whole in its content_block_start.
                                  delay: seconds to wait before the reply's status line.
                                  match: the script waits for the next /v1/messages request
                                  whose raw body contains this string (other requests are
                                  unscripted); several matched scripts may wait at once, beside
                                  the one without `match`, so a test can script its own
                                  requests while other clients use the same upstream. The script
                                  is used once; a request refused before /v1/messages (e.g. 401)
                                  does not use it.
                                  raw: a streaming reply's body is exactly this SSE text (one
                                  HTTP chunk per event), whatever else the script says (e.g. a
                                  stream as Warden ends it at a budget: tests/e2e/test_stream_cut.py).
                                  abort: the stream's connection is closed after its last event,
                                  without the chunked body's end, as a reset stream is.
                                  status: not 200: the reply is an Anthropic error with this
                                  status (rate_limit_error for 429, else api_error), `text` as
                                  its message and x-should-retry: false (e.g. the 429 Warden's
                                  admission gives once a budget is used up).
                                  Unknown fields or wrong types get a 400.
  GET    /__fake/script           {"script": the pending script or null, "pause": state,
                                   "matched": [the pending scripts with `match`]}
  DELETE /__fake/script           forget the pending scripts and release any pause
  POST   /__fake/release          release the pause: {"was": state before the call}, the state
                                  being "idle" (no pause scripted), "armed" (scripted, the stream
                                  has not reached it yet), "paused" (the stream is waiting now),
                                  "released" or "timed_out" (the wait is over)

A /v1/messages body nested too deep for Python's JSON parser gets a 400 invalid_request_error.

Every other request (all but /__fake/...) must carry `x-api-key: <the expected key>`
(--api-key or FAKE_CLAUDE_API_KEY; several keys, comma-separated, stand for several Anthropic
workspaces), or it gets Anthropic's 401 authentication_error. Request bodies may be chunked
(Envoy sends chunked bodies after a filter changed them). A client that accepts gzip gets gzip,
so tests can prove the gateway asks the upstream for plain bytes. Every response has
`request-id: req_fake_<n>`.

Unscripted replies are deterministic: "Hello from the fake Claude upstream." plus an echo of
the start of the last user text. When the last user text names a declared tool (as a word:
"use get_weather"), the reply is a tool_use call of that tool (required string properties =
"fake-value"); a tool_result in the last user turn is quoted back in a text reply.

  fake_claude.py --port 0 --api-key sk-test    # prints "fake_claude listening on http://127.0.0.1:N"
  fake_claude.py ... --tls-cert cert.pem --tls-key key.pem   # HTTPS (ALPN http/1.1), for TLS tests
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import itertools
import json
import os
import re
import select
import socket
import ssl
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

GREETING = "Hello from the fake Claude upstream."
ECHO_CHARS = 120
MAX_RECORDED = 10_000

MODELS = [
    {"id": "claude-opus-4-1-20250805", "display_name": "Claude Opus 4.1",
     "created_at": "2025-08-05T00:00:00Z"},
    {"id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5",
     "created_at": "2025-09-29T00:00:00Z"},
    {"id": "claude-haiku-4-5-20251001", "display_name": "Claude Haiku 4.5",
     "created_at": "2025-10-01T00:00:00Z"},
]


class BadRequest(Exception):
    """The request framing itself is broken; answer 400 and close the connection."""


class State:
    def __init__(self, api_key: str, event_delay: float) -> None:
        self.api_key = api_key
        self.event_delay = event_delay
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.counter = itertools.count(1)
        # POST /__fake/script: the content of the next /v1/messages reply, and its pause.
        self.script: dict | None = None
        self.matched: list[dict] = []
        self.pause_state = "idle"
        self.release_event = threading.Event()

    def record(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)
            if len(self.requests) > MAX_RECORDED:
                del self.requests[: len(self.requests) - MAX_RECORDED]

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.requests)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def next_request_id(self) -> str:
        with self.lock:
            return f"req_fake_{next(self.counter)}"

    def set_script(self, script: dict | None) -> None:
        with self.lock:
            pauses = bool(script and pause_after(script))
            if script is not None and script["match"] is not None:
                self.matched.append(script)
                if not pauses:
                    return
            else:
                self.script = script
            if script is None:
                self.matched.clear()
            # A stream still paused by an earlier script goes on.
            self.release_event.set()
            self.release_event = threading.Event()
            self.pause_state = "armed" if pauses else "idle"

    def take_script(self, raw: bytes) -> tuple[dict | None, threading.Event]:
        """The script for a /v1/messages request with this body: the first matched script whose
        `match` the body contains, else the one without `match`."""
        with self.lock:
            for i, script in enumerate(self.matched):
                if script["match"].encode() in raw:
                    del self.matched[i]
                    return script, self.release_event
            script, self.script = self.script, None
            return script, self.release_event

    def release(self) -> str:
        with self.lock:
            was = self.pause_state
            if was in ("armed", "paused"):
                self.pause_state = "released"
            self.release_event.set()
            return was

    def wait_for_release(self, event: threading.Event, timeout: float,
                         closed: Any = lambda: False) -> None:
        """Waits for the release (or the timeout); stops early once closed() says the peer
        closed the connection."""
        with self.lock:
            if event is self.release_event and self.pause_state == "armed":
                self.pause_state = "paused"
        deadline = time.monotonic() + timeout
        released = False
        while not released and time.monotonic() < deadline and not closed():
            released = event.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        with self.lock:
            if event is self.release_event and self.pause_state == "paused":
                self.pause_state = "released" if released else "timed_out"


# ------------------------------------------------------------------------------------------
# Anthropic API behaviour


def error_body(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


def block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, dict) and block.get("type") == "text":
        return str(block.get("text", ""))
    return ""


def content_text(content: Any) -> str:
    """Plain text of a message content (a string, or a list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(block_text(b) for b in content)
    return ""


def last_user_message(body: dict) -> dict | None:
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return msg
    return None


def tool_result_of(msg: dict | None) -> dict | None:
    if msg is None or not isinstance(msg.get("content"), list):
        return None
    for block in msg["content"]:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            return block
    return None


def tool_input(tool: dict) -> dict:
    schema = tool.get("input_schema") or {}
    props = schema.get("properties") or {}
    out = {}
    for name in schema.get("required") or []:
        prop = props.get(name) or {}
        if prop.get("type") == "string":
            out[name] = "fake-value"
    return out


def plan_reply(body: dict, request_id: str) -> dict:
    """Decide the assistant's answer: a text block or a tool_use block."""
    user = last_user_message(body)
    result = tool_result_of(user)
    tools = body.get("tools") or []
    if result is not None:
        quoted = content_text(result.get("content"))
        return {"kind": "text", "stop_reason": "end_turn",
                "text": f"{GREETING} Tool result: {quoted}"}
    said = content_text(user.get("content")) if user else ""
    named = [t for t in tools if isinstance(t, dict) and t.get("name")
             and re.search(r"\b" + re.escape(str(t["name"])) + r"\b", said)]
    if named:
        tool = named[0]
        return {"kind": "tool_use", "stop_reason": "tool_use",
                "id": "toolu_fake_" + request_id.rsplit("_", 1)[-1].rjust(8, "0"),
                "name": str(tool.get("name", "tool")), "input": tool_input(tool)}
    text = GREETING
    if said:
        text += " You said: " + said[:ECHO_CHARS]
    return {"kind": "text", "stop_reason": "end_turn", "text": text}


def token_estimate(n_chars: int) -> int:
    return max(1, n_chars // 4)


def message_json(body: dict, plan: dict, msg_id: str, input_tokens: int) -> dict:
    if plan["kind"] == "text":
        content = [{"type": "text", "text": plan["text"]}]
        out_tokens = token_estimate(len(plan["text"]))
    else:
        content = [{"type": "tool_use", "id": plan["id"], "name": plan["name"],
                    "input": plan["input"]}]
        out_tokens = token_estimate(len(json.dumps(plan["input"])) + len(plan["name"]))
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-unknown"),
        "content": content,
        "stop_reason": plan["stop_reason"],
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": out_tokens,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def pieces(text: str, n: int) -> list[str]:
    """Split text into about n non-empty pieces (at least one, even for empty text)."""
    if not text:
        return [""]
    size = max(1, -(-len(text) // n))
    return [text[i:i + size] for i in range(0, len(text), size)]


def sse(event: str, data: dict, ensure_ascii: bool = True) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=ensure_ascii)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def stream_events(body: dict, plan: dict, msg_id: str, input_tokens: int) -> list[bytes]:
    full = message_json(body, plan, msg_id, input_tokens)
    start = dict(full, content=[], stop_reason=None,
                 usage=dict(full["usage"], output_tokens=1))
    events = [sse("message_start", {"type": "message_start", "message": start})]
    if plan["kind"] == "text":
        events.append(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "text", "text": ""}}))
        events.append(sse("ping", {"type": "ping"}))
        for piece in pieces(plan["text"], 4):
            events.append(sse("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": piece}}))
    else:
        events.append(sse("content_block_start", {
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": plan["id"], "name": plan["name"],
                              "input": {}}}))
        events.append(sse("ping", {"type": "ping"}))
        for piece in [""] + pieces(json.dumps(plan["input"]), 3):
            events.append(sse("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": piece}}))
    events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(sse("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": plan["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": full["usage"]["output_tokens"]}}))
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


# ------------------------------------------------------------------------------------------
# scripted replies (POST /__fake/script)

CALL_TYPES = ("tool_use", "server_tool_use", "mcp_tool_use")
SCRIPT_DEFAULTS = {"text": "", "thinking": None, "tool": None, "tools": None, "citations": None,
                   "piece": 3,
                   "chunk_bytes": 0, "force_gzip": False, "crlf": False,
                   "pause_after_first_delta": False, "pause_after_text_deltas": 0,
                   "pause_timeout": 30.0, "blocks": None, "delay": 0.0, "match": None,
                   "raw": None, "abort": False, "status": 200}
FAKE_SIGNATURE = "ZmFrZSB0aGlua2luZyBzaWduYXR1cmU="


def parse_script(raw: bytes) -> dict:
    """A validated script with its defaults filled in; ValueError says what is wrong."""
    try:
        given = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the script is not JSON") from None
    if not isinstance(given, dict):
        raise ValueError("the script is a JSON object")
    unknown = sorted(set(given) - set(SCRIPT_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown script fields: {', '.join(unknown)}")
    script = dict(SCRIPT_DEFAULTS, **given)
    if not isinstance(script["text"], str):
        raise ValueError("text: a string")
    if script["thinking"] is not None and not isinstance(script["thinking"], str):
        raise ValueError("thinking: a string")
    tool = script["tool"]
    if tool is not None and not (isinstance(tool, dict) and isinstance(tool.get("name"), str)
                                 and isinstance(tool.get("input", {}), dict)):
        raise ValueError('tool: {"name": "...", "input": {...}}')
    calls = script["tools"]
    if calls is not None and not (
            isinstance(calls, list) and calls
            and all(isinstance(c, dict) and isinstance(c.get("name"), str)
                    and isinstance(c.get("input", {}), dict)
                    and c.get("type", "tool_use") in CALL_TYPES
                    and isinstance(c.get("server_name", ""), str) for c in calls)):
        raise ValueError('tools: a non-empty list of {"name": "...", "input": {...}, '
                         '"type": "tool_use"|"server_tool_use"|"mcp_tool_use", "server_name": "..."}')
    citations = script["citations"]
    if citations is not None and not (isinstance(citations, list)
                                      and all(isinstance(c, str) for c in citations)):
        raise ValueError("citations: a list of strings")
    blocks = script["blocks"]
    if blocks is not None and not (isinstance(blocks, list)
                                   and all(isinstance(b, dict) and isinstance(b.get("type"), str)
                                           for b in blocks)):
        raise ValueError('blocks: a list of content blocks ({"type": ...})')
    if script["match"] is not None and not (isinstance(script["match"], str) and script["match"]):
        raise ValueError("match: a non-empty string")
    if script["raw"] is not None and not (isinstance(script["raw"], str) and script["raw"]):
        raise ValueError("raw: a non-empty string (SSE text)")
    for name, least in (("piece", 1), ("chunk_bytes", 0), ("pause_after_text_deltas", 0),
                        ("status", 200)):
        value = script[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: an integer, at least {least}")
    for flag in ("force_gzip", "crlf", "pause_after_first_delta", "abort"):
        if not isinstance(script[flag], bool):
            raise ValueError(f"{flag}: true or false")
    timeout = script["pause_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError("pause_timeout: a positive number of seconds")
    delay = script["delay"]
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 60:
        raise ValueError("delay: seconds, between 0 and 60")
    return script


def pause_after(script: dict) -> int:
    """After how many text deltas a scripted stream pauses (0: it does not)."""
    return script["pause_after_text_deltas"] or (1 if script["pause_after_first_delta"] else 0)


def citation(cited_text: str) -> dict:
    return {"type": "char_location", "cited_text": cited_text, "document_index": 0,
            "document_title": "notes.txt", "start_char_index": 0,
            "end_char_index": len(cited_text)}


def cut(text: str, size: int) -> list[str]:
    """text in pieces of `size` characters (one empty piece for empty text)."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def scripted_blocks(script: dict, request_id: str) -> list[dict]:
    blocks = []
    if script["thinking"] is not None:
        blocks.append({"type": "thinking", "thinking": script["thinking"],
                       "signature": FAKE_SIGNATURE})
    blocks.extend(script["blocks"] or [])
    if script["text"] or script["citations"] or not (blocks or script["tool"] or script["tools"]):
        text: dict = {"type": "text", "text": script["text"]}
        if script["citations"]:
            text["citations"] = [citation(c) for c in script["citations"]]
        blocks.append(text)
    if script["tool"] is not None:
        blocks.append({"type": "tool_use",
                       "id": "toolu_fake_" + request_id.rsplit("_", 1)[-1].rjust(8, "0"),
                       "name": script["tool"]["name"],
                       "input": script["tool"].get("input", {})})
    suffix = request_id.rsplit("_", 1)[-1].rjust(8, "0")
    for i, call in enumerate(script["tools"] or []):
        kind = call.get("type", "tool_use")
        prefix = {"tool_use": "toolu", "server_tool_use": "srvtoolu", "mcp_tool_use": "mcptoolu"}[kind]
        block = {"type": kind, "id": f"{prefix}_fake_{suffix}_{i}", "name": call["name"],
                 "input": call.get("input", {})}
        if kind == "mcp_tool_use":
            block["server_name"] = call.get("server_name", "mcp")
        blocks.append(block)
    return blocks


def stops_for_tools(script: dict) -> bool:
    """Whether the scripted message ends with stop_reason tool_use (a client tool call)."""
    return script["tool"] is not None or any(
        c.get("type", "tool_use") == "tool_use" for c in script["tools"] or [])


def scripted_json(body: dict, script: dict, msg_id: str, request_id: str,
                  input_tokens: int) -> dict:
    blocks = scripted_blocks(script, request_id)
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "claude-unknown"),
        "content": blocks,
        "stop_reason": "tool_use" if stops_for_tools(script) else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens,
                  "output_tokens": token_estimate(len(json.dumps(blocks))),
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def utf8_sse(event: str, data: dict) -> bytes:
    """An SSE event whose JSON carries non-ASCII text as UTF-8, as Anthropic's does."""
    return sse(event, data, ensure_ascii=False)


def scripted_stream(body: dict, script: dict, msg_id: str, request_id: str,
                    input_tokens: int) -> tuple[list[bytes], int | None]:
    """The events of a scripted stream, and the index of the text_delta event after which it
    pauses (see pause_after), or None."""
    full = scripted_json(body, script, msg_id, request_id, input_tokens)
    start = dict(full, content=[], stop_reason=None, usage=dict(full["usage"], output_tokens=1))
    events = [utf8_sse("message_start", {"type": "message_start", "message": start}),
              utf8_sse("ping", {"type": "ping"})]
    first_text: int | None = None
    size = script["piece"]
    # The calls of `tools` stream their input like `tool`'s; `blocks` go verbatim.
    calls = len(script["tools"] or [])
    streamed_calls = {b["id"] for b in full["content"][len(full["content"]) - calls:]} if calls else set()
    pause_at = pause_after(script)

    def delta(index: int, payload: dict) -> bytes:
        return utf8_sse("content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": payload})

    for index, block in enumerate(full["content"]):
        if block["type"] == "thinking":
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [delta(index, {"type": "thinking_delta", "thinking": p})
                      for p in cut(block["thinking"], size)]
            deltas.append(delta(index, {"type": "signature_delta",
                                        "signature": block["signature"]}))
        elif block["type"] == "text":
            empty = {"type": "text", "text": ""}
            deltas = [delta(index, {"type": "citations_delta", "citation": c})
                      for c in block.get("citations", [])]
            texts = cut(block["text"], size)
            if first_text is None and pause_at:
                first_text = len(events) + len(deltas) + min(pause_at, len(texts))
            deltas += [delta(index, {"type": "text_delta", "text": p}) for p in texts]
        elif block["type"] != "tool_use" and block.get("id") not in streamed_calls:
            # A block given verbatim (`blocks`): whole in its content_block_start.
            empty, deltas = block, []
        else:
            empty = dict(block, input={})
            deltas = [delta(index, {"type": "input_json_delta", "partial_json": p})
                      for p in [""] + cut(json.dumps(block["input"]), size)]
        events.append(utf8_sse("content_block_start", {
            "type": "content_block_start", "index": index, "content_block": empty}))
        events.extend(deltas)
        events.append(utf8_sse("content_block_stop",
                               {"type": "content_block_stop", "index": index}))
    events.append(utf8_sse("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": full["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": full["usage"]["output_tokens"]}}))
    events.append(utf8_sse("message_stop", {"type": "message_stop"}))
    if script["crlf"]:
        events = [ev.replace(b"\n", b"\r\n") for ev in events]
    return events, first_text


def rechunk(events: list[bytes], size: int, pause_after: int | None) -> tuple[list[bytes],
                                                                             int | None]:
    """The stream's bytes in writes of `size` bytes, whatever they cut; one write ends exactly
    where event `pause_after` does. Returns the writes and the index of that one."""
    data = b"".join(events)
    cuts = set(range(size, len(data), size))
    pause_end = None
    if pause_after is not None:
        pause_end = sum(len(ev) for ev in events[:pause_after + 1])
        cuts.add(pause_end)
    bounds = [0] + sorted(c for c in cuts if 0 < c < len(data)) + [len(data)]
    pause_write = bounds.index(pause_end) - 1 if pause_end in bounds else None
    return [data[a:b] for a, b in zip(bounds, bounds[1:])], pause_write


# ------------------------------------------------------------------------------------------
# HTTP


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State  # set on the class by make_server

    def version_string(self) -> str:
        return "fake-claude/1"
    # -- plumbing --------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
        # the peer's delayed ACK add ~40 ms to every response (and would batch SSE events).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def read_body(self) -> bytes:
        te = ",".join(self.headers.get_all("Transfer-Encoding") or []).lower()
        if "chunked" in te:
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BadRequest("bad content-length") from None
        if n < 0:
            raise BadRequest("bad content-length")
        data = self.rfile.read(n)
        if len(data) != n:
            raise BadRequest("body shorter than content-length")
        return data

    def read_chunked(self) -> bytes:
        parts = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise BadRequest("connection closed inside a chunked body")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                # Trailers (if any) end with an empty line.
                while True:
                    trailer = self.rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise BadRequest("connection closed inside a chunk")
            parts.append(chunk)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("chunk not followed by CRLF")

    def wants_gzip(self) -> bool:
        for item in (self.headers.get("Accept-Encoding") or "").split(","):
            name, _, params = item.strip().partition(";")
            if name.strip().lower() == "gzip":
                q = re.search(r"q\s*=\s*([0-9.]+)", params)
                return not (q and float(q.group(1)) == 0.0)
        return False

    def send(self, status: int, payload: Any, content_type: str = "application/json",
             extra: dict | None = None, force_gzip: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"content-type": content_type, "request-id": self.request_id}
        if (force_gzip or self.wants_gzip()) and self.command != "HEAD":
            data = gzip.compress(data)
            headers["content-encoding"] = "gzip"
        headers.update(extra or {})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def peer_closed(self) -> bool:
        """Whether the gateway closed this connection (noted on the request's record)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            closed = bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            closed = True
        if closed:
            self.entry["stream_closed_early"] = True
        return closed

    def send_stream(self, events: list[bytes], force_gzip: bool = False,
                    pause_after: int | None = None, pause_timeout: float = 30.0,
                    release: threading.Event | None = None, abort: bool = False) -> None:
        """The events as a chunked SSE stream, one HTTP chunk each; after chunk `pause_after`,
        wait for `release`; `abort`: close without the end of the chunked body."""
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache",
                   "request-id": self.request_id}
        if force_gzip or self.wants_gzip():
            # The whole stream, compressed at the end: enough to test that the gateway asks for
            # identity encoding.
            self.send(200, b"".join(events), content_type="text/event-stream",
                      extra={"cache-control": "no-cache"}, force_gzip=force_gzip)
            return
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for i, ev in enumerate(events):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                self.wfile.flush()
                if i == pause_after and release is not None:
                    self.state.wait_for_release(release, pause_timeout, self.peer_closed)
                elif self.state.event_delay:
                    time.sleep(self.state.event_delay)
            if abort:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.entry["stream_closed_early"] = True
            self.close_connection = True

    # -- dispatch ----------------------------------------------------------------------------

    def handle_one(self) -> None:
        self.request_id = self.state.next_request_id()
        try:
            body = self.read_body()
        except BadRequest as exc:
            self.close_connection = True
            self.send(400, error_body("invalid_request_error", f"fake: {exc}"))
            return
        url = urlsplit(self.path)

        if url.path == "/__fake/requests":
            if self.command == "GET":
                self.send(200, self.state.snapshot())
            elif self.command == "DELETE":
                self.state.clear()
                self.send(200, {"cleared": True})
            else:
                self.send(405, error_body("invalid_request_error", "GET or DELETE"))
            return
        if url.path in ("/__fake/script", "/__fake/release"):
            self.control(url.path, body)
            return

        self.entry = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": body.decode("utf-8", errors="replace"),
            "body_length": len(body),
            "stream_closed_early": False,
        }
        self.state.record(self.entry)

        keys = self.headers.get_all("x-api-key") or []
        if len(keys) != 1 or keys[0] not in self.state.api_key.split(","):
            self.send(401, error_body("authentication_error", "invalid x-api-key"))
            return

        if url.path == "/v1/messages" and self.command == "POST":
            self.messages(body)
        elif url.path == "/v1/messages/count_tokens" and self.command == "POST":
            self.send(200, {"input_tokens": token_estimate(len(body))})
        elif url.path == "/v1/models" and self.command == "GET":
            self.send(200, {"data": [dict(m, type="model") for m in MODELS], "has_more": False,
                            "first_id": MODELS[0]["id"], "last_id": MODELS[-1]["id"]})
        elif url.path.startswith("/v1/models/") and self.command == "GET":
            wanted = url.path[len("/v1/models/"):]
            for m in MODELS:
                if m["id"] == wanted:
                    self.send(200, dict(m, type="model"))
                    return
            self.send(404, error_body("not_found_error", f"model: {wanted}"))
        else:
            self.send(404, error_body("not_found_error",
                                      f"fake: no route for {self.command} {url.path}"))

    def control(self, path: str, body: bytes) -> None:
        """POST/GET/DELETE /__fake/script and POST /__fake/release (see the module docstring)."""
        if path == "/__fake/release":
            if self.command != "POST":
                self.send(405, error_body("invalid_request_error", "POST"))
            else:
                self.send(200, {"was": self.state.release()})
        elif self.command == "POST":
            try:
                script = parse_script(body)
            except ValueError as exc:
                self.send(400, error_body("invalid_request_error", f"fake: {exc}"))
                return
            self.state.set_script(script)
            self.send(200, {"scripted": True})
        elif self.command == "GET":
            with self.state.lock:
                self.send(200, {"script": self.state.script, "pause": self.state.pause_state,
                                "matched": list(self.state.matched)})
        elif self.command == "DELETE":
            self.state.set_script(None)
            self.send(200, {"cleared": True})
        else:
            self.send(405, error_body("invalid_request_error", "GET, POST or DELETE"))

    def messages(self, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.send(400, error_body("invalid_request_error", "fake: body is not JSON"))
            return
        except RecursionError:
            self.send(400, error_body("invalid_request_error", "fake: body nested too deep"))
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self.send(400, error_body("invalid_request_error", "messages: field required"))
            return
        msg_id = "msg_fake_" + self.request_id.rsplit("_", 1)[-1].rjust(8, "0")
        input_tokens = token_estimate(len(raw))
        script, release = self.state.take_script(raw)
        if script is not None:
            if script["delay"]:
                time.sleep(script["delay"])
            if script["status"] != 200:
                kind = "rate_limit_error" if script["status"] == 429 else "api_error"
                self.send(script["status"], error_body(kind, script["text"]),
                          extra={"x-should-retry": "false"})
            elif body.get("stream") is True and script["raw"] is not None:
                raw_events = [ev + "\n\n" for ev in script["raw"].split("\n\n") if ev.strip()]
                self.send_stream([ev.encode() for ev in raw_events], abort=script["abort"])
            elif body.get("stream") is True:
                events, pause = scripted_stream(body, script, msg_id, self.request_id,
                                                input_tokens)
                if script["chunk_bytes"]:
                    events, pause = rechunk(events, script["chunk_bytes"], pause)
                self.send_stream(events, force_gzip=script["force_gzip"], pause_after=pause,
                                 pause_timeout=float(script["pause_timeout"]), release=release,
                                 abort=script["abort"])
            else:
                reply = scripted_json(body, script, msg_id, self.request_id, input_tokens)
                self.send(200, json.dumps(reply, ensure_ascii=False).encode(),
                          force_gzip=script["force_gzip"])
            return
        plan = plan_reply(body, self.request_id)
        if body.get("stream") is True:
            self.send_stream(stream_events(body, plan, msg_id, input_tokens))
        else:
            self.send(200, message_json(body, plan, msg_id, input_tokens))

    def _guarded(self) -> None:
        try:
            self.handle_one()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _guarded


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    verbose = False
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # In the connection's own thread: the TLS handshake of one client never blocks accept().
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError,
                            TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(host: str, port: int, api_key: str, event_delay: float = 0.0,
                verbose: bool = False, tls_cert: str | None = None,
                tls_key: str | None = None) -> Server:
    state = State(api_key, event_delay)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = Server((host, port), handler)
    server.verbose = verbose
    if tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls_cert, tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        server.tls = ctx
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fake Claude API upstream for Warden's tests.")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one)")
    ap.add_argument("--api-key", default=os.environ.get("FAKE_CLAUDE_API_KEY"),
                    help="the x-api-key every request must carry, or several separated by commas "
                         "(or FAKE_CLAUDE_API_KEY)")
    ap.add_argument("--event-delay", type=float, default=0.0,
                    help="seconds to wait between SSE events (default 0)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    ap.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    args = ap.parse_args(argv)
    if not args.api_key:
        ap.error("--api-key (or FAKE_CLAUDE_API_KEY) is required")
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    server = make_server(args.host, args.port, args.api_key, args.event_delay, args.verbose,
                         args.tls_cert, args.tls_key)
    host, port = server.server_address[:2]
    scheme = "https" if args.tls_cert else "http"
    print(f"fake_claude listening on {scheme}://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
