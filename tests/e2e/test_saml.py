"""SAML sign-in, the browser's round trip with plain HTTP: `warden serve`'s login URL redirects to
the SAML IdP simulator (scripts/test_saml_idp.py, signing with Debian's xmlsec1), its form is
submitted, its auto-posting page is followed to the service's assertion consumer, which verifies
the response and hands the sign-in to `SignIns::complete`.

Until browser sign-ins exist at the service (the sign-in slice's `SignIns`), completion answers
"this sign-in is unknown": the test asserts the verified identity (subject and groups) reached it,
and that a replay, a tampered response and a response to another request are refused.
"""

from __future__ import annotations

import base64
import html
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import REPO, Service, auditor_service_changes, free_port, init_keys, stop_process

ISSUER = "http://warden-saml.test"
IDP_ENTITY = "urn:warden:test-saml-idp"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 (urllib's signature)
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def fetch(url: str, form: dict[str, str] | None = None) -> tuple[int, Message, str]:
    """GET (or POST `form`) without following redirects: (status, headers, body)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with OPENER.open(urllib.request.Request(url, data=data), timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


class Forms(HTMLParser):
    """The forms of a page: action and input values."""

    def __init__(self, page: str):
        super().__init__()
        self.forms: list[dict] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "id": a.get("id", ""), "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")


@pytest.fixture(scope="module")
def saml(tmp_path_factory: pytest.TempPathFactory, make_policy):
    """The simulator and a `warden serve` whose token service trusts it as SAML provider `corp`."""
    tmp = tmp_path_factory.mktemp("saml")
    idp = subprocess.Popen(
        [sys.executable, str(REPO / "scripts/test_saml_idp.py"), "--port", "0", "--dir", str(tmp / "idp"),
         "--entity-id", IDP_ENTITY],
        stdout=subprocess.PIPE, stderr=open(tmp / "idp.log", "wb"), stdin=subprocess.DEVNULL, text=True)
    line = idp.stdout.readline()
    assert line.startswith("listening on "), (line, (tmp / "idp.log").read_text())
    idp_url = line.split()[-1]
    port = free_port()
    changes = auditor_service_changes(port)
    changes["token_service"] = {"issuer": ISSUER, "saml": [{
        "name": "corp", "idp_entity_id": IDP_ENTITY, "idp_sso_url": f"{idp_url}/sso",
        "idp_certificate": str(tmp / "idp" / "idp-cert.pem")}]}
    keys = init_keys(tmp / "keys")
    service = Service(port, keys, tmp / "warden.db", make_policy(changes), tmp / "serve.log",
                      extra_args=["--token-signing-key", str(keys / "tokens-signing-key.pem")])
    service.start()
    yield service, idp_url
    service.stop()
    stop_process(idp)


def sign_in_at_the_idp(service_url: str, login: str, user: str, groups: str, provider: str = "corp") -> dict:
    """Follows the login redirect and submits the IdP's form; the auto-post form it answers."""
    status, headers, body = fetch(f"{service_url}/saml/{provider}/login?login={login}")
    assert status == 303, body
    location = headers["Location"]
    status, _, page = fetch(location)
    assert status == 200 and "TEST ONLY" in page, page
    form = Forms(page).forms[0]
    assert form["fields"]["RelayState"] == login
    fields = dict(form["fields"], username=user, groups=groups)
    status, _, page = fetch(urllib.parse.urljoin(location, form["action"]), fields)
    assert status == 200, page
    auto_post = Forms(page).forms[0]
    assert auto_post["id"] == "saml-post" and "document.forms[0].submit()" in page
    return auto_post


def message(page: str) -> str:
    found = re.search(r'<p id="message">(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


def acs(service_url: str, fields: dict[str, str], provider: str = "corp") -> tuple[int, str]:
    status, _, page = fetch(f"{service_url}/saml/{provider}/acs", fields)
    return status, message(page)


def test_browser_round_trip_through_the_simulator_reaches_completion(saml):
    service, _ = saml
    auto_post = sign_in_at_the_idp(service.url, "login-e2e-1", "carol@example.com", "eng, leads")
    assert auto_post["action"] == f"{ISSUER}/saml/corp/acs"
    status, text = acs(service.url, auto_post["fields"])
    # Verified, handed to SignIns::complete (no browser sign-in of that id exists yet).
    assert status == 400 and "this sign-in is unknown" in text, text
    assert "carol@example.com (groups: eng, leads) verified" in service.log()

    # Posting the same response again: the request is answered already.
    status, text = acs(service.url, auto_post["fields"])
    assert status == 403 and "already answered" in text, text


def test_a_tampered_response_is_refused(saml):
    service, _ = saml
    fields = sign_in_at_the_idp(service.url, "login-e2e-2", "dave@example.com", "eng")["fields"]
    xml = base64.b64decode(fields["SAMLResponse"]).decode()
    tampered = xml.replace("dave@example.com", "admin@example.com")
    status, text = acs(service.url, dict(fields, SAMLResponse=base64.b64encode(tampered.encode()).decode()))
    assert status == 403 and "does not verify" in text, text
    assert "admin@example.com" not in service.log()


def test_a_response_must_answer_a_request_of_this_service(saml):
    service, idp_url = saml
    # A request this service never issued, sent straight to the IdP.
    deflater = zlib.compressobj(wbits=-15)
    forged_request = base64.b64encode(deflater.compress(
        f'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_forged" Version="2.0" '
        f'AssertionConsumerServiceURL="{ISSUER}/saml/corp/acs"><saml:Issuer>{ISSUER}/saml/corp</saml:Issuer>'
        f'</samlp:AuthnRequest>'.encode()) + deflater.flush()).decode()
    status, _, page = fetch(f"{idp_url}/sso", {"SAMLRequest": forged_request, "RelayState": "x",
                                                "username": "eve@example.com", "groups": "eng"})
    assert status == 200, page
    status, text = acs(service.url, Forms(page).forms[0]["fields"])
    assert status == 403 and "answers no sign-in request" in text, text


def test_relay_state_binds_the_response_to_the_sign_in_that_started_it(saml):
    service, _ = saml
    fields = sign_in_at_the_idp(service.url, "login-e2e-3", "frank@example.com", "eng")["fields"]
    status, text = acs(service.url, dict(fields, RelayState="login-someone-else"))
    assert status == 403 and "RelayState" in text, text


def test_sp_metadata_is_served_for_the_provider(saml):
    service, _ = saml
    status, headers, body = fetch(f"{service.url}/saml/corp/metadata")
    assert status == 200 and headers["Content-Type"] == "application/samlmetadata+xml"
    assert f'entityID="{ISSUER}/saml/corp"' in body
    assert f'Location="{ISSUER}/saml/corp/acs"' in body
