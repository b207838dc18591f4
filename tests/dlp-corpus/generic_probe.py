"""Quick probe of the generic assignments: `python3 tests/dlp-corpus/generic_probe.py [-v]`.

Runs `target/release/warden redact --jsonl` over (1) clean snippets in which nothing should be
masked — code that reads secrets, documentation with examples and placeholders, lock files,
manifests, logs, hashes, UUIDs — and (2) random values next to secret names in many syntaxes,
and prints how many clean snippets changed and how many secrets leaked (8 consecutive private
characters left). `-v` lists each one. A development aid; `make eval-dlp` is the evaluation.
"""

import base64
import hashlib
import json
import random
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
rng = random.Random("generic-probe")
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def r(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def hexd(n: int) -> str:
    return r("0123456789abcdef", n)


def sha(algo: str) -> str:
    return hashlib.new(algo, r(ALNUM, 12).encode()).hexdigest()


def b64(n: int) -> str:
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(n))).decode()


def uid() -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def clean() -> list[str]:
    fixed = [
        'api_key = os.environ["API_KEY"]',
        'api_key = os.getenv("OPENAI_API_KEY")',
        "password = getpass.getpass()",
        'secret = config.get("secret")',
        "key = keys[0]",
        "items.sort(key=lambda item: item.created_at)",
        "sorted(users, key=operator.attrgetter('last_name'))",
        '{"key": "value", "other_key": "other_value"}',
        '"title_key": "home.title", "subtitle_key": "home.subtitle_long"',
        '"passwordLabel": "Enter your password", "password_reset_subject": "Reset your password"',
        "token = request.headers.get('Authorization')",
        "self.token = token",
        'TOKEN_URL = "https://oauth2.googleapis.com/token"',
        "const token = await getAccessToken(clientId);",
        "apiKey: process.env.OPENAI_API_KEY!,",
        "let key = map.keys().next().unwrap();",
        'password_field = "password_confirmation"',
        'SECRET_KEY_SETTING = "DJANGO_SECRET_KEY"',
        'cache_key = f"user:{user_id}:profile"',
        'primary_key = "id"',
        'spring.datasource.password=${DB_PASSWORD}',
        "<password>${db.password}</password>",
        'password: "{{ .Values.postgresql.password }}"',
        "password: ${DB_PASSWORD:-postgres}",
        'dsn = "host=%(host)s password=%(password)s"',
        'token: $(cat /run/secrets/token)',
        "secretName: tls-secret-prod",
        "secretKeyRef:\n  name: db-credentials\n  key: password",
        'export OPENAI_API_KEY="sk-..."',
        "API_KEY=your-api-key-here",
        "password: changeme",
        "DATABASE_URL=postgres://user:password@localhost:5432/app",
        "token: <your token>",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "ANTHROPIC_API_KEY=sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "api_key: YOUR_API_KEY_HERE",
        "api_key = \"<YOUR_API_KEY>\"",
        "password = \"********\"",
        "token: \"•••••••••••\"",
        "secret: REDACTED",
        "client_secret = \"your-client-secret\"",
        "password=dummy-password-123",
        "STRIPE_KEY=sk_test_placeholder",
        "api_key = \"fake-api-key-for-tests\"",
        "password = \"sample_password_1\"",
        "secret = 'PLACEHOLDER_SECRET_VALUE'",
        "max_tokens=1024 input_tokens=2048 output_tokens: 512",
        "token_count: 40960000",
        'secret_file = "/etc/secrets/api.key"',
        "key_path: ~/.ssh/id_ed25519",
        'private_key_file = "keys/private.pem"',
        'publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm3 dev@laptop"',
        "Passphrase: (none)",
        "password = None",
        "password=\npassword_confirmation=",
        "auth = HTTPBasicAuth(username, password)",
        "auth: { type: 'bearer' }",
        "credentials = service_account.Credentials.from_service_account_file(path)",
        "access_token = response.json()['access_token']",
        "refresh_token: string;",
        "id_token = flow.credentials.id_token",
        "jwt = jwt_encode(payload, SECRET)",
        'bearer = f"Bearer {token}"',
        "webhook_secret = settings.STRIPE_WEBHOOK_SECRET",
        "signing_secret: process.env.SLACK_SIGNING_SECRET,",
        "private: true",
        '"private": false,',
        "dsn = settings.SENTRY_DSN",
        'connection_string = os.environ["AZURE_STORAGE_CONNECTION_STRING"]',
        "license_key = read_license()",
        "key := strings.TrimSpace(parts[0])",
        'key = "Content-Type"',
        '"key": "spring.datasource.url"',
        "SIGNING_KEY = env('SIGNING_KEY')",
        'ENCRYPTION_KEY = "ENCRYPTION_KEY_NOT_SET"',
        "appKey: config.appKey,",
        'x-api-key: "{{api_key}}"',
        "-H 'X-Api-Key: $API_KEY'",
        "curl -H \"Authorization: Bearer $TOKEN\" https://api.example.com",
        "--token ${{ secrets.NPM_TOKEN }}",
        "token: ${{ secrets.GITHUB_TOKEN }}",
        "$env:API_KEY = Read-Host -AsSecureString",
        'setx API_KEY "%API_KEY%"',
        "password: !vault |",
        "password = \"%s\" % pw",
        "next_page_token = response.next_page_token",
        "CancellationToken cancellationToken = default",
        "sort_key = 'created_at'",
        'partition_key = "/tenantId"',
        'foreign_key = "author_id"',
        'idempotency_key = "order-created-1042"',
        'translation_key = "errors.password.too_short"',
        'i18nKey="settings.apiKeys.createButton"',
        "keyboard = KeyboardInterrupt",
        'monkey = "george_the_monkey"',
        'hotkey = "ctrl+shift+p"',
        'primaryKey: "user_id_v2"',
        "token = tokenizer.encode(text)",
        "token_type: Bearer",
        "grant_type=client_credentials&scope=read",
        "PASSWORD_MIN_LENGTH=12",
        "password_hash = bcrypt.hashpw(password, bcrypt.gensalt())",
        "SECRET_NAME=prod/app/db-credentials",
        "secret: my-secret-name",
        "token_endpoint: https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "key: value",
        "key: ca.crt",
        "  tls:\n    secretName: example-tls\n    key: tls.key",
        'pkey = "PRIMARY_KEY_COLUMN"',
        "secret = Secret.from_env(\"API_TOKEN\")",
        "password=$(openssl rand -base64 32)",
        "API_TOKEN=$(vault kv get -field=token secret/api)",
        "password: \"{{ lookup('env', 'DB_PASSWORD') }}\"",
        "Password: <%= ENV['DB_PASSWORD'] %>",
        'token = "{token}"',
        'api_key = "{api_key}"',
        "api_key=API_KEY",
        "auth_token = AUTH_TOKEN_PLACEHOLDER",
        'apiKey: "REPLACE_WITH_YOUR_KEY"',
        "secret_key_base: <%= ENV[\"SECRET_KEY_BASE\"] %>",
        "key = \"a\" * 32",
        "private_key = serialization.load_pem_private_key(data, password=None)",
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n<your key here>\n-----END OPENSSH PRIVATE KEY-----",
        "token: abc123...",
        "ghp_abc123…",
        "API_KEY=1234567890abcdef",
        "secret=abcdefghijklmnop",
        "password: Password123",
        "token=0123456789abcdefghijklmnopqrstuv",
        'color_key = "#ff00aa"',
        "version_key: v1.2.3-beta.4",
        'keyPrefix: "app/cache/v2/"',
        'keyFile: "/var/run/secrets/kubernetes.io/serviceaccount/token"',
        'apiKeyHeaderName = "X-Api-Key"',
        'authHeader = "Authorization"',
        'private_key_id = "PRIVATE_KEY_ID"',
        'TOKEN_PATTERN = r"[A-Za-z0-9]{32}"',
        "secret = secrets.token_urlsafe(32)",
        "token = jwt.encode({'sub': user.id}, key, algorithm='HS256')",
        "<add key=\"ApiKey\" value=\"$(ApiKey)\" />",
        '<property name="password" value="${jdbc.password}"/>',
        'password="{{password}}"',
        "machine api.github.com login octocat password $GITHUB_TOKEN",
        "  authToken: process.env.NPM_TOKEN,",
        "//registry.npmjs.org/:_authToken=${NPM_TOKEN}",
        "pin: 1234",
        "salt = os.urandom(16)",
        "api_secret=None",
        'consumer_secret = ""',
        "session_token = boto3.Session().get_credentials().token",
    ]
    out = list(fixed)
    for _ in range(6):
        out += [
            f'"integrity": "sha512-{b64(64)}"',
            f'  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz#{sha("sha1")}"\n  integrity sha512-{b64(64)}',
            f'checksum = "{sha("sha256")}"',
            f"golang.org/x/net v0.17.0 h1:{b64(32)}",
            f'    --hash=sha256:{sha("sha256")}',
            f'{{file = "requests-2.31.0-py3-none-any.whl", hash = "sha256:{sha("sha256")}"}}',
            f"commit {sha('sha1')}\nMerge: {hexd(7)} {hexd(7)}\nAuthor: Dev <dev@acme.io>",
            f"FROM python:3.12-slim@sha256:{sha('sha256')}",
            f'ETag: "{hexd(32)}"',
            f'"request_id": "{uid()}", "session_id": "{uid()}"',
            f'"key": "{uid()}"',
            f'"idempotencyKey": "{uid()}"',
            f"X-Request-Id: {uid()}",
            f'"sha": "{sha("sha1")}", "node_id": "C_{r(ALNUM, 20)}"',
            f'<img src="data:image/png;base64,{b64(90)}">',
            f'"md5": "{sha("md5")}"',
            f'key_hash = "{sha("sha256")}"',
            f'"digest": "sha256:{sha("sha256")}"',
            f"- uses: actions/checkout@{sha('sha1')} # v4.1.1",
            f'publicKey: "{b64(32)}"',
            f'"public_key": "{b64(65)}"',
            f'publishable_key = "pk_live_{r(ALNUM, 24)}"',
            f"cache_key: build-{sha('sha256')}",
            f'"etag": "W/\\"{hexd(16)}\\""',
            f"integrity=\"sha384-{b64(48)}\"",
            f'git_commit: "{sha("sha1")}"',
            f'"object_key": "uploads/2024/{uid()}.png"',
            f'next_page_token: "{b64(24)}"',
        ]
    return out


