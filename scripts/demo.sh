#!/usr/bin/env bash
# Run the Warden gateway in the foreground on 127.0.0.1:${WARDEN_PORT:-10000}, with the approval
# service (`warden serve`) on 127.0.0.1:8787 (Ctrl-C stops both).
#
#   make build && scripts/demo.sh          (or simply: make demo)
#
# - Demo identity: .demo/signing-key.pem + .demo/jwks.json (made by `warden token init` if
#   missing); envoy/policy.yaml's provider `demo` trusts that JWKS.
# - Approvals: `warden serve init --dir .demo` made the service's signing key, its public key
#   (.demo/approvals-verdict-key.pub) and the gateway's token (.demo/approvals-token); the service
#   keeps its reviews in .demo/approvals.db. envoy/policy.yaml points at 127.0.0.1:8787, so that
#   port is fixed here.
# - Sign-in: scripts/test_idp.py (a TEST ONLY OIDC provider: any name, any groups, no password) on
#   127.0.0.1:${WARDEN_IDP_PORT:-8788}, and the token service of `warden serve` signing people in
#   through it (docs/identity.md, "Signing in"). The policy run is .demo/policy.yaml: the chosen
#   policy plus a `token_service` with that provider, and the service's JWKS among the gateway's
#   identity providers (unless the chosen policy has a `token_service` of its own).
# - Upstream: with ANTHROPIC_API_KEY set, the real API (${UPSTREAM_URL:-https://api.anthropic.com});
#   without it, the fake Claude upstream (scripts/fake_claude.py) on a free local port, with a
#   random key that only the gateway knows. The key never appears in a file or on screen.
#
# - SAML sign-in: the SAML IdP simulator (scripts/test_saml_idp.py, TEST ONLY) on
#   127.0.0.1:${WARDEN_SAML_IDP_PORT:-8790}, trusted as `token_service.saml` provider `demo-saml` in
#   the generated .demo/policy.yaml.
#
# Environment: WARDEN_PORT (10000), WARDEN_ADMIN_PORT (9901), UPSTREAM_URL, WARDEN_CONCURRENCY (1),
# WARDEN_LOG_LEVEL (info), WARDEN_POLICY (envoy/policy.yaml), WARDEN_IDP_PORT (8788),
# WARDEN_SAML_IDP_PORT (8790).
# Nothing here needs the network once `make build` has run (except the real API, if chosen).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

port="${WARDEN_PORT:-10000}"
admin_port="${WARDEN_ADMIN_PORT:-9901}"
policy="${WARDEN_POLICY:-envoy/policy.yaml}"
py=".venv/bin/python"
warden="target/release/warden"
wasm="target/wasm32-wasip1/release/warden.wasm"

die() { echo "demo: $*" >&2; exit 1; }
# Waits (up to 5 s) for LOG to say "listening", while process PID (named WHAT) lives.
wait_listening() {
    local log="$1" pid="$2" what="$3"
    for _ in $(seq 1 50); do
        if grep -q "listening" "$log" 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || die "$what did not start (see $log)"
        sleep 0.1
    done
}
# Prefix that runs a command in a session of its own (util-linux `setsid`; none where missing).
detached=()
if command -v setsid >/dev/null; then detached=(setsid); fi
[[ -x "$py" ]] || die ".venv is missing: run 'make build' first"
[[ -x "$warden" ]] || die "$warden is missing: run 'make build' first"
[[ -f "$wasm" ]] || die "$wasm is missing: run 'make build' first"

if [[ ! -f .demo/jwks.json || ! -f .demo/signing-key.pem ]]; then
    echo "demo: creating demo signing key in .demo/"
    "$warden" token init --dir .demo
fi
if [[ ! -f .demo/approvals-signing-key.pem || ! -f .demo/approvals-token || ! -f .demo/tokens-signing-key.pem ]]; then
    echo "demo: creating the approval service's keys in .demo/"
    "$warden" serve init --dir .demo
fi

approvals_port=8787
approvals_url="http://127.0.0.1:$approvals_port"
idp_port="${WARDEN_IDP_PORT:-8788}"
idp_url="http://127.0.0.1:$idp_port"
saml_idp_port="${WARDEN_SAML_IDP_PORT:-8790}"
saml_idp_url="http://127.0.0.1:$saml_idp_port"

