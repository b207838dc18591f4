"""End-to-end harness: the real Envoy 1.40 with the built warden.wasm, a fake Claude upstream and a
throw-away OIDC issuer. Everything listens on 127.0.0.1 only, on free ports.

Fixtures
  fake_upstream (session)   scripts/fake_claude.py on a free port with a random key
  upstream (function)       the same, with its request log cleared before the test
  issuer (session)          an ES256 key + JWKS file; issuer.mint(...) signs test tokens
  make_policy (session)     write a policy derived from envoy/policy.yaml (provider -> the test JWKS)
  gateway_factory (module)  start Envoy via scripts/run_envoy.py with any policy; stopped at teardown
  gateway (module)          one gateway with the default test policy, shared by a test module
  token (function)          a valid token for alice in group eng (role developer)

run_claude(gateway, token, prompt, home, *args) runs the pinned Claude Code CLI against a gateway.

When a test fails, the log of every gateway started for its module is attached to the report
(section "envoy log"), and printed by pytest with the failure.

Environment: WARDEN_WASM overrides the wasm path (default target/wasm32-wasip1/release/warden.wasm).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import http.client
import json
import re
import os
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import jwt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
PYTHON = sys.executable
DEMO_POLICY = REPO / "envoy" / "policy.yaml"
WASM = Path(os.environ.get("WARDEN_WASM") or REPO / "target/wasm32-wasip1/release/warden.wasm")

TEST_ISSUER = "warden-test"
TEST_AUDIENCE = "warden"
START_TIMEOUT = 60.0
LOG_TAIL_CHARS = 20_000

# The tests talk to the gateway explicitly; a developer's own Claude settings must not leak in.
for _var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
    os.environ.pop(_var, None)


# ------------------------------------------------------------------------------------------
# helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url_uint(n: int, size: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


def die_with_parent() -> None:
    """preexec_fn: SIGTERM this child if the test process dies without its teardown (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL; only this process, by its id."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def http_request(port: int, method: str, path: str, headers: dict | Iterable | None = None,
                 body: bytes | str | dict | None = None, timeout: float = 30.0) -> Response:
    """One request to 127.0.0.1:port; the full response, whatever its status."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        names = set()
        for k, v in items:
            conn.putheader(k, v)
            names.add(k.lower())
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders()
        if body is not None:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, list(resp.getheaders()), data)
    finally:
        conn.close()


def make_ca_and_leaf(directory: Path, dns_name: str) -> dict[str, Path]:
    """A throw-away CA and a leaf certificate for dns_name: {ca, cert, key} PEM paths."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warden test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(pem))
    paths["cert"].write_bytes(leaf.public_bytes(pem))
    paths["key"].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def refusal(r: Response) -> tuple[int, str, str]:
    """(status, error type, reason code) of a Warden refusal, after checking the shared envelope:
    Anthropic's error shape, a `warden: <reason>:` message, one request-id, no retry."""
    body = r.json()
    assert body["type"] == "error", r.text
    message = body["error"]["message"]
    assert message.startswith("warden: "), message
    assert r.header("x-should-retry") == "false"
    assert len(r.header_all("request-id")) == 1, r.headers
    assert r.header("request-id").startswith("req_warden_")
    return r.status, body["error"]["type"], message.split(":")[1].strip()


# ------------------------------------------------------------------------------------------
# fake Claude upstream


@dataclass
class FakeUpstream:
    port: int
    api_key: str
    proc: subprocess.Popen
    log_path: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def _open(self, req: urllib.request.Request | str):
        # The control endpoints of an HTTPS fake (TLS tests): its certificate is for the gateway
        # to check, not for this helper.
        ctx = ssl._create_unverified_context() if self.scheme == "https" else None
        return urllib.request.urlopen(req, timeout=10, context=ctx)

    def requests(self) -> list[dict]:
        """Every request the fake received (method, path, headers [[k, v]...], body)."""
        with self._open(f"{self.url}/__fake/requests") as r:
            return json.load(r)

    def clear(self) -> None:
        with self._open(urllib.request.Request(f"{self.url}/__fake/requests", method="DELETE")):
            pass

    def last(self) -> dict:
        reqs = self.requests()
        assert reqs, "the fake upstream received no request"
        return reqs[-1]


