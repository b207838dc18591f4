"""Signing in at the token service (docs/identity.md, "Signing in" and "Signing into the
console"): the real `warden serve` as the CLI's authorization server and the OIDC client of
scripts/test_idp.py, the real Envoy trusting the service's JWKS.

- the CLI's flow with plain HTTP, redirect by redirect: /oauth/authorize → the source picker →
  the test IdP's form → /oauth/callback → the loopback redirect with a code → /oauth/token
  (code + PKCE verifier) → a Warden token that calls /v1/messages through Envoy, and a refresh
  token that rotates (and whose reuse revokes the sign-in);
- the device flow: /oauth/device_authorization, /device with its form, the IdP, the polls;
- the console's "Sign in with test-idp" in headless Chromium, ending on the reviews page;
- refusals: a non-loopback redirect_uri gets an error page, never a redirect."""

from __future__ import annotations

import base64
import hashlib
import html
import http.cookiejar
import json
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import (PYTHON, REPO, SCRIPTS, TEST_AUDIENCE, Service, free_port, init_keys,
                      stop_process)

BROWSER = REPO / "tests" / "e2e" / "browser"
CLIENT = "warden-cli"
IDP_CLIENT = "warden-service"
LOOPBACK = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


@dataclass
class Hop:
    status: int
    location: str | None
    body: str


