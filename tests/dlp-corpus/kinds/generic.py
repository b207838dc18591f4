"""Generic assignments: random values without a vendor shape, recognisable only by the name they
are assigned to (docs/dlp.md, "Generic assignments"). Every kind has `names` (so the generator
always writes one): the long tail of names people give secrets, in their usual spellings
(`SIGNING_KEY`, `appKey`, `x-api-key`, `client_secret`, `authToken`). The detectors are
`generic-secret` (quoted values) and `generic-env-secret` (unquoted ones); the ids below name the
shape."""

from . import ALNUM, B64, HEX, URL_SAFE, Kind, Secret, rand

LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def _password(r):
    # A person's password: letters, digits and a symbol, 12-20 characters.
    symbols = "!#%*+-_=~@^"
    body = rand(r, ALNUM, r.randint(10, 17)) + rand(r, "0123456789", 1) + rand(r, symbols, 1)
    return Secret("".join(r.sample(body, len(body))))


def _api_key(r):
    return Secret(r.choice([rand(r, ALNUM, 32), rand(r, HEX, 32), rand(r, LOWER_ALNUM, 40), rand(r, URL_SAFE, 43)]))


KINDS = [
    Kind("generic-password", "credential", _password,
         ("password", "DB_PASSWORD", "db_pass", "MYSQL_PWD", "passphrase", "adminPassword", "spring.datasource.password",
          "SMTP_PASS", "redis_password"), "OWASP secrets management: passwords in configuration"),
    Kind("generic-api-key", "credential", _api_key,
         ("api_key", "API_KEY", "apiKey", "x-api-key", "X-API-KEY", "apikey", "api-key", "API_SECRET", "api_secret"),
         "common API-key header and variable names"),
    Kind("generic-vendor-key", "credential", lambda r: Secret(rand(r, ALNUM, r.choice([24, 32, 40]))),
         ("STRIPE_KEY", "SENDGRID_KEY", "mailgun_key", "ALGOLIA_KEY", "PUSHER_KEY", "MAPBOX_KEY", "appKey", "app_key",
          "deploy_key", "ACCESS_KEY"), "vendor keys written as <VENDOR>_KEY"),
    Kind("generic-crypto-key", "credential", lambda r: Secret(r.choice([rand(r, HEX, 64), rand(r, B64, 44)])),
         ("SIGNING_KEY", "ENCRYPTION_KEY", "MASTER_KEY", "SECRET_KEY", "secretKey", "encryptionKey", "HMAC_KEY",
          "AES_KEY", "LICENSE_KEY"), "symmetric keys and license keys by name"),
    Kind("generic-client-secret", "credential", lambda r: Secret(rand(r, URL_SAFE, r.choice([32, 40, 48]))),
         ("client_secret", "CLIENT_SECRET", "clientSecret", "app_secret", "consumer_secret", "CONSUMER_SECRET",
          "webhook_secret", "WEBHOOK_SECRET", "signing_secret", "SLACK_SIGNING_SECRET"), "OAuth 2.0 (RFC 6749) client secrets, webhook signing secrets"),
    Kind("generic-token", "credential", lambda r: Secret(rand(r, ALNUM, r.choice([32, 40, 64]))),
         ("access_token", "ACCESS_TOKEN", "refresh_token", "refreshToken", "session_token", "auth_token", "authToken",
          "AUTH_TOKEN", "id_token", "bearer", "API_TOKEN", "token"), "OAuth 2.0 (RFC 6749) access and refresh tokens"),
    Kind("generic-credential", "credential", lambda r: Secret(rand(r, ALNUM, 32)),
         ("credential", "credentials", "CREDENTIALS", "creds", "auth", "AUTH", "jwt", "JWT_SECRET"),
         "credentials by their least specific names"),
]
