"""One budget shared by two gateway instances through leases from one `warden serve`
(docs/budgets.md, "Many instances"): two Envoy processes with two workers each, a policy with
`accounting.leases` and a small daily token budget per group.

- 50 parallel streams split across both gateways (each retrying while its gateway leases more)
  spend at most `limit + (n − 1) × slice` (n = 2), the rest are refused with a 429 naming the
  budget, and `warden serve`'s ledger shows both instances within the same bound;
- `warden serve` stopped mid-way and started again on the same database: the gateways keep
  answering (within what they were granted) while it is down, the ledger survived, and grants
  continue after the restart within the bound;
- a gateway stopped and started again is a new instance, and its old lease shows as expired
  once the service's lease TTL passes.

Every budget key here is a group's (`per: group`), one group per test, so the tests do not share
a window. Waits poll for state with deadlines; nothing asserts a duration."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, WARDEN, FakeScript, Response, Service, free_port, init_keys
from test_dlp import wait_until

BUDGET = "team-daily"
LIMIT = 12_000
SLICE_PERCENT = 10
SLICE = LIMIT * SLICE_PERCENT // 100
INSTANCES = 2
BOUND = LIMIT + (INSTANCES - 1) * SLICE
# Short, so that a stopped gateway's lease shows as expired within the test.
LEASE_TTL_SECONDS = 3
MAX_TOKENS = 1000
# About 700 output tokens per answer (the fake reports len(json.dumps(content)) // 4), and under
# `MAX_TOKENS` by the stream cut's estimate too (3 bytes per token), so no answer is cut.
TEXT = "budget " * 400
# The refusal of a request this gateway's grant cannot fit while it leases more.
LEASING = "more is being leased from warden serve"
GROUPS = ("team-fifty", "team-serve-restart", "team-gateway-restart")


def actual_tokens(body_length: int) -> int:
    """The tokens the fake upstream reports for one scripted answer (scripts/fake_claude.py)."""
    output = max(1, len(json.dumps([{"type": "text", "text": TEXT}])) // 4)
    return max(1, body_length // 4) + output


def ledger_key(group: str) -> str:
    """The budget's ledger key for `group` (budget::ledger_key: the first 8 bytes of SHA-256)."""
    return f"warden.budget.{BUDGET}.group.{hashlib.sha256(group.encode()).hexdigest()[:16]}"


@dataclass
class Shared:
    service: Service
    gateways: list[Any]
    policy: Path
    extra_args: list[str]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, gateway_factory, make_policy):
    tmp = tmp_path_factory.mktemp("leases")
    keys = init_keys(tmp / "keys")
    port = free_port()
    policy = make_policy({
        "credentials": {"approvals-token": {"env": "WARDEN_APPROVALS_TOKEN"},
                        "approvals-verdict-key": {"env": "WARDEN_APPROVALS_VERDICT_KEY"}},
        "bindings": [{"group": "eng", "role": "developer"}, {"group": "leads", "role": "developer"},
                     *({"group": group, "role": "analyst"} for group in GROUPS)],
        "approvals": {"service": {"url": f"http://127.0.0.1:{port}", "token": "approvals-token",
                                  "verdict_key": "approvals-verdict-key"}},
        "accounting": {"leases": {"slice_percent": SLICE_PERCENT, "ask_every": "1s", "heartbeat": "1s"}},
        "roles": {
            # `warden serve` wants a role with approval rules.
            "developer": {"approval": {"approvers": ["leads"], "triggers": [
                {"reason": "opus_model", "models": ["claude-opus-*"]}]}},
            "analyst": {"budgets": [{"name": BUDGET, "per": "group", "window": "day", "tokens": LIMIT}]},
        },
    })
    service = Service(port, keys, tmp / "warden.db", policy, tmp / "serve.log",
                      extra_args=["--lease-ttl", str(LEASE_TTL_SECONDS)])
    service.start()
    extra_args = [
        "--credential-file", f"WARDEN_APPROVALS_TOKEN={keys / 'approvals-token'}",
        "--credential-file", f"WARDEN_APPROVALS_VERDICT_KEY={keys / 'approvals-verdict-key.pub'}",
    ]
    gateways = [gateway_factory(policy, concurrency=2, extra_args=extra_args) for _ in range(INSTANCES)]
    yield Shared(service, gateways, policy, extra_args)
    service.stop()