def start_fake_upstream(tmp: Path, api_key: str | None = None, *extra: str) -> FakeUpstream:
    api_key = api_key or f"sk-fake-{secrets.token_hex(16)}"
    log_path = tmp / f"fake_claude-{secrets.token_hex(3)}.log"
    env = dict(os.environ, FAKE_CLAUDE_API_KEY=api_key)
    log = open(log_path, "w+b")
    proc = subprocess.Popen([PYTHON, str(SCRIPTS / "fake_claude.py"), "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=log, env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()  # "fake_claude listening on http://127.0.0.1:N"
    if "listening on" not in line:
        stop_process(proc)
        raise RuntimeError(f"fake upstream failed to start: {line!r} "
                           f"{log_path.read_text(errors='replace')}")
    port = int(line.rsplit(":", 1)[1])
    scheme = "https" if "https://" in line else "http"
    return FakeUpstream(port, api_key, proc, log_path, scheme)


@pytest.fixture(scope="session")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory):
    fake = start_fake_upstream(tmp_path_factory.mktemp("fake"))
    yield fake
    stop_process(fake.proc)


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> FakeUpstream:
    """The shared fake upstream, its request log emptied for this test."""
    fake_upstream.clear()
    return fake_upstream


# ------------------------------------------------------------------------------------------
# test identity provider


class Issuer:
    """An ES256 signing key, its JWKS file, and a minting helper for crafted tokens."""

    def __init__(self, directory: Path, issuer: str = TEST_ISSUER, kid: str = "warden-test-1"):
        self.issuer = issuer
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())
        # A second key that the JWKS does not contain: tokens signed with it must fail.
        self.foreign_key = ec.generate_private_key(ec.SECP256R1())
        nums = self.key.public_key().public_numbers()
        self.jwks = {"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": b64url_uint(nums.x, 32), "y": b64url_uint(nums.y, 32),
        }]}
        directory.mkdir(parents=True, exist_ok=True)
        self.jwks_path = directory / "jwks.json"
        self.jwks_path.write_text(json.dumps(self.jwks, indent=2))
        self.key_path = directory / "signing-key.pem"
        self.key_path.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def mint(self, sub: str | None = "alice", groups: list[str] | str | None = ("eng",),
             ttl: int = 900, aud: str | list[str] | None = TEST_AUDIENCE,
             iss: str | None = None, extra: dict | None = None, omit: Iterable[str] = (),
             iat: int | None = None, exp: int | None = None, nbf: int | None = None,
             wrong_key: bool = False, kid: str | None = None) -> str:
        """A signed JWT. Defaults: iss warden-test, aud warden, iat now, exp iat+ttl.

        omit=["exp"] drops claims; wrong_key=True signs with a key the JWKS does not hold.
        """
        now = int(time.time())
        claims: dict[str, Any] = {"iss": iss if iss is not None else self.issuer}
        if sub is not None:
            claims["sub"] = sub
        if aud is not None:
            claims["aud"] = aud
        if groups is not None:
            claims["groups"] = list(groups) if not isinstance(groups, str) else groups
        claims["iat"] = now if iat is None else iat
        claims["exp"] = claims["iat"] + ttl if exp is None else exp
        if nbf is not None:
            claims["nbf"] = nbf
        claims.update(extra or {})
        for name in omit:
            claims.pop(name, None)
        key = self.foreign_key if wrong_key else self.key
        return jwt.encode(claims, key, algorithm="ES256",
                          headers={"kid": kid or self.kid, "typ": "JWT"})

    def github_actions_token(self, repository: str, *, aud: str = TEST_AUDIENCE,
                             ref: str = "refs/heads/main", **mint_args: Any) -> str:
        """A GitHub Actions OIDC token of a job of `repository` on `ref`: no groups, the job in
        its claims (workflow "Claude review", run 4242, actor octocat)."""
        return self.mint(sub=f"repo:{repository}:ref:{ref}", groups=None, aud=aud, extra={
            "repository": repository, "repository_owner": repository.split("/")[0], "ref": ref,
            "workflow": "Claude review", "run_id": "4242", "actor": "octocat"}, **mint_args)

    def kubernetes_token(self, namespace: str = "agents", account: str = "review-bot", *,
                         aud: str = TEST_AUDIENCE, **mint_args: Any) -> str:
        """A projected service-account token: no groups, the claims nested under `kubernetes.io`."""
        return self.mint(sub=f"system:serviceaccount:{namespace}:{account}", groups=None, ttl=600, aud=aud,
                         extra={"kubernetes.io": {
                             "namespace": namespace, "serviceaccount": {"name": account, "uid": "u-1"},
                             "pod": {"name": f"{account}-7d9f", "uid": "u-2"}}}, **mint_args)


