#!/usr/bin/env python3
"""A tiny OpenID Connect provider for the demo and the tests. TEST ONLY: it signs in whoever
types a name, with whatever groups they type, and no password.

    .venv/bin/python scripts/test_idp.py --port 8788 [--key-file .demo/test-idp-key.pem]

Serves, on 127.0.0.1 only:
  GET  /.well-known/openid-configuration   discovery (issuer, endpoints, jwks_uri)
  GET  /jwks.json                          the public key (ES256)
  GET  /authorize?...                      a form: username, groups (comma-separated)
  POST /authorize?...                      issues a one-time code (60 s) and redirects to
                                           redirect_uri?code=...&state=...
  POST /token                              authorization_code grant; checks client_id,
                                           redirect_uri and the PKCE S256 verifier (required);
                                           answers an ID token (aud = client_id, nonce, sub,
                                           email, preferred_username, groups; 5 minutes)

The authorization request must carry response_type=code, client_id, redirect_uri, state and an
S256 code_challenge; nonce is copied into the ID token. A client secret, when the client sends
one (HTTP Basic or client_secret), must equal --client-secret when that is set.

The signing key is read from --key-file (PKCS#8 PEM; created there when missing) or generated
at start. The first line on stdout is "test idp: listening on <issuer>".
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

CODE_SECONDS = 60
ID_TOKEN_SECONDS = 300
KID = "test-idp-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_key(path: Path | None) -> ec.EllipticCurvePrivateKey:
    if path is not None and path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            sys.exit(f"test idp: {path} is not an EC private key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
    return key


class Provider:
    def __init__(self, issuer: str, key: ec.EllipticCurvePrivateKey, client_secret: str | None):
        self.issuer = issuer
        self.key = key
        self.client_secret = client_secret
        numbers = key.public_key().public_numbers()
        self.jwks = {"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
                               "x": b64url(numbers.x.to_bytes(32, "big")),
                               "y": b64url(numbers.y.to_bytes(32, "big"))}]}
        self.codes: dict[str, dict] = {}
        self.lock = threading.Lock()

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks.json",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        }

    def issue_code(self, request: dict, username: str, groups: list[str]) -> str:
        code = secrets.token_urlsafe(32)
        with self.lock:
            now = time.time()
            self.codes = {c: v for c, v in self.codes.items() if v["expires"] > now}
            self.codes[code] = {**request, "username": username, "groups": groups, "expires": now + CODE_SECONDS}
        return code

    def redeem(self, form: dict, basic: tuple[str, str] | None) -> tuple[int, dict]:
        def refuse(error: str, why: str) -> tuple[int, dict]:
            return 400, {"error": error, "error_description": why}

        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type", "only authorization_code")
        with self.lock:
            issued = self.codes.pop(form.get("code", ""), None)
        if issued is None or issued["expires"] <= time.time():
            return refuse("invalid_grant", "unknown, used or expired code")
        client_id = basic[0] if basic else form.get("client_id", "")
        if client_id != issued["client_id"]:
            return refuse("invalid_grant", "the code was issued to another client")
        if self.client_secret is not None:
            secret = basic[1] if basic else form.get("client_secret", "")
            if not secrets.compare_digest(secret, self.client_secret):
                return 401, {"error": "invalid_client", "error_description": "wrong client secret"}
        if form.get("redirect_uri") != issued["redirect_uri"]:
            return refuse("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != issued["code_challenge"]:
            return refuse("invalid_grant", "code_verifier does not match the code_challenge")
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": issued["username"], "aud": issued["client_id"], "iat": now,
                  "exp": now + ID_TOKEN_SECONDS, "email": f"{issued['username']}@example.test",
                  "preferred_username": issued["username"], "groups": issued["groups"]}
        if issued.get("nonce"):
            claims["nonce"] = issued["nonce"]
        id_token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": KID})
        return 200, {"access_token": secrets.token_urlsafe(32), "token_type": "Bearer",
                     "expires_in": ID_TOKEN_SECONDS, "id_token": id_token}


AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "state", "nonce", "code_challenge",
                    "code_challenge_method", "scope")

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Test identity provider</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}.warn{{background:#fee;border:2px solid #c00;padding:.7em}}
label{{display:block;margin-top:1em}}input{{width:100%;padding:.4em}}button{{margin-top:1em;padding:.5em 1.5em}}</style></head>
<body><h1>Test identity provider</h1>
<p class="warn" id="test-only"><strong>TEST ONLY.</strong> This provider signs in anyone as anyone, without a
password. It exists for Warden's demo and tests; never trust it in a real deployment.</p>
<p>Signing in to <code>{client}</code>.</p>
<form method="post" id="idp-login">
<label for="username">Username</label><input id="username" name="username" value="alice" required>
<label for="groups">Groups (comma-separated)</label><input id="groups" name="groups" value="eng">
<button type="submit" id="idp-submit">Sign in</button></form></body></html>"""


