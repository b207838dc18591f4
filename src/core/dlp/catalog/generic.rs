//! Generic assignments: a value of a variable, key, field, flag or element whose name says it
//! is a secret (`password`, `client_secret`, `STRIPE_KEY`, `authToken`, `--token`,
//! `<password>`), when no vendor format recognises it.
//!
//! Algorithm: the trigger is the word that ends such a name (`pass`, `pwd`, `secret`, `token`,
//! `key`, `credential`, `creds`, `auth`, `bearer`, `jwt`); the pattern reads the rest of the
//! name, an operator (`=`, `:`, `:=`, `=>`, `==`, a type annotation, `>` of an XML element,
//! `" value="` of an XML attribute, blanks before a quoted value: `setx NAME "v"`) and a value
//! on the same line; a flag (`--token v`, `--client-secret v`) is triggered by its `--`. Then [`assignment`](crate::core::dlp::validators::assignment) judges the whole name (the
//! identifier run before the trigger too: `STRIPE_` of `STRIPE_KEY`) and the value together:
//! - the name's last word must name a secret, and no word may say the value is something else
//!   (`public_key`, `cache_key`, `sort_key`, `next_page_token`, `key_hash`, `token_url`);
//! - the weaker the name, the more random the value must look: a password may be words and
//!   digits (`hunter2hunter2`) but not a stock word (`Password123`); a secret, token, API key
//!   or credential must not be an identifier, words joined, a version, a path, a URL or a
//!   number; a bare `key` or a `*_key` of an unknown vendor, `auth`, `bearer`, `jwt`, and any
//!   value after blanks instead of an operator need 16+ characters of two classes, entropy, and
//!   no UUID (dictionary keys and ids are UUIDs).
//!
//! Limits: the value must be on the name's line, without blanks; YAML block scalars
//! (`password: |`), connection strings with `;` inside (`Server=…;Password=…` is found by the
//! `Password=` part only), names split from their values (`{"name": "API_KEY", "value": "…"}`)
//! and letters-only unquoted values are not found. A random value under an unusual name
//! (`STRIPE_KEY`) is found; under a name that says nothing (`value`, `data`) it is not.

use crate::core::dlp::detector::{DetectorSpec, Validator};

/// The words that end a secret's name; a match starts at one (case-insensitive).
const TRIGGERS: [&str; 10] = ["pass", "pwd", "secret", "token", "key", "credential", "creds", "auth", "bearer", "jwt"];
/// The rest of the name from its trigger: the trigger word completed, then `_value`, `Str` or a
/// number (`PASSWORD2`), an optional closing quote and `]` (`config["api_key"]`).
const NAME: &str = r#"(?i:pass(?:word|wd|phrase)?|pwd|secrets?|token|key|credentials?|creds|auth|bearer|jwt)(?i:[_-]?(?:value|str|string|[0-9]{1,2}))?"#;
/// An assignment operator, optionally after a type annotation (`password: str = "…"`,
/// `const API_KEY: &str = "…"`).
const OPERATOR: &str =
    r#"["'`]?\]?(?:[ \t]*:[ \t]*[A-Za-z_&][A-Za-z0-9_.&|\[\] ]{0,40}?)?[ \t]*(?::=|=>|==|=|:)[ \t]*"#;
/// How a quoted value follows the name: an operator and a quote, `>` of `<password>…</password>`,
/// `" value="` of `<add key="password" value="…"/>`, blanks and a quote (`setx TOKEN "…"`,
/// `--token "…"`), a second argument (`os.Setenv("DB_PASS", "…")`), or an environment item.
const QUOTED_SEPARATOR: &str =
    r#"(?:[bBrRuU]?["']|>|["'][ \t]+value[ \t]*=[ \t]*["']|[ \t]+["']|["'][ \t]*,[ \t]*["'])"#;