def mint_with_warden_cli(sub: str, groups: Iterable[str] = (), *, audience: str = TEST_AUDIENCE,
                         issuer: str | None = None, key: Path | None = None, ttl: str = "15m",
                         claims: dict[str, str] | None = None) -> str:
    """A token `warden token mint` signs: with the demo key in .demo/ (issuer warden-demo), or with
    `key` (a `warden token init` directory's signing-key.pem). The e2e suite's other tokens come
    from `Issuer.mint`; this one is for what the CLI's tokens must do (the demo, workloads)."""
    args = [str(REPO / "target" / "release" / "warden"), "token", "mint", "--sub", sub,
            "--groups", ",".join(groups), "--ttl", ttl, "--audience", audience]
    if issuer is not None:
        args += ["--issuer", issuer]
    if key is not None:
        args += ["--key", str(key)]
    for name, value in (claims or {}).items():
        args += ["--claim", f"{name}={value}"]
    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("issuer"))


@pytest.fixture
def token(issuer: Issuer) -> str:
    """A valid 15-minute token for alice in group eng (role developer in the demo policy)."""
    return issuer.mint()


# ------------------------------------------------------------------------------------------
# policies


def deep_merge(base: dict, changes: dict) -> dict:
    """Mapping values merge recursively; anything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for key, val in changes.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


@pytest.fixture(scope="session")
def make_policy(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer):
    """make_policy(changes=None, text=None, name=None) -> Path of a policy file.

    Default: envoy/policy.yaml with identity.providers = the test issuer and without its
    approvals (and the tool rules that send calls for approval), audit and budgets (their tests add them back with a service of their own:
    test_approvals.py, test_audit.py, test_audit_trail.py, test_budgets.py).
    `changes` is deep-merged into that; `text` writes the given text verbatim instead (for
    invalid-policy tests).
    """
    directory = tmp_path_factory.mktemp("policies")
    base = yaml.safe_load(DEMO_POLICY.read_text())
    demo_approvals = base.pop("approvals")
    base.pop("audit", None)  # it sends to the approval service: test_audit*.py add their own
    for name in (demo_approvals["service"]["token"], demo_approvals["service"]["verdict_key"]):
        del base["credentials"][name]
    for role in base["roles"].values():
        role.pop("approval", None)
        # Tool rules that send a call for approval need the role's approval (tests add it back).
        tools = role.get("tools", {})
        if "rules" in tools:
            tools["rules"] = [r for r in tools["rules"] if r.get("action") != "approve"]
        role.pop("budgets", None)  # the demo's small daily budgets: test_budgets.py sets its own
    base["identity"]["providers"] = [{
        "name": "test", "issuer": issuer.issuer, "audiences": [TEST_AUDIENCE],
        "jwks": {"file": str(issuer.jwks_path)},
    }]
    counter = iter(range(1, 1_000_000))

    def make(changes: dict | None = None, text: str | None = None,
             name: str | None = None) -> Path:
        path = directory / (name or f"policy-{next(counter)}.yaml")
        if text is None:
            text = yaml.safe_dump(deep_merge(base, changes or {}), sort_keys=False)
        path.write_text(text)
        return path

    make.base = base  # type: ignore[attr-defined]
    return make


# ------------------------------------------------------------------------------------------
# Envoy


@dataclass
class Gateway:
    port: int
    admin_port: int
    proc: subprocess.Popen
    log_path: Path
    config_path: Path
    policy_path: Path
    upstream_url: str
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def request(self, method: str, path: str, headers: dict | Iterable | None = None,
                body: bytes | str | dict | None = None, timeout: float = 30.0) -> Response:
        return http_request(self.port, method, path, headers, body, timeout)

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(self.admin_url + path, timeout=10) as r:
            return r.read().decode()

    def stats(self, prefix: str = "") -> dict[str, str]:
        out = {}
        for line in self.admin("/stats").splitlines():
            name, _, value = line.partition(": ")
            if name.startswith(prefix):
                out[name] = value
        return out

    def prometheus(self) -> dict[tuple[str, frozenset], float]:
        """`/stats/prometheus` as {(metric name, frozenset of (label, value)): value}."""
        return parse_prometheus(self.admin("/stats/prometheus"))

    def metric(self, name: str, **labels: str) -> float:
        """One series of `/stats/prometheus` (0 when it does not exist)."""
        return self.prometheus().get((name, frozenset(labels.items())), 0)

    def sdk(self, token: str | None = None, **kwargs: Any):
        """An Anthropic SDK client pointed at this gateway (no retries)."""
        import anthropic

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 30.0)
        return anthropic.Anthropic(base_url=self.url, auth_token=token, **kwargs)

    def stop(self) -> None:
        if not self.stopped:
            stop_process(self.proc)
            self.stopped = True


PROMETHEUS_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
PROMETHEUS_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format samples: {(name, frozenset of (label, value)): value}."""
    out = {}
    for line in text.splitlines():
        m = PROMETHEUS_SAMPLE.match(line)
        if m and not line.startswith("#"):
            out[(m.group(1), frozenset(PROMETHEUS_LABEL.findall(m.group(2) or "")))] = float(m.group(3))
    return out


