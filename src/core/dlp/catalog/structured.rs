//! Structured credentials: private key blocks, JWTs, passwords in URLs and connection strings,
//! `Authorization` headers and the files and command lines that carry credentials (kubeconfig,
//! Kubernetes `Secret` manifests, `.netrc`, `.npmrc`, Docker `config.json`, Maven
//! `settings.xml`, htpasswd lines, `curl -u`, `mysql -p`, session cookies).
//!
//! Each detector masks only the secret and keeps the structure readable: the key of a Sentry DSN
//! but not its host, the password of `machine … login … password …` but not the machine.
//!
//! Limits (see also docs/dlp.md, "Credentials inside structures"):
//! - A Kubernetes `Secret`'s `data:`/`stringData:` block is one finding from its first value to
//!   its last (the key names after the first are masked with it: one match masks one span); the
//!   block ends at a blank or unindented line and spans at most 16 KiB. `data:` values must be
//!   base64 of a length that is a multiple of four (the first one 8+ characters or padded), so a
//!   ConfigMap's `data:` whose values all look like that is masked too. JSON manifests are not
//!   read as blocks (their `"password"`-like keys are left to the generic assignments).
//! - Base64 of a PEM private key is found on one line (kubeconfig `client-key-data`, `tls.key`);
//!   a key wrapped over several lines of base64 is masked on its first line only.
//! - `.netrc` needs the `machine` keyword (not `default`); `.pgpass` lines have no keyword and are
//!   not found.
//! - Password hashes (htpasswd, `/etc/shadow`, bcrypt, argon2) are credentials: an offline
//!   dictionary attack turns a weak one back into its password.

use super::{detector, infix, vendor, END, END_B64};
use crate::core::dlp::detector::{Category, CharClass, DetectorSpec, Validator};

/// A value of a Kubernetes `data:` map: base64 whose length is a multiple of four.
const K8S_B64: &str = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?";
/// Base64 that ends with padding (`Y2k=`): a short value that is surely base64, not a word.
const K8S_B64_PADDED: &str = "(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)";
/// A key of a Kubernetes `data:` map (`[-._a-zA-Z0-9]+`).
const K8S_KEY: &str = "[A-Za-z0-9._-]{1,253}";
/// A password that a structure names as one: no spaces or quotes, not a `$VAR`, `<slot>` or
/// `{{template}}`.
const PASSWORD: &str = r#"[^\s"'`$<{=:][^\s"'`]*"#;

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    let mut all = key_blocks();
    all.extend(tokens_and_urls());
    all.extend(credential_files());
    all.extend(command_lines());
    all
}