def positives() -> list[tuple[str, str]]:
    """(text, private value)"""
    syntaxes = [
        "{n}={v}", "{n}: {v}", '"{n}": "{v}"', "{n} = '{v}'", '{n} := "{v}"', "--{n} {v}", "--{n}={v}",
        'export {N}="{v}"', "{N}={v}", 'setx {N} "{v}"', '$env:{N} = "{v}"', "{n}={v}",
        "<{n}>{v}</{n}>", '<add key="{n}" value="{v}" />', '{n}="{v}"', "  {n}: {v}\n",
    ]
    names = [
        "stripe_key", "appKey", "app_key", "signing_key", "encryption_key", "master_key", "license_key", "secret_key",
        "auth", "auth_token", "authToken", "credential", "credentials", "client_secret", "app_secret",
        "consumer_secret", "api_secret", "access_token", "refresh_token", "session_token", "id_token", "bearer",
        "jwt", "webhook_secret", "signing_secret", "passphrase", "password", "api_key", "apiKey", "secret",
        "token", "dd_api_key", "datadog_api_key", "sendgrid_key", "access_key", "private_key", "x-api-key",
        "cf_api_token", "mailgun_key", "deploy_key",
    ]
    out = []
    for name in names:
        for syntax in rng.sample(syntaxes, 4):
            value = r(ALNUM, rng.choice([20, 24, 32, 40]))
            if rng.random() < 0.3:
                value = hexd(32)
            if rng.random() < 0.2:
                value = r(ALNUM + "+/", 40)
            text = syntax.format(n=name, N=name.upper().replace("-", "_"), v=value)
            out.append((text, value))
    out.append((f"-H 'X-Api-Key: {r(ALNUM, 32)}'", None))
    out.append((f"Authorization: Bearer {r(ALNUM, 40)}", None))
    out.append((f"machine api.acme.io login deploy password {r(ALNUM, 24)}", None))
    return [(t, v if v is not None else t.split()[-1].strip("'")) for t, v in out]


def run(texts: list[str]) -> list[str]:
    lines = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    out = subprocess.run([str(ROOT / "target/release/warden"), "redact", "--jsonl"], input=lines,
                         capture_output=True, text=True, check=False)
    return [json.loads(line)["text"] for line in out.stdout.splitlines() if line.strip()]


def leaked(private: str, output: str) -> bool:
    return any(private[i:i + 8] in output for i in range(max(len(private) - 7, 1)))


def main() -> int:
    verbose = "-v" in sys.argv
    cl = clean()
    changed = [(a, b) for a, b in zip(cl, run(cl)) if a != b]
    pos = positives()
    missed = [t for (t, v), o in zip(pos, run([t for t, _ in pos])) if leaked(v, o)]
    if verbose:
        for a, b in changed:
            print("FP  ", repr(b[:200]))
        for t in missed:
            print("MISS", repr(t[:200]))
    print(f"clean changed: {len(changed)}/{len(cl)}   secrets missed: {len(missed)}/{len(pos)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
