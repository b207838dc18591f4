"""deploy/istio/ without a cluster: every manifest parses, every name one manifest gives another
agrees (labels and selectors, namespaces, hosts, ports, issuers, audiences, credential variables),
the policy the WasmPlugin carries passes `warden check` and names the metadata key Istio writes —
and each of those checks fails on a broken edit."""

from __future__ import annotations

import copy
import fnmatch
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, WARDEN

ISTIO = REPO / "deploy" / "istio"
# Where istiod's jwt_authn leaves the verified payload: `payload` since Istio 1.21
# (pilot/pkg/xds/filters: EnvoyJwtFilterPayload); each rule's issuer before.
ISTIO_PAYLOAD_KEY = "payload"
# The headers Claude Code's apiKeyHelper sends its token in.
TOKEN_HEADERS = [{"name": "authorization", "prefix": "Bearer "}, {"name": "x-api-key"}]


def load_manifests() -> list[dict]:
    docs = []
    for path in sorted(ISTIO.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict) and doc.get("kind") and doc.get("apiVersion"), path
            doc.setdefault("metadata", {})["_file"] = path.name
            docs.append(doc)
    return docs


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def all_of(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def warden_check(policy: dict, tmp: Path) -> str:
    """`warden check` on the policy; '' when it is valid, else its complaint."""
    path = tmp / "embedded-policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    out = subprocess.run([str(WARDEN), "check", str(path)], capture_output=True, text=True, timeout=60)
    return "" if out.returncode == 0 else (out.stdout + out.stderr).strip() or f"exit {out.returncode}"


def problems(docs: list[dict], tmp: Path) -> list[str]:
    """Every inconsistency between the manifests (empty when they agree)."""
    found: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            found.append(what)

    deployment = one(docs, "Deployment", "warden-gateway")
    namespace = deployment["metadata"]["namespace"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "istio-proxy")
    expect(selects(deployment["spec"]["selector"]["matchLabels"], labels), "Deployment selector ≠ its pod labels")
    expect(pod["metadata"].get("annotations", {}).get("inject.istio.io/templates") == "gateway",
           "the gateway pod must be injected with Istio's gateway template")
    expect(pod["spec"]["serviceAccountName"] == one(docs, "ServiceAccount", "warden-gateway")["metadata"]["name"],
           "Deployment's service account is not the one declared")
    ports = {p["containerPort"] for p in container.get("ports", [])}

    service = one(docs, "Service", "warden-gateway")
    expect(selects(service["spec"]["selector"], labels), "Service selector does not select the gateway pods")
    expect(all(p["targetPort"] in ports for p in service["spec"]["ports"]), "Service targetPort is not a container port")
    gateway_host = f"{service['metadata']['name']}.{namespace}.svc.cluster.local"

    gateway = one(docs, "Gateway")
    expect(selects(gateway["spec"]["selector"], labels), "Gateway selector does not select the gateway pods")
    expect(all(s["port"]["number"] in ports for s in gateway["spec"]["servers"]), "Gateway listens on no container port")

    entry = one(docs, "ServiceEntry")
    upstream = entry["spec"]["hosts"]
    expect(upstream == ["api.anthropic.com"], "the ServiceEntry must be api.anthropic.com")
    expect(entry["spec"].get("exportTo") == ["."], "the ServiceEntry must be exported to the warden namespace only")
    route = one(docs, "VirtualService")
    expect(route["spec"]["gateways"] == [gateway["metadata"]["name"]], "VirtualService names another Gateway")
    destinations = [d["destination"] for h in route["spec"]["http"] for d in h["route"]]
    expect(all(d["host"] in upstream for d in destinations), "VirtualService routes elsewhere than the ServiceEntry")
    entry_ports = {p["number"]: p for p in entry["spec"]["ports"]}
    rule = one(docs, "DestinationRule")
    expect(rule["spec"]["host"] in upstream, "DestinationRule is for another host")
    tls_ports = {s["port"]["number"] for s in rule["spec"]["trafficPolicy"]["portLevelSettings"]
                 if s.get("tls", {}).get("mode") == "SIMPLE"}
    for d in destinations:
        port = d["port"]["number"]
        expect(port in entry_ports, f"route to port {port}, which the ServiceEntry lacks")
        expect(port in tls_ports and entry_ports.get(port, {}).get("targetPort") == 443,
               f"port {port} must originate TLS to api.anthropic.com:443")

    plugin = one(docs, "WasmPlugin", "warden")
    spec = plugin["spec"]
    expect(selects(spec["selector"]["matchLabels"], labels), "WasmPlugin selector does not select the gateway pods")
    expect(spec.get("phase") == "AUTHZ", "WasmPlugin must run after Istio's authentication (phase AUTHZ)")
    expect(spec.get("failStrategy") == "FAIL_CLOSE", "WasmPlugin must fail closed")
    policy = spec["pluginConfig"]
    complaint = warden_check(policy, tmp)
    expect(complaint == "", f"the WasmPlugin's policy fails `warden check`: {complaint}")
    identity = policy.get("identity", {})
    expect(identity.get("payload_metadata_key") == ISTIO_PAYLOAD_KEY,
           f"the policy must read the payload where Istio writes it ({ISTIO_PAYLOAD_KEY!r})")
    host_env = {e["name"] for e in spec.get("vmConfig", {}).get("env", []) if e.get("valueFrom") == "HOST"}
    container_env = {e["name"] for e in container.get("env", [])}
    for name, credential in policy.get("credentials", {}).items():
        expect(credential["env"] in host_env, f"credential {name}: {credential['env']} is not passed to the VM")
        expect(credential["env"] in container_env, f"credential {name}: {credential['env']} is not set on the gateway")

    authn = one(docs, "RequestAuthentication")
    expect(selects(authn["spec"]["selector"]["matchLabels"], labels),
           "RequestAuthentication does not select the gateway pods")
    rules = {r["issuer"]: r for r in authn["spec"]["jwtRules"]}
    providers = {p["issuer"]: p for p in identity.get("providers", [])}
    expect(set(rules) == set(providers), f"RequestAuthentication issuers {sorted(rules)} ≠ policy's {sorted(providers)}")
    for issuer, provider in providers.items():
        r = rules.get(issuer, {})
        expect(r.get("jwksUri") == provider.get("jwks", {}).get("uri"), f"{issuer}: JWKS URI differs from the policy's")
        expect(sorted(r.get("audiences", [])) == sorted(provider.get("audiences", [])), f"{issuer}: audiences differ")
        expect(r.get("fromHeaders") == TOKEN_HEADERS, f"{issuer}: tokens must be read from Authorization and x-api-key")
        expect(r.get("forwardOriginalToken") is True, f"{issuer}: Warden needs the token headers (forwardOriginalToken)")

    authz = one(docs, "AuthorizationPolicy", "warden-require-token")
    expect(selects(authz["spec"]["selector"]["matchLabels"], labels), "AuthorizationPolicy does not select the gateway")
    expect(authz["spec"].get("action", "ALLOW") == "ALLOW"
           and all(s["source"].get("requestPrincipals") == ["*"] for r in authz["spec"]["rules"] for s in r["from"]),
           "AuthorizationPolicy must allow only requests with a verified token")

    sidecar = one(docs, "Sidecar")
    agents = sidecar["metadata"]["namespace"]
    for doc in docs:
        kind, meta = doc["kind"], doc["metadata"]
        if kind in {"Deployment", "Service", "ServiceAccount", "Gateway", "ServiceEntry", "DestinationRule",
                    "VirtualService", "WasmPlugin", "RequestAuthentication", "AuthorizationPolicy"}:
            expect(meta.get("namespace") in (namespace, agents) and (meta.get("namespace") == namespace) != (
                meta.get("_file") in ("agent-example.yaml", "egress-lockdown.yaml")),
                f"{kind} {meta['name']} is not in namespace {namespace}")
    expect(sidecar["spec"].get("outboundTrafficPolicy", {}).get("mode") == "REGISTRY_ONLY",
           "agents' proxies must refuse hosts outside their registry")
    hosts = [h for e in sidecar["spec"]["egress"] for h in e["hosts"]]
    expect(f"{namespace}/{gateway_host}" in hosts, "agents' proxies must know the gateway's Service")
    expect(not any(fnmatch.fnmatch(f"{namespace}/api.anthropic.com", h) for h in hosts),
           "agents' proxies must not import api.anthropic.com")
    network = one(docs, "NetworkPolicy")
    expect(network["metadata"]["namespace"] == agents and network["spec"]["podSelector"] == {}
           and network["spec"]["policyTypes"] == ["Egress"], "the NetworkPolicy must cover every agent pod's egress")
    to_gateway = [e for e in network["spec"]["egress"] for t in e["to"]
                  if t.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == namespace
                  and selects(t.get("podSelector", {}).get("matchLabels", {}), labels)]
    expect(bool(to_gateway) and all(p["port"] in ports for e in to_gateway for p in e["ports"]),
           "the NetworkPolicy must let agents reach the gateway pods' port")
    expect(all("ipBlock" not in t for e in network["spec"]["egress"] for t in e["to"]),
           "the NetworkPolicy must not open addresses (api.anthropic.com) directly")

    for agent in [d for d in all_of(docs, "Deployment") if d["metadata"]["namespace"] == agents]:
        spec = agent["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for c in spec["containers"] for e in c.get("env", [])}
        expect(env.get("ANTHROPIC_BASE_URL") == f"http://{gateway_host}", "the agent must call the gateway")
        audiences = [s["serviceAccountToken"]["audience"] for v in spec.get("volumes", [])
                     for s in v.get("projected", {}).get("sources", []) if "serviceAccountToken" in s]
        cluster = [p for p in providers.values() if p["issuer"].startswith("https://kubernetes.")]
        expect(len(audiences) == 1 and bool(cluster) and audiences[0] in cluster[0]["audiences"],
               "the agent's projected token must carry the cluster provider's audience")
        bound = [b for b in policy.get("bindings", []) if b.get("claims", {}).get("kubernetes.io.namespace") == agents]
        account = spec["serviceAccountName"]
        expect(any(fnmatch.fnmatchcase(account, b["claims"].get("kubernetes.io.serviceaccount.name", "")) for b in bound),
               f"no binding grants the agent's service account {account} a role")
    return found


def test_the_shipped_manifests_agree(tmp_path):
    assert problems(load_manifests(), tmp_path) == []


def test_the_readme_names_every_manifest():
    readme = (ISTIO / "README.md").read_text()
    for path in ISTIO.glob("*.yaml"):
        assert path.name in readme, path.name


def mutate(docs: list[dict], kind: str, change) -> list[dict]:
    """A copy of the manifests with `change` applied to the first `kind` (the gateway's, for a
    Deployment)."""
    docs = copy.deepcopy(docs)
    change(next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] != "review-bot"))
    return docs


