//! The token service of `warden serve` as clients use it: the real binary on a free 127.0.0.1
//! port, the token endpoint's exchange (RFC 8693) of tokens from test issuers — an OIDC-shaped
//! token and a GitHub-Actions-shaped one signed with `warden token mint` — into Warden tokens
//! that verify with the service's published JWKS, the endpoint's error answers, key rotation's
//! JWKS, and `warden serve` starting with whichever parts the policy asks for and only the flags
//! those parts need.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

mod common;

use common::{demo_policy as policy, form, run, Serve, Workspace};

const ISSUER: &str = "https://warden.test";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// A token service trusting the demo issuer as an OIDC provider (audience `warden-cli`) and as
/// a GitHub Actions issuer (audience `https://warden.test`).
const TOKEN_SERVICE: &str = r#"token_service:
  issuer: "https://warden.test"
  lifetime: 5m
  oidc:
    - { name: corp, issuer: warden-demo, audiences: [warden-cli], jwks: { file: jwks.json }, algorithms: [ES256] }
  workloads:
    - { name: github, kind: github_actions, issuer: warden-demo, audiences: ["https://warden.test"], jwks: { file: jwks.json }, algorithms: [ES256] }
"#;

const APPROVALS: &str = r#"approvals:
  service: { url: "http://127.0.0.1:8787", token: approvals-token, verdict_key: approvals-verdict-key }
"#;
const AUDIT: &str = r#"audit:
  service: { url: "http://127.0.0.1:8787", token: approvals-token }
"#;
const LEASES: &str = r#"accounting:
  leases:
    service: { url: "http://127.0.0.1:8787", token: approvals-token }
"#;

/// Form parameters, or flags with their file names.
type Params<'a> = Vec<(&'a str, &'a str)>;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// `(status, body as JSON)` of a request.
fn call(method: &str, url: &str, content_type: &str, body: &str) -> (u16, Value) {
    let agent = agent();
    let result = match method {
        "GET" => agent.get(url).call(),
        _ => agent.post(url).header("content-type", content_type).send(body),
    };
    let mut response = result.unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn exchange(server: &Serve, params: &[(&str, &str)]) -> (u16, Value) {
    call("POST", &format!("{}/oauth/token", server.base), "application/x-www-form-urlencoded", &form(params))
}

/// A token from the demo issuer (`warden token mint`).
fn mint(ws: &Workspace, sub: &str, audience: &str, extra: &[&str]) -> String {
    let dir = ws.dir.to_str().unwrap();
    let mut args = vec!["token", "mint", "--dir", dir, "--sub", sub, "--audience", audience];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args, &[]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

/// The claims of a Warden token, verified with the key the service publishes.
fn verify_with_published_jwks(server: &Serve, token: &str) -> JWTClaims<Map<String, Value>> {
    let (status, jwks) = call("GET", &format!("{}/.well-known/jwks.json", server.base), "", "");
    assert_eq!(status, 200);
    let kid = Token::decode_metadata(token).unwrap().key_id().unwrap().to_string();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("the key is published");
    let b64 = |field: &str| {
        use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
        Base64UrlSafeNoPadding::decode_to_vec(jwk[field].as_str().unwrap(), None).unwrap()
    };
    let point = [vec![0x04], b64("x"), b64("y")].concat();
    let key = ES256PublicKey::from_bytes(&point).unwrap();
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([ISSUER.to_string()])),
        allowed_audiences: Some(HashSet::from(["warden".to_string()])),
        ..Default::default()
    };
    key.verify_token(token, Some(options)).unwrap()
}

fn token_service_only(name: &str) -> (Workspace, Serve) {
    let ws = Workspace::new("tokens", name, &policy(TOKEN_SERVICE));
    let key = ws.path("tokens-signing-key.pem");
    let server = Serve::start_with(&ws, &["--token-signing-key", key.to_str().unwrap()]);
    (ws, server)
}