/// Private keys: PEM and SSH2 blocks, PuTTY files, base64 of a PEM key, PGP blocks, age keys.
fn key_blocks() -> Vec<DetectorSpec> {
    // Key blocks: from the BEGIN line through the first END line, with real line breaks (LF or
    // CRLF, YAML-indented) or the two characters `\n` of a JSON string (a GCP service-account
    // file's "private_key"). The body must hold a run of 40 base64 characters: a documentation
    // slot (`MIIE...`, `<key>`) is not a key.
    const PEM_TYPES: &str = "(?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?";
    const PEM_BODY: &str = r"(?:[A-Za-z0-9+/=:,\s-]|\\[nrt/])";
    const SSH2_BODY: &str = r#"(?:[A-Za-z0-9+/=:,."\s\\-])"#;
    // Base64 of `-----BEGIN <type>PRIVATE KEY-----` up to its last whole 3-byte group.
    const B64_PEM: [&str; 6] = [
        "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt",         // RSA
        "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0t",         // EC
        "LS0tLS1CRUdJTiBEU0EgUFJJVkFURSBLRVkt",         // DSA
        "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZ",     // OPENSSH
        "LS0tLS1CRUdJTiBFTkNSWVBURUQgUFJJVkFURSBLRVkt", // ENCRYPTED
        "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0t",             // PKCS#8
    ];
    vec![
        DetectorSpec::prefixed(
            "private-key",
            "PEM, OpenSSH or SSH2 private key block (RSA, EC, DSA, PKCS#8, encrypted), also JSON-escaped or YAML-indented",
            &["-----BEGIN ", "---- BEGIN SSH2 "],
            &format!(
                r"-----BEGIN {PEM_TYPES}PRIVATE KEY-----{PEM_BODY}*?[A-Za-z0-9+/]{{40}}{PEM_BODY}*?-----END {PEM_TYPES}PRIVATE KEY-----|---- BEGIN SSH2 (?:ENCRYPTED )?PRIVATE KEY ----{SSH2_BODY}*?[A-Za-z0-9+/]{{40}}{SSH2_BODY}*?---- END SSH2 (?:ENCRYPTED )?PRIVATE KEY ----"
            ),
        )
        .max_len(16384),
        vendor(
            "private-key-base64",
            "Base64 of a PEM private key (LS0tLS1CRUdJTi…: kubeconfig client-key-data, Secret tls.key)",
            &["LS0tLS1CRUdJTi"],
            &format!("(?:{})[A-Za-z0-9+/]{{100,16000}}={{0,2}}", B64_PEM.join("|")),
            END_B64,
        )
        .max_len(16384),
        DetectorSpec::prefixed(
            "putty-private-key",
            "PuTTY private key file (PuTTY-User-Key-File-2/3): its Private-Lines",
            &["PuTTY-User-Key-File-"],
            r"PuTTY-User-Key-File-[23]:[^\r\n]*\r?\n(?:[^\r\n]*\r?\n){0,40}?Private-Lines:[ \t]*[0-9]{1,3}\r?\n(?P<secret>[A-Za-z0-9+/=]+(?:\r?\n[A-Za-z0-9+/=]+)*)(?:[^A-Za-z0-9+/=:-]|$)",
        )
        .max_len(16384),
        DetectorSpec::prefixed(
            "pgp-private-key",
            "PGP private key block (-----BEGIN PGP PRIVATE KEY BLOCK-----), also JSON-escaped",
            &["-----BEGIN "],
            r"-----BEGIN PGP PRIVATE KEY BLOCK-----(?:[A-Za-z0-9+/=:,.()<>@'_!?;\s-]|\\[nrt/])+?-----END PGP PRIVATE KEY BLOCK-----",
        )
        .max_len(16384),
        vendor(
            "age-secret-key",
            "age encryption secret key (AGE-SECRET-KEY-1…)",
            &["AGE-SECRET-KEY-1"],
            "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
            END,
        ),
    ]
}

/// Tokens and credentials in URLs and headers.
fn tokens_and_urls() -> Vec<DetectorSpec> {
    const B64URL: &str = "[A-Za-z0-9_-]";
    vec![
        // JWS: header.payload.signature, both JSON (`eyJ`). JWE: header.key.iv.ciphertext.tag,
        // the encrypted key empty for direct encryption.
        DetectorSpec::prefixed(
            "jwt",
            "JSON Web Token: signed (eyJ….eyJ….signature) or encrypted (five parts, eyJ….….….….…)",
            &["eyJ"],
            &format!(
                r"eyJ{B64URL}{{10,}}\.(?:eyJ{B64URL}{{10,}}\.{B64URL}*|{B64URL}*\.{B64URL}{{16,}}\.{B64URL}{{10,}}\.{B64URL}{{16,}})"
            ),
        )
        .max_len(8192),
        detector(
            "url-password",
            Category::Credential,
            "Password in a URL or connection string (postgres://, mysql://, mongodb+srv://, redis://, amqp://, ldap://, smtp://, https://user:password@host…)",
            infix("://", CharClass::UrlScheme, 32),
            r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@"'<>\\{}()\[\]]{0,128}:(?P<secret>[^\s/?#"'<>\\{}()\[\]$][^\s/?#"'<>\\{}()\[\]]{2,255})@[A-Za-z0-9\[]"#,
        )
        .validated(Validator::NotAName)
        .max_len(512)
        .reveal_trigger()
        .priority(25),
        // The key (and the secret of older `key:secret@` DSNs) right after `://`; the host and
        // the project id stay readable.
        detector(
            "sentry-dsn",
            Category::Credential,
            "Sentry DSN key (https://<32 hex>@o1.ingest.sentry.io/123, older <key>:<secret>@)",
            infix("://", CharClass::UrlScheme, 32),
            r"[A-Za-z][A-Za-z0-9+.-]*://(?P<secret>[0-9a-f]{32}(?::[0-9a-f]{32})?)@[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?/(?:[A-Za-z0-9._-]{1,64}/){0,4}[0-9]{1,20}(?:[^A-Za-z0-9_./-]|$)",
        )
        .max_len(512)
        .reveal_trigger(),
        DetectorSpec::prefixed(
            "http-authorization",
            "Credential in an HTTP Authorization or Proxy-Authorization header (Bearer, Basic or Token scheme)",
            &["authorization"],
            r#"(?i:authorization)["'`]?[ \t]*[:=][ \t]*["'`]?(?i:bearer|basic|token)[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{12,}=*)(?:[^A-Za-z0-9._~+/=-]|$)"#,
        )
        .max_len(4096)
        .priority(25),
        // Session identifiers in `Cookie:`/`Set-Cookie:` headers and URLs: random enough to be
        // a bearer credential, unlike preferences and flags.
        DetectorSpec::prefixed(
            "session-cookie",
            "High-entropy session id (session=, sessionid=, session_id=, sid=: JSESSIONID, PHPSESSID, connect.sid, _app_session)",
            &["session=", "sessionid=", "session_id=", "sid="],
            r"(?i:session|sessionid|session_id|sid)=(?P<secret>[A-Za-z0-9%._~+/-]{16,512}={0,2})(?:[^A-Za-z0-9%._~+/=-]|$)",
        )
        .validated(Validator::MinEntropy(3.0))
        .max_len(600)
        .priority(25),
    ]
}

