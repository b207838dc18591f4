"""Kinds that exercise the generator and the scorer themselves (tests/dlp_corpus.rs), not a
family's formats: a prefixed token, a value that needs its name, a multi-line snippet, a one-line
snippet with two private parts, and private parts with characters JSON escapes (quotes,
backslashes, newlines) and non-ASCII text. Load with `generate.py --extra`."""

from kinds import ALNUM, UPPER_ALNUM, Kind, Secret, rand, snippet, token


def pem(rng):
    body = "\n".join(rand(rng, ALNUM + "+/", 64) for _ in range(6))
    return snippet("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----", body=body)


def connection(rng):
    return snippet("postgres://{user}:{password}@db.internal:5432/app", user="svc_" + rand(rng, ALNUM, 6), password=rand(rng, ALNUM, 18))


KINDS = [
    Kind("selftest-prefixed", "credential", lambda r: token("AKIA", rand(r, UPPER_ALNUM, 16)), ("selftest_key_id",)),
    Kind("selftest-named", "credential", lambda r: Secret(rand(r, ALNUM, 30) + '"\\' + rand(r, ALNUM, 4)), ("SELFTEST_SECRET", "selftest.apiSecret")),
    Kind("selftest-pem", "credential", pem),
    Kind("selftest-connection", "credential", connection, ("DATABASE_URL",)),
    Kind("selftest-unicode", "pii", lambda r: Secret("Zoë Ångström-" + rand(r, ALNUM, 10))),
]