def ledger(service: Service) -> list[dict]:
    """`warden budget leases --json` over the service's database: every window with its leases."""
    out = subprocess.run([str(WARDEN), "budget", "leases", "--db", str(service.db), "--json",
                          "--lease-ttl", str(LEASE_TTL_SECONDS)],
                         capture_output=True, text=True, cwd=REPO, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["windows"]


def window_of(service: Service, group: str) -> dict | None:
    """The ledger's window of the group's budget key (today's), if the service has one."""
    key = ledger_key(group)
    return next((w for w in ledger(service) if w["key"] == key), None)


def ask(gateway, issuer, group: str, marker: str, deadline: float, retry: bool = True) -> Response:
    """A streamed request counted in `group`'s budget, sent again (after `retry-after`) while the
    gateway is leasing more, until it is admitted, finally refused, or the deadline passes
    (`retry=False`: sent once)."""
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01",
               "authorization": f"Bearer {issuer.mint(sub=marker, groups=[group])}"}
    body = {"model": "claude-haiku-4-5", "max_tokens": MAX_TOKENS, "stream": True,
            "messages": [{"role": "user", "content": f"{marker}: say budget"}]}
    while True:
        reply = gateway.request("POST", "/v1/messages", headers, body, timeout=60)
        leasing = reply.status == 429 and LEASING in reply.json()["error"]["message"]
        if not (leasing and retry) or time.monotonic() > deadline:
            return reply
        time.sleep(float(reply.header("retry-after") or 1))


def charged(upstream, group: str) -> int:
    """Tokens the fake upstream reported for the admitted requests of `group`'s test."""
    return sum(actual_tokens(r["body_length"]) for r in upstream.requests()
               if r["path"].startswith("/v1/messages") and f"{group}-" in r["body"])


def assert_refused_by_the_budget(reply: Response) -> None:
    assert reply.status == 429, (reply.status, reply.text)
    error = reply.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["message"].startswith(f'warden: budget_exhausted: budget "{BUDGET}" (group '), error["message"]
    assert LEASING not in error["message"], "finally refused, not waiting for a lease"


def assert_within_the_bound(window: dict) -> None:
    granted = window["granted"]["tokens"]
    assert granted <= BOUND, f"{granted} tokens granted in the window, over {BOUND}"
    assert sum(lease["granted"]["tokens"] for lease in window["leases"]) == granted
    assert window["limits"]["tokens"] == LIMIT


def test_fifty_streams_on_two_gateways_stay_within_the_many_instance_bound(shared, issuer, upstream):
    group = GROUPS[0]
    scripted = FakeScript(upstream)
    scripted.reset()
    markers = [f"{group}-{i:02d}" for i in range(50)]
    for marker in markers:
        # Each answer takes a moment, so many reservations are in flight at once.
        scripted(TEXT, match=marker, delay=0.2, piece=8)
    deadline = time.monotonic() + 120

    def send(i: int) -> Response:
        return ask(shared.gateways[i % INSTANCES], issuer, group, markers[i], deadline)

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            replies = list(pool.map(send, range(50)))
    finally:
        scripted.reset()
    admitted = [r for r in replies if r.status == 200]
    refused = [r for r in replies if r.status != 200]
    assert admitted and refused, sorted(r.status for r in replies)
    for reply in admitted:
        assert "event: message_stop" in reply.text
    for reply in refused:
        assert_refused_by_the_budget(reply)
    spent = charged(upstream, group)
    assert spent <= BOUND, f"{len(admitted)} answers used {spent} tokens, over {BOUND}"

    window = wait_until(lambda: (w := window_of(shared.service, group)) and len(w["leases"]) == INSTANCES and w,
                        "both gateway instances hold a lease on the budget", timeout=30)
    assert_within_the_bound(window)
    assert spent <= window["granted"]["tokens"], "no instance spends beyond its grant"
    instances = {lease["instance"] for lease in window["leases"]}
    assert len(instances) == INSTANCES and all(i.startswith("gw-") for i in instances), instances
    for gateway in shared.gateways:
        assert gateway.metric("warden_lease_calls", outcome="granted") > 0