class Browser:
    """Plain HTTP with a cookie jar, one hop at a time (redirects are returned, not followed)."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            NoRedirects, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def go(self, url: str, form: dict | None = None) -> Hop:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(urllib.request.Request(url, data=data), timeout=30) as r:
                return Hop(r.status, r.headers.get("location"), r.read().decode())
        except urllib.error.HTTPError as e:
            return Hop(e.code, e.headers.get("location"), e.read().decode())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Setup:
    service: Service
    idp_url: str
    gateway: object


@pytest.fixture(scope="module")
def setup(tmp_path_factory, gateway_factory, make_policy, issuer):
    tmp = tmp_path_factory.mktemp("sign-in")
    keys = init_keys(tmp / "keys")
    idp = subprocess.Popen([PYTHON, str(SCRIPTS / "test_idp.py"), "--port", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, cwd=REPO)
    assert idp.stdout is not None
    first = idp.stdout.readline()
    assert first.startswith("test idp: listening on "), first
    idp_url = first.split()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    policy = make_policy({
        "credentials": {"approvals-token": {"env": "WARDEN_APPROVALS_TOKEN"},
                        "approvals-verdict-key": {"env": "WARDEN_APPROVALS_VERDICT_KEY"}},
        "identity": {"providers": [
            {"name": "test", "issuer": issuer.issuer, "audiences": [TEST_AUDIENCE],
             "jwks": {"file": str(issuer.jwks_path)}},
            {"name": "warden", "issuer": url, "audiences": [TEST_AUDIENCE],
             "jwks": {"uri": f"{url}/.well-known/jwks.json"}},
        ]},
        "bindings": [{"group": "eng", "role": "developer"}, {"group": "leads", "role": "developer"}],
        "approvals": {"service": {"url": url, "token": "approvals-token", "verdict_key": "approvals-verdict-key"}},
        "roles": {"developer": {"approval": {"approvers": ["leads"], "triggers": [
            {"reason": "opus_model", "models": ["claude-opus-*"]}]}}},
        "token_service": {"issuer": url, "audience": TEST_AUDIENCE, "oidc": [{
            "name": "test-idp", "issuer": idp_url, "audiences": [IDP_CLIENT],
            "jwks": {"uri": f"{idp_url}/jwks.json"}, "client": {"client_id": IDP_CLIENT}}]},
    })
    service = Service(port, keys, tmp / "serve.db", policy, tmp / "serve.log",
                      extra_args=["--token-signing-key", str(keys / "tokens-signing-key.pem")])
    service.start()
    gateway = gateway_factory(policy, extra_args=[
        "--credential-file", f"WARDEN_APPROVALS_TOKEN={keys / 'approvals-token'}",
        "--credential-file", f"WARDEN_APPROVALS_VERDICT_KEY={keys / 'approvals-verdict-key.pub'}",
    ])
    yield Setup(service, idp_url, gateway)
    service.stop()
    stop_process(idp)


def through_idp(browser: Browser, setup: Setup, picker: str, username: str, groups: str) -> Hop:
    """From the source picker through the test IdP's form; the service's answer to the callback."""
    hop = browser.go(f"{setup.service.url}{picker}")
    assert hop.status == 200, hop.body
    link = re.search(r'id="source-test-idp" href="([^"]+)"', hop.body)
    assert link, hop.body
    hop = browser.go(f"{setup.service.url}{html.unescape(link.group(1))}")
    assert hop.status == 303 and hop.location and hop.location.startswith(f"{setup.idp_url}/authorize?"), hop
    sent = urllib.parse.parse_qs(urllib.parse.urlsplit(hop.location).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["nonce"][0] and sent["client_id"] == [IDP_CLIENT]
    form = browser.go(hop.location)
    assert "TEST ONLY" in form.body
    hop = browser.go(hop.location, {"username": username, "groups": groups})
    assert hop.status == 303 and hop.location and hop.location.startswith(f"{setup.service.url}/oauth/callback?"), hop
    return browser.go(hop.location)


def ask(gateway, token: str, prompt: str = "hello"):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": prompt}]}
    return gateway.request("POST", "/v1/messages", {"authorization": f"Bearer {token}",
                                                    "content-type": "application/json",
                                                    "anthropic-version": "2023-06-01"}, body)


def ask_until_keys_fetched(gateway, token: str):
    """Envoy fetches the service's JWKS asynchronously after start: retry its 401 a while."""
    deadline = time.monotonic() + 20
    while True:
        r = ask(gateway, token)
        if r.status != 401 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def cli_sign_in(setup: Setup, username: str = "carol", groups: str = "eng") -> dict:
    verifier = b64url(secrets.token_bytes(32))
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    query = urllib.parse.urlencode({"response_type": "code", "client_id": CLIENT, "redirect_uri": LOOPBACK,
                                    "code_challenge": challenge, "code_challenge_method": "S256",
                                    "state": state})
    browser = Browser()
    hop = browser.go(f"{setup.service.url}/oauth/authorize?{query}")
    assert hop.status == 303 and hop.location and hop.location.startswith("/oauth/sign-in?login="), hop
    hop = through_idp(browser, setup, hop.location, username, groups)
    assert hop.status == 303 and hop.location and hop.location.startswith(f"{LOOPBACK}?"), hop
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(hop.location).query)
    assert back["state"] == [state]
    status, tokens = setup.service.post_form("/oauth/token", {
        "grant_type": "authorization_code", "code": back["code"][0], "code_verifier": verifier,
        "redirect_uri": LOOPBACK, "client_id": CLIENT})
    assert status == 200, tokens
    again, refused = setup.service.post_form("/oauth/token", {
        "grant_type": "authorization_code", "code": back["code"][0], "code_verifier": verifier,
        "redirect_uri": LOOPBACK, "client_id": CLIENT})
    assert (again, refused["error"]) == (400, "invalid_grant"), "a code works once"
    return tokens


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_cli_flow_gives_a_token_the_gateway_accepts(setup, upstream):
    tokens = cli_sign_in(setup)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 600 and tokens["refresh_token"]
    identity = claims(tokens["access_token"])
    assert (identity["iss"], identity["sub"], identity["groups"]) == (setup.service.url, "carol", ["eng"])
    assert identity["warden_src"] == "test-idp" and identity["warden_auth"] == "oidc"
    r = ask_until_keys_fetched(setup.gateway, tokens["access_token"])
    assert r.status == 200, r.text
    assert upstream.requests(), "the call reached Claude"


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_sign_in(setup):
    tokens = cli_sign_in(setup, "dave")
    status, fresh = setup.service.post_form("/oauth/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                          "client_id": CLIENT})
    assert status == 200, fresh
    assert fresh["refresh_token"] != tokens["refresh_token"] and claims(fresh["access_token"])["sub"] == "dave"
    status, reused = setup.service.post_form("/oauth/token", {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                           "client_id": CLIENT})
    assert (status, reused["error"]) == (400, "invalid_grant")
    assert "revoked" in reused["error_description"]
    status, after = setup.service.post_form("/oauth/token", {"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"],
                                          "client_id": CLIENT})
    assert (status, after["error"]) == (400, "invalid_grant"), "the whole sign-in is revoked"


