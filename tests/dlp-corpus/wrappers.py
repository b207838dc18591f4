"""How the evaluation set wraps a secret: the shapes in which Claude sees text.

A secret wrapper is `wrap(rng, name, value, kind) -> str`: `value` is the secret with its private
part between the markers OPEN and CLOSE (generate.py turns them into byte spans), `name` the name
it is assigned to, or None for a bare value. Snippet wrappers take a whole multi-line file the same
way (name is None). Wrappers must keep the markers (JSON is written with ensure_ascii=False, which
leaves private-use characters as they are) and must never add a second copy of the value.

Noise lines come from small pools of fabricated but ordinary lines (imports, settings, log
entries) so that the secret is never the whole text.
"""

from __future__ import annotations

import json
import re

OPEN, CLOSE = "\ue000", "\ue001"

WORDS = "orders billing search users invoices reports gateway checkout catalog metrics notify ledger media auth sync export".split()
HOSTS = ["api.example.com", "internal.example.org", "staging.example.net", "localhost:8080", "127.0.0.1:9000"]


def derived_name(kind_id: str) -> str:
    """A variable name for a kind without names: `github-pat` → `GITHUB_PAT`."""
    return kind_id.upper().replace("-", "_")


def words(name: str) -> list[str]:
    """`datadog.apiKey` / `DD_API_KEY` / `x-api-key` → lower-case words."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def upper_snake(name: str) -> str:
    return "_".join(words(name)).upper() or "VALUE"


def snake(name: str) -> str:
    return "_".join(words(name)) or "value"


def camel(name: str) -> str:
    parts = words(name) or ["value"]
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def kebab(name: str) -> str:
    return "-".join(words(name)) or "value"


def pick(rng, *options):
    return rng.choice(options)


def timestamp(rng) -> str:
    return f"2025-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}T{rng.randint(0, 23):02}:{rng.randint(0, 59):02}:{rng.randint(0, 59):02}.{rng.randint(0, 999):03}Z"


def noise(rng, pool: list[str], n: int) -> list[str]:
    return [line.format(w=rng.choice(WORDS), n=rng.randint(2, 9000), h=rng.choice(HOSTS)) for line in rng.sample(pool, min(n, len(pool)))]


ENV_NOISE = ["NODE_ENV=production", "PORT={n}", "LOG_LEVEL=info", "SERVICE_NAME={w}", "API_BASE_URL=https://{h}/v1", "FEATURE_{w}=true", "TZ=UTC", "WORKERS=4", "REDIS_DB=0", "# {w} settings"]
YAML_NOISE = ["name: {w}", "replicas: 3", "timeout: {n}ms", "region: eu-west-1", "enabled: true", "endpoint: https://{h}/{w}", "log_level: debug"]
CODE_NOISE = {
    "python": ["import os", "import logging", "from {w} import client", "log = logging.getLogger(__name__)", "TIMEOUT = {n}", "# {w} settings"],
    "javascript": ["import fetch from 'node-fetch';", "const TIMEOUT = {n};", "// {w} client", "const base = 'https://{h}';", "export const service = '{w}';"],
    "go": ["package main", "import \"os\"", "const timeout = {n}", "// {w} client", "var base = \"https://{h}\""],
    "rust": ["use std::env;", "const TIMEOUT_MS: u64 = {n};", "// {w} client", "let base = \"https://{h}\";"],
    "java": ["import java.net.http.HttpClient;", "private static final int TIMEOUT = {n};", "// {w} client"],
    "ruby": ["require 'net/http'", "TIMEOUT = {n}", "# {w} client"],
    "bash": ["set -euo pipefail", "cd \"$(dirname \"$0\")\"", "echo \"deploying {w}\"", "# {w}"],
}
LOG_NOISE = ["{t} INFO  server: listening on {h}", "{t} DEBUG {w}: cache hit ratio=0.{n}", "{t} INFO  {w}: request completed status=200 duration_ms={n}", "{t} WARN  {w}: retrying (attempt 2/5)"]


def fenced(lang: str, lines: list[str]) -> str:
    return f"```{lang}\n" + "\n".join(lines) + "\n```"


def around(rng, pool: list[str], line: str, before: int = 2, after: int = 2) -> list[str]:
    """`line` between a few noise lines."""
    return noise(rng, pool, rng.randint(0, before)) + [line] + noise(rng, pool, rng.randint(0, after))


# --- secret wrappers -----------------------------------------------------------------------


def prose(rng, name, value, kind):
    if name:
        sentence = pick(
            rng,
            f"I rotated our {name} this morning; the new one is {value} — can you update the {rng.choice(WORDS)} deploy?",
            f"Here's the {name} for staging: {value}. Please don't commit it.",
            f"The CI job fails with 401 although {name} is set to {value}. Any idea why?",
            f"Use {name} = {value} when you run the {rng.choice(WORDS)} tests locally.",
        )
    else:
        sentence = pick(
            rng,
            f"Can you check why {value} is rejected by the API? It worked yesterday.",
            f"My credentials are {value} and I still get a 403 from the {rng.choice(WORDS)} service.",
            f"Paste this into the settings page: {value}",
            f"The logs show {value} being sent on every request, is that expected?",
        )
    intro = pick(rng, "", "Quick question about the deployment.\n\n", "Thanks for the help earlier!\n\n")
    outro = pick(rng, "", "\n\nThe rest of the config is unchanged.", "\n\nLet me know if you need the full stack trace.")
    return intro + sentence + outro


def code(rng, name, value, kind):
    lang = rng.choice(list(CODE_NOISE))
    n = name or derived_name(kind.id)
    if lang == "python":
        line = pick(rng, f'{snake(n)} = "{value}"', f'client = Client({snake(n)}="{value}")', f'os.environ["{upper_snake(n)}"] = "{value}"') if name else pick(rng, f'client.login("{value}")', f'connect("{value}", timeout=30)')
    elif lang == "javascript":
        line = pick(rng, f'const {camel(n)} = "{value}";', f"const client = new Client({{ {camel(n)}: '{value}' }});", f"process.env.{upper_snake(n)} = '{value}';") if name else pick(rng, f"await client.auth('{value}');", f"init('{value}');")
    elif lang == "go":
        line = pick(rng, f'{camel(n)} := "{value}"', f'os.Setenv("{upper_snake(n)}", "{value}")') if name else f'client := api.New("{value}")'
    elif lang == "rust":
        line = pick(rng, f'let {snake(n)} = "{value}";', f'std::env::set_var("{upper_snake(n)}", "{value}");') if name else f'let client = Client::new("{value}");'
    elif lang == "java":
        line = f'String {camel(n)} = "{value}";' if name else f'Client client = new Client("{value}");'
    elif lang == "ruby":
        line = f"{snake(n)} = '{value}'" if name else f"client = Api::Client.new('{value}')"
    else:
        line = f'{upper_snake(n)}="{value}" ./run.sh' if name else f"./deploy.sh '{value}'"
    return pick(rng, "Here is the relevant part:\n\n", "", "This is what I have:\n") + fenced(lang, around(rng, CODE_NOISE[lang], line))


def diff(rng, name, value, kind):
    n = name or derived_name(kind.id)
    path, line = pick(
        rng,
        (".env.production", f"{upper_snake(n)}={value}"),
        (f"config/{rng.choice(WORDS)}.yaml", f"{snake(n)}: {value}"),
        ("settings.py", f'{upper_snake(n)} = "{value}"'),
        ("src/config.ts", f"export const {camel(n)} = '{value}';"),
    )
    start = rng.randint(3, 120)
    context = noise(rng, ENV_NOISE if path.startswith(".env") else YAML_NOISE, 3)
    body = [f" {context[0]}", f"-{context[1]}", f"+{line}", f"+{context[1]}"] + [f" {c}" for c in context[2:]]
    return "\n".join([f"diff --git a/{path} b/{path}", f"--- a/{path}", f"+++ b/{path}", f"@@ -{start},3 +{start},4 @@"] + body)


def log(rng, name, value, kind):
    t = timestamp(rng)
    service = rng.choice(WORDS)
    line = (
        pick(rng, f"{t} DEBUG {service}: loaded config {snake(name)}={value} region=us-east-1", f'{t} INFO  {service}: env {upper_snake(name)}="{value}" applied')
        if name
        else pick(rng, f"{t} ERROR {service}: authentication failed for credential {value} (status=401)", f"{t} DEBUG {service}: outgoing request auth={value} attempt=1")
    )
    lines = [l.replace("{t}", timestamp(rng)) for l in LOG_NOISE]
    return "\n".join(around(rng, lines, line, 3, 3))


def tool_input(rng, name, value, kind):
    n = name or derived_name(kind.id)
    if rng.random() < 0.5:
        command = f"export {upper_snake(n)}={value} && npm run {rng.choice(WORDS)}"
        payload = {"type": "tool_use", "id": f"toolu_{rng.randint(10**8, 10**9)}", "name": "Bash", "input": {"command": command, "description": "Run with the key"}}
    elif name:
        content = "\n".join(around(rng, ENV_NOISE, f"{upper_snake(n)}={value}"))
        payload = {"type": "tool_use", "id": f"toolu_{rng.randint(10**8, 10**9)}", "name": "Write", "input": {"file_path": "/app/.env", "content": content}}
    else:
        content = json.dumps({"service": rng.choice(WORDS), "credentials": value, "retries": 3}, indent=2, ensure_ascii=False)
        payload = {"type": "tool_result", "tool_use_id": f"toolu_{rng.randint(10**8, 10**9)}", "content": content}
    return json.dumps(payload, ensure_ascii=False)


def dotenv(rng, name, value, kind):
    n = upper_snake(name or derived_name(kind.id))
    line = pick(rng, f"{n}={value}", f'{n}="{value}"', f"{n}='{value}'")
    return "\n".join(around(rng, ENV_NOISE, line, 3, 3))


def yaml(rng, name, value, kind):
    n = name or derived_name(kind.id)
    key = pick(rng, snake(n), camel(n), n)
    quoted = pick(rng, value, f'"{value}"')
    return pick(
        rng,
        f"{rng.choice(WORDS)}:\n  url: https://{rng.choice(HOSTS)}\n  {key}: {quoted}\n  timeout: 30",
        f"services:\n  {rng.choice(WORDS)}:\n    image: registry.example.com/app:1.{rng.randint(0, 40)}\n    environment:\n      {upper_snake(n)}: {quoted}",
    )


def toml_ini(rng, name, value, kind):
    n = name or derived_name(kind.id)
    section = pick(rng, "default", rng.choice(WORDS), "credentials", "server")
    return pick(
        rng,
        f"[{section}]\nregion = \"eu-west-1\"\n{snake(n)} = \"{value}\"\ntimeout = 30",
        f"; {rng.choice(WORDS)} settings\n[{section}]\nhost = {rng.choice(HOSTS)}\n{snake(n)} = {value}",
    )


def shell_export(rng, name, value, kind):
    n = upper_snake(name or derived_name(kind.id))
    return "\n".join(around(rng, CODE_NOISE["bash"], pick(rng, f'export {n}="{value}"', f"export {n}={value}"), 1, 2))


def http_header(rng, name, value, kind):
    header = pick(rng, "Authorization: Bearer", "Authorization: Token", f"X-{'-'.join(w.capitalize() for w in words(name))}:" if name else "X-Api-Key:")
    return f"POST /v1/{rng.choice(WORDS)} HTTP/1.1\nHost: {rng.choice(HOSTS)}\n{header} {value}\nContent-Type: application/json\nAccept: */*"


def cli_flag(rng, name, value, kind):
    flag = kebab(name) if name else pick(rng, "token", "api-key", "password", "secret")
    tool = pick(rng, "deployctl", "mycli", "./bin/sync", "npx release-tool")
    return f"$ {tool} {rng.choice(WORDS)} " + pick(rng, f"--{flag} {value} --region us-east-1", f"--{flag}={value} --verbose")


def container_env(rng, name, value, kind):
    n = upper_snake(name or derived_name(kind.id))
    return pick(
        rng,
        f"FROM python:3.12-slim\nWORKDIR /app\nENV {n}={value}\nCOPY . .\nCMD [\"python\", \"main.py\"]",
        f"docker run --rm -e {n}={value} -p 8080:8080 registry.example.com/{rng.choice(WORDS)}:latest",
        f"containers:\n  - name: {rng.choice(WORDS)}\n    image: app:1.0\n    env:\n      - name: {n}\n        value: \"{value}\"\n      - name: PORT\n        value: \"8080\"",
    )


SECRET_WRAPPERS = [
    ("prose", prose),
    ("code", code),
    ("diff", diff),
    ("log", log),
    ("tool-input", tool_input),
    ("dotenv", dotenv),
    ("yaml", yaml),
    ("toml-ini", toml_ini),
    ("shell-export", shell_export),
    ("http-header", http_header),
    ("cli-flag", cli_flag),
    ("container-env", container_env),
]

# --- snippet wrappers (multi-line files carrying their own secrets) --------------------------


def snippet_plain(rng, name, value, kind):
    return value


def snippet_fenced(rng, name, value, kind):
    return pick(rng, "My config looks like this:\n\n", "", "Why does this not work?\n") + f"```{pick(rng, '', 'yaml', 'ini', 'text')}\n{value}\n```"


def snippet_diff(rng, name, value, kind):
    lines = value.split("\n")
    return "\n".join([f"--- /dev/null", f"+++ b/{rng.choice(WORDS)}.conf", f"@@ -0,0 +1,{len(lines)} @@"] + [f"+{l}" for l in lines])


def snippet_json(rng, name, value, kind):
    if rng.random() < 0.5:
        payload = {"type": "tool_use", "id": f"toolu_{rng.randint(10**8, 10**9)}", "name": "Write", "input": {"file_path": f"/home/dev/{rng.choice(WORDS)}.conf", "content": value}}
    else:
        payload = {"type": "tool_result", "tool_use_id": f"toolu_{rng.randint(10**8, 10**9)}", "content": value}
    return json.dumps(payload, ensure_ascii=False)


def snippet_prose(rng, name, value, kind):
    return f"I copied this from the server, can you tell me what is wrong?\n\n{value}\n\nThe {rng.choice(WORDS)} service still refuses to start."


SNIPPET_WRAPPERS = [
    ("plain", snippet_plain),
    ("fenced", snippet_fenced),
    ("diff", snippet_diff),
    ("tool-input", snippet_json),
    ("prose", snippet_prose),
]
