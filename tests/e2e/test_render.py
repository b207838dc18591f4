"""scripts/render_envoy.py on its own (no Envoy): what it takes from the policy and the flags."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from conftest import PYTHON, REPO, SCRIPTS

RENDER = SCRIPTS / "render_envoy.py"


def render(tmp_path, policy: dict, *flags: str) -> tuple[int, dict | None, str]:
    policy_path = tmp_path / "conf" / "policy.yaml"
    policy_path.parent.mkdir(exist_ok=True)
    policy_path.write_text(yaml.safe_dump(policy))
    wasm = tmp_path / "warden.wasm"
    wasm.write_bytes(b"\0asm")
    out = tmp_path / "envoy.yaml"
    proc = subprocess.run([PYTHON, str(RENDER), "--policy", str(policy_path), "--wasm", str(wasm),
                           "--port", "10001", "--admin-port", "10002", "--out", str(out), *flags],
                          capture_output=True, text=True, cwd=REPO)
    config = yaml.safe_load(out.read_text()) if proc.returncode == 0 else None
    return proc.returncode, config, proc.stderr


def base_policy(**identity) -> dict:
    return {"version": 1,
            "identity": {"providers": [{"name": "corp", "issuer": "https://idp.example",
                                        "audiences": ["warden"],
                                        "jwks": {"file": "keys/jwks.json"}}], **identity},
            "credentials": {"a": {"env": "KEY_A"}, "b": {"env": "KEY_B"}, "c": {"env": "KEY_A"}}}


@pytest.fixture
def jwks_file(tmp_path):
    path = tmp_path / "conf" / "keys" / "jwks.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"keys": []}')
    return path


def hcm(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]


def clusters(config: dict) -> dict[str, dict]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_providers_credentials_and_policy_text(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, base_policy())
    assert rc == 0, err
    filters = hcm(config)["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.jwt_authn", "warden",
                                           "envoy.filters.http.router"]
    provider = filters[0]["typed_config"]["providers"]["corp"]
    assert provider["local_jwks"] == {"filename": str(jwks_file)}  # relative to the policy file
    assert provider["forward"] is True  # Warden compares, then removes, the credential headers
    assert provider["payload_in_metadata"] == "jwt_payload"
    assert provider["failed_status_in_metadata"] == "jwt_failure"
    assert filters[0]["typed_config"]["rules"] == [
        {"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "corp"}, {"allow_missing_or_failed": {}}]}}}]
    plugin = filters[1]["typed_config"]["config"]
    assert plugin["vm_config"]["environment_variables"]["host_env_keys"] == ["KEY_A", "KEY_B"]
    assert plugin["failure_policy"] == "FAIL_RELOAD"
    assert yaml.safe_load(plugin["configuration"]["value"]) == base_policy()


def test_plain_http_upstream_is_static_without_tls(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, base_policy(), "--upstream", "http://127.0.0.1:9")
    assert rc == 0, err
    anthropic = clusters(config)["anthropic"]
    assert anthropic["type"] == "STATIC"
    assert "transport_socket" not in anthropic
    assert "dns_lookup_family" not in anthropic
    opts = anthropic["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "explicit_http_config" in opts


def test_https_upstream_has_sni_and_verification(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, base_policy())
    assert rc == 0, err
    anthropic = clusters(config)["anthropic"]
    assert anthropic["type"] == "LOGICAL_DNS"
    tls = anthropic["transport_socket"]["typed_config"]
    assert tls["sni"] == "api.anthropic.com"
    ctx = tls["common_tls_context"]
    assert ctx["alpn_protocols"] == ["h2", "http/1.1"]
    assert ctx["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "api.anthropic.com"}}]
    assert anthropic["per_connection_buffer_limit_bytes"] == 67108864


def test_remote_jwks_gets_its_own_tls_cluster(tmp_path):
    policy = base_policy()
    policy["identity"]["providers"][0]["jwks"] = {"uri": "https://idp.example/keys"}
    rc, config, err = render(tmp_path, policy)
    assert rc == 0, err
    provider = hcm(config)["http_filters"][0]["typed_config"]["providers"]["corp"]
    assert provider["remote_jwks"]["http_uri"] == {
        "uri": "https://idp.example/keys", "cluster": "jwks_corp", "timeout": "5s"}
    assert clusters(config)["jwks_corp"]["transport_socket"]["typed_config"]["sni"] == "idp.example"


@pytest.mark.parametrize("change, message", [
    ({"providers": []}, "identity.providers"),
    ({"providers": [{"name": "x y", "issuer": "i", "audiences": ["a"], "jwks": {"file": "f"}}]},
     "identity.providers[0].name"),
    ({"providers": [{"name": "x", "issuer": "i", "audiences": [], "jwks": {"file": "f"}}]},
     "audiences"),
    ({"providers": [{"name": "x", "issuer": "i", "audiences": ["a"],
                     "jwks": {"uri": "http://idp/keys"}}]}, "https://"),
    ({"providers": [{"name": "x", "issuer": "i", "audiences": ["a"],
                     "jwks": {"file": "missing.json"}}]}, "does not exist"),
])
def test_bad_identity_sections_are_named(tmp_path, change, message):
    rc, _, err = render(tmp_path, base_policy(**change))
    assert rc == 2
    assert message in err


def test_map_path_rewrites_files_for_a_container(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, base_policy(), "--bind", "0.0.0.0",
                             "--map-path", f"{tmp_path}=/etc/warden")
    assert rc == 0, err
    text = yaml.safe_dump(config)
    assert str(tmp_path) not in text
    filters = hcm(config)["http_filters"]
    assert filters[0]["typed_config"]["providers"]["corp"]["local_jwks"] == {
        "filename": "/etc/warden/conf/keys/jwks.json"}
    assert filters[1]["typed_config"]["config"]["vm_config"]["code"]["local"] == {
        "filename": "/etc/warden/warden.wasm"}


def approvals_policy(**service) -> dict:
    policy = base_policy()
    policy["approvals"] = {"service": {"url": "https://approvals.internal:8443/warden", "token": "a",
                                       "verdict_key": "b", **service}}
    return policy


def test_approval_service_gets_its_own_cluster(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, approvals_policy())
    assert rc == 0, err
    cluster = clusters(config)["warden_approvals"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "approvals.internal", "port_value": 8443}
    assert cluster["transport_socket"]["typed_config"]["sni"] == "approvals.internal"
    assert hcm(config)["stream_idle_timeout"] == "600s"


def test_a_named_approval_cluster_is_not_rendered(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, approvals_policy(cluster="outbound|8787||warden-serve"))
    assert rc == 0, err
    assert "warden_approvals" not in clusters(config)


@pytest.mark.parametrize("hold, idle", [("120s", "600s"), ("10m", "660s"), (590, "650s")])
def test_envoy_idle_timeout_stays_above_the_approval_hold(tmp_path, jwks_file, hold, idle):
    policy = approvals_policy()
    policy["approvals"]["hold"] = hold
    rc, config, err = render(tmp_path, policy)
    assert rc == 0, err
    assert hcm(config)["stream_idle_timeout"] == idle


def test_without_approvals_there_is_no_approval_cluster(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, base_policy())
    assert rc == 0, err
    assert "warden_approvals" not in clusters(config)
    assert hcm(config)["stream_idle_timeout"] == "600s"


def test_a_bad_hold_is_named(tmp_path, jwks_file):
    policy = approvals_policy()
    policy["approvals"]["hold"] = "two minutes"
    rc, _, err = render(tmp_path, policy)
    assert rc == 2
    assert "approvals.hold: 'two minutes' is not a duration" in err


def test_an_audit_service_of_its_own_gets_its_own_cluster(tmp_path, jwks_file):
    policy = approvals_policy()
    policy["audit"] = {"service": {"url": "http://audit.internal:9000", "token": "a"}}
    rc, config, err = render(tmp_path, policy)
    assert rc == 0, err
    endpoint = clusters(config)["warden_audit"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "audit.internal", "port_value": 9000}
    policy["audit"] = {}
    rc, config, err = render(tmp_path, policy)
    assert rc == 0, err
    assert "warden_audit" not in clusters(config), "records then go to the approval service's cluster"


def test_a_lease_service_of_its_own_gets_its_own_cluster(tmp_path, jwks_file):
    policy = approvals_policy()
    policy["accounting"] = {"leases": {"service": {"url": "http://ledger.internal:9001/w", "token": "a"}}}
    rc, config, err = render(tmp_path, policy)
    assert rc == 0, err
    endpoint = clusters(config)["warden_leases"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "ledger.internal", "port_value": 9001}
    policy["accounting"] = {"leases": {}}
    rc, config, err = render(tmp_path, policy)
    assert rc == 0, err
    assert "warden_leases" not in clusters(config), "asks then go to the approval service's cluster"


def test_a_revocation_service_of_its_own_gets_its_own_cluster(tmp_path, jwks_file):
    policy = approvals_policy()
    policy["identity"]["revocation"] = {"service": {"url": "http://kill.internal:9002/k", "token": "a"}}
    rc, config, err = render(tmp_path, policy)
    assert rc == 0, err
    cluster = clusters(config)["warden_revocations"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "kill.internal", "port_value": 9002}
    policy["identity"]["revocation"] = {}
    rc, config, err = render(tmp_path, policy)
    assert rc == 0, err
    assert "warden_revocations" not in clusters(config), "the list then comes from the approval service"


def test_the_ext_authz_kill_switch_asks_warden_serve_and_strips_the_payload(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, approvals_policy(), "--revocation-ext-authz")
    assert rc == 0, err
    filters = hcm(config)["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.jwt_authn", "envoy.filters.http.ext_authz",
                                           "warden", "envoy.filters.http.router"]
    assert filters[0]["typed_config"]["providers"]["corp"]["forward_payload_header"] == "x-warden-jwt-payload"
    ext_authz = filters[1]["typed_config"]
    assert ext_authz["failure_mode_allow"] is False, "fail closed"
    service = ext_authz["http_service"]
    assert service["server_uri"]["cluster"] == "warden_approvals"
    assert service["path_prefix"] == "/warden/v1/authz", "under the service URL's prefix"
    assert service["authorization_request"]["allowed_headers"]["patterns"] == [{"exact": "x-warden-jwt-payload"}]
    routes = [r for vh in hcm(config)["route_config"]["virtual_hosts"] for r in vh["routes"] if "route" in r]
    assert routes and all("x-warden-jwt-payload" in r["request_headers_to_remove"] for r in routes)
    rc, _, err = render(tmp_path, base_policy(), "--revocation-ext-authz")
    assert rc != 0 and "needs the policy's approvals.service" in err


def test_the_access_log_names_audit_records_and_can_go_to_a_file_too(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, base_policy())
    assert rc == 0, err
    [stdout] = hcm(config)["access_log"]
    line = stdout["typed_config"]["log_format"]["text_format_source"]["inline_string"]
    assert "audit_record=%FILTER_STATE(wasm.warden_audit_record:PLAIN)%" in line
    assert "audit_hash=%FILTER_STATE(wasm.warden_audit_hash:PLAIN)%" in line
    rc, config, err = render(tmp_path, base_policy(), "--access-log", "logs/access.log")
    assert rc == 0, err
    stdout, file = hcm(config)["access_log"]
    assert file["typed_config"]["path"] == str(REPO / "logs" / "access.log")
    assert file["typed_config"]["log_format"] == stdout["typed_config"]["log_format"]


def test_no_client_address_is_trusted_as_internal(tmp_path, jwks_file):
    """An empty cidr_ranges list means Envoy's built-in private and loopback ranges, so the
    rendered list must hold only addresses no peer has."""
    rc, config, err = render(tmp_path, base_policy())
    assert rc == 0, err
    internal = hcm(config)["internal_address_config"]
    assert internal["unix_sockets"] is False
    ranges = {(r["address_prefix"], r["prefix_len"]) for r in internal["cidr_ranges"]}
    assert ranges == {("0.0.0.0", 32), ("::", 128)}
    assert hcm(config)["use_remote_address"] is True


def test_envoy_refusals_of_every_status_are_mapped_to_anthropic_errors(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, base_policy())
    assert rc == 0, err
    mappers = hcm(config)["local_reply_config"]["mappers"]

    def statuses(mapper: dict) -> list[tuple[str, int]]:
        f = mapper["filter"]
        found = [f["status_code_filter"]] if "status_code_filter" in f else [
            g["status_code_filter"] for g in f.get("and_filter", {}).get("filters", [])
            if "status_code_filter" in g]
        return [(c["comparison"]["op"], c["comparison"]["value"]["default_value"]) for c in found]

    covered = [statuses(m) for m in mappers if "body_format_override" in m]
    for status in (400, 404, 408, 413, 426, 431, 500, 503):
        assert any(all((op == "EQ" and status == v) or (op == "GE" and status >= v)
                       or (op == "LE" and status <= v) for op, v in conditions)
                   for conditions in covered if conditions), f"{status} is not mapped"
    for mapper in mappers:
        if "body_format_override" in mapper:
            body = mapper["body_format_override"]["json_format"]
            assert body["type"] == "error" and body["error"]["message"].startswith("warden: ")


# ---------------------------------------------------------------------------------------------
# Warden's metric labels (docs/metrics.md)

LABEL_KEYS = {"role", "decision", "reason", "model", "kind", "budget", "detector", "action", "outcome"}


def extract_tags(config: dict, stat: str) -> tuple[str, dict[str, str]]:
    """What Envoy does with the rendered stats_tags: each regex that matches removes its first
    group from the name and makes its second the tag's value (Python's `re` reads these regexes
    as Envoy's ECMAScript engine does)."""
    import re

    cuts, tags = [], {}
    for spec in config["stats_config"]["stats_tags"]:
        m = re.search(spec["regex"], stat)
        if m:
            cuts.append(m.span(1))
            tags[spec["tag_name"]] = m.group(2)
    name = "".join(c for i, c in enumerate(stat) if not any(a <= i < b for a, b in cuts))
    return name, tags


