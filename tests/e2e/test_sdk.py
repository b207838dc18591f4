"""The official `anthropic` Python SDK through the gateway: non-streaming, streaming, a tool round
trip, count_tokens, models — and refusals surfacing as the SDK's own typed errors."""

from __future__ import annotations

import time

import anthropic
import pytest

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
}


@pytest.fixture
def client(gateway, issuer):
    return gateway.sdk(token=issuer.mint(groups=["eng"]))


@pytest.fixture
def analyst(gateway, issuer):
    return gateway.sdk(token=issuer.mint(sub="ann", groups=["analysts"]))


def test_non_streaming_message(client, upstream):
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=64,
                                     messages=[{"role": "user", "content": "Hello there"}])
    assert message.role == "assistant"
    assert message.content[0].text.startswith("Hello from the fake Claude upstream.")
    assert "Hello there" in message.content[0].text
    [seen] = upstream.requests()
    assert [v for k, v in seen["headers"] if k.lower() == "x-api-key"] == [upstream.api_key]
    assert not [k for k, _ in seen["headers"] if k.lower() == "authorization"]


def test_streaming_message(client, upstream):
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64,
                                messages=[{"role": "user", "content": "stream please"}]) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(deltas) > 1, "the answer must arrive as several deltas"
    assert "".join(deltas) == final.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_tool_round_trip(client, upstream):
    question = [{"role": "user", "content": "Use get_weather: what is the weather in Paris?"}]
    first = client.messages.create(model="claude-sonnet-4-6", max_tokens=256,
                                   tools=[WEATHER_TOOL], messages=question)
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "fake-value"}

    follow_up = question + [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": "sunny, 21 C"}]},
    ]
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=256,
                                tools=[WEATHER_TOOL], messages=follow_up) as stream:
        final = stream.get_final_message()
    assert "sunny, 21 C" in final.content[0].text
    assert len(upstream.requests()) == 2


def test_streamed_tool_call_assembles_its_input(client):
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=256, tools=[WEATHER_TOOL],
                                messages=[{"role": "user", "content": "call get_weather"}]) as stream:
        final = stream.get_final_message()
    [call] = [b for b in final.content if b.type == "tool_use"]
    assert call.input == {"city": "fake-value"}


def test_count_tokens_and_models(client):
    count = client.messages.count_tokens(model="claude-sonnet-4-6",
                                         messages=[{"role": "user", "content": "count me"}])
    assert count.input_tokens > 0
    models = [m.id for m in client.models.list()]
    assert any(m.startswith("claude-haiku") for m in models)
    assert client.models.retrieve("claude-haiku-4-5-20251001").id == "claude-haiku-4-5-20251001"


def test_refusals_surface_as_sdk_errors(analyst, upstream):
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        analyst.messages.create(model="claude-opus-4-6", max_tokens=64,
                                messages=[{"role": "user", "content": "hi"}])
    assert denied.value.status_code == 403
    assert "warden: model_not_allowed" in str(denied.value)
    assert denied.value.response.headers["request-id"].startswith("req_warden_")

    with pytest.raises(anthropic.PermissionDeniedError, match="tool_not_allowed"):
        analyst.messages.create(model="claude-haiku-4-5", max_tokens=64, tools=[WEATHER_TOOL],
                                messages=[{"role": "user", "content": "hi"}])
    assert upstream.requests() == []


def test_expired_token_is_an_authentication_error(gateway, issuer):
    expired = issuer.mint(iat=int(time.time()) - 3000, ttl=600)
    with pytest.raises(anthropic.AuthenticationError, match="token_expired"):
        gateway.sdk(token=expired).messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "hi"}])


def test_sdk_retries_nothing_on_refusal(gateway, issuer, upstream):
    """x-should-retry: false stops the SDK's automatic retries, even when they are enabled."""
    client = gateway.sdk(token=issuer.mint(groups=[]), max_retries=3)
    counter = "http.warden.downstream_rq_4xx"
    before = int(gateway.stats(counter)[counter])
    with pytest.raises(anthropic.PermissionDeniedError, match="no_role_binding"):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])
    assert int(gateway.stats(counter)[counter]) - before == 1
