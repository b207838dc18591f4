#!/usr/bin/env python3
"""Render Warden's Envoy v3 bootstrap from envoy/envoy.template.yaml and a Warden policy.

The template is the readable reference configuration; this script fills its "{{name}}"
placeholders (see the template's header) with values taken from the command line and the policy:

  identity.providers[]   -> one jwt_authn provider each (+ a `jwks_<name>` cluster for a JWKS URI)
  credentials.<n>.env    -> vm_config.environment_variables.host_env_keys (names only, never values)
  the policy text        -> the wasm plugin's configuration (google.protobuf.StringValue), verbatim

Only the standard library and PyYAML are used. Secrets are never read here: the launcher
(scripts/run_envoy.py) puts credential files into Envoy's environment.

Examples:
  render_envoy.py --policy envoy/policy.yaml --wasm target/wasm32-wasip1/release/warden.wasm \\
      --port 10000 --admin-port 9901 --out .run/envoy.yaml
  render_envoy.py ... --upstream http://127.0.0.1:18080      # a local fake upstream
  render_envoy.py ... --bind 0.0.0.0 --wasm /etc/warden/warden.wasm \\
      --map-path "$PWD/.demo=/etc/warden/demo"                # paths as seen inside a container
  render_envoy.py ... --jwt-shape istio     # jwt_authn as Istio's RequestAuthentication makes it

The payload lands under the policy's `identity.payload_metadata_key` (default `jwt_payload`;
`{issuer}`: under each provider's issuer). `--jwt-shape istio` configures `jwt_authn` the way
istiod does for a RequestAuthentication (see `istio_jwt_authn`), so the filter can be tested
against Istio's shape without a cluster.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO / "envoy" / "envoy.template.yaml"
DEFAULT_UPSTREAM = "https://api.anthropic.com"
DEFAULT_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"

PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
WHOLE = re.compile(r"^\{\{(\*?)([a-z_]+)\}\}$")
INLINE = re.compile(r"\{\{([a-z_]+)\}\}")


# Hosts a JWKS may be fetched from over plain http: the same machine only.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

class RenderError(Exception):
    """A problem with the inputs; the message names the offending field or flag."""


# --------------------------------------------------------------------------------------------
# inputs


def parse_url(url: str, what: str) -> tuple[str, str, int, str]:
    """Return (scheme, host, port, path) of an http(s) URL, or raise RenderError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RenderError(f"{what}: {url!r} is not an http:// or https:// URL")
    if not parts.hostname:
        raise RenderError(f"{what}: {url!r} has no host")
    if parts.username or parts.password:
        raise RenderError(f"{what}: credentials in the URL are not supported")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise RenderError(f"{what}: {url!r}: {exc}") from None
    return parts.scheme, parts.hostname, port, parts.path


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def load_policy(path: Path) -> tuple[str, dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"--policy: cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RenderError(f"--policy: {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RenderError(f"--policy: {path} must hold a mapping at the top level")
    return text, data


def map_path(path: str, mappings: list[tuple[str, str]]) -> str:
    """Rewrite a host path into the path the Envoy process sees (e.g. inside a container)."""
    for host, target in mappings:
        host = host.rstrip("/")
        if path == host or path.startswith(host + "/"):
            return target.rstrip("/") + path[len(host):]
    return path


def credential_env_names(policy: dict) -> list[str]:
    """Every `credentials.<name>.env` in the policy, in order, without duplicates."""
    creds = policy.get("credentials") or {}
    if not isinstance(creds, dict):
        raise RenderError("credentials: must be a mapping of name -> {env: VAR}")
    names: list[str] = []
    for name, cred in creds.items():
        env = cred.get("env") if isinstance(cred, dict) else None
        if env is None:
            continue
        if not isinstance(env, str) or not ENV_NAME.match(env):
            raise RenderError(f"credentials.{name}.env: {env!r} is not an environment variable name")
        if env not in names:
            names.append(env)
    return names


def tls_transport_socket(host: str, ca_file: str, alpn: list[str]) -> dict:
    """Upstream TLS: SNI = host, certificate checked against the CA bundle and the host name."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": host,
            "common_tls_context": {
                "alpn_protocols": alpn,
                "validation_context": {
                    "trusted_ca": {"filename": ca_file},
                    "match_typed_subject_alt_names": [
                        {"san_type": "DNS", "matcher": {"exact": host}}
                    ],
                },
            },
        },
    }


def http_protocol_options(auto: bool) -> dict:
    opts: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    }
    if auto:
        opts["auto_config"] = {"http2_protocol_options": {}, "http_protocol_options": {}}
    else:
        opts["explicit_http_config"] = {"http_protocol_options": {}}
    return opts


def simple_cluster(name: str, scheme: str, host: str, port: int, ca_file: str) -> dict:
    """A cluster for a JWKS endpoint (HTTP/1.1 over TLS)."""
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC" if is_ip(host) else "LOGICAL_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {
                "hostname": host,
                "address": {"socket_address": {"address": host, "port_value": port}},
            }}]}],
        },
    }
    if scheme == "https":
        cluster["transport_socket"] = tls_transport_socket(host, ca_file, ["http/1.1"])
    return cluster


# Label keys of Warden's metrics (src/core/metric_labels.rs, docs/metrics.md). The filter names a
# metric `warden.<key>.<value>....<metric>` (values hold only [A-Za-z0-9_-]); Envoy shows it as
# `wasmcustom.warden....`. One tag regex per key cuts its `.<key>.<value>` pair out of the name
# (the first capture group) and makes the value a tag (the second): the pairs before and after
# are matched whole, so a value can never be taken for a key, and the metric's own name ends the
# stat, so Envoy's default `_rq_<code>` tag regexes never reach a value.
WARDEN_LABEL_KEYS = ("role", "decision", "reason", "model", "kind", "budget", "detector", "action",
                     "outcome")
_PAIR = r"\.[a-z_]+\.[\w-]+"


def stats_tags() -> list[dict]:
    """`stats_config.stats_tags` for Warden's labelled metrics (Envoy keeps its default tags)."""
    return [{"tag_name": key,
             "regex": rf"^wasmcustom\.warden(?:{_PAIR})*?(\.{key}\.([\w-]+))(?:{_PAIR})*\.[a-z_]+$"}
            for key in WARDEN_LABEL_KEYS]


APPROVALS_CLUSTER = "warden_approvals"
DEFAULT_HOLD_SECONDS = 120
DEFAULT_STREAM_IDLE_SECONDS = 600


def parse_seconds(value: Any, what: str) -> int:
    """A policy duration (`90`, `90s`, `15m`, `1h30m`) in seconds, as Warden reads it."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", str(value).strip())
    if not isinstance(value, str) or not value.strip() or match is None:
        raise RenderError(f"{what}: {value!r} is not a duration (e.g. 90s, 15m, 1h)")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def approvals_cluster(policy: dict, ca_file: str, address: str | None) -> tuple[list[dict], int]:
    """The `warden_approvals` cluster for `approvals.service.url` (none when the policy names a
    cluster of its own, or has no approvals), and the hold in seconds (0 without approvals).
    `address` (HOST:PORT) points the cluster elsewhere than the URL's host, e.g. a container
    name, while the callout keeps the URL's authority and path."""
    approvals = policy.get("approvals")
    if approvals is None:
        return [], 0
    if not isinstance(approvals, dict) or not isinstance(approvals.get("service"), dict):
        raise RenderError("approvals.service: must be a mapping with `url`, `token` and `verdict_key`")
    hold = parse_seconds(approvals.get("hold", DEFAULT_HOLD_SECONDS), "approvals.hold")
    service = approvals["service"]
    if service.get("cluster"):
        return [], hold
    url = service.get("url")
    if not isinstance(url, str):
        raise RenderError("approvals.service.url: must be a URL")
    scheme, host, port, _ = parse_url(url, "approvals.service.url")
    if address:
        host, sep, port_text = address.rpartition(":")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise RenderError(f"--approvals-address: {address!r} is not HOST:PORT")
        port = int(port_text)
    cluster = simple_cluster(APPROVALS_CLUSTER, scheme, host, port, ca_file)
    # Holds are long-polls: the filter's callout timeout (hold + 10 s) bounds them.
    return [cluster], hold


AUDIT_CLUSTER = "warden_audit"
LEASES_CLUSTER = "warden_leases"
REVOCATIONS_CLUSTER = "warden_revocations"


def own_service_cluster(section: Any, path: str, name: str, ca_file: str) -> list[dict]:
    """The cluster `name` for a policy section (`audit`, `accounting.leases`) whose `service`
    names a URL of its own (none when the section uses the approval service, or names a cluster
    of its own). `path` is the section's path, for errors."""
    if not isinstance(section, dict) or not isinstance(section.get("service"), dict):
        return []
    service = section["service"]
    if service.get("cluster"):
        return []
    url = service.get("url")
    if not isinstance(url, str):
        raise RenderError(f"{path}.service.url: must be a URL")
    scheme, host, port, _ = parse_url(url, f"{path}.service.url")
    return [simple_cluster(name, scheme, host, port, ca_file)]


def audit_cluster(policy: dict, ca_file: str) -> list[dict]:
    """The `warden_audit` cluster when `audit.service` names a URL of its own."""
    return own_service_cluster(policy.get("audit"), "audit", AUDIT_CLUSTER, ca_file)


def leases_cluster(policy: dict, ca_file: str) -> list[dict]:
    """The `warden_leases` cluster when `accounting.leases.service` names a URL of its own."""
    accounting = policy.get("accounting")
    leases = accounting.get("leases") if isinstance(accounting, dict) else None
    return own_service_cluster(leases, "accounting.leases", LEASES_CLUSTER, ca_file)


def revocations_cluster(policy: dict, ca_file: str) -> list[dict]:
    """The `warden_revocations` cluster when `identity.revocation.service` names a URL of its own."""
    identity = policy.get("identity")
    revocation = identity.get("revocation") if isinstance(identity, dict) else None
    return own_service_cluster(revocation, "identity.revocation", REVOCATIONS_CLUSTER, ca_file)


# The `payload_metadata_key` value meaning "under each provider's issuer" (Istio before 1.21).
PER_ISSUER_KEY = "{issuer}"
# Claims Istio 1.21+ normalizes from space-delimited strings to lists in the metadata.
ISTIO_SPACE_DELIMITED_CLAIMS = ["permission", "scope"]


def payload_metadata_key(policy: dict) -> str:
    identity = policy.get("identity") or {}
    key = identity.get("payload_metadata_key", "jwt_payload") if isinstance(identity, dict) else "jwt_payload"
    if not isinstance(key, str) or not key:
        raise RenderError("identity.payload_metadata_key: must be a non-empty string")
    return key


def jwt_providers(policy: dict, policy_dir: Path, mappings: list[tuple[str, str]],
                  ca_file: str, check_files: bool) -> tuple[dict, list[dict]]:
    identity = policy.get("identity") or {}
    payload_key = payload_metadata_key(policy)
    providers = identity.get("providers") if isinstance(identity, dict) else None
    if not providers:
        raise RenderError("identity.providers: the policy names no identity provider "
                          "(at least one {name, issuer, audiences, jwks} is required)")
    if not isinstance(providers, list):
        raise RenderError("identity.providers: must be a list")

    out: dict[str, dict] = {}
    clusters: list[dict] = []
    for i, p in enumerate(providers):
        where = f"identity.providers[{i}]"
        if not isinstance(p, dict):
            raise RenderError(f"{where}: must be a mapping")
        name = p.get("name")
        if not isinstance(name, str) or not PROVIDER_NAME.match(name):
            raise RenderError(f"{where}.name: {name!r} must match {PROVIDER_NAME.pattern}")
        where = f"identity.providers[{i}] ({name})"
        if name in out:
            raise RenderError(f"{where}.name: duplicate provider name")
        issuer = p.get("issuer")
        if not isinstance(issuer, str) or not issuer:
            raise RenderError(f"{where}.issuer: required (a non-empty string)")
        audiences = p.get("audiences")
        if (not isinstance(audiences, list) or not audiences
                or not all(isinstance(a, str) and a for a in audiences)):
            raise RenderError(f"{where}.audiences: required (a non-empty list of strings)")
        jwks = p.get("jwks")
        if not isinstance(jwks, dict) or len(jwks) != 1 or not ({"file", "uri"} & jwks.keys()):
            raise RenderError(f"{where}.jwks: must be exactly one of {{file: PATH}} or {{uri: URL}}")

        provider: dict[str, Any] = {"issuer": issuer, "audiences": list(audiences)}
        if "file" in jwks:
            f = jwks["file"]
            if not isinstance(f, str) or not f:
                raise RenderError(f"{where}.jwks.file: must be a path")
            path = Path(f) if os.path.isabs(f) else (policy_dir / f)
            path = Path(os.path.normpath(path))
            if check_files and not path.is_file():
                raise RenderError(f"{where}.jwks.file: {f!r} -> {path} does not exist")
            provider["local_jwks"] = {"filename": map_path(str(path), mappings)}
        else:
            uri = jwks["uri"]
            if not isinstance(uri, str):
                raise RenderError(f"{where}.jwks.uri: must be a URL")
            scheme, host, port, _ = parse_url(uri, f"{where}.jwks.uri")
            if scheme != "https" and host not in LOOPBACK_HOSTS:
                # Keys fetched in clear text could be swapped by anyone on the path (Warden's
                # policy check refuses them too); only the same machine's token service is
                # trusted over plain http.
                raise RenderError(f"{where}.jwks.uri: must be an https:// URL (http:// only on a loopback host)")
            cluster = f"jwks_{name}"
            provider["remote_jwks"] = {
                "http_uri": {"uri": uri, "cluster": cluster, "timeout": "5s"},
                "cache_duration": "600s",
                # Fetch at start-up (and on expiry) rather than on the first request; the listener
                # does not wait for it.
                "async_fetch": {"fast_listener": True},
            }
            clusters.append(simple_cluster(cluster, scheme, host, port, ca_file))
        provider.update({
            "from_headers": [
                {"name": "authorization", "value_prefix": "Bearer "},
                {"name": "x-api-key"},
            ],
            # Keep the token headers: Warden compares them (two different credentials are
            # refused, the same token in both is Claude Code's apiKeyHelper) and removes every
            # client credential before forwarding.
            "forward": True,
            "payload_in_metadata": issuer if payload_key == PER_ISSUER_KEY else payload_key,
            "failed_status_in_metadata": "jwt_failure",
            "clock_skew_seconds": 30,
            # Remember verified tokens (per worker): an agent re-sends the same token on every
            # call, and ES256 verification is most of jwt_authn's cost. Expiry is still checked.
            "jwt_cache_config": {"jwt_cache_size": 1000},
        })
        out[name] = provider
    return out, clusters


def jwt_requirement(providers: dict) -> dict:
    """Any provider may verify the token, and a missing or failed token still reaches Warden
    (which refuses it in Anthropic's error format). Naming the providers, rather than only
    `allow_missing_or_failed`, is what makes jwt_authn use its cache of verified tokens."""
    alternatives = [{"provider_name": name} for name in providers]
    alternatives.append({"allow_missing_or_failed": {}})
    return {"requires_any": {"requirements": alternatives}}


def istio_jwt_authn(providers: dict) -> tuple[dict, dict]:
    """(providers, requirement) as istiod builds them from a RequestAuthentication's jwtRules
    (pilot/pkg/security/authn/policy_applier.go, convertToEnvoyJwtConfig): providers named
    `origins-<i>` in issuer order, no failure status in metadata, no token cache, and a
    requirement that lets a request *without* a token through (AuthorizationPolicy decides) but
    has jwt_authn itself reject an invalid one — with its own 401, not Warden's. The rules'
    `fromHeaders` are ours (Authorization Bearer and x-api-key, as deploy/istio/ configures)."""
    shaped: dict[str, dict] = {}
    for i, provider in enumerate(sorted(providers.values(), key=lambda p: p["issuer"])):
        p = {k: v for k, v in provider.items()
             if k not in ("failed_status_in_metadata", "jwt_cache_config", "clock_skew_seconds")}
        if p["payload_in_metadata"] != p["issuer"]:
            # Istio 1.21+: a fixed key ("payload") and space-delimited claims as lists.
            p["normalize_payload_in_metadata"] = {"space_delimited_claims": ISTIO_SPACE_DELIMITED_CLAIMS}
        shaped[f"origins-{i}"] = p
    inner = [{"requires_any": {"requirements": [{"provider_name": name}, {"allow_missing": {}}]}}
             for name in shaped]
    if len(inner) == 1:
        return shaped, inner[0]
    outer = [{"provider_name": name} for name in shaped]
    outer.append({"requires_all": {"requirements": inner}})
    return shaped, {"requires_any": {"requirements": outer}}


def set_bypass_cors_preflight(config: Any) -> None:
    """Istio sets `bypass_cors_preflight` on its jwt_authn filter."""
    if isinstance(config, dict):
        if config.get("name") == "envoy.filters.http.jwt_authn" and isinstance(config.get("typed_config"), dict):
            config["typed_config"]["bypass_cors_preflight"] = True
        for value in config.values():
            set_bypass_cors_preflight(value)
    elif isinstance(config, list):
        for item in config:
            set_bypass_cors_preflight(item)


# --------------------------------------------------------------------------------------------
# template


def substitute(node: Any, values: dict[str, Any]) -> Any:
    """Replace placeholders in a loaded YAML tree (see the template's header)."""
    if isinstance(node, dict):
        out = {}
        for key, val in node.items():
            new = substitute(val, values)
            if new is _DROP:
                continue
            out[key] = new
        return out
    if isinstance(node, list):
        items: list[Any] = []
        for item in node:
            m = WHOLE.match(item) if isinstance(item, str) else None
            if m and m.group(1) == "*":
                spliced = lookup(values, m.group(2))
                if not isinstance(spliced, list):
                    raise RenderError(f"template: {{{{*{m.group(2)}}}}} needs a list value")
                items.extend(spliced)
                continue
            new = substitute(item, values)
            if new is not _DROP:
                items.append(new)
        return items
    if isinstance(node, str):
        m = WHOLE.match(node)
        if m:
            if m.group(1) == "*":
                raise RenderError(f"template: {node} may only stand as a list item")
            val = lookup(values, m.group(2))
            return _DROP if val is None else val
        return INLINE.sub(lambda mm: str(lookup(values, mm.group(1))), node)
    return node


_DROP = object()


def lookup(values: dict[str, Any], name: str) -> Any:
    if name not in values:
        raise RenderError(f"template: unknown placeholder {{{{{name}}}}}")
    return values[name]


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Multi-line strings (the embedded policy) as readable literal blocks.
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def render(args: argparse.Namespace) -> str:
    policy_path = Path(args.policy).resolve()
    policy_text, policy = load_policy(policy_path)
    mappings = []
    for m in args.map_path or []:
        host, sep, target = m.partition("=")
        if not sep or not host or not target:
            raise RenderError(f"--map-path: {m!r} is not HOST_PATH=TARGET_PATH")
        mappings.append((os.path.normpath(os.path.abspath(host)), target))

    providers, jwks_clusters = jwt_providers(policy, policy_path.parent, mappings,
                                             args.ca_file, not args.no_check_files)
    requirement = jwt_requirement(providers)
    if args.jwt_shape == "istio":
        providers, requirement = istio_jwt_authn(providers)
    env_keys = credential_env_names(policy)
    approval_clusters, hold = approvals_cluster(policy, args.ca_file, args.approvals_address)

    scheme, host, port, path = parse_url(args.upstream, "--upstream")
    if path not in ("", "/"):
        raise RenderError(f"--upstream: a path prefix ({path!r}) is not supported")

    wasm = args.wasm
    if not os.path.isabs(wasm):
        wasm = os.path.abspath(wasm)
    if not args.no_check_files and not os.path.isfile(wasm):
        raise RenderError(f"--wasm: {args.wasm} does not exist (build it: make build)")
    wasm = map_path(wasm, mappings)

    for flag in ("port", "admin_port"):
        v = getattr(args, flag)
        if not 0 < v < 65536:
            raise RenderError(f"--{flag.replace('_', '-')}: {v} is not a TCP port")

    values: dict[str, Any] = {
        "bind": args.bind,
        "port": args.port,
        "admin_bind": args.admin_bind,
        "admin_port": args.admin_port,
        "jwt_providers": providers,
        "jwt_requirement": requirement,
        "wasm": wasm,
        "host_env_keys": env_keys,
        "policy_text": policy_text,
        "upstream_host": host,
        "upstream_port": port,
        "upstream_cluster_type": "STATIC" if is_ip(host) else "LOGICAL_DNS",
        # STATIC clusters take no DNS settings.
        "upstream_dns_lookup_family": None if is_ip(host) else "V4_PREFERRED",
        "upstream_http_protocol_options": http_protocol_options(auto=scheme == "https"),
        "upstream_transport_socket": (tls_transport_socket(host, args.ca_file, ["h2", "http/1.1"])
                                      if scheme == "https" else None),
        "jwks_clusters": jwks_clusters,
        "approvals_clusters": (approval_clusters + audit_cluster(policy, args.ca_file)
                               + leases_cluster(policy, args.ca_file)
                               + revocations_cluster(policy, args.ca_file)),
        # A held request is silent while it waits: Envoy must not time it out first.
        "stream_idle_timeout": f"{max(DEFAULT_STREAM_IDLE_SECONDS, hold + 60)}s",
        "stats_tags": stats_tags(),
    }
    try:
        template = yaml.safe_load(Path(args.template).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RenderError(f"--template: {args.template}: {exc}") from None
    config = substitute(template, values)
    if args.revocation_ext_authz:
        add_revocation_ext_authz(config, policy)
    if args.jwt_shape == "istio":
        set_bypass_cors_preflight(config)
    if args.access_log:
        add_file_access_log(config, args.access_log)
    header = (
        "# Generated by scripts/render_envoy.py from envoy/envoy.template.yaml and the policy\n"
        f"# {policy_path.name}; do not edit — change the template or the policy and render again.\n"
    )
    return header + yaml.dump(config, Dumper=_Dumper, sort_keys=False,
                              default_flow_style=False, width=100, allow_unicode=True)


# The header jwt_authn forwards the verified payload in for the ext_authz variant (base64url JSON);
# removed by the route before the upstream.
PAYLOAD_HEADER = "x-warden-jwt-payload"


def add_revocation_ext_authz(config: Any, policy: dict) -> None:
    """--revocation-ext-authz: the kill switch asked per request instead of from the filter's list
    (docs/identity.md, "The kill switch", compares the two). jwt_authn forwards the verified
    payload in PAYLOAD_HEADER; Envoy's HTTP ext_authz, between jwt_authn and Warden, sends that
    header to `warden serve`'s `/v1/authz` on the approval service's cluster (fail closed: an
    error is a 503) and the route removes it before the upstream."""
    approvals = policy.get("approvals")
    if not isinstance(approvals, dict) or not isinstance(approvals.get("service"), dict):
        raise RenderError("--revocation-ext-authz: needs the policy's approvals.service (warden serve)")
    service = approvals["service"]
    scheme, host, port, prefix = parse_url(service.get("url", ""), "approvals.service.url")
    cluster = service.get("cluster") or APPROVALS_CLUSTER
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    jwt_at = next(i for i, f in enumerate(filters) if f["name"] == "envoy.filters.http.jwt_authn")
    for provider in filters[jwt_at]["typed_config"]["providers"].values():
        provider["forward_payload_header"] = PAYLOAD_HEADER
    filters.insert(jwt_at + 1, {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3",
            "failure_mode_allow": False,
            "status_on_error": {"code": 503},
            "http_service": {
                "server_uri": {"uri": f"{scheme}://{host}:{port}", "cluster": cluster, "timeout": "2s"},
                "path_prefix": f"{prefix.rstrip('/')}/v1/authz",
                "authorization_request": {"allowed_headers": {"patterns": [{"exact": PAYLOAD_HEADER}]}},
            },
        },
    })
    for vh in hcm["route_config"]["virtual_hosts"]:
        for route in vh["routes"]:
            if "route" in route:
                route["request_headers_to_remove"] = route.get("request_headers_to_remove", []) + [PAYLOAD_HEADER]


def add_file_access_log(config: Any, path: str) -> None:
    """Adds a file access log beside the template's stdout one, in the same format (so the
    audit trail's second trail — `audit_record=… audit_hash=…` — is kept in a file too)."""
    def access_logs(node: Any):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "access_log" and isinstance(value, list):
                    yield value
                else:
                    yield from access_logs(value)
        elif isinstance(node, list):
            for item in node:
                yield from access_logs(item)

    for loggers in access_logs(config):
        stdout = next((l for l in loggers if l.get("name") == "envoy.access_loggers.stdout"), None)
        if stdout is None:
            continue
        loggers.append({
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": os.path.abspath(path),
                "log_format": stdout["typed_config"]["log_format"],
            },
        })
        return
    raise RenderError("--access-log: the template has no stdout access log to copy the format of")


def add_render_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--policy", required=True, help="the Warden policy YAML")
    ap.add_argument("--wasm", required=True, help="path of warden.wasm (as Envoy will see it)")
    ap.add_argument("--upstream", default=DEFAULT_UPSTREAM,
                    help=f"Claude API base URL (default {DEFAULT_UPSTREAM}; "
                         "http://127.0.0.1:PORT for a local fake)")
    ap.add_argument("--port", type=int, default=10000, help="listener port (default 10000)")
    ap.add_argument("--admin-port", type=int, default=9901, help="admin port (default 9901)")
    ap.add_argument("--bind", default="127.0.0.1", help="listener address (default 127.0.0.1)")
    ap.add_argument("--admin-bind", default="127.0.0.1", help="admin address (default 127.0.0.1)")
    ap.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="bootstrap template")
    ap.add_argument("--ca-file", default=DEFAULT_CA_FILE,
                    help=f"CA bundle for TLS upstreams (default {DEFAULT_CA_FILE})")
    ap.add_argument("--map-path", action="append", metavar="HOST=TARGET",
                    help="rewrite file paths under HOST to TARGET in the output "
                         "(for configs used inside a container); repeatable")
    ap.add_argument("--approvals-address", metavar="HOST:PORT",
                    help="where the approval cluster connects, instead of the host and port of "
                         "approvals.service.url (e.g. a container name)")
    ap.add_argument("--access-log", metavar="PATH",
                    help="also write the access log (with each audit record's id and hash) to "
                         "this file, beside standard output")
    ap.add_argument("--jwt-shape", choices=["warden", "istio"], default="warden",
                    help="warden (default): jwt_authn never refuses, Warden answers every failure; "
                         "istio: jwt_authn as Istio's RequestAuthentication configures it "
                         "(for testing the filter under Istio)")
    ap.add_argument("--no-check-files", action="store_true",
                    help="do not require the wasm and JWKS files to exist at render time")
    ap.add_argument("--revocation-ext-authz", action="store_true",
                    help="ask warden serve's /v1/authz on every request (Envoy's ext_authz) instead "
                         "of the filter's revocation list: the design the benchmark compares "
                         "(docs/identity.md, \"The kill switch\")")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_render_args(ap)
    ap.add_argument("--out", help="write the bootstrap here (default: standard output)")
    args = ap.parse_args(argv)
    try:
        text = render(args)
    except RenderError as exc:
        print(f"render_envoy: {exc}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