def test_the_ledger_survives_a_warden_serve_restart_and_grants_go_on(shared, issuer, upstream):
    group = GROUPS[1]
    scripted = FakeScript(upstream)
    scripted.reset()
    deadline = time.monotonic() + 120
    sent = iter(range(1_000))

    def next_request(gateway, retry: bool = True) -> Response:
        marker = f"{group}-{next(sent):03d}"
        scripted(TEXT, match=marker, piece=64)
        return ask(gateway, issuer, group, marker, deadline, retry)

    try:
        # Half the budget, alternating gateways.
        admitted = 0
        while admitted < LIMIT // 2 // MAX_TOKENS:
            reply = next_request(shared.gateways[admitted % INSTANCES])
            assert reply.status == 200, (reply.status, reply.text)
            admitted += 1
        before = wait_until(lambda: (w := window_of(shared.service, group)) and len(w["leases"]) == INSTANCES and w,
                            "both instances leased before the restart", timeout=30)["granted"]["tokens"]

        failed_before = [lease_failures(gateway) for gateway in shared.gateways]
        shared.service.stop()
        # While the service is down, each gateway answers from what it was granted: an answer
        # or a 429 while it leases more, never an error of its own.
        for gateway in shared.gateways:
            reply = next_request(gateway, retry=False)
            assert reply.status in (200, 429), (reply.status, reply.text)
        for gateway, failed in zip(shared.gateways, failed_before):
            wait_until(lambda: lease_failures(gateway) > failed, "a failed lease call is counted", timeout=30)
        stored = window_of(shared.service, group)
        assert stored is not None and stored["granted"]["tokens"] >= before, "what was granted is on disk"

        shared.service.start()
        final = None
        for i in range(100):
            reply = next_request(shared.gateways[i % INSTANCES])
            if reply.status != 200:
                final = reply
                break
        assert final is not None, "the budget ran out"
        assert_refused_by_the_budget(final)
    finally:
        scripted.reset()
    window = window_of(shared.service, group)
    assert window is not None
    assert window["granted"]["tokens"] > stored["granted"]["tokens"], "grants went on after the restart"
    assert_within_the_bound(window)
    spent = charged(upstream, group)
    assert spent <= BOUND, f"{spent} tokens used, over {BOUND}"


def lease_failures(gateway) -> float:
    """Lease calls of a gateway that changed nothing (refused answers, no answer, not sent)."""
    return sum(gateway.metric("warden_lease_calls", outcome=outcome)
               for outcome in ("refused", "unreachable", "error"))


def test_a_restarted_gateway_is_a_new_instance_and_its_old_lease_expires(shared, gateway_factory, issuer, upstream):
    group = GROUPS[2]
    scripted = FakeScript(upstream)
    scripted.reset()
    deadline = time.monotonic() + 60
    first = gateway_factory(shared.policy, concurrency=2, extra_args=shared.extra_args)
    try:
        scripted(TEXT, match=f"{group}-first", piece=64)
        assert ask(first, issuer, group, f"{group}-first", deadline).status == 200
        window = wait_until(lambda: (w := window_of(shared.service, group)) and w["leases"] and w,
                            "the first gateway's lease", timeout=30)
        [old] = window["leases"]
        first.stop()
        again = gateway_factory(shared.policy, concurrency=2, extra_args=shared.extra_args)
        scripted(TEXT, match=f"{group}-again", piece=64)
        assert ask(again, issuer, group, f"{group}-again", deadline).status == 200
    finally:
        scripted.reset()

    def old_expired_beside_the_new_one() -> dict | None:
        window = window_of(shared.service, group)
        leases = {lease["instance"]: lease for lease in window["leases"]} if window else {}
        return window if len(leases) == 2 and not leases[old["instance"]]["live"] else None

    window = wait_until(old_expired_beside_the_new_one, "the stopped gateway's lease shows as expired",
                        timeout=30)
    [new] = [lease for lease in window["leases"] if lease["instance"] != old["instance"]]
    assert new["instance"].startswith("gw-") and new["first_ms"] > old["first_ms"]
    assert_within_the_bound(window)