/// Credential files and manifests.
fn credential_files() -> Vec<DetectorSpec> {
    vec![
        // `kind: Secret` may come before or after `data:` (kubectl sorts it after): the block is
        // recognised by its shape, a map of base64 values.
        DetectorSpec::prefixed(
            "kubernetes-secret-data",
            "Values of a Kubernetes Secret's data: map (base64), from the first value to the last",
            &["data:"],
            &format!(
                r"(?-u:\b)data:[ \t]*\r?\n[ \t]+{K8S_KEY}:[ \t]*(?P<secret>(?:(?:[A-Za-z0-9+/]{{4}}){{2}}{K8S_B64}|{K8S_B64_PADDED})(?:\r?\n[ \t]+{K8S_KEY}:[ \t]*{K8S_B64})*){END_B64}"
            ),
        )
        .max_len(16384),
        DetectorSpec::prefixed(
            "kubernetes-secret-string-data",
            "Values of a Kubernetes Secret's stringData: map, from the first value to the last",
            &["stringData:"],
            &format!(r"stringData:[ \t]*\r?\n[ \t]+{K8S_KEY}:[ \t]*(?P<secret>[^\s][^\r\n]*(?:\r?\n[ \t]+[^\s][^\r\n]*)*)"),
        )
        .max_len(16384),
        DetectorSpec::prefixed(
            "netrc-password",
            "Password of a .netrc / _netrc entry (machine host login user password secret), on one line or several",
            &["machine"],
            &format!(
                r"machine[ \t]+[^\s]+(?:\s+(?:login|account|port|protocol)[ \t]+[^\s]+){{1,4}}\s+password[ \t]+(?P<secret>{PASSWORD})"
            ),
        )
        .validated(Validator::NotAName)
        .max_len(1024)
        .priority(25),
        DetectorSpec::prefixed(
            "registry-auth",
            "Base64 user:password of a Docker config.json \"auth\" or an .npmrc _auth",
            &["_auth", "\"auth\""],
            r#"(?:_auth[ \t]*=[ \t]*["']?|"auth"[ \t]*:[ \t]*")(?P<secret>[A-Za-z0-9+/]{4,1024}={0,2})(?:[^A-Za-z0-9+/=_-]|$)"#,
        )
        .validated(Validator::BasicCredentials)
        .max_len(1100)
        .priority(25),
        DetectorSpec::prefixed(
            "xml-password",
            "Password element of an XML config (Maven settings.xml <password>, <passphrase>)",
            &["<password>", "<passphrase>"],
            r"<(?:password|passphrase)>[ \t]*(?P<secret>[^<>\s$][^<>\r\n]{0,255}?)[ \t]*</(?:password|passphrase)>",
        )
        .validated(Validator::NotAName)
        .max_len(400)
        .priority(25),
        DetectorSpec::prefixed(
            "password-hash",
            "Password hash (htpasswd $apr1$ and {SHA}, bcrypt $2a$/$2b$/$2y$, crypt $5$/$6$, argon2)",
            &["$apr1$", "$2a$", "$2b$", "$2y$", "$5$", "$6$", "$argon2", "{SHA}"],
            r"(?P<secret>\$apr1\$[./0-9A-Za-z]{1,8}\$[./0-9A-Za-z]{22}|\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}|\$[56]\$(?:rounds=[0-9]{1,9}\$)?[./0-9A-Za-z]{1,16}\$(?:[./0-9A-Za-z]{86}|[./0-9A-Za-z]{43})|\$argon2(?:id|i|d)\$v=[0-9]{1,3}\$m=[0-9]{1,9},t=[0-9]{1,9},p=[0-9]{1,3}\$[A-Za-z0-9+/]{8,64}\$[A-Za-z0-9+/]{16,128}|\{SHA\}[A-Za-z0-9+/]{27}=)(?:[^./A-Za-z0-9+=$]|$)",
        ),
    ]
}