# The policy run: the chosen one, with the token service and the test identity provider.
"$py" - "$policy" .demo/policy.yaml "$approvals_url" "$idp_url" "$saml_idp_url" <<'PY'
import sys
from pathlib import Path
import yaml
source, target, service, idp, saml_idp = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), *sys.argv[3:]
policy = yaml.safe_load(source.read_text())
for provider in policy.get("identity", {}).get("providers", []):
    jwks = provider.get("jwks", {})
    if "file" in jwks:  # relative to the chosen policy's directory, not .demo/
        jwks["file"] = str((source.parent / jwks["file"]).resolve())
# The kill switch (docs/identity.md): leads may revoke; gateways refresh the list every second.
if "approvals" in policy:  # without its own service the list comes from the approval service
    policy["identity"].setdefault("revocation", {"revokers": ["leads"]})
if "token_service" not in policy:
    policy["identity"]["providers"].append({
        "name": "warden-service", "issuer": service, "audiences": ["warden"],
        "jwks": {"uri": f"{service}/.well-known/jwks.json"}})
    policy["token_service"] = {"issuer": service, "oidc": [{
        "name": "test-idp", "issuer": idp, "audiences": ["warden-demo"], "jwks": {"uri": f"{idp}/jwks.json"},
        "client": {"client_id": "warden-demo"}}], "saml": [{
        "name": "demo-saml", "idp_entity_id": "urn:warden:demo-saml-idp", "idp_sso_url": f"{saml_idp}/sso",
        "idp_certificate": str(Path(".demo/saml-idp/idp-cert.pem").resolve())}]}
target.write_text("# Generated by scripts/demo.sh from %s: do not edit.\n" % source + yaml.safe_dump(policy, sort_keys=False))

# The banner's policy-specific parts (.demo/banner.sh, sourced below): who a demo token speaks
# for, who approves what, which budgets apply -- read from the chosen policy, never assumed.
import shlex
warden = "target/release/warden"
demo_jwks = Path(".demo/jwks.json").resolve()
demo = next((p for p in policy["identity"].get("providers", [])
             if Path(p.get("jwks", {}).get("file", "/nonexistent")) == demo_jwks), None)
def mint(sub, groups, audience=None):
    words = [warden, "token", "mint", "--sub", sub, "--groups", ",".join(groups), "--ttl", "15m"]
    if demo and demo["issuer"] != "warden-demo":
        words += ["--issuer", demo["issuer"]]
    audience = audience or (demo["audiences"][0] if demo and demo.get("audiences") else "warden")
    if audience != "warden":
        words += ["--audience", audience]
    return " ".join(shlex.quote(w) for w in words)
bindings = [b for b in policy.get("bindings", []) if "group" in b]
roles = policy.get("roles", {})
first = bindings[0] if bindings else None
lines = {}
if not demo:
    lines["mint_note"] = ("This policy trusts no key of .demo/ (jwks: { file: .demo/jwks.json }): minted "
                          "tokens are refused. Sign in with `warden login` (below) instead.")
elif not first:
    lines["mint_note"] = "No binding names a group: a minted token gets a role only if a claim binding matches it."
else:
    lines["mint_note"] = f"Mint a short-lived demo token (group {first['group']} -> role {first['role']}):"
lines["mint"] = mint("alice", [first["group"]] if first else [])
approvals = []
for name, role in roles.items():
    approval = role.get("approval") or {}
    for trigger in approval.get("triggers", []):
        what = "; ".join(f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in trigger.items() if k != "reason")
        approvals.append(f"  role {name}: a request with {what} waits for a member of "
                         f"{', '.join(approval.get('approvers', []))} ({trigger.get('reason')}).")
approver_groups = [g for role in roles.values() for g in (role.get("approval") or {}).get("approvers", [])]
audience = (policy.get("approvals") or {}).get("approver_audience", "warden-approvals")
lines["mint_lead"] = mint("bob", approver_groups[:1], audience)
lines["approvals"] = "\n".join(approvals) or "  This policy holds no request for approval."
budgets = []
for name, role in roles.items():
    for budget in role.get("budgets", []) or []:
        limits = ", ".join(f"{k} {budget[k]}" for k in ("requests", "tokens", "cost") if k in budget)
        budgets.append(f"  role {name}: budget {budget.get('name', '?')} per {budget.get('per', 'subject')} "
                       f"and {budget.get('window', '?')}: {limits}.")
