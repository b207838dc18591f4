"""Warden's metrics through the real Envoy: a known sequence of calls (allowed, clamped, refused
for several reasons, a DLP mask, held requests approved, denied and failing) shows in
`/stats/prometheus` with exactly the labels and values docs/metrics.md promises — tokens and their
cost from the demo price table included — and every metric the Grafana dashboard
(deploy/grafana/warden.json) queries is one the gateway really emits, the budget panels' too (a
budget refusal and a stream cut are produced for them)."""

from __future__ import annotations

import json
import re
import secrets

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import REPO, FakeScript, init_keys, refusal
from test_approvals import FakeService, claims_for, sign
from test_audit import TOKEN as AUDIT_TOKEN, recorder  # noqa: F401 - the module's audit service
from test_dlp import GITHUB_PAT, wait_until

DASHBOARD = REPO / "deploy" / "grafana" / "warden.json"
JSON = {"content-type": "application/json"}
SONNET = "claude-sonnet-4-6"
HAIKU = "claude-haiku-4-5"
OPUS = "claude-opus-4-1"
# Nanos per input and output token in the demo price table (envoy/policy.yaml).
PRICES = {SONNET: (3_000, 15_000), HAIKU: (1_000, 5_000), OPUS: (15_000, 75_000)}
# Budgets of the metrics gateway, per subject: one analyst request a day; developers' streams
# reserve 64 output tokens and are cut when they pass what their 5000 daily tokens leave.
ANALYST_BUDGET = "metrics-analyst-daily"
DEVELOPER_BUDGET = "metrics-developer-daily"


@pytest.fixture(scope="module")
def approval_service(tmp_path_factory):
    """A fake approval service whose verdict the test chooses (`mode["answer"]`), signed with the
    key the gateway trusts."""
    keys = init_keys(tmp_path_factory.mktemp("metrics-keys"))
    pem = (keys / "approvals-signing-key.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    mode = {"answer": "approved"}

    def answer(hold: dict) -> tuple[int, bytes, float]:
        if mode["answer"] == "error":
            return 500, b'{"error": "boom"}', 0
        return 200, json.dumps({"verdict": sign(key, claims_for(hold, mode["answer"]))}).encode(), 0

    fake = FakeService(answer)
    yield fake, keys, mode
    fake.close()


@pytest.fixture(scope="module")
def gateway(gateway_factory, make_policy, tmp_path_factory, recorder, approval_service):
    """A gateway with audit (tokens come from the records' usage) and approvals for opus."""
    fake, keys, _ = approval_service
    audit_token = tmp_path_factory.mktemp("metrics-audit") / "token"
    audit_token.write_text(AUDIT_TOKEN)
    policy = make_policy({
        "credentials": {"audit-token": {"env": "WARDEN_AUDIT_TOKEN"},
                        "approvals-token": {"env": "WARDEN_APPROVALS_TOKEN"},
                        "approvals-verdict-key": {"env": "WARDEN_APPROVALS_VERDICT_KEY"}},
        "audit": {"service": {"url": recorder.url, "token": "audit-token"}},
        "approvals": {"service": {"url": fake.url, "token": "approvals-token",
                                  "verdict_key": "approvals-verdict-key"}, "hold": "6s"},
        "accounting": {"expected_output_tokens": 64},
        "roles": {
            "developer": {
                "approval": {"approvers": ["leads"],
                             "triggers": [{"reason": "opus_model", "models": ["claude-opus-*"]}]},
                "budgets": [{"name": DEVELOPER_BUDGET, "per": "subject", "window": "day", "tokens": 5000}]},
            "analyst": {"budgets": [{"name": ANALYST_BUDGET, "per": "subject", "window": "day", "requests": 1}]},
        },
    })
    return gateway_factory(policy, extra_args=[
        "--credential-file", f"WARDEN_AUDIT_TOKEN={audit_token}",
        "--credential-file", f"WARDEN_APPROVALS_TOKEN={keys / 'approvals-token'}",
        "--credential-file", f"WARDEN_APPROVALS_VERDICT_KEY={keys / 'approvals-verdict-key.pub'}",
    ])


def body(model: str, text: str = "hello", max_tokens: int = 100) -> dict:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}


def series(gw, name: str) -> dict[frozenset, float]:
    """Every series of one metric: {frozenset of (label, value): value}."""
    return {labels: value for (metric, labels), value in gw.prometheus().items() if metric == name}


def labels(**values: str) -> frozenset:
    return frozenset(values.items())


def wait_for_requests(gw, count: int) -> dict[frozenset, float]:
    """The `warden_requests` series once `count` requests are counted (each is counted when its
    stream ends, just after the client has its answer)."""
    return wait_until(lambda: (s := series(gw, "warden_requests")) and sum(s.values()) == count and s,
                      f"{count} requests counted in warden_requests")