def make_handler(provider: Provider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: never log codes or tokens
            pass

        def send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("cache-control", "no-store")
            self.send_header("content-length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def json(self, status: int, document: dict) -> None:
            self.send(status, json.dumps(document).encode(), "application/json")

        def text(self, status: int, message: str) -> None:
            self.send(status, message.encode(), "text/plain; charset=utf-8")

        def authorization_request(self) -> dict | str:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if any(len(v) > 1 for v in query.values()):
                return "a parameter is repeated"
            request = {k: query.get(k, [""])[0] for k in AUTHORIZE_PARAMS}
            if request["response_type"] != "code":
                return "response_type must be code"
            if not request["client_id"] or not request["redirect_uri"] or not request["state"]:
                return "client_id, redirect_uri and state are required"
            if request["code_challenge_method"] != "S256" or len(request["code_challenge"]) != 43:
                return "an S256 code_challenge is required"
            return request

        def do_GET(self) -> None:  # noqa: N802
            path = urllib.parse.urlsplit(self.path).path
            if path == "/.well-known/openid-configuration":
                self.json(200, provider.discovery())
            elif path == "/jwks.json":
                self.json(200, provider.jwks)
            elif path == "/authorize":
                request = self.authorization_request()
                if isinstance(request, str):
                    self.text(400, f"test idp: {request}")
                    return
                page = PAGE.format(client=html.escape(request["client_id"]))
                self.send(200, page.encode(), "text/html; charset=utf-8")
            elif path == "/healthz":
                self.text(200, "ok")
            else:
                self.text(404, "not found")

        def read_form(self) -> dict:
            length = min(int(self.headers.get("content-length") or 0), 65536)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))
            return {k: v[0] for k, v in form.items()}

        def do_POST(self) -> None:  # noqa: N802
            path = urllib.parse.urlsplit(self.path).path
            if path == "/authorize":
                request = self.authorization_request()
                if isinstance(request, str):
                    self.text(400, f"test idp: {request}")
                    return
                form = self.read_form()
                username = form.get("username", "").strip()
                if not username:
                    self.text(400, "test idp: a username is required")
                    return
                groups = [g.strip() for g in form.get("groups", "").split(",") if g.strip()]
                code = provider.issue_code(request, username, groups)
                separator = "&" if "?" in request["redirect_uri"] else "?"
                location = (f"{request['redirect_uri']}{separator}"
                            f"{urllib.parse.urlencode({'code': code, 'state': request['state']})}")
                self.send(303, b"", "text/plain", {"location": location})
            elif path == "/token":
                basic = None
                auth = self.headers.get("authorization", "")
                if auth.lower().startswith("basic "):
                    try:
                        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                        basic = (urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password))
                    except ValueError:
                        self.json(401, {"error": "invalid_client"})
                        return
                status, document = provider.redeem(self.read_form(), basic)
                self.json(status, document)
            else:
                self.text(404, "not found")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8788, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--issuer", help="issuer URL [default: http://127.0.0.1:<port>]")
    parser.add_argument("--key-file", type=Path, help="ES256 private key (PEM), created when missing")
    parser.add_argument("--client-secret", help="the secret confidential clients must present")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), None)  # type: ignore[arg-type]
    port = server.server_address[1]
    issuer = (args.issuer or f"http://127.0.0.1:{port}").rstrip("/")
    server.RequestHandlerClass = make_handler(Provider(issuer, load_key(args.key_file), args.client_secret))
    print(f"test idp: listening on {issuer}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