def test_the_device_flow_signs_in_a_terminal(setup, upstream):
    status, device = setup.service.post_form("/oauth/device_authorization", {"client_id": CLIENT})
    assert status == 200, device
    assert re.fullmatch(r"[B-Z]{4}-[B-Z]{4}", device["user_code"])
    assert device["verification_uri"] == f"{setup.service.url}/device"
    assert (device["expires_in"], device["interval"]) == (600, 5)
    poll = {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], "client_id": CLIENT}
    status, pending = setup.service.post_form("/oauth/token", poll)
    assert (status, pending["error"]) == (400, "authorization_pending")

    browser = Browser()
    page = browser.go(device["verification_uri_complete"])
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.body)
    assert csrf, page.body
    forged = Browser().go(f"{setup.service.url}/device", {"user_code": device["user_code"], "csrf": "x"})
    assert forged.status == 403, "the form works only from the page"
    hop = browser.go(f"{setup.service.url}/device", {"user_code": device["user_code"].lower(),
                                                      "csrf": html.unescape(csrf.group(1))})
    assert hop.status == 303 and hop.location and hop.location.startswith("/oauth/sign-in?login="), hop
    done = through_idp(browser, setup, hop.location, "erin", "eng")
    assert done.status == 200 and 'id="signed-in"' in done.body, done.body

    interval = device["interval"]
    while True:  # a real client's loop: wait the interval, slower when told so
        time.sleep(interval)
        status, answer = setup.service.post_form("/oauth/token", poll)
        if answer.get("error") != "slow_down":
            break
        interval += 5
    assert status == 200, answer
    assert claims(answer["access_token"])["sub"] == "erin" and answer["refresh_token"]
    r = ask_until_keys_fetched(setup.gateway, answer["access_token"])
    assert r.status == 200, r.text


def test_a_redirect_off_this_machine_gets_an_error_page_never_a_redirect(setup):
    for uri in ("http://127.0.0.1.evil.example:80/cb", "http://localhost@evil.example/cb",
                "https://127.0.0.1:8080/cb", "http://example.com:8080/cb"):
        query = urllib.parse.urlencode({"response_type": "code", "client_id": CLIENT, "redirect_uri": uri,
                                        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                        "code_challenge_method": "S256", "state": "s"})
        hop = Browser().go(f"{setup.service.url}/oauth/authorize?{query}")
        assert (hop.status, hop.location) == (400, None), uri
        assert 'id="error"' in hop.body


def test_without_pkce_the_cli_is_sent_back_with_invalid_request(setup):
    query = urllib.parse.urlencode({"response_type": "code", "client_id": CLIENT, "redirect_uri": LOOPBACK,
                                    "state": "s1"})
    hop = Browser().go(f"{setup.service.url}/oauth/authorize?{query}")
    assert hop.status == 303 and hop.location, hop
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(hop.location).query)
    assert (back["error"], back["state"]) == (["invalid_request"], ["s1"])


def test_an_approver_signs_into_the_console_with_the_identity_provider(setup, tmp_path):
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        assert Path(tool).exists(), f"{tool} is missing: run `make build` (scripts/bootstrap.sh installs it)"
    assert (BROWSER / "node_modules" / "selenium-webdriver").is_dir(), "run `make build` (npm ci in tests/e2e/browser)"
    screenshot = tmp_path / "console-sign-in.png"
    browser = subprocess.run(["node", str(BROWSER / "sign_in.mjs"), setup.service.url, "bob", "leads",
                              str(screenshot)], capture_output=True, text=True, timeout=90, cwd=BROWSER)
    outcome = json.loads(browser.stdout.strip().splitlines()[-1]) if browser.stdout.strip() else {}
    assert outcome.get("ok"), browser.stdout + browser.stderr + setup.service.log()
    assert "bob" in outcome["whoami"]
    assert "Signed in as bob" in outcome["flash"]
    assert outcome["url"].endswith("/reviews")