#[test]
fn an_oidc_token_is_exchanged_for_a_warden_token_carrying_the_identity() {
    let (ws, server) = token_service_only("oidc");
    assert!(server.log().contains("running: token service;"), "{}", server.log());
    let subject_token =
        mint(&ws, "alice", "warden-cli", &["--groups", "eng,leads", "--claim", "email=alice@example.com"]);
    let (status, answer) = exchange(
        &server,
        &[("grant_type", TOKEN_EXCHANGE), ("subject_token", &subject_token), ("subject_token_type", ID_TOKEN)],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["issued_token_type"], "urn:ietf:params:oauth:token-type:jwt");
    assert_eq!(answer["expires_in"], 300);
    assert!(answer.get("refresh_token").is_none());
    let claims = verify_with_published_jwks(&server, answer["access_token"].as_str().unwrap());
    assert_eq!(claims.subject.as_deref(), Some("alice"));
    assert_eq!(claims.custom["groups"], json!(["eng", "leads"]));
    assert_eq!(claims.custom["email"], "alice@example.com");
    assert_eq!(claims.custom["warden_src"], "corp");
    assert_eq!(claims.custom["warden_auth"], "oidc");
    let jti = claims.jwt_id.unwrap();
    let log = server.log();
    assert!(log.contains("token exchange: corp (oidc) subject \"alice\"") && log.contains(&jti), "{log}");
    assert!(
        !log.contains(&subject_token) && !log.contains(answer["access_token"].as_str().unwrap()),
        "no token is logged"
    );
}

#[test]
fn a_github_actions_token_becomes_a_warden_token_with_job_claims_and_no_groups() {
    let (ws, server) = token_service_only("github");
    let sub = "repo:org/app:ref:refs/heads/main";
    let claims = [
        "--groups",
        "admins",
        "--claim",
        "repository=org/app",
        "--claim",
        "run_id=42",
        "--claim",
        "ref=refs/heads/main",
    ];
    let subject_token = mint(&ws, sub, ISSUER, &claims);
    let jwt_type = "urn:ietf:params:oauth:token-type:jwt";
    let (status, answer) = exchange(
        &server,
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &subject_token),
            ("subject_token_type", jwt_type),
            ("requested_token_type", jwt_type),
            ("audience", "warden"),
        ],
    );
    assert_eq!(status, 200, "{answer}");
    let minted = verify_with_published_jwks(&server, answer["access_token"].as_str().unwrap());
    assert_eq!(minted.subject.as_deref(), Some(sub));
    assert_eq!(minted.custom["groups"], json!([]), "a workload's own groups claim is never trusted");
    assert_eq!((&minted.custom["repository"], &minted.custom["run_id"]), (&json!("org/app"), &json!("42")));
    assert_eq!(minted.custom["warden_auth"], "github_actions");
}