/// A Kubernetes-style environment item: the name's line, then `value:` on the next
/// (`- name: DB_PASSWORD` / `  value: "…"`).
const ENV_ITEM: &str = r#"["']?[ \t]*\r?\n[ \t]*value[ \t]*:[ \t]*"#;
/// A sentence: `SMTP_PASS is set to …`, `the token is now …`.
const PROSE: &str = r#"[ \t]+(?:is|was)(?:[ \t]+(?:set[ \t]+to|now))?[ \t]+"#;
/// A command-line flag that names a secret and its value after a blank: `--token v`,
/// `--client-secret v`. (`--token=v` is an operator.) Its trigger is `--`: a name followed by a
/// blank alone would make a stream hold the word after every "password" of prose.
const FLAG: &str = r#"--(?:[A-Za-z0-9]+[_-])*(?i:pass(?:word|wd|phrase)?|pwd|secret|token|key|credentials?|creds|auth|bearer|jwt)[ \t]+"#;
/// A quoted value: no blanks, quotes, backslashes, brackets, parentheses, `<`, `>` or `…` (a
/// regex or a template is not a value); the closing quote or `</`.
const QUOTED_VALUE: &str = r#"(?P<secret>[^\s"'`\\<>…(){}\[\]]{8,256})["'<]"#;
/// An unquoted value: it does not start with `$`, `%`, `.` or `~` (a variable, a format, a
/// path), does not end with `.` (a sentence's full stop follows it) and holds no quotes, brackets,
/// parentheses, `<`, `>`, `:`, `,`, `;`, `&`, `|`, backslash or `…`; then the end of the value. A
/// value followed by `(` (`getpass()`) or `<` (`HashMap<…>`) is code, not a value.
const UNQUOTED_VALUE: &str = r#"(?P<secret>[^\s"'`(){}\[\]<>\\,;:&|…$%.~][^\s"'`(){}\[\]<>\\,;:&|…]{6,254}[^\s"'`(){}\[\]<>\\,;:&|….])(?:[\s,;)}\]"'`\\&]|\.(?:\s|$)|$)"#;

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    let quoted = format!(r#"{NAME}(?:(?:{OPERATOR})?{QUOTED_SEPARATOR}|{ENV_ITEM}["']){QUOTED_VALUE}"#);
    let unquoted = format!(r#"(?:{NAME}(?:{OPERATOR}|{ENV_ITEM}|{PROSE})|{FLAG}){UNQUOTED_VALUE}"#);
    let env_triggers: Vec<&str> = TRIGGERS.iter().copied().chain(["--"]).collect();
    vec![
        DetectorSpec::prefixed(
            "generic-secret",
            "Quoted value assigned to a password, secret, token, credential or *_key name in code, config, JSON or XML",
            &TRIGGERS,
            &quoted,
        )
        .validated(Validator::Assignment)
        .priority(10),
        DetectorSpec::prefixed(
            "generic-env-secret",
            "Unquoted value assigned to a password, secret, token, credential or *_key name (.env files, YAML, headers, flags, URLs)",
            &env_triggers,
            &unquoted,
        )
        .validated(Validator::Assignment)
        .priority(10),
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::{f, n, p, uuid, Case, ALNUM, B64, HEX, LETTERS, MIXED, UPPER};

    /// A random value of base-62 characters.
    fn random(seed: &str, len: usize) -> String {
        f(seed, ALNUM, len)
    }

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        let generic_value = |seed: &str| format!("{}{}", f(seed, LETTERS, 1), f(seed, MIXED, 17));
        let env_value = |seed: &str| format!("{}7{}", f(seed, LETTERS, 1), f(seed, ALNUM, 22));
        vec![
            p("generic-secret", "password = \"{}\"", "hunter2hunter2".to_string()),
            p("generic-secret", r#"{"passwd": "{}"}"#, generic_value("passwd")),
            p("generic-secret", "passphrase: '{}'", generic_value("passphrase")),
            p("generic-secret", "$pwd = '{}';", generic_value("pwd")),
            p("generic-secret", "SECRET_KEY = \"{}\"", generic_value("django")),
            p("generic-secret", r#"{"client_secret": "{}"}"#, generic_value("client-secret")),
            p("generic-secret", "private_key = \"{}\"", f("privkey", HEX, 64)),
            p("generic-secret", "--private-key=\"{}\"", f("privkey2", HEX, 64)),
            p("generic-secret", "privateKey: '{}',", f("privkey3", HEX, 64)),
            p("generic-secret", "api_key = \"{}\"", generic_value("api_key")),
            p("generic-secret", r#"headers = {"x-api-key": "{}"}"#, generic_value("x-api-key")),
            p("generic-secret", "apikey: \"{}\"", generic_value("apikey")),
            p("generic-secret", "token := \"{}\"", generic_value("go-token")),
            p("generic-secret", "    password: str = \"{}\"", generic_value("annotated")),
            p("generic-secret", "const API_KEY: &str = \"{}\";", generic_value("rust-const")),
            p("generic-secret", "config[\"api_key\"] = \"{}\"", generic_value("subscript")),
            p("generic-env-secret", "DB_PASSWORD={}", "s3cr3t-V4lue!".to_string()),
            p("generic-env-secret", "DB_PASS={}\nDB_HOST=db", env_value("db-pass")),
            p("generic-env-secret", "MYSQL_PWD={}", env_value("mysql-pwd")),
            p("generic-env-secret", "oauth:\n  client_secret: {}\n", env_value("yaml-secret")),
            p("generic-env-secret", "PRIVATE_KEY={}", f("env-privkey", HEX, 64)),
            p("generic-env-secret", "deploy --private-key={} --yes", f("flag-privkey", HEX, 64)),
            p("generic-env-secret", "privateKey: {}", f("yaml-privkey", HEX, 64)),
            p("generic-env-secret", "GET /v1/search?q=x&api_key={}&page=2", env_value("query-key")),
            p("generic-env-secret", "X-Api-Key: {}", env_value("header-key")),
            p("generic-env-secret", "APIKEY={}", env_value("apikey-env")),
            p("generic-env-secret", "login --token={}", env_value("flag-token")),
            p("generic-env-secret", "Server=db;Database=shop;User Id=sa;Password={};", env_value("ado")),
            // Every trigger word, quoted.
            p("generic-secret", "db_pass = \"{}\"", random("q-pass", 20)),
            p("generic-secret", "MYSQL_PWD: \"{}\"", random("q-pwd", 16)),
            p("generic-secret", "\"appSecret\": \"{}\"", random("q-secret", 32)),
            p("generic-secret", "\"refresh_token\": \"{}\",", random("q-token", 40)),
            p("generic-secret", "STRIPE_KEY = '{}'", random("q-key", 32)),
            p("generic-secret", "credential = \"{}\"", random("q-credential", 24)),
            p("generic-secret", "creds := \"{}\"", random("q-creds", 24)),
            p("generic-secret", "\"auth\": \"{}\"", random("q-auth", 32)),
            p("generic-secret", "bearer = \"{}\"", random("q-bearer", 40)),
            p("generic-secret", "jwt: '{}'", random("q-jwt", 40)),
            // Names that end in *_key / *Key, and every syntax.
            p("generic-secret", "export SIGNING_KEY=\"{}\"", random("signing", 32)),
            p("generic-secret", "ENCRYPTION_KEY = \"{}\"", f("encryption", HEX, 64)),
            p("generic-secret", "masterKey: \"{}\"", f("master", B64, 40)),
            p("generic-secret", "headers[\"x-api-key\"] = \"{}\"", random("x-api-key", 32)),
            p("generic-secret", "setx DD_API_KEY \"{}\"", f("setx", HEX, 32)),
            p("generic-secret", "$env:LICENSE_KEY = \"{}\"", random("pwsh", 24)),
            p("xml-password", "<password>{}</password>", "hunter2hunter2".to_string()),
            p("generic-secret", "<add key=\"ClientSecret\" value=\"{}\" />", random("xml-attr", 32)),
            p("generic-secret", "<webhookSecret>{}</webhookSecret>", random("xml-el", 40)),
            p("generic-secret", "--auth-token \"{}\"", random("flag-quoted", 32)),
            p("generic-secret", "if password == \"{}\":", "Tr0ub4dor&3x".to_string()),
            // UUIDs are secrets under strong names (Heroku-style API keys), not under weak ones.
            p("generic-secret", "\"api_key\": \"{}\"", uuid("uuid-api-key")),
            // Hex under a strong name is a secret; only hash-like names make it a digest.
            p("generic-secret", "webhook_secret = \"{}\"", f("hex-webhook", HEX, 40)),
            // A key of a test environment is a secret: "test" is no placeholder.
            p("generic-secret", "TEST_API_KEY = \"{}\"", format!("test_{}", random("test-key", 24))),
            // Every trigger word, unquoted.
            p("generic-env-secret", "SMTP_PASS={}", random("u-pass", 20)),
            p("generic-env-secret", "PGPWD={}", random("u-pwd", 20)),
            p("generic-env-secret", "CONSUMER_SECRET={}", random("u-secret", 32)),
            p("generic-env-secret", "access_token: {}", random("u-token", 40)),
            p("generic-env-secret", "appKey: {}", random("u-key", 32)),
            p("generic-env-secret", "CREDENTIAL={}", random("u-credential", 24)),
            p("generic-env-secret", "DB_CREDS={}", random("u-creds", 24)),
            p("generic-env-secret", "AUTH={}", f("u-auth", HEX, 32)),
            p("generic-env-secret", "BEARER={}", random("u-bearer", 40)),
            p("generic-env-secret", "JWT={}", random("u-jwt", 40)),
            p("generic-env-secret", "deploy --token {} --yes", random("flag", 40)),
            p("generic-env-secret", "cli --client-secret {}", random("flag-2", 32)),
            p("generic-env-secret", "spring.datasource.password={}", random("properties", 16)),
            p("generic-env-secret", "  session_token: {}\n", f("yaml-session", B64, 40)),
            p("generic-env-secret", "curl -H 'X-Api-Key: {}' https://api.acme.io", random("curl", 32)),
            p("generic-env-secret", "BASE32_TOTP_KEY={}", f("base32", UPPER, 32)),
            // Values may start with a symbol; a prose assignment; a Kubernetes env item.
            p("generic-env-secret", "MYSQL_PWD={}\nLOG_LEVEL=info", "-8qH48kHcU2Frt".to_string()),
            p("generic-env-secret", "redis_password = {}", format!("+{}", random("plus", 15))),
            p("generic-env-secret", "ENV ADMIN_PASSWORD={}", format!("*{}", random("star", 15))),
            p("generic-env-secret", "The job fails although SMTP_PASS is set to {}. Any idea?", random("prose", 18)),
            p("generic-env-secret", "$ tool --mysql-pwd {} --region us-east-1", "amI8wgWRzUpJK-".to_string()),
            p("generic-secret", "env:\n  - name: DB_PASS\n    value: \"{}\"", random("k8s", 19)),
            p("generic-env-secret", "env:\n  - name: APP_SECRET\n    value: {}", random("k8s-unquoted", 24)),
            p("generic-secret", "os.Setenv(\"DB_PASS\", \"{}\")", random("setenv", 16)),
            p("generic-secret", "SPRING_DATASOURCE_PASSWORD = \"{}\"", "#880dDBgwiBB".to_string()),
        ]
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        let sha256 = f("lock-sha", HEX, 64);
        vec![
            n("generic-secret", "password = self.password\ntoken = getenv(\"TOKEN\")"),
            n("generic-secret", "- Rename `ToEcPrivateKey` => `EncodeEcPrivateKey2`"),
            n(
                "generic-secret",
                "password = \"${DB_PASSWORD}\" api_key = \"<your-api-key>\" secret = \"{{ vault_secret }}\"",
            ),
            n("generic-secret", "\"password\": \"abababab\", \"token\": \"short\""),
            n("generic-secret", "api_key = \"sk-ant-bench-\" + secrets.token_hex(16); token = \"ghp_…\""),
            n(
                "generic-secret",
                "<input type=\"password\" name=\"password\"> \"max_tokens\": \"12345678\" PWD=\"/home/dev/project\"",
            ),
            n("generic-env-secret", "PWD=/home/dev/project\nOLDPWD=/home/dev"),
            n(
                "generic-env-secret",
                "password = self.password\napiKey: process.env.API_KEY,\napi_key = os.environ[\"API_KEY\"]",
            ),
            n("generic-env-secret", "token = getenv(\"TOKEN\")\npassword: ${DB_PASSWORD}\ntoken = tokens[0]"),
            n("generic-env-secret", "\"max_tokens\": 12345678, \"input_tokens\": 98765432"),
            n("generic-env-secret", "password: userPassword\nSECRET=abababab1\npassword=hunter2"),
            n("generic-env-secret", "secretName: my-tls-secret-2\ntokenizer: bpe-50k"),
            n("generic-env-secret", "colon2_token: node.colon2_token,\nAccessToken: WBEM_128BITS,"),
            n("generic-env-secret", "pub const MsV1_0ChangePassword: MSV1_0_PROTOCOL_MESSAGE_TYPE = 5i32;"),
            n("generic-env-secret", "$ export ANTHROPIC_API_KEY=sk-ant-…\nGITHUB_TOKEN=ghp_…"),
            // Code that reads a secret instead of holding one.
            n("generic-secret", "api_key = os.environ[\"API_KEY\"]\nsecret = config.get(\"secret\")"),
            n("generic-env-secret", "password = getpass.getpass()\nkey = keys[0]\nitems.sort(key=lambda i: i.at)"),
            n("generic-env-secret", "apiKey: config.appKey,\n$env:API_KEY = Read-Host -AsSecureString"),
            n(
                "generic-secret",
                "\"key\": \"value\", \"title_key\": \"home.title\", \"i18nKey\": \"settings.apiKeys.create\"",
            ),
            n("generic-secret", "SECRET_KEY_SETTING = \"DJANGO_SECRET_KEY\"\ntoken = \"CSRF_TOKEN_HEADER_NAME\""),
            n("generic-secret", "password_field = \"password_confirmation\"\nsecret: \"my-tls-secret-name\""),
            // Placeholders, templates and documented examples.
            n("generic-secret", "api_key: \"YOUR_API_KEY_HERE\"\nclient_secret = \"your-client-secret\""),
            n("generic-secret", "password = \"********\"\ntoken: \"•••••••••••\"\napi_key = \"sk-...\""),
            n("generic-secret", "password: \"{{ .Values.password }}\"\ndsn = \"%(password)s\"\ntoken = \"{token}\""),
            n("generic-secret", "<password>${db.password}</password>\n<add key=\"ApiKey\" value=\"$(ApiKey)\" />"),
            n("generic-env-secret", "password: ${DB_PASSWORD:-postgres}\nsecret: REDACTED\nAPI_KEY=your-api-key-here"),
            n(
                "generic-env-secret",
                "password: changeme\npassword=dummy-password-123\nauth_token = AUTH_TOKEN_PLACEHOLDER",
            ),
            n(
                "generic-env-secret",
                "password: Password123\npassword=admin2024\nAPI_TOKEN=$(vault kv get -field=token x)",
            ),
            n("generic-env-secret", "API_KEY=1234567890abcdef\nsecret=abcdefghijklmnop\ntoken=aaaaaaaaaaaaaaaa"),
            n("generic-secret", "api_key = \"fake-api-key-for-tests\"\nsecret = 'PLACEHOLDER_SECRET_VALUE'"),
            // Names that end like a secret's but say the value is something else.
            n(
                "generic-secret",
                format!("publicKey: \"{}\"\npublishable_key = \"{}\"", f("pub", B64, 44), random("pk", 32)),
            ),
            n(
                "generic-secret",
                format!("next_page_token: \"{}\"\ncache_key = \"{}\"", f("page", B64, 32), random("cache", 32)),
            ),
            n(
                "generic-secret",
                "sort_key = 'created_at_desc'\nprimaryKey: \"user_id_v2\"\npartition_key = \"/tenantId\"",
            ),
            n("generic-secret", format!("sha256_key = \"{sha256}\"\nmonkey = \"{}\"", random("monkey", 24))),
            n("generic-secret", format!("compass = \"{}\"\nhotkey = \"ctrl+shift+p\"", random("compass", 24))),
            // Values that are ids, references or words, under weak names.
            n("generic-secret", format!("\"key\": \"{}\"\n\"idempotencyKey\": \"{}\"", uuid("dict-key"), uuid("idem"))),
            n("generic-env-secret", format!("key: {}\nauth: basic", uuid("yaml-key"))),
            n(
                "generic-secret",
                "color_key = \"#ff00aa\"\nversion_key: \"v1.2.3-beta.4\"\nkeyPrefix: \"app/cache/v2/\"",
            ),
            n("generic-secret", "secret_file = \"/etc/secrets/api.key\"\nprivate_key_file = \"keys/private.pem\""),
            n("generic-env-secret", "TOKEN_URL=https://oauth2.googleapis.com/token\nkey_path: ~/.ssh/id_ed25519"),
            n(
                "generic-env-secret",
                "token_endpoint: https://login.acme.io/oauth2/token\nSECRET_NAME=prod/app/db-creds",
            ),
            n("generic-env-secret", "SECRET_PATH=prod/app/database-credentials\nkey: tls.key\nkey: ca.crt"),
            n("generic-env-secret", "auth = HTTPBasicAuth(username, password)\nbearer = f\"Bearer {token}\""),
            n("generic-env-secret", "password: #comment\ncolor_key = #ff00aa\ntoken: -AsSecureString\nkey: *.acme.io"),
            n(
                "generic-env-secret",
                "The password is incorrect2 and the token is expired-now; the key was rotated2024.",
            ),
            n(
                "generic-secret",
                "value = os.environ.get(\"PASSWORD\", \"default\")\nreplace(\"token\", \"{token_value}\")",
            ),
            n("generic-env-secret", "pub credentials: BTreeMap<String, CredentialConfig>,"),
            n("generic-secret", r#"r"(?i:bearer|token)[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{12,}=*)(?:[^A-Za-z0-9]|$)""#),
            // Prose: a name followed by words is not an assignment.
            n("generic-env-secret", "The password reset flow rotates each token; the api key rotation log is kept."),
            n("generic-env-secret", "Use --token to pass a token and --verbose for details; see --key-file."),
            n("generic-env-secret", "a weak key LongWordsTogether here and the key ExampleValue2 there"),
        ]
    }
}
