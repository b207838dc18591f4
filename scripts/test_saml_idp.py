#!/usr/bin/env python3
"""A SAML 2.0 identity provider simulator — TEST ONLY: for the demo and the end-to-end tests.

It accepts anyone: no password, the person types a user name and groups into a form. Never point
a real service at it.

  GET  /sso?SAMLRequest=…&RelayState=…   (HTTP-Redirect binding) a form: user name, groups
  POST /sso                                builds a Response + Assertion answering the
                                           AuthnRequest, signs it with Debian's `xmlsec1` CLI,
                                           and answers a page that auto-posts it (HTTP-POST
                                           binding) to the request's AssertionConsumerServiceURL
  GET  /metadata                           the IdP's entity id, SSO URL and certificate
  GET  /healthz                            "ok"

The signing key and its self-signed certificate are made with `openssl` in --dir
(`idp-key.pem`, `idp-cert.pem`) when missing, so a service's policy can name the certificate
(`token_service.saml[].idp_certificate`). --sign chooses what is signed: `assertion` (default),
`response` or `both`. Requests are decoded with the standard library; the simulator trusts them
(it is a test tool).

  .venv/bin/python scripts/test_saml_idp.py --port 8790 --dir .demo/saml-idp
prints `listening on http://127.0.0.1:PORT` once ready. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import secrets
import subprocess
import sys
import tempfile
import urllib.parse
import xml.etree.ElementTree as ElementTree
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"


def run(*args: str) -> None:
    """Runs a required tool; a missing one stops the simulator with a clear message."""
    try:
        subprocess.run(args, check=True, capture_output=True)
    except FileNotFoundError:
        sys.exit(f"test_saml_idp: {args[0]} is required (apt-get install {args[0]})")
    except subprocess.CalledProcessError as e:
        sys.exit(f"test_saml_idp: {' '.join(args[:2])} failed: {e.stderr.decode(errors='replace')}")


def ensure_key_pair(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "idp-key.pem", directory / "idp-cert.pem"
    if not (key.exists() and cert.exists()):
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            "-subj", "/CN=Warden test SAML IdP (TEST ONLY)", "-keyout", str(key), "-out", str(cert))
        key.chmod(0o600)
    return key, cert


def instant(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def signature_template(reference: str) -> str:
    return (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        f'<ds:Reference URI="#{reference}"><ds:Transforms>'
        '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/>'
        "</ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo>"
        "</ds:Signature>"
    )


def decode_request(saml_request: str) -> ElementTree.Element:
    """The AuthnRequest of an HTTP-Redirect binding (raw deflate, base64)."""
    return ElementTree.fromstring(zlib.decompress(base64.b64decode(saml_request), -15))


class Idp:
    def __init__(self, entity_id: str, directory: Path, sign: str) -> None:
        self.entity_id = entity_id
        self.key, self.cert = ensure_key_pair(directory)
        self.sign_what = sign

    def response(self, request: ElementTree.Element, user: str, groups: list[str]) -> tuple[str, str]:
        """A signed Response answering `request`; returns (its XML, the ACS URL)."""
        acs = request.get("AssertionConsumerServiceURL", "")
        audience = request.findtext(f"{{{ASSERTION}}}Issuer", "")
        now = dt.datetime.now(dt.timezone.utc)
        response_id, assertion_id = f"_r{secrets.token_hex(16)}", f"_a{secrets.token_hex(16)}"
        sign_assertion = self.sign_what in ("assertion", "both")
        sign_response = self.sign_what in ("response", "both")
        esc = html.escape
        values = "".join(f"<saml:AttributeValue>{esc(g)}</saml:AttributeValue>" for g in groups)
        assertion = (
            f'<saml:Assertion xmlns:saml="{ASSERTION}" ID="{assertion_id}" Version="2.0" IssueInstant="{instant(now)}">'
            f"<saml:Issuer>{esc(self.entity_id)}</saml:Issuer>"
            f"{signature_template(assertion_id) if sign_assertion else ''}"
            "<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\">"
            f"{esc(user)}</saml:NameID>"
            '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml:SubjectConfirmationData InResponseTo="{esc(request.get("ID", ""))}" '
            f'NotOnOrAfter="{instant(now + dt.timedelta(minutes=5))}" Recipient="{esc(acs)}"/>'
            "</saml:SubjectConfirmation></saml:Subject>"
            f'<saml:Conditions NotBefore="{instant(now - dt.timedelta(seconds=30))}" '
            f'NotOnOrAfter="{instant(now + dt.timedelta(minutes=5))}">'
            f"<saml:AudienceRestriction><saml:Audience>{esc(audience)}</saml:Audience></saml:AudienceRestriction>"
            "</saml:Conditions>"
            f'<saml:AuthnStatement AuthnInstant="{instant(now)}" SessionIndex="{assertion_id}"><saml:AuthnContext>'
            "<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified</saml:AuthnContextClassRef>"
            "</saml:AuthnContext></saml:AuthnStatement>"
            f'<saml:AttributeStatement><saml:Attribute Name="groups">{values}</saml:Attribute></saml:AttributeStatement>'
            "</saml:Assertion>"
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="{response_id}" Version="2.0" '
            f'IssueInstant="{instant(now)}" Destination="{esc(acs)}" InResponseTo="{esc(request.get("ID", ""))}">'
            f"<saml:Issuer>{esc(self.entity_id)}</saml:Issuer>"
            f"{signature_template(response_id) if sign_response else ''}"
            f'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
            f"{assertion}</samlp:Response>"
        )
        for node, wanted in (("Assertion", sign_assertion), ("Response", sign_response)):
            if wanted:
                xml = self.sign(xml, node)
        return xml, acs

    def sign(self, xml: str, node: str) -> str:
        """Signs the signature template that is a child of `node` with xmlsec1."""
        with tempfile.TemporaryDirectory() as work:
            unsigned, signed = Path(work, "in.xml"), Path(work, "out.xml")
            unsigned.write_text(xml)
            run("xmlsec1", "--sign", "--privkey-pem", f"{self.key},{self.cert}",
                "--id-attr:ID", f"{PROTOCOL}:Response", "--id-attr:ID", f"{ASSERTION}:Assertion",
                "--node-xpath", f"//*[local-name()='{node}']/*[local-name()='Signature']",
                "--output", str(signed), str(unsigned))
            return signed.read_text()


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:15px system-ui,sans-serif;max-width:34em;margin:2em auto}} .warn{{background:#fde8e7;padding:.5em}}</style>
</head><body{onload}><p class="warn"><b>TEST ONLY</b> — a SAML identity provider simulator that accepts anyone.</p>{body}</body></html>"""