def wait_ready(gw: Gateway, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            raise RuntimeError(f"Envoy exited with code {gw.proc.returncode} during start-up:\n"
                               f"{gw.log()[-LOG_TAIL_CHARS:]}")
        try:
            if gw.admin("/ready").strip() == "LIVE":
                with socket.create_connection(("127.0.0.1", gw.port), timeout=1):
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Envoy not ready after {timeout}s:\n{gw.log()[-LOG_TAIL_CHARS:]}")


class GatewayFactory:
    """Starts gateways (Envoy via scripts/run_envoy.py); stop_all() at teardown."""

    def __init__(self, tmp: Path, upstream: FakeUpstream, make_policy: Callable[..., Path]):
        self.tmp = tmp
        self.upstream = upstream
        self.make_policy = make_policy
        self.started: list[Gateway] = []
        self.key_file = tmp / "anthropic-key"
        self.key_file.write_text(upstream.api_key + "\n")
        self.key_file.chmod(0o600)

    def command(self, policy: Path, port: int, admin_port: int, config: Path,
                upstream_url: str, concurrency: int, log_level: str,
                extra_args: Iterable[str]) -> list[str]:
        if not WASM.is_file():
            pytest.fail(f"{WASM} is missing: run `make build` first", pytrace=False)
        return [PYTHON, str(SCRIPTS / "run_envoy.py"),
                "--policy", str(policy), "--wasm", str(WASM), "--upstream", upstream_url,
                "--port", str(port), "--admin-port", str(admin_port),
                "--config-out", str(config),
                "--credential-file", f"ANTHROPIC_API_KEY={self.key_file}",
                "--concurrency", str(concurrency), "--log-level", log_level, *extra_args]

    def __call__(self, policy: Path | None = None, *, upstream_url: str | None = None,
                 concurrency: int = 1, log_level: str = "info", env: dict | None = None,
                 extra_args: Iterable[str] = (), wait: bool = True) -> Gateway:
        policy = policy or self.make_policy()
        port, admin_port = free_port(), free_port()
        name = f"envoy-{port}"
        log_path = self.tmp / f"{name}.log"
        config = self.tmp / f"{name}.yaml"
        cmd = self.command(policy, port, admin_port, config, upstream_url or self.upstream.url,
                           concurrency, log_level, extra_args)
        proc_env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
        proc_env.update(env or {})
        log = open(log_path, "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=proc_env,
                                cwd=REPO, stdin=subprocess.DEVNULL)
        log.close()
        gw = Gateway(port, admin_port, proc, log_path, config, policy,
                     upstream_url or self.upstream.url)
        self.started.append(gw)
        if wait:
            wait_ready(gw)
        return gw

    def validate(self, policy: Path) -> tuple[int, str]:
        """`envoy --mode validate` with this policy: (exit code, output)."""
        config = self.tmp / f"validate-{secrets.token_hex(3)}.yaml"
        cmd = self.command(policy, free_port(), free_port(), config, self.upstream.url, 1,
                           "info", ["--validate"])
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO,
                             timeout=120, stdin=subprocess.DEVNULL)
        return out.returncode, out.stdout.decode(errors="replace")

    def stop_all(self) -> None:
        for gw in self.started:
            gw.stop()


