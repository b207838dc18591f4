"""Clean texts of the evaluation set: nothing in them is a secret or personal data.

Each category is a function `make(rng) -> str` that assembles a text from templates and
fabricated identifiers; they are chosen to look like what detectors confuse with secrets: code
that *reads* secrets, documented placeholders and example keys, lock-file digests, hashes, UUIDs,
base64 images, test vectors, truncated tokens, Kubernetes manifests that only reference secrets,
minified JavaScript, logs. E-mail addresses appear only at reserved example domains (RFC 2606),
which are not personal data. A quarter of the texts are shown as Claude sees a tool result (the
text JSON-escaped inside a `tool_result` block).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid

from wrappers import CODE_NOISE, WORDS, fenced, noise, pick, timestamp

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
HEX = "0123456789abcdef"
SECRET_VARS = ["API_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "STRIPE_SECRET_KEY", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "SLACK_BOT_TOKEN", "DD_API_KEY", "SENTRY_DSN", "NPM_TOKEN", "DB_PASSWORD", "JWT_SECRET", "CLIENT_SECRET"]
EXAMPLE_DOMAINS = ["example.com", "example.org", "example.net", "test.example", "mail.example.com"]


def rand(rng, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def hexdigest(rng, bits: int) -> str:
    return rand(rng, HEX, bits // 4)


def b64digest(rng, size: int) -> str:
    return base64.b64encode(rng.randbytes(size)).decode()


def ident(rng) -> str:
    return rng.choice(WORDS) + rng.choice(["_client", "_service", "_handler", "Store", "Repo", "_utils", ""])


def semver(rng) -> str:
    return f"{rng.randint(0, 12)}.{rng.randint(0, 40)}.{rng.randint(0, 30)}"


def uid(rng) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# --- categories ------------------------------------------------------------------------------


def code_reading_secrets(rng):
    var = rng.choice(SECRET_VARS)
    lang, lines = pick(
        rng,
        ("python", [f'api_key = os.environ["{var}"]', f'token = os.getenv("{var}", "")', "password = getpass.getpass('Password: ')", f'headers = {{"Authorization": f"Bearer {{token}}"}}', f"secret = config['{rng.choice(WORDS)}']['secret_key']", "self.passwd = password_mgr"]),
        ("javascript", [f"const apiKey = process.env.{var};", "if (!apiKey) throw new Error('missing key');", "const headers = { Authorization: `Bearer ${apiKey}` };", f"const secret = await vault.read('secret/{rng.choice(WORDS)}');"]),
        ("go", [f'token := os.Getenv("{var}")', 'if token == "" { log.Fatal("token not set") }', 'req.Header.Set("Authorization", "Bearer "+token)', "password, err := term.ReadPassword(int(os.Stdin.Fd()))"]),
        ("rust", [f'let key = std::env::var("{var}")?;', 'let auth = format!("Bearer {key}");', "let password = rpassword::prompt_password(\"Password: \")?;", f'let secret = settings.get::<String>("{rng.choice(WORDS)}.secret")?;']),
        ("bash", [f': "${{{var}:?{var} must be set}}"', f'curl -H "Authorization: Bearer ${var}" https://api.example.com/v1/{rng.choice(WORDS)}', 'read -rs -p "Password: " PASSWORD', f"aws secretsmanager get-secret-value --secret-id {rng.choice(WORDS)}/prod"]),
        ("java", [f'String apiKey = System.getenv("{var}");', 'char[] password = System.console().readPassword("Password: ");', 'conn.setRequestProperty("Authorization", "Bearer " + apiKey);']),
    )
    body = noise(rng, CODE_NOISE.get(lang, CODE_NOISE["python"]), 2) + rng.sample(lines, rng.randint(2, len(lines)))
    return pick(rng, "This is how the client loads its key:\n\n", "", "Refactored version:\n") + fenced(lang, body)


def code_general(rng):
    name, other = ident(rng), ident(rng)
    lang, lines = pick(
        rng,
        ("python", [f"def {name}(items: list[dict]) -> int:", f"    total = sum(i['amount'] for i in items if i.get('{rng.choice(WORDS)}'))", f"    return round(total * {rng.randint(2, 99)} / 100)", "", f"class {other.title().replace('_', '')}:", "    retries = 3"]),
        ("rust", [f"pub fn {name}(input: &[u8]) -> Result<Vec<u8>, Error> {{", f"    let mut out = Vec::with_capacity(input.len() + {rng.randint(8, 512)});", "    for chunk in input.chunks(64) {", "        out.extend_from_slice(chunk);", "    }", "    Ok(out)", "}"]),
        ("go", [f"func {name}(ctx context.Context, id string) (*{other.title()}, error) {{", f"\trow := db.QueryRowContext(ctx, \"SELECT id, name FROM {rng.choice(WORDS)} WHERE id = $1\", id)", "\tvar out Record", "\treturn &out, row.Scan(&out.ID, &out.Name)", "}"]),
        ("typescript", [f"export async function {name}(id: string): Promise<{other.title()}> {{", f"  const res = await fetch(`/api/{rng.choice(WORDS)}/${{id}}`);", "  if (!res.ok) throw new Error(`HTTP ${res.status}`);", "  return res.json();", "}"]),
    )
    return fenced(lang, lines)


def prose_docs(rng):
    sentences = [
        "To rotate a key, create the new one first, deploy it, then revoke the old one.",
        "Never commit credentials: keep them in the secrets manager and read them at start-up.",
        f"The {rng.choice(WORDS)} service authenticates with a short-lived token issued by the identity provider.",
        "Set the API key in your environment before running the examples.",
        "Tokens expire after one hour; the client refreshes them automatically.",
        f"If you see a 401, check that the token has the {rng.choice(WORDS)}:read scope.",
        "Passwords are hashed with Argon2id and never logged.",
        f"Version {semver(rng)} adds retries with exponential back-off.",
        "The secret key is stored encrypted at rest and decrypted only in memory.",
        "See the deployment guide for how the access key is provisioned per environment.",
    ]
    heading = pick(rng, "## Authentication\n\n", "# Getting started\n\n", "", "### Notes\n\n")
    return heading + " ".join(rng.sample(sentences, rng.randint(3, 6)))


def placeholders(rng):
    var = rng.choice(SECRET_VARS)
    lines = [
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        f"{var}=<token>",
        f"{var}=${{{var}}}",
        f"{var}=YOUR_KEY_HERE",
        f"{var}=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "OPENAI_API_KEY=sk-...",
        "DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DATABASE",
        f"{var}=changeme",
        f"{var}=<your-api-key>",
        f"{var}={{{{ secrets.{var} }}}}",
        f"{var}=********",
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        f"{var}=your-secret-here",
        f"{var}=",
        "SLACK_BOT_TOKEN=xoxb-your-token",
        "password: \"<password>\"",
        "api_key: REPLACE_ME",
    ]
    label = pick(rng, "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY")
    body = pick(rng, "...", "<your private key>", "MIIEvQIBADANBg...", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "(paste the key here)")
    pem = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"
    app = rng.choice(WORDS)
    region = pick(rng, "us-west-2", "eu-central-1", "ap-southeast-1", "us-east-1")
    shape = rng.randrange(4)
    if shape == 0:
        return "# .env.example — copy to .env and fill in\n" + "\n".join(rng.sample(lines, rng.randint(3, 7)))
    if shape == 1:
        return f"Put your key in the config:\n\n" + fenced("yaml", [f"{app}:", f"  api_key: ${{{var}}}", f"  secret: <{app}-secret>", "  token: YOUR_TOKEN_HERE", f"  region: {region}"])
    if shape == 2:
        return f"Paste your private key into `{app}.pem`:\n\n```\n{pem}\n```\n\nThen run `chmod 600 {app}.pem`."
    return "Example from the AWS docs:\n\n" + fenced("ini", [f"[{pick(rng, 'default', app, 'profile ' + app)}]", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", f"region = {region}"])


def lockfiles(rng):
    shape = rng.randrange(5)
    pkg = rng.choice(WORDS) + rng.choice(["", "-js", "-core", "-utils", "lib"])
    version = semver(rng)
    if shape == 0:
        entries = []
        for _ in range(rng.randint(1, 3)):
            p, v = rng.choice(WORDS) + rng.choice(["", "-js", "-core"]), semver(rng)
            entries.append(f'    "node_modules/{p}": {{\n      "version": "{v}",\n      "resolved": "https://registry.npmjs.org/{p}/-/{p}-{v}.tgz",\n      "integrity": "sha512-{b64digest(rng, 64)}",\n      "dev": true\n    }}')
        return '{\n  "packages": {\n' + ",\n".join(entries) + "\n  }\n}"
    if shape == 1:
        return "\n\n".join(f'[[package]]\nname = "{rng.choice(WORDS)}{i}"\nversion = "{semver(rng)}"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "{hexdigest(rng, 256)}"' for i in range(rng.randint(1, 3)))
    if shape == 2:
        mod = f"github.com/{rng.choice(WORDS)}/{pkg}"
        return f"{mod} v{version} h1:{b64digest(rng, 32)}\n{mod} v{version}/go.mod h1:{b64digest(rng, 32)}"
    if shape == 3:
        return f'[[package]]\nname = "{pkg}"\nversion = "{version}"\nfiles = [\n    {{file = "{pkg}-{version}-py3-none-any.whl", hash = "sha256:{hexdigest(rng, 256)}"}},\n    {{file = "{pkg}-{version}.tar.gz", hash = "sha256:{hexdigest(rng, 256)}"}},\n]'
    return f"{pkg}=={version} \\\n    --hash=sha256:{hexdigest(rng, 256)} \\\n    --hash=sha256:{hexdigest(rng, 256)}"


def hashes_ids(rng):
    shapes = [
        lambda: "\n".join(f"commit {hexdigest(rng, 160)}\nAuthor: Dev <dev@example.com>\nDate:   Mon Mar {rng.randint(1, 28)} 10:{rng.randint(10, 59)}:00 2025\n\n    {rng.choice(WORDS).title()}: fix retries\n" for _ in range(rng.randint(1, 2))),
        lambda: "\n".join(f"{hexdigest(rng, 256)}  dist/{rng.choice(WORDS)}-{semver(rng)}.tar.gz" for _ in range(rng.randint(1, 4))),
        lambda: "\n".join(f"{k}: {v}" for k, v in [("request_id", uid(rng)), ("trace_id", hexdigest(rng, 128)), ("span_id", hexdigest(rng, 64)), ("etag", f'"{hexdigest(rng, 128)}"')]),
        lambda: f"image: registry.example.com/{rng.choice(WORDS)}@sha256:{hexdigest(rng, 256)}\n# md5 {hexdigest(rng, 128)} sha1 {hexdigest(rng, 160)}",
        lambda: f"Digest: SHA-256={b64digest(rng, 32)}\nContent-MD5: {b64digest(rng, 16)}",
        lambda: f"Merged {hexdigest(rng, 40)[:7]}..{hexdigest(rng, 40)[:7]} into main; see {uid(rng)} for the run.",
        lambda: "$ hexdump -C payload.bin | head -2\n00000000  7f 45 4c 46 02 01 01 00  00 00 00 00 00 00 00 00  |.ELF............|\n00000010  00 49 30 12 34 56 78 90  00 33 14 55 66 77 88 99  |.I0.4Vx..3.Ufw..|",
    ]
    return rng.choice(shapes)()


def data_uris(rng):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(60, 600))).decode()
    return pick(
        rng,
        f'<img alt="{rng.choice(WORDS)} logo" src="data:image/png;base64,{png}" width="32">',
        f".icon-{rng.choice(WORDS)} {{\n  background-image: url(data:image/png;base64,{png});\n}}",
        f"![diagram](data:image/png;base64,{png})",
    )


def test_vectors(rng):
    vectors = [
        'assert hashlib.sha256(b"abc").hexdigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"',
        'assert hashlib.md5(b"").hexdigest() == "d41d8cd98f00b204e9800998ecf8427e"',
        "key = bytes.fromhex(\"000102030405060708090a0b0c0d0e0f\")",
        "// RFC 4231 test case 1: key = 0x0b * 20",
        'let key = [0x0bu8; 20];\nlet expected = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";',
        'nonce = "000000000000004a00000000"',
        f'assert base64.b64encode(b"{rng.choice(WORDS)}") == b"{base64.b64encode(rng.choice(WORDS).encode()).decode()}"',
        f'expected_digest = "{hashlib.sha1(rng.choice(WORDS).encode()).hexdigest()}"',
    ]
    return fenced(pick(rng, "python", "rust"), ["def test_vectors():"] + ["    " + v for v in rng.sample(vectors, 3)])


def near_misses(rng):
    lines = [
        f"The token starts with ghp_{rand(rng, ALNUM, 20)} (truncated in the log).",
        f"Key id AKIA{rand(rng, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 8)} is too short to be real.",
        "Our key looks like sk-ant-... and lives in the vault.",
        f"Slack token prefix xoxb-{rng.randint(10, 99)}… was revoked.",
        f"Build {rng.choice(WORDS)}-{rand(rng, HEX, 7)} passed on runner {rng.randint(1, 40)}.",
        f"The error code was ERR_{rand(rng, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 6)}_{rng.randint(100, 999)}.",
        f"Session ended: sess-{rng.randint(1000, 9999)}.",
    ]
    return "\n".join(rng.sample(lines, rng.randint(2, 4)))


def numbers_misc(rng):
    items = [
        f"version {semver(rng)} released on 2025-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}",
        f"server at 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}:{rng.randint(1024, 65535)}",
        f"IPv6 2001:db8::{rng.randint(1, 9999):x}",
        f"path /var/lib/{rng.choice(WORDS)}/data/{rng.randint(1, 99)}/segment-{rng.randint(0, 999999):06}.log",
        f"see https://docs.example.com/{rng.choice(WORDS)}/{rng.choice(WORDS)}?page={rng.randint(1, 9)}#section-{rng.randint(1, 9)}",
        f"color: #{rand(rng, HEX, 6)}; border-color: #{rand(rng, HEX, 3)};",
        f"order #{rng.randint(100000, 9999999)} total ${rng.randint(1, 9999)}.{rng.randint(0, 99):02}",
        f"epoch {rng.randint(1_600_000_000_000, 1_800_000_000_000)} ms",
        f"coordinates {rng.uniform(-90, 90):.6f}, {rng.uniform(-180, 180):.6f}",
        f"build {rng.randint(1000, 99999)} took {rng.randint(1, 59)}m{rng.randint(0, 59)}s",
        f"contact support@{rng.choice(EXAMPLE_DOMAINS)} or {rng.choice(WORDS)}@{rng.choice(EXAMPLE_DOMAINS)}",
    ]
    return "\n".join(rng.sample(items, rng.randint(3, 6)))


def kubernetes(rng):
    app = rng.choice(WORDS)
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels:
    app: {app}
spec:
  replicas: {rng.randint(1, 6)}
  template:
    spec:
      containers:
        - name: {app}
          image: registry.example.com/{app}:{semver(rng)}
          ports:
            - containerPort: {rng.choice([80, 8080, 3000, 9000])}
          env:
            - name: LOG_LEVEL
              value: info
            - name: API_KEY
              valueFrom:
                secretKeyRef:
                  name: {app}-secrets
                  key: api-key
          resources:
            limits:
              memory: {rng.choice([128, 256, 512])}Mi
              cpu: {rng.choice(["250m", "500m", "1"])}"""