def make_handler(idp: Idp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def send_page(self, status: int, title: str, body: str, onload: str = "") -> None:
            data = PAGE.format(title=html.escape(title), body=body, onload=onload).encode()
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/healthz":
                self.send_page(200, "ok", "ok")
            elif url.path == "/metadata":
                cert = "".join(line for line in idp.cert.read_text().splitlines() if "-----" not in line)
                host = self.headers.get("host", "127.0.0.1")
                body = (
                    f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{html.escape(idp.entity_id)}">'
                    '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
                    '<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
                    f"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
                    '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
                    f'Location="http://{html.escape(host)}/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>'
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/samlmetadata+xml")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif url.path == "/sso" and "SAMLRequest" in query:
                try:
                    request = decode_request(query["SAMLRequest"])
                except Exception as e:  # noqa: BLE001 (a test tool: say what was wrong)
                    self.send_page(400, "Bad request", f"<p>SAMLRequest is not a deflated AuthnRequest: {html.escape(str(e))}</p>")
                    return
                hidden = "".join(
                    f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
                    for name in ("SAMLRequest", "RelayState")
                )
                body = (
                    f"<h2>Sign in to {html.escape(request.findtext(f'{{{ASSERTION}}}Issuer', ''))}</h2>"
                    f'<form id="sign-in" method="post" action="/sso">{hidden}'
                    '<p><label>User name <input name="username" id="username" value="alice@example.com"></label></p>'
                    '<p><label>Groups (comma-separated) <input name="groups" id="groups" value="eng"></label></p>'
                    '<p><button type="submit" id="submit">Sign in</button></p></form>'
                )
                self.send_page(200, "Test SAML IdP", body)
            else:
                self.send_page(404, "Not found", "<p>Not found.</p>")

        def do_POST(self) -> None:  # noqa: N802
            if urllib.parse.urlsplit(self.path).path != "/sso":
                self.send_page(404, "Not found", "<p>Not found.</p>")
                return
            length = min(int(self.headers.get("content-length", "0") or 0), 1 << 20)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            try:
                request = decode_request(form.get("SAMLRequest", ""))
            except Exception as e:  # noqa: BLE001
                self.send_page(400, "Bad request", f"<p>SAMLRequest is not a deflated AuthnRequest: {html.escape(str(e))}</p>")
                return
            groups = [g.strip() for g in form.get("groups", "").split(",") if g.strip()]
            xml, acs = idp.response(request, form.get("username", "").strip(), groups)
            encoded = base64.b64encode(xml.encode()).decode()
            body = (
                f'<form id="saml-post" method="post" action="{html.escape(acs)}">'
                f'<input type="hidden" name="SAMLResponse" value="{encoded}">'
                f'<input type="hidden" name="RelayState" value="{html.escape(form.get("RelayState", ""))}">'
                '<noscript><button type="submit">Continue</button></noscript></form>'
            )
            self.send_page(200, "Signing in…", body, ' onload="document.forms[0].submit()"')

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            sys.stderr.write("test_saml_idp: " + format % args + "\n")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--dir", type=Path, required=True, help="where the key pair is kept")
    parser.add_argument("--entity-id", default="urn:warden:test-saml-idp", help="the IdP's entity id (Issuer)")
    parser.add_argument("--sign", choices=["assertion", "response", "both"], default="assertion")
    args = parser.parse_args()
    idp = Idp(args.entity_id, args.dir, args.sign)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(idp))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
