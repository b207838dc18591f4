"""structured kinds: credentials inside the structures that carry them (see __init__.py).

Key files, manifests, credential files, connection strings, command lines and headers, all
`Snippet`s: the structure around the secret (BEGIN/END lines, user names, hosts, the keys of a
map) is public, only the spans of the secrets are private. Ids are the detectors expected to
catch them.
"""

import base64

from . import ALNUM, B64, HEX, URL_SAFE, Kind, Snippet, rand, snippet

CRYPT = "./" + ALNUM
# Characters people put in passwords that URLs, files and shells carry unescaped.
PUNCT = "!*+-_.~^"
# Base64 of `-----BEGIN <type>PRIVATE KEY-----` up to its last whole 3-byte group.
B64_PEM = {
    "RSA ": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt",
    "EC ": "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0t",
    "OPENSSH ": "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZ",
    "": "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0t",
}
B64_CERT = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"


def _password(r, n=16):
    """A password with letters, digits and a few URL-safe symbols."""
    return rand(r, ALNUM, n - 2) + rand(r, PUNCT, 1) + rand(r, "0123456789", 1)


def _user(r):
    return r.choice(["deploy", "ci", "app_user", "svc-backup", "admin", "jenkins"])


def _host(r):
    return r.choice(["db.internal", "10.0.4.17", "prod-db.acme.io", "cache-1.eu-west-1.acme.net"])


def _pem_body(r, lines):
    return "\n".join(rand(r, B64, 64) for _ in range(lines))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


PEM_INDENTED = (
    "tls:\n  crt: cert.pem\n  key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    {body}\n"
    "    -----END RSA PRIVATE KEY-----\n"
)
PEM_JSON_CRLF = (
    '{{"name": "signing", "key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\\r\\n{body}'
    '\\r\\n-----END ENCRYPTED PRIVATE KEY-----"}}'
)
SSH2 = "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"rsa-key-1\"\n{body}\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\n"


def _key_block(template, head, lines, separator):
    """A key file in `template`: its body (`head`, then `lines` of base64 joined by `separator`)
    is private, the BEGIN/END lines around it are not."""
    return lambda r: snippet(template, body=head + _pem_body(r, lines).replace("\n", separator))


def _putty(r):
    private = _pem_body(r, 3)
    return snippet(
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy@ci\nPublic-Lines: 2\n"
        f"AAAAC3NzaC1lZDI1NTE5AAAAI{rand(r, B64, 39)}\n{rand(r, B64, 20)}\nPrivate-Lines: 3\n"
        "{private}\nPrivate-MAC: " + rand(r, HEX, 64) + "\n",
        private=private,
    )