lines["budgets"] = "\n".join(budgets) or "  This policy sets no budget."
Path(".demo/banner.sh").write_text("".join(f"banner_{k}={shlex.quote(v)}\n" for k, v in lines.items()))
PY
policy=.demo/policy.yaml
# shellcheck source=/dev/null
source .demo/banner.sh

fake_pid=""
envoy_pid=""
serve_pid=""
saml_pid=""
idp_pid=""
cleanup() {
    local pid
    # Stop taking connections, then give the gateway a second to deliver its last audit records
    # (they leave every 200 ms) before it stops: records still queued when Envoy exits are lost.
    if [[ -n "$envoy_pid" ]] && kill -0 "$envoy_pid" 2>/dev/null; then
        "$py" -c "import urllib.request, sys; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method='POST'), timeout=2)" \
            "http://127.0.0.1:$admin_port/drain_listeners?inboundonly" >/dev/null 2>&1 || true
        sleep 1
    fi
    for pid in $envoy_pid $serve_pid $idp_pid $saml_pid $fake_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${ANTHROPIC_API_KEY:-}" ]]; then
    upstream="${UPSTREAM_URL:-https://api.anthropic.com}"
    upstream_note="$upstream (key from ANTHROPIC_API_KEY)"
else
    fake_port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    fake_key="sk-fake-$("$py" -c 'import secrets; print(secrets.token_hex(16))')"
    FAKE_CLAUDE_API_KEY="$fake_key" "$py" scripts/fake_claude.py --port "$fake_port" \
        > .demo/fake_claude.log 2>&1 &
    fake_pid=$!
    wait_listening .demo/fake_claude.log "$fake_pid" "the fake upstream"
    upstream="http://127.0.0.1:$fake_port"
    upstream_note="$upstream (the local fake Claude; no ANTHROPIC_API_KEY set)"
    # Only the gateway gets the key (exported for Envoy, which this script starts).
    export ANTHROPIC_API_KEY="$fake_key"
fi

# The test identity provider (TEST ONLY), for signing in offline.
"${detached[@]}" "$py" scripts/test_idp.py --port "$idp_port" --key-file .demo/test-idp-key.pem \
    > .demo/test_idp.log 2>&1 &
idp_pid=$!
wait_listening .demo/test_idp.log "$idp_pid" "the test identity provider"

# SAML sign-in (docs/identity.md, "SAML"): the SAML IdP simulator (TEST ONLY), trusted as the
# token service's `saml` provider `demo-saml` in the policy generated above.
"${detached[@]}" "$py" scripts/test_saml_idp.py --port "$saml_idp_port" --dir .demo/saml-idp \
    --entity-id urn:warden:demo-saml-idp > .demo/saml-idp.log 2>&1 &
saml_pid=$!
wait_listening .demo/saml-idp.log "$saml_pid" "the SAML IdP simulator"

# The approval service: reviews for the held requests, the approver page, the verdicts.
# In a session of its own, like Envoy below: Ctrl-C reaches this script only, whose cleanup stops
# the gateway first (after it delivered its last audit records) and the service after it.
"${detached[@]}" "$warden" serve --policy "$policy" --listen "127.0.0.1:$approvals_port" --db .demo/approvals.db \
    --signing-key .demo/approvals-signing-key.pem --gateway-token-file .demo/approvals-token \
    --public-url "$approvals_url" --token-signing-key .demo/tokens-signing-key.pem > .demo/serve.log 2>&1 &
serve_pid=$!
for _ in $(seq 1 50); do
    if "$py" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
        "$approvals_url/healthz" 2>/dev/null; then break; fi
    kill -0 "$serve_pid" 2>/dev/null || die "warden serve did not start (see .demo/serve.log)"
    sleep 0.1
done

# Envoy runs as this script's child, in a session of its own so that Ctrl-C reaches only this
# script: its cleanup drains Envoy and lets it deliver its last audit records before stopping it.
# Its log goes to .demo/envoy.log, so the banner below is the last thing on screen.
"${detached[@]}" "$py" scripts/run_envoy.py --policy "$policy" --wasm "$wasm" --upstream "$upstream" \
    --port "$port" --admin-port "$admin_port" \
    --credential-file WARDEN_APPROVALS_TOKEN=.demo/approvals-token \
    --credential-file WARDEN_APPROVALS_VERDICT_KEY=.demo/approvals-verdict-key.pub \
    --access-log .demo/envoy-access.log \
    --concurrency "${WARDEN_CONCURRENCY:-1}" --log-level "${WARDEN_LOG_LEVEL:-info}" > .demo/envoy.log 2>&1 &
envoy_pid=$!
echo "demo: starting Envoy (log: .demo/envoy.log)"
for _ in $(seq 1 300); do
    if "$py" -c "import urllib.request, sys; sys.exit(urllib.request.urlopen(sys.argv[1], timeout=1).read().strip() != b'LIVE')" \
        "http://127.0.0.1:$admin_port/ready" 2>/dev/null; then break; fi
    if ! kill -0 "$envoy_pid" 2>/dev/null; then
        tail -n 20 .demo/envoy.log >&2
        envoy_pid=""
        die "Envoy did not start (the lines above are the end of .demo/envoy.log)"
    fi
    sleep 0.1
done

mint="$banner_mint"
mint_lead="$banner_mint_lead"
cat <<BANNER

  Warden gateway: http://127.0.0.1:$port    (admin: http://127.0.0.1:$admin_port)
  upstream:       $upstream_note
  policy:         $policy

  $banner_mint_note
      $mint

  Point Claude Code or an Anthropic SDK at the gateway:
      export ANTHROPIC_BASE_URL=http://127.0.0.1:$port
      export ANTHROPIC_AUTH_TOKEN=\$($mint)
      export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1

  Or try it with curl:
      curl -sS http://127.0.0.1:$port/v1/messages \\
        -H "authorization: Bearer \$($mint)" \\
        -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \\
        -d '{"model":"claude-haiku-4-5-20251001","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'

  Approvals (who approves what, from $policy):
$banner_approvals
  As an approver (bob), open $approvals_url/reviews and paste the token from: $mint_lead
  or with the CLI:
      export WARDEN_TOKEN=\$($mint_lead) WARDEN_SERVICE=$approvals_url
      $warden reviews list
      $warden reviews approve <review id> --comment "ok"

  Budgets (docs/budgets.md): a request over a budget gets a 429 naming the budget and when it
  resets, with retry-after.
$banner_budgets

  Audit trail: every exchange is recorded in .demo/approvals.db (docs/audit.md):
      $warden audit verify --db .demo/approvals.db --public-key-file .demo/approvals-verdict-key.pub
      $warden audit verify --db .demo/approvals.db --access-log .demo/envoy-access.log
      $warden audit replay --db .demo/approvals.db --session <X-Claude-Code-Session-Id>
      open $approvals_url/sessions

  Sign-in (docs/identity.md): the token service signs people in through a TEST ONLY identity
  provider ($idp_url: any name, any groups, no password); open $approvals_url/login and pick
  "Sign in with test-idp" (name bob, groups leads). On the command line, and for Claude Code:
      $warden login --service $approvals_url     # alice, groups eng; --device without a browser
      $warden token                              # a fresh token, refreshed as needed
      ~/.claude/settings.json: {"apiKeyHelper": "$warden token", "env": {"ANTHROPIC_BASE_URL":
        "http://127.0.0.1:$port", "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "300000"}}

  Kill switch: revoke a subject, group, job or token on every gateway within seconds:
      $warden revoke subject alice --gateway-token-file .demo/approvals-token
      $warden revoke list --gateway-token-file .demo/approvals-token     (open $approvals_url/revocations)

  SAML sign-in: the SAML IdP simulator (TEST ONLY) at $saml_idp_url is provider demo-saml;
  the service's SP metadata: $approvals_url/saml/demo-saml/metadata

  Envoy's log: .demo/envoy.log (tail -f it; WARDEN_LOG_LEVEL=debug logs every allowed request).
  Ctrl-C stops the gateway, the approval service and the test identity providers.

BANNER

# `wait` keeps the script alive and lets the traps run on Ctrl-C or SIGTERM.
rc=0
wait "$envoy_pid" || rc=$?
envoy_pid=""
exit "$rc"
