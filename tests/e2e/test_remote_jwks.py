"""A provider whose JWKS is fetched from a URI (`jwks: {uri: https://...}`): the renderer adds a
`jwks_<name>` TLS cluster and Envoy fetches the keys from it. Served here over HTTPS by a tiny local
server as `localhost`, with a throw-away CA handed to the renderer (--ca-file)."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time

import pytest

from conftest import make_ca_and_leaf

JWKS_PATH = "/.well-known/jwks.json"


@pytest.fixture(scope="module")
def jwks_server(issuer, tmp_path_factory):
    pki = make_ca_and_leaf(tmp_path_factory.mktemp("jwks-tls"), "localhost")
    body = json.dumps(issuer.jwks).encode()
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - stdlib name
            hits.append(self.path)
            data = body if self.path == JWKS_PATH else b"{}"
            self.send_response(200 if self.path == JWKS_PATH else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}{JWKS_PATH}", hits, pki["ca"]
    server.shutdown()
    server.server_close()


def test_remote_jwks_provider(gateway_factory, make_policy, issuer, jwks_server, upstream):
    uri, hits, ca = jwks_server
    policy = make_policy({"identity": {"providers": [{
        "name": "remote", "issuer": issuer.issuer, "audiences": ["warden"],
        "jwks": {"uri": uri}}]}})
    gw = gateway_factory(policy, extra_args=["--ca-file", str(ca)])
    assert "jwks_remote" in gw.config_path.read_text()
    token = issuer.mint()
    deadline = time.monotonic() + 15
    while True:  # the fetch is asynchronous: the listener does not wait for it
        r = gw.request("GET", "/v1/models", {"authorization": f"Bearer {token}"})
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status == 200, r.text
    assert JWKS_PATH in hits
    forged = issuer.mint(wrong_key=True)
    r = gw.request("GET", "/v1/models", {"authorization": f"Bearer {forged}"})
    assert r.status == 401, r.text