#[test]
fn the_token_endpoint_answers_bad_requests_in_oauths_error_shape() {
    let (ws, server) = token_service_only("errors");
    let good = mint(&ws, "alice", "warden-cli", &[]);
    let base = [("grant_type", TOKEN_EXCHANGE), ("subject_token", good.as_str()), ("subject_token_type", ID_TOKEN)];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> { [&base[..], extra].concat() };
    let stranger = Workspace::new("tokens", "stranger", &policy(""));
    let foreign = mint(&stranger, "mallory", "warden-cli", &[]);
    let wrong_audience = mint(&ws, "alice", "someone-else", &[]);
    // (parameters, status, error code, what the description mentions)
    let cases: Vec<(Params, u16, &str, &str)> = vec![
        (vec![("grant_type", "password"), ("username", "a")], 400, "unsupported_grant_type", "password"),
        (vec![("subject_token", good.as_str())], 400, "invalid_request", "grant_type"),
        (
            vec![("grant_type", TOKEN_EXCHANGE), ("subject_token_type", ID_TOKEN)],
            400,
            "invalid_request",
            "subject_token",
        ),
        (with(&[("grant_type", TOKEN_EXCHANGE)]), 400, "invalid_request", "more than once"),
        (
            vec![("grant_type", TOKEN_EXCHANGE), ("subject_token", good.as_str()), ("subject_token_type", "saml2")],
            400,
            "invalid_request",
            "subject_token_type",
        ),
        (
            with(&[("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")]),
            400,
            "invalid_request",
            "requested_token_type",
        ),
        (with(&[("audience", "elsewhere")]), 400, "invalid_target", "audience"),
        (with(&[("resource", "https://x")]), 400, "invalid_target", "resource"),
        (with(&[("actor_token", "x")]), 400, "invalid_request", "delegation"),
        (
            vec![("grant_type", TOKEN_EXCHANGE), ("subject_token", foreign.as_str()), ("subject_token_type", ID_TOKEN)],
            400,
            "invalid_grant",
            "key id",
        ),
        (
            vec![
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", wrong_audience.as_str()),
                ("subject_token_type", ID_TOKEN),
            ],
            400,
            "invalid_grant",
            "audience",
        ),
        (
            vec![("grant_type", TOKEN_EXCHANGE), ("subject_token", "not-a-token"), ("subject_token_type", ID_TOKEN)],
            400,
            "invalid_grant",
            "not a JWT",
        ),
    ];
    for (params, status, error, mentions) in cases {
        let (got, answer) = exchange(&server, &params);
        assert_eq!((got, answer["error"].as_str().unwrap_or_default()), (status, error), "{params:?}: {answer}");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(mentions), "{params:?}: {description}");
        assert!(!description.contains(&good) && !description.contains(&foreign), "a token is never repeated");
    }
    let url = format!("{}/oauth/token", server.base);
    let (status, answer) = call("POST", &url, "application/json", &json!({"grant_type": TOKEN_EXCHANGE}).to_string());
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")), "{answer}");
    let huge = form(&[("grant_type", TOKEN_EXCHANGE), ("subject_token", &"a".repeat(70 * 1024))]);
    let (status, answer) = call("POST", &url, "application/x-www-form-urlencoded", &huge);
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")), "{answer}");
    assert!(server.log().contains("token exchange refused: invalid_grant"), "{}", server.log());
}

#[test]
fn discovery_names_the_token_endpoint_and_a_rotation_publishes_both_keys() {
    let ws = Workspace::new("tokens", "rotation", &policy(TOKEN_SERVICE));
    // The demo issuer's key stands in for the key used before the rotation.
    let (current, previous) = (ws.path("tokens-signing-key.pem"), ws.path("signing-key.pem"));
    let flags = ["--token-signing-key", current.to_str().unwrap(), "--token-previous-key", previous.to_str().unwrap()];
    let server = Serve::start_with(&ws, &flags);
    let (status, discovery) = call("GET", &format!("{}/.well-known/openid-configuration", server.base), "", "");
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], ISSUER);
    assert_eq!(discovery["token_endpoint"], "https://warden.test/oauth/token");
    assert_eq!(discovery["jwks_uri"], "https://warden.test/.well-known/jwks.json");
    // A token the previous key signed (as the demo issuer's tokens are) still finds its key.
    let old = mint(&ws, "alice", "warden", &["--issuer", ISSUER]);
    let claims = verify_with_published_jwks(&server, &old);
    assert_eq!(claims.subject.as_deref(), Some("alice"));
    let (_, jwks) = call("GET", &format!("{}/.well-known/jwks.json", server.base), "", "");
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

/// The workspace for `sections` and the flags `flags` (file names in the workspace) as arguments.
fn setup(name: &str, sections: &str, flags: &[(&str, &str)]) -> (Workspace, Vec<String>) {
    let ws = Workspace::new("tokens-parts", name, &policy(sections));
    let args = flags.iter().flat_map(|(flag, file)| [flag.to_string(), ws.path(file).to_str().unwrap().to_string()]);
    let args = args.collect();
    (ws, args)
}

