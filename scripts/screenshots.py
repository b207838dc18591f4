#!/usr/bin/env python3
"""Screenshots of each console page for the README and docs, made from the demo.

    make build && .venv/bin/python scripts/screenshots.py [--out docs/images]

Starts the demo's pieces on free 127.0.0.1 ports in a temporary directory — the fake Claude
upstream (scripts/fake_claude.py), `warden serve` and Envoy with the demo policy
(envoy/policy.yaml, pointed at this run's service and identity keys) — makes traffic through the
gateway (an agent session with a tool call, a refused analyst, a few short sessions, an Opus
request left waiting for approval), then signs in to the console as the lead bob in headless
Chromium (tests/e2e/browser/screens.mjs) and saves one PNG per page of [`PAGES`] into `--out`.

Adding a page is one line in `PAGES`: (file name, path); `{session}` stands for the agent
session's id.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from console_fixtures import demo_policy

REPO = Path(__file__).resolve().parents[1]
WARDEN = REPO / "target" / "release" / "warden"
WASM = REPO / "target" / "wasm32-wasip1" / "release" / "warden.wasm"
PY = REPO / ".venv" / "bin" / "python"
BROWSER = REPO / "tests" / "e2e" / "browser"
SESSION = "5f0c2b9e-demo-agent-session"

# The console's pages, in navigation order: (PNG name, path).
PAGES = [
    ("console-reviews", "/reviews"),
    ("console-sessions", "/sessions"),
    ("console-session", "/sessions/{session}"),
    ("console-usage", "/usage"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not start:\n{log.read_text()[-3000:]}")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.read().decode()


class Demo:
    """The demo's processes, stopped in reverse order."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> tuple[subprocess.Popen, Path]:
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                                    env={**os.environ, **(env or {})})
        self.procs.append(proc)
        return proc, log

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args()
    for needed in (WARDEN, WASM, PY, BROWSER / "node_modules"):
        if not needed.exists():
            sys.exit(f"{needed} is missing: run `make build`")
    tmp = Path(tempfile.mkdtemp(prefix="warden-screenshots-"))
    demo = Demo(tmp)
    try:
        run(tmp, demo, args.out.resolve())
    finally:
        demo.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, demo: Demo, out: Path) -> None:
    warden = lambda *a: subprocess.run([str(WARDEN), *a], check=True, capture_output=True, text=True).stdout
    warden("token", "init", "--dir", str(tmp))
    warden("serve", "init", "--dir", str(tmp))
    serve_port, gateway_port, admin_port, fake_port = free_port(), free_port(), free_port(), free_port()
    demo_policy(tmp, f"http://127.0.0.1:{serve_port}")
    key = "sk-fake-screenshots"
    (tmp / "anthropic-key").write_text(key + "\n")

    fake, fake_log = demo.start("fake", [str(PY), "scripts/fake_claude.py", "--port", str(fake_port)],
                                {"FAKE_CLAUDE_API_KEY": key})
    wait_for("the fake upstream", lambda: "listening" in fake_log.read_text(), fake, fake_log)
    serve_url = f"http://127.0.0.1:{serve_port}"
    serve, serve_log = demo.start("serve", [
        str(WARDEN), "serve", "--policy", str(tmp / "policy.yaml"), "--listen", f"127.0.0.1:{serve_port}",
        "--db", str(tmp / "approvals.db"), "--signing-key", str(tmp / "approvals-signing-key.pem"),
        "--gateway-token-file", str(tmp / "approvals-token"), "--public-url", serve_url])
    wait_for("warden serve", lambda: get(f"{serve_url}/healthz") is not None, serve, serve_log)
    envoy, envoy_log = demo.start("envoy", [
        str(PY), "scripts/run_envoy.py", "--policy", str(tmp / "policy.yaml"), "--wasm", str(WASM),
        "--upstream", f"http://127.0.0.1:{fake_port}", "--port", str(gateway_port), "--admin-port", str(admin_port),
        "--credential-file", f"ANTHROPIC_API_KEY={tmp / 'anthropic-key'}",
        "--credential-file", f"WARDEN_APPROVALS_TOKEN={tmp / 'approvals-token'}",
        "--credential-file", f"WARDEN_APPROVALS_VERDICT_KEY={tmp / 'approvals-verdict-key.pub'}"])
    wait_for("Envoy", lambda: get(f"http://127.0.0.1:{admin_port}/ready").strip() == "LIVE", envoy, envoy_log)

    def token(sub: str, groups: str, *extra: str) -> str:
        return warden("token", "mint", "--dir", str(tmp), "--sub", sub, "--groups", groups, *extra).strip()

    def script(text: str, **fields) -> None:
        body = json.dumps({"text": text, **fields}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{fake_port}/__fake/script", data=body, method="POST",
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()

    def ask(bearer: str, messages: list, model: str = "claude-sonnet-4-6", session: str | None = None,
            timeout: float = 30) -> tuple[int, dict]:
        headers = {"authorization": f"Bearer {bearer}", "content-type": "application/json",
                   "anthropic-version": "2023-06-01"}
        if session:
            headers["x-claude-code-session-id"] = session
        body = {"model": model, "max_tokens": 512, "messages": messages,
                "tools": [{"name": "Bash", "description": "run a command",
                           "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]}
        req = urllib.request.Request(f"http://127.0.0.1:{gateway_port}/v1/messages", data=json.dumps(body).encode(),
                                     method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    alice = token("alice", "eng")
    # Envoy is LIVE a moment before its listener answers: wait for a real answer.
    def answers() -> bool:
        req = urllib.request.Request(f"http://127.0.0.1:{gateway_port}/v1/models",
                                     headers={"authorization": f"Bearer {alice}", "anthropic-version": "2023-06-01"})
        try:
            with urllib.request.urlopen(req, timeout=5):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, ConnectionError):
            return False
    wait_for("the gateway", answers, envoy, envoy_log)
    # An agent session: a prompt with Claude Code's reminder, a tool call, its result, the answer.
    history: list = [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>\nThis is a reminder that your todo list is empty. Use the "
                                 "TodoWrite tool if the task needs planning.\n</system-reminder>"},
        {"type": "text", "text": "Why does the release build fail? The log is in build/release.log."}]}]
    script("", tool={"name": "Bash", "input": {"command": "tail -n 20 build/release.log"}})
    status, first = ask(alice, history, session=SESSION)
    assert status == 200, first
    call = next(b for b in first["content"] if b["type"] == "tool_use")
    history += [{"role": "assistant", "content": first["content"]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                              "content": "error[E0425]: cannot find value `limit` in this scope\n"
                                                         "  --> src/budget.rs:42:17\nerror: could not compile `app`"}]}]
    script("The build fails because `limit` is not defined in src/budget.rs line 42: the function "
           "reads a variable that was renamed to `max_spend`. Rename the use and the build passes.")
    status, second = ask(alice, history, session=SESSION)
    assert status == 200, second
    history += [{"role": "assistant", "content": second["content"]},
                {"role": "user", "content": "Thanks. Is anything else using the old name?"}]
    script("No: `limit` appeared only there.")
    ask(alice, history, session=SESSION)
    # An analyst asks for a model the role does not allow (refused), short sessions of others.
    ask(token("carol", "analysts"), [{"role": "user", "content": "Summarize Q3"}], model="claude-opus-4-1",
        session="analyst-carol-q3")
    for who, n in (("dave", 1), ("erin", 2)):
        for turn in range(n + 1):
            script(f"Answer {turn}.")
            ask(token(who, "eng"), [{"role": "user", "content": f"Question {turn} from {who}"}],
                session=f"{who}-session")
    # A request for Opus waits for a lead's approval: it stays pending on the reviews page.
    def held() -> None:
        try:
            ask(alice, [{"role": "user", "content": "Draft the release notes for 2.4"}], model="claude-opus-4-1",
                timeout=150)
        except OSError:
            pass  # the demo stops while the request still waits
    threading.Thread(target=held, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "rev_" not in warden_reviews(warden, tmp, serve_url):
        time.sleep(0.2)
    # Records leave the gateway every 200 ms; wait until the session is stored.
    lead = token("bob", "leads", "--audience", "warden-approvals")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        req = urllib.request.Request(f"{serve_url}/sessions", headers={"authorization": f"Bearer {lead}"})
        if SESSION in urllib.request.urlopen(req, timeout=5).read().decode():
            break
        time.sleep(0.2)

    out.mkdir(parents=True, exist_ok=True)
    pages = [f"{name}={path.format(session=SESSION)}" for name, path in PAGES]
    shot = subprocess.run(["node", str(BROWSER / "screens.mjs"), serve_url, str(out), *pages], input=lead,
                          capture_output=True, text=True, timeout=120, cwd=BROWSER)
    result = json.loads(shot.stdout.strip().splitlines()[-1]) if shot.stdout.strip() else {}
    if not result.get("ok"):
        sys.exit(f"screenshots failed: {shot.stdout}{shot.stderr}")
    for name in result["saved"]:
        path = out / f"{name}.png"
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {path.stat().st_size // 1024} KB")


def warden_reviews(warden, tmp: Path, serve_url: str) -> str:
    lead = warden("token", "mint", "--dir", str(tmp), "--sub", "bob", "--groups", "leads",
                  "--audience", "warden-approvals").strip()
    req = urllib.request.Request(f"{serve_url}/v1/reviews", headers={"authorization": f"Bearer {lead}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read().decode()


if __name__ == "__main__":
    main()