BROKEN_EDITS = {
    "plugin selects other pods": ("WasmPlugin", lambda d: d["spec"]["selector"]["matchLabels"].update(istio="ingressgateway")),
    "plugin fails open": ("WasmPlugin", lambda d: d["spec"].update(failStrategy="FAIL_OPEN")),
    "plugin before authentication": ("WasmPlugin", lambda d: d["spec"].update(phase="AUTHN")),
    "policy invalid": ("WasmPlugin", lambda d: d["spec"]["pluginConfig"]["bindings"].append({"group": "x", "role": "ghost"})),
    "policy reads the old key": ("WasmPlugin", lambda d: d["spec"]["pluginConfig"]["identity"].update(payload_metadata_key="jwt_payload")),
    "key not passed to the VM": ("WasmPlugin", lambda d: d["spec"]["vmConfig"].update(env=[])),
    "issuer typo": ("RequestAuthentication", lambda d: d["spec"]["jwtRules"][0].update(issuer="https://warden.corp.example/")),
    "JWKS differs": ("RequestAuthentication", lambda d: d["spec"]["jwtRules"][1].update(jwksUri="https://evil.example/jwks")),
    "audience differs": ("RequestAuthentication", lambda d: d["spec"]["jwtRules"][0].update(audiences=["other"])),
    "x-api-key not read": ("RequestAuthentication", lambda d: d["spec"]["jwtRules"][0].update(fromHeaders=TOKEN_HEADERS[:1])),
    "token headers dropped": ("RequestAuthentication", lambda d: d["spec"]["jwtRules"][0].pop("forwardOriginalToken")),
    "service selects nothing": ("Service", lambda d: d["spec"]["selector"].update(app="warden")),
    "gateway port": ("Gateway", lambda d: d["spec"]["servers"][0]["port"].update(number=80)),
    "route to another gateway": ("VirtualService", lambda d: d["spec"].update(gateways=["ingress"])),
    "entry exported to all": ("ServiceEntry", lambda d: d["spec"].update(exportTo=["*"])),
    "no TLS origination": ("DestinationRule", lambda d: d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].update(mode="DISABLE")),
    "anonymous allowed": ("AuthorizationPolicy", lambda d: d["spec"]["rules"][0]["from"][0]["source"].update(requestPrincipals=["*", ""])),
    "agents allowed out": ("Sidecar", lambda d: d["spec"].update(outboundTrafficPolicy={"mode": "ALLOW_ANY"})),
    "agents import anthropic": ("Sidecar", lambda d: d["spec"]["egress"][0]["hosts"].append("warden/*")),
    "network open": ("NetworkPolicy", lambda d: d["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})),
    "secret not mounted": ("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(env=[])),
}


@pytest.mark.parametrize("edit", sorted(BROKEN_EDITS))
def test_a_broken_edit_is_caught(edit, tmp_path):
    kind, change = BROKEN_EDITS[edit]
    assert problems(mutate(load_manifests(), kind, change), tmp_path), edit


def test_the_agent_example_is_checked(tmp_path):
    def rename(docs):
        for doc in docs:
            if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "review-bot":
                doc["spec"]["template"]["spec"]["serviceAccountName"] = "builder"
        return docs
    assert any("builder" in p for p in problems(rename(load_manifests()), tmp_path))