@pytest.fixture(scope="module")
def gateway_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                    fake_upstream: FakeUpstream, make_policy):
    factory = GatewayFactory(tmp_path_factory.mktemp("gateway"), fake_upstream, make_policy)
    request.node._warden_gateways = factory.started  # for the failure report hook
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def gateway(gateway_factory: GatewayFactory) -> Gateway:
    """One gateway per test module, with the default test policy and the fake upstream."""
    return gateway_factory()


# ------------------------------------------------------------------------------------------
# a small HTTP service a test scripts (webhook receivers, fake approval and audit services)


class PostServer:
    """Answers every POST with `respond(path, headers, body) -> (status, body bytes, delay)`."""

    def __init__(self, respond: Callable[[str, Any, bytes], tuple[int, bytes, float]]):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("content-length") or 0)
                status, body, delay = respond(self.path, self.headers, self.rfile.read(length))
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the caller gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


# ------------------------------------------------------------------------------------------
# warden serve (approvals and the audit store)

WARDEN = REPO / "target" / "release" / "warden"


@dataclass
class Service:
    """`warden serve` on a free port, with its keys in `keys` and its database in `db`."""

    port: int
    keys: Path
    db: Path
    policy: Path
    log_path: Path
    webhook: str | None = None
    proc: subprocess.Popen | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [str(WARDEN), "serve", "--policy", str(self.policy),
               "--listen", f"127.0.0.1:{self.port}", "--db", str(self.db),
               "--signing-key", str(self.keys / "approvals-signing-key.pem"),
               "--gateway-token-file", str(self.keys / "approvals-token"),
               "--public-url", self.url]
        if self.webhook:
            cmd += ["--webhook", self.webhook]
        cmd += self.extra_args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"warden serve did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"authorization": f"Bearer {token}",
                                              "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def post_form(self, path: str, form: dict) -> tuple[int, dict]:
        """POSTs `form` URL-encoded (the token endpoint's shape); (status, JSON answer)."""
        req = urllib.request.Request(f"{self.url}{path}", data=urllib.parse.urlencode(form).encode(),
                                     headers={"content-type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def post_records(self, records: list[dict]) -> dict:
        """Stores `records` as a gateway sends them (NDJSON with the gateway token); the answer."""
        body = "".join(json.dumps(r) + "\n" for r in records).encode()
        token = (self.keys / "approvals-token").read_text().strip()
        request = urllib.request.Request(f"{self.url}/v1/audit/records", data=body, method="POST", headers={
            "authorization": f"Bearer {token}", "content-type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.status == 200
            return json.load(r)

    def pending(self, token: str) -> list[dict]:
        status, body = self.api("GET", "/v1/reviews?status=pending", token)
        assert status == 200, body
        return body["reviews"]

    def wait_for_review(self, token: str, excerpt: str, timeout: float = 10.0) -> dict:
        """The pending review whose excerpt contains `excerpt`, once it exists."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for review in self.pending(token):
                if excerpt in review["excerpt"]:
                    return review
            time.sleep(0.05)
        pytest.fail(f"no pending review for {excerpt!r}:\n{self.log()}")

    def decide(self, review_id: str, token: str, choice: str, comment: str = "") -> tuple[int, dict]:
        return self.api("POST", f"/v1/reviews/{review_id}/{choice}", token, {"comment": comment})


def init_keys(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(WARDEN), "serve", "init", "--dir", str(directory)], check=True,
                   capture_output=True, cwd=REPO)
    return directory


def auditor_service_changes(port: int) -> dict:
    """Policy changes for a `warden serve` on `port` whose console `leads` may read: its
    credentials, its address, the auditors, and the approval rule it wants a role to have."""
    return {
        "credentials": {"approvals-token": {"env": "WARDEN_APPROVALS_TOKEN"},
                        "approvals-verdict-key": {"env": "WARDEN_APPROVALS_VERDICT_KEY"}},
        "approvals": {"service": {"url": f"http://127.0.0.1:{port}", "token": "approvals-token",
                                  "verdict_key": "approvals-verdict-key"},
                      "auditors": ["leads"]},
        # `warden serve` wants a role with approval rules, and signing in wants an approver.
        "roles": {"developer": {"approval": {"approvers": ["leads"], "triggers": [
            {"reason": "opus_model", "models": ["claude-opus-*"]}]}}},
    }


# ------------------------------------------------------------------------------------------
# screenshots of the console (test_console.py, test_usage.py)

def png_pixels(path: Path) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows) of an 8-bit RGB/RGBA non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            corner = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows



# ------------------------------------------------------------------------------------------
# the real Claude Code CLI (tests/e2e/test_claude_code.py, test_audit_trail.py)

CLAUDE = REPO / "tests" / "e2e" / "claude-code" / "node_modules" / ".bin" / "claude"
# The newest Claude Code: the native binary the claude-agent-sdk wheel bundles
# (tests/e2e/claude-code-native/requirements.txt; tests/e2e/test_claude_code_tools.py).
CLAUDE_NATIVE = (REPO / "tests" / "e2e" / "claude-code-native" / "site" / "claude_agent_sdk"
                 / "_bundled" / "claude")


def run_claude(gateway: Gateway, token: str, prompt: str, home: Path,
               *args: str, binary: Path = CLAUDE) -> subprocess.CompletedProcess:
    """`claude -p prompt *args` pointed at the gateway the way the README tells users to
    (ANTHROPIC_BASE_URL + ANTHROPIC_AUTH_TOKEN + CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1), with
    HOME and the working directory at `home` (where it keeps its sessions: --resume needs the same
    home). `binary`: which Claude Code (CLAUDE, or CLAUDE_NATIVE)."""
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `make build` (scripts/bootstrap.sh installs it)",
                    pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(HOME=str(home), ANTHROPIC_BASE_URL=gateway.url, ANTHROPIC_AUTH_TOKEN=token,
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1",
               NO_PROXY="127.0.0.1", CI="true",
               # Lets `--permission-mode bypassPermissions` run as root (tests run as root in CI).
               IS_SANDBOX="1")
    return subprocess.run([str(binary), "-p", prompt, *args], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------------------------------------
# failure reports carry the Envoy logs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.passed or report.skipped:
        return
    module = item.getparent(pytest.Module)
    gateways = getattr(module, "_warden_gateways", None) or []
    for gw in gateways:
        text = gw.log()
        if len(text) > LOG_TAIL_CHARS:
            text = "[... earlier lines cut ...]\n" + text[-LOG_TAIL_CHARS:]
        report.sections.append((f"envoy log (port {gw.port}, {gw.log_path.name})", text))


# ------------------------------------------------------------------------------------------
# scripted upstream replies and DLP masks (tests/e2e/test_dlp.py)


# Trigger literals that stay visible in front of a mask (`ghp_[REDACTED:github-pat:…]`), for the
# vendor detectors the tests use (src/core/dlp/catalog.rs: every prefix-triggered credential).
DLP_VISIBLE_PREFIXES = {
    "github-pat": ("ghp_",),
    "aws-access-key": ("AKIA", "ASIA"),
    "anthropic-api-key": ("sk-ant-api03-",),
    "private-key": ("-----BEGIN ",),
    "jwt": ("eyJ",),
}


def dlp_visible_prefix(detector: str, value: str) -> str:
    """The part of `value` Warden leaves visible before its mask (a vendor prefix), or ''."""
    return next((p for p in DLP_VISIBLE_PREFIXES.get(detector, ()) if value.startswith(p)), "")


def dlp_mask(detector: str, value: str, upstream_key: str | None = None,
             mask_key: bytes | None = None) -> str:
    """What Warden writes in place of `value` found by `detector`: the visible vendor prefix, if
    any, then `[REDACTED:<id>:<6 hex>]`, the hex being HMAC-SHA256(mask key, value)[:3] over the
    whole value. Without a policy `dlp.mask_key`, the mask key is
    HMAC-SHA256(key=the role's upstream Anthropic key, msg=b"warden dlp mask key v1")."""
    import hmac

    if mask_key is None:
        assert upstream_key is not None, "dlp_mask needs the upstream key or the mask key"
        mask_key = hmac.new(upstream_key.encode(), b"warden dlp mask key v1", "sha256").digest()
    digest = hmac.new(mask_key, value.encode(), "sha256").hexdigest()
    return f"{dlp_visible_prefix(detector, value)}[REDACTED:{detector}:{digest[:6]}]"


class FakeScript:
    """Drives POST /__fake/script and /__fake/release of a fake upstream."""

    def __init__(self, fake: FakeUpstream):
        self.fake = fake

    def _call(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(f"{self.fake.url}{path}", data=data, method=method,
                                     headers={"content-type": "application/json"})
        with self.fake._open(req) as r:
            return json.load(r)

    def __call__(self, text: str = "", **fields: Any) -> None:
        """The next /v1/messages reply says `text` (plus thinking, tool, piece, force_gzip, crlf,
        pause_after_first_delta, pause_after_text_deltas, pause_timeout, blocks, delay,
        match: the next request whose body contains it, raw: the exact SSE text of a stream,
        abort: close the stream without its end, status: an error reply; see
        scripts/fake_claude.py)."""
        self._call("POST", "/__fake/script", {"text": text, **fields})

    def pending(self) -> dict:
        """{"script": the script not used yet, or None, "pause": the pause state}."""
        return self._call("GET", "/__fake/script")

    def release(self) -> str:
        """Releases a paused stream; returns the pause state before the call ("paused": the
        upstream was waiting right then)."""
        return self._call("POST", "/__fake/release")["was"]

    def reset(self) -> None:
        self._call("DELETE", "/__fake/script")


@pytest.fixture
def script(upstream: FakeUpstream):
    """script(text, **fields) scripts the next reply of the (cleared) fake upstream; whatever
    is left of it, a pause included, is reset at teardown."""
    scripted = FakeScript(upstream)
    scripted.reset()
    yield scripted
    scripted.reset()
