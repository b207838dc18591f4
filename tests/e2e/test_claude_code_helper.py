"""The real Claude Code CLI with `apiKeyHelper` = `warden token`, through the real Envoy, with
tokens from a real `warden serve` token service: a person signs in once (`warden login`, the
browser played over HTTP through the service's source picker and scripts/test_idp.py's form),
then a conversation crosses the expiry of its first token without a failed turn."""

from __future__ import annotations

import base64
import html.parser
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import (CLAUDE, PYTHON, REPO, SCRIPTS, WARDEN, Service, auditor_service_changes,
                      free_port, init_keys, stop_process)

CLIENT_ID = "warden-service"  # the service's client id at the test identity provider
# The shortest lifetime the policy allows; `warden token` refreshes when less than this is left.
LIFETIME_SECONDS = 60
MARGIN = "20s"


class SourceLinks(html.parser.HTMLParser):
    """The `id="source-<name>"` links of the service's sign-in page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and (values.get("id") or "").startswith("source-"):
            self.links[values["id"] or ""] = values.get("href") or ""


@pytest.fixture(scope="module")
def idp():
    """scripts/test_idp.py (TEST ONLY: its form signs in anyone): its issuer URL."""
    process = subprocess.Popen([PYTHON, str(SCRIPTS / "test_idp.py"), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("test idp: listening on "), first
    yield first.split()[-1]
    stop_process(process)


@pytest.fixture(scope="module")
def token_service(tmp_path_factory: pytest.TempPathFactory, make_policy, idp):
    """`warden serve` with a token service whose people sign in at `idp`, 1-minute tokens."""
    tmp = tmp_path_factory.mktemp("token-service")
    keys = init_keys(tmp / "keys")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    changes = auditor_service_changes(port)
    changes["token_service"] = {
        "issuer": url,
        "lifetime": "1m",
        "oidc": [{
            "name": "test-idp", "issuer": idp, "audiences": [CLIENT_ID],
            "jwks": {"uri": f"{idp}/jwks.json"}, "client": {"client_id": CLIENT_ID},
        }],
    }
    service = Service(port=port, keys=keys, db=tmp / "warden.db", policy=make_policy(changes),
                      log_path=tmp / "serve.log",
                      extra_args=["--token-signing-key", str(keys / "tokens-signing-key.pem")])
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def helper_gateway(gateway_factory, make_policy, token_service):
    """A gateway trusting the token service's JWKS (plain http on loopback)."""
    providers = make_policy.base["identity"]["providers"] + [{
        "name": "warden", "issuer": token_service.url, "audiences": ["warden"],
        "jwks": {"uri": f"{token_service.url}/.well-known/jwks.json"},
    }]
    return gateway_factory(make_policy({"identity": {"providers": providers}}))


def warden_env(config_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "CLAUDE", "WARDEN_", "DISPLAY", "WAYLAND_"))}
    env.update(XDG_CONFIG_HOME=str(config_home), NO_PROXY="127.0.0.1")
    return env