def _kubeconfig_key(r):
    kind = r.choice(list(B64_PEM))
    key = B64_PEM[kind] + rand(r, B64, r.randrange(1200, 2400) // 4 * 4)
    s = snippet(
        "apiVersion: v1\nkind: Config\nusers:\n- name: admin@prod\n  user:\n"
        f"    client-certificate-data: {B64_CERT}{rand(r, B64, 800)}\n"
        "    client-key-data: {key}\n",
        key=key,
    )
    # The visible trigger `LS0tLS1CRUdJTi` is public (it only says "-----BEGIN").
    ((start, end),) = s.spans
    return Snippet(s.text, ((start + len("LS0tLS1CRUdJTi"), end),))


def _kubeconfig_token(r):
    header = "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9"
    jwt = f"{header}.eyJ{rand(r, URL_SAFE, 300)}.{rand(r, URL_SAFE, 342)}"
    return snippet("users:\n- name: ci\n  user:\n    token: {jwt}\n", jwt=jwt)


def _secret_data(r):
    user, password = _b64(_user(r)), _b64(_password(r, 20))
    values = f"{user}\n  password: {password}\n  api-key: {_b64(rand(r, ALNUM, 32))}"
    return snippet(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-credentials\n  namespace: prod\n"
        "type: Opaque\ndata:\n  username: {values}\n",
        values=values,
    )


def _secret_data_kubectl(r):
    values = f"{_b64(_password(r, 24))}\n  DB_USER: {_b64(_user(r))}"
    return snippet(
        "apiVersion: v1\ndata:\n  DB_PASSWORD: {values}\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n",
        values=values,
    )


def _secret_string_data(r):
    values = f"{_user(r)}\n  password: {_password(r)}"
    return snippet("apiVersion: v1\nkind: Secret\nstringData:\n  username: {values}\ntype: Opaque\n", values=values)


def _netrc(r):
    if r.random() < 0.5:
        return snippet(
            f"machine {_host(r)}\n  login {_user(r)}\n  password {{password}}\n", password=_password(r)
        )
    return snippet(f"machine {_host(r)} login {_user(r)} password {{password}}", password=_password(r))


def _npmrc_auth(r):
    value = _b64(f"{_user(r)}:{_password(r)}")
    return snippet("registry=https://npm.acme.io/\n//npm.acme.io/:_auth={value}\nalways-auth=true\n", value=value)


def _npmrc_token(r):
    return snippet("//npm.acme.io/:_authToken={value}\n", value=rand(r, ALNUM, 24) + "9")


def _docker_auth(r):
    value = _b64(f"{_user(r)}:{_password(r, 24)}")
    return snippet('{{"auths": {{"registry.acme.io": {{"auth": "{value}"}}}}}}', value=value)


def _maven(r):
    return snippet(
        "<servers>\n  <server>\n    <id>nexus</id>\n    <username>deploy</username>\n"
        "    <password>{password}</password>\n  </server>\n</servers>",
        password=_password(r),
    )


def _pypirc(r):
    return snippet("[nexus]\nrepository = https://nexus.acme.io/pypi\nusername = ci\npassword = {p}\n", p=_password(r))


def _password_hash(r):
    user = _user(r)
    value = r.choice(
        [
            f"$apr1${rand(r, CRYPT, 8)}${rand(r, CRYPT, 22)}",
            f"$2y$10${rand(r, CRYPT, 53)}",
            f"$6$rounds=5000${rand(r, CRYPT, 16)}${rand(r, CRYPT, 86)}",
            f"{{SHA}}{rand(r, B64, 27)}=",
        ]
    )
    # The scheme marker (`$2y$`, `$apr1$`, `{SHA}`) stays visible and is public.
    text = f"{user}:{value}\n"
    public = value.index("$", 1) + 1 if value.startswith("$") else 5
    start = len(user) + 1 + public
    return Snippet(text, ((start, len(user) + 1 + len(value)),))


def _pgpass_like_url(r):
    return snippet(
        f"DATABASE_URL=postgresql://{_user(r)}:{{password}}@{_host(r)}:5432/app", password=_password(r)
    )


def _url_special(r):
    password = rand(r, ALNUM, 10) + "%40" + rand(r, ALNUM, 4) + "%2F" + rand(r, PUNCT, 2)
    host = r.choice(["[2001:db8::5]", "db.acme.io", "10.0.0.9"])
    scheme = r.choice(["postgres", "mysql", "mongodb+srv", "rediss", "amqps", "smtp", "ldap"])
    return snippet(f"{scheme}://{_user(r)}:{{password}}@{host}:6000/x", password=password)


def _redis_no_user(r):
    return snippet("REDIS_URL=redis://:{password}@cache.acme.io:6379/0", password=_password(r, 24))


def _git_credentials(r):
    return snippet(f"https://{_user(r)}:{{token}}@git.acme.io\n", token=rand(r, ALNUM, 40))


def _jdbc_query(r):
    return snippet(
        "jdbc:mysql://db.acme.io:3306/shop?user=app&password={password}&useSSL=true", password=_password(r)
    )


def _jdbc_sqlserver(r):
    return snippet(
        "jdbc:sqlserver://db.acme.io:1433;databaseName=shop;user=app;password={password};encrypt=true",
        password=_password(r),
    )


def _jdbc_oracle(r):
    return snippet("jdbc:oracle:thin:scott/{password}@//db.acme.io:1521/ORCL", password=_password(r))


def _ado(r):
    return snippet(
        "Server=tcp:sql.acme.io,1433;Database=shop;User Id=app;Password={password};Encrypt=True;",
        password=_password(r),
    )


def _sentry(r):
    key = rand(r, HEX, 32)
    return snippet(
        f"SENTRY_DSN=https://{{key}}@o{rand(r, '0123456789', 6)}.ingest.sentry.io/{rand(r, '0123456789', 7)}",
        key=key,
    )


def _sentry_old(r):
    key = f"{rand(r, HEX, 32)}:{rand(r, HEX, 32)}"
    return snippet("dsn: https://{key}@sentry.acme.io/12", key=key)


def _curl(r):
    form = r.choice(["curl -u {u}:{{p}} https://api.acme.io", 'curl --user "{u}:{{p}}" https://api.acme.io'])
    return snippet(form.format(u=_user(r)), p=_password(r))


def _mysql(r):
    return snippet(f"mysql -h {_host(r)} -u root -p{{p}} shop", p=_password(r))


def _sshpass(r):
    return snippet(f"sshpass -p '{{p}}' ssh {_user(r)}@{_host(r)}", p=_password(r))


def _wget(r):
    return snippet("wget --http-password={p} https://files.acme.io/a.tgz", p=_password(r))


def _docker_login(r):
    return snippet("docker login -u acme -p {p} registry.acme.io", p=_password(r, 24))


def _basic_header(r):
    value = _b64(f"{_user(r)}:{_password(r)}")
    header = r.choice(["Authorization", "Proxy-Authorization"])
    return snippet(f"{header}: Basic {{v}}", v=value)


def _cookie(r):
    name = r.choice(["session", "sessionid", "JSESSIONID", "PHPSESSID", "connect.sid", "_app_session"])
    return snippet(f"Cookie: theme=dark; {name}={{v}}; lang=en", v=rand(r, URL_SAFE, 32))


def _aws_file(r):
    return snippet(
        "[default]\naws_access_key_id = AKIA" + rand(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        + "\naws_secret_access_key = {s}\nregion = eu-west-1\n",
        s=rand(r, B64, 40),
    )


def _tfrc(r):
    # The 14 characters before `.atlasv1.` stay visible (the token's id part); the rest is private.
    head = rand(r, ALNUM, 14)
    template = '{{"credentials": {{"app.terraform.io": {{"token": "' + head + '.atlasv1.{t}"}}}}}}'
    return snippet(template, t=rand(r, URL_SAFE, 67))


KINDS: list[Kind] = [
    Kind("private-key", "credential", _key_block(PEM_INDENTED, "MIIEpA", 8, "\n    "), source="RFC 7468; YAML block scalar"),
    Kind("private-key", "credential", _key_block(PEM_JSON_CRLF, "MIIFHz", 6, "\\r\\n"), source="RFC 5958 encrypted PKCS#8, JSON-escaped CRLF"),
    Kind("private-key", "credential", _key_block(SSH2, "P2/56wAAA", 10, "\n"), source="RFC 4716 / ssh.com SSH2 private key"),
    Kind("putty-private-key", "credential", _putty, source="PuTTY docs: PPK file format"),
    Kind("private-key-base64", "credential", _kubeconfig_key, source="Kubernetes docs: kubeconfig client-key-data"),
    Kind("jwt", "credential", _kubeconfig_token, source="Kubernetes docs: service account tokens"),
    Kind("kubernetes-secret-data", "credential", _secret_data, source="Kubernetes docs: Secret data"),
    Kind("kubernetes-secret-data", "credential", _secret_data_kubectl, source="kubectl get secret -o yaml"),
    Kind("kubernetes-secret-string-data", "credential", _secret_string_data, source="Kubernetes docs: stringData"),
    Kind("netrc-password", "credential", _netrc, source="GNU inetutils: .netrc"),
    Kind("registry-auth", "credential", _npmrc_auth, source="npm docs: .npmrc _auth"),
    Kind("generic-env-secret", "credential", _npmrc_token, source="npm docs: .npmrc _authToken"),
    Kind("registry-auth", "credential", _docker_auth, source="Docker docs: config.json auths"),
    Kind("xml-password", "credential", _maven, source="Maven docs: settings.xml servers"),
    Kind("generic-env-secret", "credential", _pypirc, source="PyPA docs: .pypirc"),
    Kind("password-hash", "credential", _password_hash, source="Apache htpasswd; crypt(5)"),
    Kind("url-password", "credential", _pgpass_like_url, source="PostgreSQL docs: connection URIs"),
    Kind("url-password", "credential", _url_special, source="RFC 3986 userinfo, percent-encoding, IPv6"),
    Kind("url-password", "credential", _redis_no_user, source="Redis docs: redis:// URIs"),
    Kind("url-password", "credential", _git_credentials, source="git-credential-store: .git-credentials"),
    Kind("generic-env-secret", "credential", _jdbc_query, source="MySQL Connector/J URL"),
    Kind("generic-env-secret", "credential", _jdbc_sqlserver, source="Microsoft JDBC driver URL"),
    Kind("jdbc-oracle-password", "credential", _jdbc_oracle, source="Oracle JDBC thin URL"),
    Kind("generic-env-secret", "credential", _ado, source="ADO.NET connection strings"),
    Kind("sentry-dsn", "credential", _sentry, source="Sentry docs: DSN"),
    Kind("sentry-dsn", "credential", _sentry_old, source="Sentry docs: legacy DSN with secret"),
    Kind("cli-password", "credential", _curl, source="curl man page: -u/--user"),
    Kind("cli-password", "credential", _mysql, source="MySQL docs: -p/--password"),
    Kind("cli-password", "credential", _sshpass, source="sshpass man page"),
    Kind("cli-password", "credential", _wget, source="wget man page: --http-password"),
    Kind("cli-password", "credential", _docker_login, source="Docker docs: docker login -p"),
    Kind("http-authorization", "credential", _basic_header, source="RFC 7617 Basic; RFC 9110 Proxy-Authorization"),
    Kind("session-cookie", "credential", _cookie, source="RFC 6265 cookies; common session cookie names"),
    Kind("aws-secret-access-key", "credential", _aws_file, source="AWS docs: credentials file"),
    Kind("terraform-cloud-token", "credential", _tfrc, source="Terraform docs: credentials.tfrc.json"),
]
