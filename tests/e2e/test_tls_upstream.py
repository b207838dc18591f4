"""The https upstream path of the rendered config (what api.anthropic.com gets): TLS with SNI, the
server certificate checked against the CA bundle and the host name, ALPN. Exercised against the fake
upstream serving HTTPS on 127.0.0.1 as `localhost`, with a throw-away CA."""

from __future__ import annotations

import pytest

from conftest import make_ca_and_leaf, start_fake_upstream, stop_process


@pytest.fixture(scope="module")
def tls_env(tmp_path_factory, fake_upstream):
    directory = tmp_path_factory.mktemp("tls")
    (directory / "good").mkdir()
    (directory / "other").mkdir()
    good = make_ca_and_leaf(directory / "good", "localhost")
    other = make_ca_and_leaf(directory / "other", "localhost")  # same name, another CA
    # Same key as the shared fake, so the gateway's credential file fits.
    fake = start_fake_upstream(directory, fake_upstream.api_key,
                               "--tls-cert", str(good["cert"]), "--tls-key", str(good["key"]))
    yield fake, good, other
    stop_process(fake.proc)


def test_https_upstream_verified_against_the_ca(gateway_factory, tls_env, token):
    fake, good, _ = tls_env
    gw = gateway_factory(upstream_url=f"https://localhost:{fake.port}",
                         extra_args=["--ca-file", str(good["ca"])])
    r = gw.request("GET", "/v1/models", {"authorization": f"Bearer {token}"})
    assert r.status == 200, r.text
    assert r.header("request-id").startswith("req_fake_")
    sent = fake.last()
    assert dict((k.lower(), v) for k, v in sent["headers"])["host"] == "localhost"


def test_https_upstream_with_an_untrusted_certificate_is_refused(gateway_factory, tls_env, token):
    fake, _, other = tls_env
    fake.clear()
    gw = gateway_factory(upstream_url=f"https://localhost:{fake.port}",
                         extra_args=["--ca-file", str(other["ca"])])
    r = gw.request("GET", "/v1/models", {"authorization": f"Bearer {token}"})
    assert r.status == 503, r.text
    assert r.json()["error"]["type"] == "api_error"
    assert "upstream_unavailable" in r.json()["error"]["message"]
    assert fake.requests() == [], "no request may reach an unverified upstream"