def minified_js(rng):
    names = [rand(rng, "abcdefghijklmnopqrstuvwxyz", 1) + rand(rng, ALNUM, rng.randint(0, 2)) for _ in range(8)]
    parts = [
        f"!function(e,t){{\"object\"==typeof exports?module.exports=t():e.{names[0]}=t()}}(this,function(){{",
        f"var {names[1]}=function({names[2]},{names[3]}){{return {names[2]}.reduce(function(a,b){{return a+b.{names[3]}}},0)}};",
        f"var {names[4]}=\"{rng.choice(WORDS)}\",{names[5]}={rng.randint(0, 9999)},{names[6]}=[{','.join(str(rng.randint(0, 255)) for _ in range(12))}];",
        f"function {names[7]}(n){{return n.replace(/[A-Z]/g,function(m){{return\"-\"+m.toLowerCase()}})}}",
        "return{sum:" + names[1] + "}});",
    ]
    return "".join(parts) + f"\n//# sourceMappingURL={rng.choice(WORDS)}.min.js.map"


def logs(rng):
    lines = []
    for _ in range(rng.randint(3, 8)):
        lines.append(pick(
            rng,
            f"{timestamp(rng)} INFO  http: {pick(rng, 'GET', 'POST', 'PUT')} /api/v1/{rng.choice(WORDS)}/{rng.randint(1, 99999)} status={rng.choice([200, 201, 204, 304, 404, 500])} duration_ms={rng.randint(1, 900)} request_id={uid(rng)}",
            f"{timestamp(rng)} DEBUG db: query took {rng.randint(1, 400)}ms rows={rng.randint(0, 5000)}",
            f"{timestamp(rng)} WARN  worker-{rng.randint(1, 16)}: queue depth {rng.randint(100, 9000)} above threshold",
            f"{timestamp(rng)} INFO  auth: token refreshed for service account {rng.choice(WORDS)}-bot (expires_in=3600)",
            f"{timestamp(rng)} ERROR payments: upstream timeout after {rng.randint(1, 30)}s trace_id={hexdigest(rng, 128)}",
        ))
    return "\n".join(lines)