const SIGNING: (&str, &str) = ("--signing-key", "approvals-signing-key.pem");
const GATEWAY: (&str, &str) = ("--gateway-token-file", "approvals-token");
const TOKENS: (&str, &str) = ("--token-signing-key", "tokens-signing-key.pem");
/// Approval rules for the policy's role (they precede the sections, so they attach to it).
const ROLE_APPROVAL: &str =
    "    approval: { approvers: [leads], triggers: [{ reason: opus_model, models: [\"claude-opus-*\"] }] }\n";

#[test]
fn serve_starts_with_each_part_the_policy_asks_for_and_only_the_flags_it_needs() {
    let cases: [(&str, String, Params, &str); 5] = [
        ("tokens", TOKEN_SERVICE.to_string(), vec![TOKENS], "running: token service;"),
        ("audit", AUDIT.to_string(), vec![SIGNING, GATEWAY], "running: audit trail, budget leases;"),
        ("leases", LEASES.to_string(), vec![GATEWAY], "running: budget leases;"),
        (
            "approvals",
            format!("{ROLE_APPROVAL}{APPROVALS}"),
            vec![SIGNING, GATEWAY],
            "running: approvals, audit trail, budget leases;",
        ),
        (
            "all",
            format!("{ROLE_APPROVAL}{APPROVALS}{AUDIT}{LEASES}{TOKEN_SERVICE}"),
            vec![SIGNING, GATEWAY, TOKENS],
            "running: approvals, audit trail, budget leases, token service;",
        ),
    ];
    for (name, sections, flags, running) in cases {
        let (ws, args) = setup(name, &sections, &flags);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Serve::start_with(&ws, &args);
        let log = server.log();
        assert!(log.contains(running), "{name}: {log}");
        let base = &server.base;
        assert_eq!(call("GET", &format!("{base}/healthz"), "", "").0, 200);
        let all = name == "all";
        let off = [
            (name != "tokens" && !all, "/.well-known/jwks.json"),
            (name == "tokens" || name == "leases", "/sessions"),
            (name != "approvals" && !all, "/v1/reviews"),
            (name == "tokens", "/v1/budget/leases"),
        ];
        for (is_off, path) in off {
            let (status, answer) = call("GET", &format!("{base}{path}"), "", "");
            if is_off {
                assert_eq!(status, 404, "{name}: {path}");
                assert_eq!(answer["type"], "error", "{name}: {path}: {answer}");
                assert_eq!(answer["error"]["type"], "not_found_error", "{name}: {path}: {answer}");
            } else {
                assert_ne!(status, 404, "{name}: {path}: {answer}");
            }
        }
    }
}

#[test]
fn serve_names_the_flag_a_configured_part_is_missing() {
    let cases: [(&str, &str, Params, &str); 5] = [
        (
            "no-token-key",
            TOKEN_SERVICE,
            vec![SIGNING, GATEWAY],
            "the policy runs the token service: --token-signing-key is required",
        ),
        ("no-signing-key", AUDIT, vec![GATEWAY], "the policy runs the audit trail: --signing-key is required"),
        ("no-gateway-token", LEASES, vec![SIGNING], "the policy runs budget leases: --gateway-token-file is required"),
        (
            "stray-previous-key",
            LEASES,
            vec![GATEWAY, ("--token-previous-key", "signing-key.pem")],
            "--token-previous-key needs",
        ),
        ("nothing", "", vec![SIGNING, GATEWAY], "asks nothing of warden serve"),
    ];
    for (name, sections, flags, message) in cases {
        let (ws, flags) = setup(name, sections, &flags);
        let (policy, db) = (ws.path("policy.yaml"), ws.path("approvals.db"));
        let mut args = vec!["serve", "--policy", policy.to_str().unwrap(), "--listen", "127.0.0.1:0"];
        args.extend(["--db", db.to_str().unwrap()]);
        args.extend(flags.iter().map(String::as_str));
        let (code, _, err) = run(&args, &[]);
        assert!(code == 1 && err.contains(message), "{name}: {code} {err}");
    }
}