def sign_in(service: Service, config_home: Path) -> None:
    """`warden login --no-browser`, with this test as the browser."""
    login = subprocess.Popen([str(WARDEN), "login", "--no-browser", "--service", service.url],
                             env=warden_env(config_home), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert login.stderr is not None
        url = ""
        while not url:
            line = login.stderr.readline()
            assert line, f"warden login printed no URL:\n{service.log()}"
            url = next((w for w in line.split() if "/oauth/authorize?" in w), "")
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(url, timeout=30) as page:
            links = SourceLinks()
            links.feed(page.read().decode())
            page_url = page.url
        assert "source-test-idp" in links.links, links.links
        with opener.open(urllib.parse.urljoin(page_url, links.links["source-test-idp"]),
                         timeout=30) as form:
            assert "TEST ONLY" in form.read().decode()
            form_url = form.url
        # The provider's form; the redirects then end at warden login's loopback listener.
        with opener.open(form_url, data=urllib.parse.urlencode(
                {"username": "alice", "groups": "eng"}).encode(), timeout=30) as done:
            assert done.url.startswith("http://127.0.0.1:") and "/callback?" in done.url, done.url
            assert "close this tab" in done.read().decode()
        out, err = login.communicate(timeout=30)
        assert login.returncode == 0, err + service.log()
        assert out == ""
        assert "Signed in to" in err and "as alice" in err, err
    finally:
        stop_process(login)


def stored_token(config_home: Path) -> dict:
    """The stored sign-in's access token claims (the file is read as `warden token` reads it)."""
    [credentials] = list((config_home / "warden" / "services").glob("*/credentials.json"))
    assert credentials.stat().st_mode & 0o777 == 0o600
    token = json.loads(credentials.read_text())["access_token"]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def run_claude_with_helper(gateway, service: Service, home: Path, config_home: Path, prompt: str,
                           *args: str) -> subprocess.CompletedProcess:
    """`claude -p` with `apiKeyHelper` = `warden token` (no token in the environment)."""
    if not CLAUDE.exists():
        pytest.fail(f"{CLAUDE} is missing: run `make build`", pytrace=False)
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({
        "apiKeyHelper": f"{WARDEN} token --service {service.url} --min-valid {MARGIN}"}))
    env = warden_env(config_home)
    env.update(HOME=str(home), ANTHROPIC_BASE_URL=gateway.url,
               CLAUDE_CODE_API_KEY_HELPER_TTL_MS="5000",
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1", CI="true")
    return subprocess.run([str(CLAUDE), "-p", prompt, *args], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def access_log(gateway, status: str) -> list[str]:
    """Envoy access-log lines of requests answered with a status matching `status` (a regex)."""
    return [line for line in gateway.log().splitlines()
            if re.search(r'"(?:GET|POST|HEAD) \S+ HTTP/1\.1" ' + status + ' ', line)]


def test_claude_code_crosses_a_token_expiry_without_a_failed_turn(
        helper_gateway, token_service, upstream, tmp_path):
    home, config_home = tmp_path / "home", tmp_path / "config"
    home.mkdir()
    sign_in(token_service, config_home)
    first = stored_token(config_home)
    assert first["sub"] == "alice" and first["groups"] == ["eng"]
    assert first["exp"] - first["iat"] == LIFETIME_SECONDS

    done = run_claude_with_helper(helper_gateway, token_service, home, config_home, "say hi")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Hello from the fake Claude upstream." in done.stdout
    assert stored_token(config_home)["jti"] == first["jti"], "the fresh token was used as is"

    # Wait out the first token: the next turn can only pass with a new one.
    time.sleep(max(0.0, first["exp"] + 1 - time.time()))
    done = run_claude_with_helper(helper_gateway, token_service, home, config_home,
                                  "say hi again", "--continue")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Hello from the fake Claude upstream." in done.stdout
    second = stored_token(config_home)
    assert second["jti"] != first["jti"] and second["exp"] > first["exp"], "refreshed"
    assert second["sub"] == "alice"

    assert len(upstream.requests()) >= 2, "both turns reached Claude"
    assert len(access_log(helper_gateway, "200")) >= 2, helper_gateway.log()
    assert access_log(helper_gateway, "40[13]") == [], "no request was refused"
    assert "refresh token was presented again" not in token_service.log()


def test_a_refused_refresh_fails_the_helper_with_the_sign_in_hint(token_service, tmp_path):
    config_home = tmp_path / "config"
    sign_in(token_service, config_home)
    # Tamper with the stored refresh token: the service refuses it, the helper says what to do.
    [credentials] = list((config_home / "warden" / "services").glob("*/credentials.json"))
    stored = json.loads(credentials.read_text())
    stored["refresh_token"] = "not-a-refresh-token"
    credentials.write_text(json.dumps(stored))
    done = subprocess.run([str(WARDEN), "token", "--service", token_service.url, "--min-valid", "2m"],
                          env=warden_env(config_home), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=REPO)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "your Warden sign-in expired; run `warden login`" in done.stderr, done.stderr