def test_a_known_sequence_of_calls_shows_with_exact_labels_and_values(gateway, issuer, approval_service):
    _, _, mode = approval_service
    dev_token = issuer.mint(groups=["eng"])
    dev = {**JSON, "authorization": f"Bearer {dev_token}"}
    analyst = {**JSON, "authorization": f"Bearer {issuer.mint(sub='ann', groups=['analysts'])}"}
    usage: dict[tuple[str, str, str], int] = {}

    def count_usage(role: str, message) -> None:
        add_usage(role, message.model, message.usage.input_tokens, message.usage.output_tokens)

    def add_usage(role: str, model: str, input_tokens: int, output_tokens: int) -> None:
        for kind, value in (("input", input_tokens), ("output", output_tokens)):
            usage[(role, model, kind)] = usage.get((role, model, kind), 0) + value

    client = gateway.sdk(dev_token)
    count_usage("developer", client.messages.create(**body(SONNET)))
    with client.messages.stream(**body(SONNET, "stream please")) as stream:
        count_usage("developer", stream.get_final_message())
    count_usage("developer", client.messages.create(**body(SONNET, "clamp me", max_tokens=100_000)))
    count_usage("developer", client.messages.create(**body(SONNET, f"deploy with {GITHUB_PAT}")))
    count_usage("analyst", gateway.sdk(analyst["authorization"][7:]).messages.create(**body(HAIKU)))
    assert refusal(gateway.request("POST", "/v1/messages", analyst, body(SONNET)))[2] == "model_not_allowed"
    too_long = body(HAIKU, max_tokens=2048)
    assert refusal(gateway.request("POST", "/v1/messages", analyst, too_long))[2] == "max_tokens_exceeded"
    assert refusal(gateway.request("POST", "/v1/messages", JSON, body(HAIKU)))[2] == "token_missing"
    held = []
    for answer in ("approved", "denied", "error"):
        mode["answer"] = answer
        held.append(gateway.request("POST", "/v1/messages", dev, body(OPUS, f"held {secrets.token_hex(4)}")))
    assert held[0].status == 200
    approved = held[0].json()
    add_usage("developer", approved["model"], approved["usage"]["input_tokens"], approved["usage"]["output_tokens"])
    assert [refusal(r)[2] for r in held[1:]] == ["approval_denied", "approval_unavailable"]

    requests = wait_for_requests(gateway, 11)
    assert requests == {
        labels(role="developer", decision="allowed", reason="none"): 4,
        labels(role="developer", decision="clamped", reason="none"): 1,
        labels(role="analyst", decision="allowed", reason="none"): 1,
        labels(role="analyst", decision="denied", reason="model_not_allowed"): 1,
        labels(role="analyst", decision="denied", reason="max_tokens_exceeded"): 1,
        labels(role="none", decision="denied", reason="token_missing"): 1,
        labels(role="developer", decision="denied", reason="approval_denied"): 1,
        labels(role="developer", decision="denied", reason="approval_unavailable"): 1,
    }
    expected_tokens = {labels(role=role, model=model, kind=kind): value
                       for (role, model, kind), value in usage.items()}
    assert {SONNET, HAIKU, OPUS} == {model for (_, model, _) in usage}
    assert series(gateway, "warden_tokens") == expected_tokens, "cache kinds stay absent at zero"
    expected_cost: dict[frozenset, float] = {}
    for (role, model, kind), value in usage.items():
        price = PRICES[model][0 if kind == "input" else 1]
        key = labels(role=role, model=model)
        expected_cost[key] = expected_cost.get(key, 0) + value * price
    assert series(gateway, "warden_cost_nano_usd") == expected_cost
    assert series(gateway, "warden_dlp_findings") == {labels(detector="github-pat", action="masked"): 1}
    assert series(gateway, "warden_approvals") == {
        labels(outcome="approved"): 1, labels(outcome="denied"): 1, labels(outcome="error"): 1}
    assert gateway.metric("warden_approvals_held") == 3
    assert gateway.metric("warden_audit_dropped") == 0
    assert ("warden_audit_waiting", frozenset()) in gateway.prometheus()
    # The stitched names are gone: every Warden metric is one family with labels.
    names = {name for name, _ in gateway.prometheus() if name.startswith("warden_")}
    assert names == {"warden_requests", "warden_tokens", "warden_cost_nano_usd", "warden_dlp_findings",
                     "warden_approvals", "warden_approvals_held", "warden_audit_dropped",
                     "warden_audit_stood_in", "warden_audit_waiting"}