def config_files(rng):
    app = rng.choice(WORDS)
    return pick(
        rng,
        f"[server]\nhost = \"0.0.0.0\"\nport = {rng.randint(1024, 9999)}\nworkers = {rng.randint(1, 16)}\n\n[database]\nurl_env = \"DATABASE_URL\"\npool_size = {rng.randint(2, 50)}",
        f"{app}:\n  base_url: https://{app}.example.com\n  timeout_seconds: {rng.randint(1, 60)}\n  retries: {rng.randint(0, 5)}\n  auth:\n    type: oauth2\n    token_url: https://login.example.com/oauth2/token\n    client_id_env: {app.upper()}_CLIENT_ID",
        '{\n  "name": "' + app + '",\n  "version": "' + semver(rng) + '",\n  "scripts": {"build": "tsc -p .", "test": "vitest run"},\n  "dependencies": {"zod": "^3.' + str(rng.randint(0, 23)) + '.0"}\n}',
    )


CATEGORIES = {
    "code-secrets-from-env": code_reading_secrets,
    "code": code_general,
    "prose": prose_docs,
    "placeholders": placeholders,
    "lockfiles": lockfiles,
    "hashes-ids": hashes_ids,
    "data-uris": data_uris,
    "test-vectors": test_vectors,
    "near-misses": near_misses,
    "numbers-paths-urls": numbers_misc,
    "kubernetes": kubernetes,
    "minified-js": minified_js,
    "logs": logs,
    "config": config_files,
}


def as_tool_result(rng, text: str) -> str:
    return json.dumps({"type": "tool_result", "tool_use_id": f"toolu_{rng.randint(10**8, 10**9)}", "content": text}, ensure_ascii=False)


def records(per_category: int):
    """`per_category` clean texts of every category, each from its own seeded generator."""
    for category, make in CATEGORIES.items():
        for number in range(per_category):
            rng = random.Random(f"clean/{category}/{number}")
            text = make(rng)
            if rng.random() < 0.25:
                text = as_tool_result(rng, text)
            yield {"id": f"{category}/{number}", "category": category, "text": text}