/// Passwords on command lines and in JDBC URLs without `://`.
fn command_lines() -> Vec<DetectorSpec> {
    vec![
        DetectorSpec::prefixed(
            "cli-password",
            "Password on a command line: curl -u/--user user:password, --password[=] value, mysql -pPASS, sshpass -p, docker login -p",
            &[" -u", "--user", "-passw", "mysql", "sshpass", "docker login"],
            &format!(
                r#"(?:(?: -u|--user)(?:[ \t]+|=)?["']?[^\s:"'$]+:|-passw(?:or)?d(?:[ \t]+|=)["']?|mysql(?:dump|admin|import|show|check|sh)?(?:[ \t]+[^\s|;&<>]+){{0,12}}?[ \t]+-p["']?|sshpass[ \t]+-p[ \t]*["']?|docker login(?:[ \t]+[^\s|;&<>]+){{0,12}}?[ \t]+-p[ \t]+["']?)(?P<secret>{PASSWORD})"#
            ),
        )
        .validated(Validator::NotAName)
        .max_len(2048)
        .priority(25),
        DetectorSpec::prefixed(
            "jdbc-oracle-password",
            "Password in an Oracle JDBC URL (jdbc:oracle:thin:user/password@host)",
            &["jdbc:oracle:"],
            r#"jdbc:oracle:(?:thin|oci8?):[^\s/@:"']+/(?P<secret>[^\s@"'`$<{][^\s@"'`]*)@"#,
        )
        .validated(Validator::NotAName)
        .max_len(512)
        .priority(25),
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::{f, n, p, pem_lines, Case, ALNUM, B64, BECH32, HEX, HEX_UPPER, LETTERS, MIXED, URL_SAFE};

    /// Characters of crypt(3) salts and hashes.
    const CRYPT: &str = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        let mut all = key_positives();
        all.extend(url_and_header_positives());
        all.extend(file_positives());
        all.extend(command_line_positives());
        all
    }

    fn key_positives() -> Vec<Case> {
        let rsa = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow{}\n-----END RSA PRIVATE KEY-----",
            pem_lines("rsa", 12, "\n")
        );
        let rsa_encrypted = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{}\n\n{}\n-----END RSA PRIVATE KEY-----",
        f("dek", HEX_UPPER, 32),
        pem_lines("rsa-enc", 10, "\n")
    );
        let pkcs8_json =
            format!("-----BEGIN PRIVATE KEY-----\\nMIIEvg{}\\n-----END PRIVATE KEY-----", pem_lines("pkcs8", 8, "\\n"));
        let openssh = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAA{}\r\n-----END OPENSSH PRIVATE KEY-----",
            pem_lines("ssh", 6, "\r\n")
        );
        let ec = format!(
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE{}\n-----END EC PRIVATE KEY-----",
            pem_lines("ec", 3, "\n")
        );
        let pgp = format!(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\nComment: release signing key (ci)\n\nlQVYBG{}\n={}\n-----END PGP PRIVATE KEY BLOCK-----",
        pem_lines("pgp", 20, "\n"),
        f("pgp-crc", B64, 4)
    );
        let ssh2 = format!(
            "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"rsa-key-20240101\"\nP2/56wAAA{}\n---- END SSH2 ENCRYPTED PRIVATE KEY ----",
            pem_lines("ssh2", 8, "\n")
        );
        let indented = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n    MIIEpA{}\n    -----END RSA PRIVATE KEY-----",
            pem_lines("yaml-rsa", 6, "\n    ")
        );
        let crlf_pkcs8 = format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\r\nMIIFHz{}\r\n-----END ENCRYPTED PRIVATE KEY-----",
            pem_lines("enc-pkcs8", 5, "\r\n")
        );
        let putty_private = pem_lines("putty", 3, "\n");
        vec![
            p("private-key", "key.pem:\n{}\n", rsa),
            p("private-key", "{}\n", rsa_encrypted),
            p("private-key", r#"{"type": "service_account", "private_key": "{}\n", "client_id": "1"}"#, pkcs8_json),
            p("private-key", "cat ~/.ssh/id_ed25519\r\n{}\r\n", openssh),
            p("private-key", "  tls.key: |\n{}", ec),
            p("pgp-private-key", "exported:\n{}\n", pgp),
            p("private-key", "{}\n", ssh2),
            p("private-key", "tls:\n  key: |\n    {}\n", indented),
            p("private-key", "{}\r\n", crlf_pkcs8),
            p(
                "private-key-base64",
                &format!(
                    "users:\n- name: admin\n  user:\n    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t{}\n    client-key-data: {{}}\n",
                    f("kube-cert", B64, 400)
                ),
                format!("LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt{}", f("kube-key", B64, 1600)),
            ),
            p(
                "private-key-base64",
                r#"{"ssh_key_b64": "{}"}"#,
                format!("LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZ{}==", f("b64-openssh", B64, 500)),
            ),
            p(
                "putty-private-key",
                &format!(
                    "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy@ci\nPublic-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAI{}\n{}\nPrivate-Lines: 3\n{{}}\nPrivate-MAC: {}\n",
                    f("putty-pub", B64, 39),
                    f("putty-pub2", B64, 20),
                    f("putty-mac", HEX, 64)
                ),
                putty_private,
            ),
        ]
    }

    fn url_and_header_positives() -> Vec<Case> {
        let jwe = format!(
            "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.{}.{}.{}.{}",
            f("jwe-key", URL_SAFE, 342),
            f("jwe-iv", URL_SAFE, 22),
            f("jwe-ct", URL_SAFE, 120),
            f("jwe-tag", URL_SAFE, 22)
        );
        let jwe_direct = format!(
            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..{}.{}.{}",
            f("jwe-d-iv", URL_SAFE, 22),
            f("jwe-d-ct", URL_SAFE, 80),
            f("jwe-d-tag", URL_SAFE, 22)
        );
        vec![
            p("age-secret-key", "# public key: age1qqqq\n{}", format!("AGE-SECRET-KEY-1{}", f("age", BECH32, 58))),
            p(
                "jwt",
                r#"{"id_token": "{}"}"#,
                format!(
                    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
                    f("jwt1", URL_SAFE, 120),
                    f("jwt2", URL_SAFE, 86)
                ),
            ),
            p("jwt", "unsigned: {} end", format!("eyJhbGciOiJub25lIn0.eyJ{}.", f("jwt3", URL_SAFE, 40))),
            p("url-password", "DATABASE_URL=postgres://app_user:{}@db.internal:5432/app", f("pg", MIXED, 18)),
            p("url-password", "MONGO_URI=\"mongodb+srv://svc:{}@cluster0.mongodb.net/prod\"", f("mongo", ALNUM, 20)),
            p("url-password", "REDIS_URL=redis://:{}@cache.internal:6379/0", f("redis", ALNUM, 24)),
            p("url-password", "git remote add origin https://deploy:{}@git.acme.io/infra.git", f("https", ALNUM, 16)),
            p("url-password", "jdbc:mysql://root:{}@10.0.0.5:3306/shop", f("mysql", ALNUM, 12)),
            p(
                "http-authorization",
                r#"curl -H "Authorization: Bearer {}" https://api.acme.io/v1/jobs"#,
                f("bearer", URL_SAFE, 40),
            ),
            p("http-authorization", "authorization: Basic {}", format!("{}==", f("basic", B64, 22))),
            p("jwt", r#"{"access_token": "{}", "token_type": "Bearer"}"#, jwe),
            p("jwt", "id-token: {}\n", jwe_direct),
            p("url-password", "AMQP_URL=amqps://rabbit:{}@mq.acme.io:5671/prod", f("amqp", ALNUM, 20)),
            p("url-password", "ldap://cn=admin,dc=acme,dc=io:{}@ldap.acme.io", f("ldap", ALNUM, 14)),
            p("url-password", "SMTP_URL=smtp://mailer:{}@smtp.acme.io:587", f("smtp", ALNUM, 16)),
            p("url-password", "postgresql://app:{}@[2001:db8::5]:5432/app", "Zq8%40x%2Fm1!Lp".to_string()),
            p("url-password", "GIT=https://ci:{}@git.acme.io", "tiger".to_string()),
            p("sentry-dsn", "SENTRY_DSN=https://{}@o450123.ingest.sentry.io/5501234", f("sentry", HEX, 32)),
            p(
                "sentry-dsn",
                r#"Sentry.init({ dsn: "https://{}@sentry.acme.io/12" });"#,
                format!("{}:{}", f("sentry-old", HEX, 32), f("sentry-secret", HEX, 32)),
            ),
            p("http-authorization", "Proxy-Authorization: Basic {}", format!("{}=", f("proxy-basic", B64, 27))),
            p("session-cookie", "Cookie: theme=dark; session={}; lang=en", f("cookie-session", URL_SAFE, 40)),
            p("session-cookie", "Set-Cookie: JSESSIONID={}; Path=/; HttpOnly", f("jsession", "0123456789ABCDEF", 32)),
            p("session-cookie", "GET /cart?session_id={} HTTP/1.1", f("session-id", ALNUM, 32)),
            p("session-cookie", "Cookie: PHPSESSID={}", f("phpsess", "abcdefghijklmnopqrstuvwxyz0123456789", 26)),
        ]
    }

    fn file_positives() -> Vec<Case> {
        let (user, pass) = (format!("{}==", f("k8s-user", B64, 10)), f("k8s-pass", B64, 24));
        let (crt, key) = (
            format!("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t{}", f("k8s-crt", B64, 96)),
            format!("LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0t{}", f("k8s-key", B64, 400)),
        );
        let string_data = format!("admin\n  password: {}\n  api-url: https://api.acme.io", f("k8s-sd", ALNUM, 18));
        vec![
            p(
                "kubernetes-secret-data",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\ntype: Opaque\ndata:\n  username: {}\n",
                format!("{user}\n  password: {pass}"),
            ),
            p(
                "kubernetes-secret-data",
                "apiVersion: v1\r\ndata:\r\n  tls.crt: {}\r\nkind: Secret\r\nmetadata:\r\n  name: web-tls\r\ntype: kubernetes.io/tls\r\n",
                format!("{crt}\r\n  tls.key: {key}"),
            ),
            p(
                "kubernetes-secret-string-data",
                "kind: Secret\nstringData:\n  username: {}\ntype: Opaque\n",
                string_data,
            ),
            p(
                "netrc-password",
                "machine api.heroku.com\n  login ops@acme.io\n  password {}\nmachine git.heroku.com",
                f("netrc-multi", URL_SAFE, 36),
            ),
            p("netrc-password", "machine git.acme.io login ci password {}", format!("{}9", f("netrc-one", LETTERS, 11))),
            p("registry-auth", "//npm.acme.io/:_auth={}\nalways-auth=true", "Y2ktYm90OlpxODFtVngwcExyN0tkMnc=".to_string()),
            p(
                "registry-auth",
                r#"{"auths": {"registry.acme.io": {"auth": "{}"}}}"#,
                "ZGVwbG95Omg3VHEybVdjOXZYejRMcFI=".to_string(),
            ),
            p(
                "xml-password",
                "<server>\n  <id>nexus</id>\n  <username>deploy</username>\n  <password>{}</password>\n</server>",
                f("maven", ALNUM, 16),
            ),
            p("xml-password", "<gpg>\n  <passphrase>{}</passphrase>\n</gpg>", format!("{} {}", f("gpg1", LETTERS, 6), f("gpg2", ALNUM, 8))),
            p("password-hash", "admin:{}\n", format!("$apr1${}${}", f("apr1-salt", CRYPT, 8), f("apr1", CRYPT, 22))),
            p("password-hash", "alice:{}", format!("$2a$10${}", f("bcrypt-a", CRYPT, 53))),
            p("password-hash", "hash = {}", format!("$2b$12${}", f("bcrypt-b", CRYPT, 53))),
            p("password-hash", "bob:{}\n", format!("$2y$10${}", f("bcrypt-y", CRYPT, 53))),
            p("password-hash", "carol:{}:19000:0:99999:7:::", format!("$5${}${}", f("sha256-salt", CRYPT, 16), f("sha256", CRYPT, 43))),
            p(
                "password-hash",
                "root:{}:19000:0:99999:7:::",
                format!("$6$rounds=5000${}${}", f("sha512-salt", CRYPT, 16), f("sha512", CRYPT, 86)),
            ),
            p(
                "password-hash",
                r#"{"password_hash": "{}"}"#,
                format!("$argon2id$v=19$m=65536,t=3,p=4${}${}", f("argon-salt", B64, 22), f("argon", B64, 43)),
            ),
            p("password-hash", "legacy:{}\n", format!("{{SHA}}{}=", f("sha1", B64, 27))),
        ]
    }

    fn command_line_positives() -> Vec<Case> {
        vec![
            p("cli-password", "curl -u deploy:{} https://api.acme.io/v1/jobs", f("curl-u", ALNUM, 18)),
            p(
                "cli-password",
                r#"curl --user "ci:{}" https://nexus.acme.io"#,
                format!("{}!", f("curl-user", LETTERS, 10)),
            ),
            p("cli-password", "wget --http-password={} https://files.acme.io/a.tgz", f("wget", ALNUM, 14)),
            p("cli-password", "mysql -h db.internal -u root -p{} shop", f("mysql", ALNUM, 12)),
            p("cli-password", "sshpass -p '{}' ssh deploy@10.0.0.5", f("sshpass", ALNUM, 12)),
            p("cli-password", "docker login -u acme -p {} registry.acme.io", f("docker-p", ALNUM, 20)),
            p("cli-password", "psql --password {} -h db", "tiger".to_string()),
            p("jdbc-oracle-password", "url=jdbc:oracle:thin:scott/{}@//db.acme.io:1521/ORCL", f("oracle", ALNUM, 14)),
        ]
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        vec![
            n("age-secret-key", format!("AGE-SECRET-KEY-1{}", f("age-lower", "qpzry9x8gf2tvdw0s3jn54khce6mua7l", 58))),
            n(
                "private-key",
                format!("-----BEGIN CERTIFICATE-----\nMIIC{}\n-----END CERTIFICATE-----", pem_lines("cert", 4, "\n")),
            ),
            n(
                "private-key",
                format!("-----BEGIN PUBLIC KEY-----\nMIIB{}\n-----END PUBLIC KEY-----", pem_lines("pub", 3, "\n")),
            ),
            n("private-key", format!("-----BEGIN RSA PRIVATE KEY-----\nMIIE{}\n(truncated)", pem_lines("trunc", 4, "\n"))),
            n(
                "pgp-private-key",
                format!(
                    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQIN{}\n-----END PGP PUBLIC KEY BLOCK-----",
                    pem_lines("pgp-pub", 4, "\n")
                ),
            ),
            n("jwt", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24gYXQgYWxs.c2lnbmF0dXJl and eyJ alone"),
            n("url-password", "see https://user@host.acme.io and http://localhost:8080/path"),
            n("url-password", "postgres://app:${PGPASSWORD}@db:5432/app postgres://%s:%s@%s/db"),
            n("url-password", r#"f"postgres://{user}:{password}@{host}/db" redis://:$REDIS_PASSWORD@cache"#),
            n("http-authorization", r#"-H "Authorization: Bearer $API_TOKEN" authorization: Bearer short"#),
            n("private-key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----"),
            n("private-key", "-----BEGIN PRIVATE KEY-----\n<your key here>\n-----END PRIVATE KEY-----"),
            n("private-key", "---- BEGIN SSH2 PUBLIC KEY ----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n---- END SSH2 PUBLIC KEY ----"),
            n(
                "private-key-base64",
                format!(
                    "client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t{} key: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt{}",
                    f("cert-only", B64, 400),
                    f("b64-short", B64, 20)
                ),
            ),
            n(
                "putty-private-key",
                format!("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPublic-Lines: 2\n{}\n", f("putty-n", B64, 64)),
            ),
            n("jwt", "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0.a.b.c.d"),
            n("url-password", "postgres://USER:PASSWORD@HOST:5432/db mysql://user:pass@localhost/db"),
            n("url-password", "amqp://guest:$RABBIT_PASSWORD@mq smtp://mailer:<password>@smtp.acme.io"),
            n("sentry-dsn", format!("https://{}@o1.ingest.sentry.io/1 https://public@sentry.acme.io/1", f("sentry31", HEX, 31))),
            n("sentry-dsn", format!("https://{}@sentry.acme.io/issues", f("sentry-noid", HEX, 32))),
            n("session-cookie", "Cookie: session=abc123; sid=aaaaaaaaaaaaaaaaaaaaaaaa; theme=dark"),
            n(
                "kubernetes-secret-data",
                "kind: ConfigMap\ndata:\n  enabled: true\ndata:\n  LOG_LEVEL: debug\n  PORT: \"8080\"\nmetadata:\n  name: app\n\"data\": {\"k\": \"dmFsdWU=\"}",
            ),
            n("kubernetes-secret-string-data", "stringData:\n- item\nstringData: {}"),
            n("netrc-password", "machine learning password reset\nmachine h login u password PASSWORD"),
            n("registry-auth", r#"{"auth": "bm8gY29sb24gaGVyZQ=="} _auth=true"#),
            n("xml-password", "<password>${env.NEXUS_PASSWORD}</password> <password>PASSWORD</password>"),
            n("password-hash", "costs $5$ or $6$ each; $2y$10$short; {SHA}abc="),
            n(
                "cli-password",
                "git push -u origin main\ncurl -u $USER:$TOKEN https://x\ndocker login --password-stdin\nmysql -u root -p shop\nsshpass -p PASSWORD ssh h",
            ),
            n("jdbc-oracle-password", "jdbc:oracle:thin:@//db:1521/ORCL jdbc:oracle:thin:user/PASSWORD@host"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::super::builtin;
    use super::super::tests::{f, B64, HEX};
    use crate::core::dlp::engine::tests::ids;
    use crate::core::dlp::engine::Engine;

    fn engine() -> Engine {
        Engine::new(builtin()).unwrap_or_else(|errors| panic!("catalog does not compile: {errors:?}"))
    }

    #[test]
    fn a_sentry_dsn_masks_its_key_and_keeps_its_host() {
        let key = f("dsn-host", HEX, 32);
        let text = format!("dsn: https://{key}@o450123.ingest.sentry.io/5501234");
        assert_eq!(ids(&engine(), &text), vec![("sentry-dsn".to_string(), key)]);
    }

    #[test]
    fn a_kubeconfig_masks_its_client_key_not_its_certificate() {
        let key = format!("LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0t{}", f("kc-key", B64, 300));
        let text = format!(
            "    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t{}\n    client-key-data: {key}\n",
            f("kc-cert", B64, 600)
        );
        assert_eq!(ids(&engine(), &text), vec![("private-key-base64".to_string(), key)]);
    }

    #[test]
    fn a_secret_whose_first_value_is_short_padded_base64_is_masked() {
        let text = "kind: Secret\ndata:\n  user: Y2k=\n  password: aHVudGVyMmh1bnRlcjI=\n";
        assert_eq!(
            ids(&engine(), text),
            vec![("kubernetes-secret-data".to_string(), "Y2k=\n  password: aHVudGVyMmh1bnRlcjI=".to_string())]
        );
    }
}