def test_every_metric_label_has_a_tag_regex_that_takes_it_out_of_the_name(tmp_path, jwks_file):
    rc, config, err = render(tmp_path, base_policy())
    assert rc == 0, err
    assert {t["tag_name"] for t in config["stats_config"]["stats_tags"]} == LABEL_KEYS
    assert "use_all_default_tags" not in config["stats_config"], "Envoy's own tags stay on"
    stat = "wasmcustom.warden.role.analyst.decision.denied.reason.model_not_allowed.requests"
    assert extract_tags(config, stat) == (
        "wasmcustom.warden.requests", {"role": "analyst", "decision": "denied", "reason": "model_not_allowed"})
    stat = "wasmcustom.warden.role.dev.model.claude-sonnet-4-6.kind.cache_read.tokens"
    assert extract_tags(config, stat) == (
        "wasmcustom.warden.tokens", {"role": "dev", "model": "claude-sonnet-4-6", "kind": "cache_read"})


def test_a_label_value_that_looks_like_a_key_stays_a_value(tmp_path, jwks_file):
    rc, config, _ = render(tmp_path, base_policy())
    stat = "wasmcustom.warden.role.decision.decision.reason.reason.role.requests"
    assert extract_tags(config, stat) == (
        "wasmcustom.warden.requests", {"role": "decision", "decision": "reason", "reason": "role"})
    assert extract_tags(config, "wasmcustom.warden.audit.dropped") == ("wasmcustom.warden.audit.dropped", {})
    assert extract_tags(config, "cluster.anthropic.upstream_rq_200")[1] == {}


def test_the_istio_instructions_carry_the_rendered_tag_regexes(tmp_path, jwks_file):
    import json

    rc, config, _ = render(tmp_path, base_policy())
    text = (REPO / "docs" / "deployment.md").read_text()
    documented = [json.loads(line.strip().rstrip(",")) for line in text.splitlines()
                  if line.strip().startswith('{"tag_name"')]
    assert documented == config["stats_config"]["stats_tags"]