def dashboard_metrics() -> set[str]:
    """Metric names in every query of the dashboard (PromQL read loosely: `warden_…` identifiers
    outside label matchers and grouping clauses)."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs.append(next(v["query"]["query"] for v in dashboard["templating"]["list"] if v["name"] == "role"))
    names = set()
    for expr in exprs:
        without_matchers = re.sub(r"\{[^}]*\}", " ", expr)
        without_grouping = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", without_matchers)
        names |= set(re.findall(r"\b(warden_[a-z_]+)\b", without_grouping))
    return names


def test_a_budget_refusal_and_a_stream_cut_count_by_budget(gateway, issuer, upstream):
    bea = {**JSON, "authorization": f"Bearer {issuer.mint(sub='bea', groups=['analysts'])}"}
    assert gateway.request("POST", "/v1/messages", bea, body(HAIKU, "first of the day")).status == 200
    refused = gateway.request("POST", "/v1/messages", bea, body(HAIKU, "second"))
    assert refused.status == 429, refused.text
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["message"].startswith(f'warden: budget_exhausted: budget "{ANALYST_BUDGET}" (subject bea) '), error
    scripted = FakeScript(upstream)
    scripted.reset()
    # ~30000 bytes of text: far past the ~5000 tokens the budget allows (one token per 3 bytes).
    scripted("word " * 6000, match="metrics-cut", piece=200)
    try:
        with pytest.raises(Exception) as raised:
            with gateway.sdk(issuer.mint(sub="cal", groups=["eng"])).messages.stream(
                    **body(SONNET, "metrics-cut: write a lot", max_tokens=20_000)) as stream:
                stream.get_final_message()
    finally:
        scripted.reset()
    assert f'budget "{DEVELOPER_BUDGET}" exhausted' in str(raised.value), raised.value
    wait_until(lambda: gateway.metric("warden_stream_cuts", budget=DEVELOPER_BUDGET) == 1, "the cut counted")
    assert series(gateway, "warden_budget_refusals") == {labels(budget=ANALYST_BUDGET): 1}
    assert series(gateway, "warden_stream_cuts") == {labels(budget=DEVELOPER_BUDGET): 1}
    assert gateway.metric("warden_requests", role="analyst", decision="denied", reason="budget_exhausted") == 1


def test_every_metric_the_dashboard_queries_is_in_the_live_scrape(gateway, issuer):
    # The sequence and budget tests ran first (same module, same gateway); make sure something
    # was counted.
    token = issuer.mint(groups=["eng"])
    gateway.sdk(token).messages.create(**body(SONNET, f"mask {GITHUB_PAT}"))
    wait_for_requests_at_least(gateway, 1)
    live = {name for name, _ in gateway.prometheus()}
    wanted = dashboard_metrics()
    assert len(wanted) >= 10, wanted
    budget_families = {"warden_cost_nano_usd", "warden_budget_refusals", "warden_stream_cuts"}
    assert budget_families <= wanted, "the dashboard shows spend, budget refusals and cuts"
    assert budget_families <= live, "the budget test produced a refusal and a cut"
    missing = wanted - live
    assert not missing, f"the dashboard queries metrics the gateway does not emit: {sorted(missing)}"
    docs = (REPO / "docs" / "metrics.md").read_text()
    undocumented = {name for name in wanted if f"`{name}" not in docs}
    assert not undocumented, f"docs/metrics.md does not describe {sorted(undocumented)}"


def wait_for_requests_at_least(gw, count: int) -> None:
    wait_until(lambda: sum(series(gw, "warden_requests").values()) >= count, "requests counted")


def test_the_dashboard_is_valid_grafana_json_with_a_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "warden" and dashboard["panels"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


def test_two_workers_count_into_the_same_series(gateway_factory, make_policy, issuer):
    """Each Envoy worker is a VM of its own that defines its series; the same name is the same
    counter, so `/stats/prometheus` shows one series with every worker's counts."""
    from concurrent.futures import ThreadPoolExecutor

    gw = gateway_factory(make_policy(), concurrency=2)
    dev = {**JSON, "authorization": f"Bearer {issuer.mint(groups=['eng'])}"}
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: gw.request("POST", "/v1/messages", dev, body(HAIKU, f"n{i}")).status,
                                 range(40)))
    assert statuses == [200] * 40
    workers = {name for name, value in gw.stats("listener.").items()
               if re.search(r"\.worker_\d+\.downstream_cx_total$", name) and value != "0"}
    assert len(workers) == 2, f"both workers served connections: {workers}"
    assert wait_for_requests(gw, 40) == {labels(role="developer", decision="allowed", reason="none"): 40}
