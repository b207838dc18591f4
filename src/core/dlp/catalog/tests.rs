//! The catalog's tables: a true positive with its exact span and a near miss for every detector,
//! collected from the families' `cases` modules, and the checks every detector must pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::core::dlp::engine::tests::ids;
use crate::core::dlp::engine::Engine;
use std::collections::{BTreeMap, BTreeSet};

// Every test value is fabricated: generated from a seed with the alphabet and length of the
// format, never copied from a real credential.
pub(super) const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(super) const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub(super) const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub(super) const HEX: &str = "0123456789abcdef";
pub(super) const HEX_UPPER: &str = "0123456789ABCDEF";
pub(super) const DIGITS: &str = "0123456789";
pub(super) const URL_SAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
pub(super) const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(super) const BECH32: &str = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
pub(super) const MIXED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!%*+-_=~";

/// `len` characters of `alphabet`, pseudo-random from `seed` (xorshift over an FNV hash).
pub(super) fn f(seed: &str, alphabet: &str, len: usize) -> String {
    let mut state =
        seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let chars: Vec<char> = alphabet.chars().collect();
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chars[(state % chars.len() as u64) as usize]
        })
        .collect()
}

pub(super) fn uuid(seed: &str) -> String {
    let h = f(seed, HEX, 32);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// `digits` followed by its Luhn check digit.
pub(super) fn with_luhn(digits: &str) -> String {
    let sum: u32 = digits
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap();
            if i % 2 == 0 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// An IBAN for `country` and `bban` with correct check digits.
pub(super) fn iban_for(country: &str, bban: &str) -> String {
    let rearranged = format!("{bban}{country}00");
    let mut rem = 0u32;
    for c in rearranged.chars() {
        let v = c.to_digit(36).unwrap();
        rem = if v < 10 { (rem * 10 + v) % 97 } else { (rem * 100 + v) % 97 };
    }
    format!("{country}{:02}{bban}", 98 - rem)
}

pub(super) fn grouped(compact: &str, size: usize) -> String {
    compact.as_bytes().chunks(size).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
}

/// A true positive: `template` with `{}` replaced by `secret`, which must be found as `id`.
pub(super) struct Case {
    pub id: &'static str,
    pub text: String,
    pub secret: String,
}

pub(super) fn p(id: &'static str, template: &str, secret: String) -> Case {
    assert!(template.contains("{}"), "{id}: template without {{}}");
    Case { id, text: template.replacen("{}", &secret, 1), secret }
}

pub(super) fn n(id: &'static str, text: impl Into<String>) -> (&'static str, String) {
    (id, text.into())
}

pub(super) fn pem_lines(seed: &str, lines: usize, sep: &str) -> String {
    (0..lines).map(|i| f(&format!("{seed}{i}"), B64, 64)).collect::<Vec<_>>().join(sep)
}

fn positives() -> Vec<Case> {
    let mut all = legacy_positives();
    for family in [
        cloud::cases::positives,
        devtools::cases::positives,
        ai::cases::positives,
        business::cases::positives,
        structured::cases::positives,
        generic::cases::positives,
        personal::cases::positives,
    ] {
        all.extend(family());
    }
    all
}

/// The tables written before the catalog was split by family.
fn legacy_positives() -> Vec<Case> {
    let az_tail = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";
    let generic_value = |seed: &str| format!("{}{}", f(seed, LETTERS, 1), f(seed, MIXED, 17));
    let env_value = |seed: &str| format!("{}7{}", f(seed, LETTERS, 1), f(seed, ALNUM, 22));
    let rsa =
        format!("-----BEGIN RSA PRIVATE KEY-----\nMIIEow{}\n-----END RSA PRIVATE KEY-----", pem_lines("rsa", 12, "\n"));
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
    let ec =
        format!("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE{}\n-----END EC PRIVATE KEY-----", pem_lines("ec", 3, "\n"));
    let pgp = format!(
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\nComment: release signing key (ci)\n\nlQVYBG{}\n={}\n-----END PGP PRIVATE KEY BLOCK-----",
        pem_lines("pgp", 20, "\n"),
        f("pgp-crc", B64, 4)
    );
    let visa = with_luhn(&format!("4{}", f("visa", DIGITS, 14)));
    let amex = with_luhn(&format!("37{}", f("amex", DIGITS, 12)));
    let mastercard = with_luhn(&format!("53{}", f("mc", DIGITS, 13)));
    let de_iban = iban_for("DE", &f("de-iban", DIGITS, 18));
    let gb_iban =
        iban_for("GB", &format!("{}{}", f("gb-bank", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4), f("gb-acct", DIGITS, 14)));
    vec![
        // Cloud.
        p("aws-access-key", "aws_access_key_id = {}", format!("AKIA{}", f("akia", UPPER, 16))),
        p("aws-access-key", r#"{"AccessKeyId": "{}", "Expiration": "2031-01-01T00:00:00Z"}"#, format!("ASIA{}", f("asia", UPPER, 16))),
        p("aws-secret-access-key", "[default]\naws_secret_access_key = {}\nregion = eu-west-1", f("aws-secret", B64, 40)),
        p("aws-secret-access-key", r#"  "SecretAccessKey": "{}","#, f("aws-secret-json", B64, 40)),
        p("aws-session-token", "aws_session_token = {}", format!("IQoJb3JpZ2luX2Vj{}", f("sts1", B64, 320))),
        p("aws-session-token", "AWS_SESSION_TOKEN={}", format!("FwoGZXIvYXdz{}", f("sts2", B64, 200))),
        p("gcp-api-key", r#"const firebaseConfig = { apiKey: "{}", authDomain: "acme.firebaseapp.com" };"#, format!("AIza{}", f("aiza", URL_SAFE, 35))),
        p("gcp-oauth-client-secret", r#"{"installed": {"client_id": "88-x.apps.googleusercontent.com", "client_secret": "{}"}}"#, format!("GOCSPX-{}", f("gocspx", URL_SAFE, 28))),
        p("gcp-oauth-access-token", "Authorization: Bearer {}", format!("ya29.{}", f("ya29", URL_SAFE, 150))),
        p("azure-storage-account-key", "DefaultEndpointsProtocol=https;AccountName=acmedata;AccountKey={};EndpointSuffix=core.windows.net", format!("{}==", f("azure-storage", B64, 86))),
        p("azure-shared-access-key", "Endpoint=sb://acme-bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={}", format!("{}=", f("azure-sb", B64, 43))),
        p("azure-sas-signature", "https://acmedata.blob.core.windows.net/backups/db.bak?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&spr=https&sig={}", format!("{}%2B{}%2F{}%3D", f("sas1", ALNUM, 20), f("sas2", ALNUM, 20), f("sas3", ALNUM, 1))),
        p("azure-sas-signature", r#""sasToken": "sp=r&st=2030-01-01&sv=2022-11-02&sr=c&sig={}""#, format!("{}=", f("sas-plain", B64, 43))),
        p("azure-ad-client-secret", &format!("AZURE_CLIENT_SECRET={}7Q~{{}}", f("entra", ALNUM, 3)), f("entra-tail", az_tail, 34)),
        // Source hosting, CI, registries.
        p("github-pat", "export GITHUB_TOKEN={}", format!("ghp_{}", f("ghp", ALNUM, 36))),
        p("github-fine-grained-pat", r#"{"token": "{}"}"#, format!("github_pat_{}_{}", f("ghfg1", ALNUM, 22), f("ghfg2", ALNUM, 59))),
        p("github-app-token", "git clone https://x-access-token:{}@github.com/acme/infra.git", format!("ghs_{}", f("ghs", ALNUM, 36))),
        p("github-app-token", "GH_TOKEN: {}", format!("ghu_{}", f("ghu", ALNUM, 36))),
        p("github-oauth-token", "github.com:\n    oauth_token: {}\n    user: octo", format!("gho_{}", f("gho", ALNUM, 36))),
        p("github-oauth-token", "refresh_token={}", format!("ghr_{}", f("ghr", ALNUM, 76))),
        p("gitlab-pat", "PRIVATE-TOKEN: {}", format!("glpat-{}", f("glpat", URL_SAFE, 20))),
        p("gitlab-pipeline-trigger-token", "curl -X POST -F token={} -F ref=main https://gitlab.acme.io/api/v4/projects/42/trigger/pipeline", format!("glptt-{}", f("glptt", HEX, 40))),
        p("gitlab-deploy-token", "docker login -u gitlab+deploy-token-7 -p {} registry.gitlab.com", format!("gldt-{}", f("gldt", URL_SAFE, 20))),
        p("gitlab-runner-token", "[[runners]]\n  token = \"{}\"", format!("glrt-{}", f("glrt", URL_SAFE, 20))),
        p("gitlab-runner-token", "gitlab-runner register --registration-token {}", format!("GR1348941{}", f("gr", URL_SAFE, 20))),
        p("bitbucket-app-password", "BITBUCKET_APP_PASSWORD={}", format!("ATBB{}", f("atbb", ALNUM, 32))),
        p("atlassian-api-token", "JIRA_API_TOKEN={}", format!("ATATT3xFfGF0{}={}", f("atatt", URL_SAFE, 180), f("atatt-crc", HEX_UPPER, 8))),
        p("circleci-token", "CIRCLECI_TOKEN={}", format!("CCIPAT_{}_{}", f("ccipat", ALNUM, 22), f("ccipat2", HEX, 40))),
        p("circleci-token", "Circle-Token: {}", format!("CCIPRJ_{}_{}", f("cciprj", ALNUM, 22), f("cciprj2", HEX, 40))),
        p("npm-token", "//registry.npmjs.org/:_authToken={}", format!("npm_{}", f("npm", ALNUM, 36))),
        p("pypi-token", "[pypi]\nusername = __token__\npassword = {}", format!("pypi-AgEIcHlwaS5vcmc{}", f("pypi", URL_SAFE, 150))),
        p("pypi-token", "TWINE_PASSWORD={}", format!("pypi-AgENdGVzdC5weXBpLm9yZw{}", f("testpypi", URL_SAFE, 120))),
        p("docker-hub-token", "echo {} | docker login -u acme --password-stdin", format!("dckr_pat_{}", f("dckr", URL_SAFE, 27))),
        // LLM providers.
        p("anthropic-api-key", "ANTHROPIC_API_KEY={}", format!("sk-ant-api03-{}AA", f("ant", URL_SAFE, 93))),
        p("anthropic-admin-key", "x-api-key: {}", format!("sk-ant-admin01-{}AA", f("ant-admin", URL_SAFE, 93))),
        p("anthropic-oauth-token", r#"{"claudeAiOauth": {"accessToken": "{}""#, format!("sk-ant-oat01-{}AA", f("oat", URL_SAFE, 93))),
        p("anthropic-oauth-token", r#""refreshToken": "{}","#, format!("sk-ant-ort01-{}AA", f("ort", URL_SAFE, 93))),
        p("openai-api-key", "OPENAI_API_KEY={}", format!("sk-proj-{}T3BlbkFJ{}", f("oa-proj1", URL_SAFE, 74), f("oa-proj2", URL_SAFE, 74))),
        p("openai-api-key", "openai.api_key = '{}'", format!("sk-{}T3BlbkFJ{}", f("oa-legacy1", ALNUM, 20), f("oa-legacy2", ALNUM, 20))),
        p("openai-api-key", "--api-key {}", format!("sk-svcacct-{}", f("oa-svc", URL_SAFE, 150))),
        p("openai-api-key", "admin key: {}", format!("sk-admin-{}", f("oa-admin", URL_SAFE, 120))),
        p("huggingface-token", "HF_TOKEN={}", format!("hf_{}", f("hf", LETTERS, 34))),
        p("groq-api-key", "GROQ_API_KEY={}", format!("gsk_{}", f("gsk", ALNUM, 52))),
        p("replicate-api-token", "export REPLICATE_API_TOKEN={}", format!("r8_{}", f("r8", ALNUM, 37))),
        p("perplexity-api-key", r#"client = OpenAI(api_key="{}", base_url="https://api.perplexity.ai")"#, format!("pplx-{}", f("pplx", ALNUM, 48))),
        p("xai-api-key", "XAI_API_KEY={}", format!("xai-{}", f("xai", ALNUM, 80))),
        p("cohere-api-key", "COHERE_API_KEY=\"{}\"", f("cohere", ALNUM, 40)),
        // Chat and SaaS.
        p("slack-bot-token", "SLACK_BOT_TOKEN={}", format!("xoxb-{}-{}-{}", f("xoxb1", DIGITS, 12), f("xoxb2", DIGITS, 13), f("xoxb3", ALNUM, 24))),
        p("slack-user-token", "token: {}", format!("xoxp-{}-{}-{}-{}", f("xoxp1", DIGITS, 12), f("xoxp2", DIGITS, 12), f("xoxp3", DIGITS, 13), f("xoxp4", HEX, 32))),
        p("slack-token", "SLACK_TOKEN={}", format!("xoxa-2-{}-{}-{}", f("xoxa1", DIGITS, 12), f("xoxa2", DIGITS, 13), f("xoxa3", ALNUM, 32))),
        p("slack-token", "refresh: {}", format!("xoxr-{}-{}", f("xoxr1", DIGITS, 12), f("xoxr2", ALNUM, 40))),
        p("slack-token", "config token {}", format!("xoxe.xoxp-1-{}", f("xoxe1", ALNUM, 150))),
        p("slack-token", "config refresh {}", format!("xoxe-1-{}", f("xoxe2", ALNUM, 140))),
        p("slack-webhook-url", "SLACK_WEBHOOK_URL=https://{}", format!("hooks.slack.com/services/T{}/B{}/{}", f("slk-t", UPPER, 10), f("slk-b", UPPER, 10), f("slk-s", ALNUM, 24))),
        p("discord-webhook-url", r#"{"webhook": "https://{}"}"#, format!("discord.com/api/webhooks/{}/{}", f("dw1", DIGITS, 19), f("dw2", URL_SAFE, 68))),
        p("discord-webhook-url", "https://{}", format!("discordapp.com/api/webhooks/{}/{}", f("dwa1", DIGITS, 18), f("dwa2", URL_SAFE, 68))),
        p("discord-bot-token", "DISCORD_TOKEN={}", format!("MT{}.{}.{}", f("dbt1", ALNUM, 24), f("dbt2", URL_SAFE, 6), f("dbt3", URL_SAFE, 38))),
        p("telegram-bot-token", "TELEGRAM_BOT_TOKEN={}", format!("{}:AA{}", f("tg1", DIGITS, 10), f("tg2", URL_SAFE, 33))),
        p("telegram-bot-token", "curl https://api.telegram.org/bot{}/getMe", format!("{}:AA{}", f("tg3", DIGITS, 9), f("tg4", URL_SAFE, 33))),
        p("stripe-api-key", "STRIPE_SECRET_KEY={}", format!("sk_live_{}", f("sk-live", ALNUM, 99))),
        p("stripe-api-key", "Stripe.api_key = \"{}\"", format!("sk_test_{}", f("sk-test", ALNUM, 24))),
        p("stripe-api-key", "restricted: {}", format!("rk_live_{}", f("rk-live", ALNUM, 99))),
        p("stripe-api-key", "restricted test: {}", format!("rk_test_{}", f("rk-test", ALNUM, 24))),
        p("stripe-webhook-secret", "STRIPE_WEBHOOK_SECRET={}", format!("whsec_{}", f("whsec", ALNUM, 32))),
        p("twilio-api-key", "TWILIO_API_KEY={}", format!("SK{}", f("twsk", HEX, 32))),
        p("twilio-auth-token", "TWILIO_AUTH_TOKEN={}", f("twauth", HEX, 32)),
        p("sendgrid-api-key", "SENDGRID_API_KEY={}", format!("SG.{}.{}", f("sg1", URL_SAFE, 22), f("sg2", URL_SAFE, 43))),
        p("mailgun-api-key", "MAILGUN_API_KEY={}", format!("key-{}", f("mailgun", HEX, 32))),
        p("mailchimp-api-key", r#"{"mailchimp_api_key": "{}"}"#, format!("{}-us21", f("mailchimp", HEX, 32))),
        p("vault-token", "export VAULT_TOKEN={}", format!("hvs.{}", f("hvs", URL_SAFE, 90))),
        p("vault-token", "batch token {}", format!("hvb.{}", f("hvb", URL_SAFE, 130))),
        p("vault-token", "recovery token {}", format!("hvr.{}", f("hvr", URL_SAFE, 24))),
        p(
            "terraform-cloud-token",
            &format!(r#"{{"credentials": {{"app.terraform.io": {{"token": "{}.atlasv1.{{}}"}}}}}}"#, f("tfc1", ALNUM, 14)),
            f("tfc2", URL_SAFE, 67),
        ),
        p("shopify-token", "X-Shopify-Access-Token: {}", format!("shpat_{}", f("shpat", HEX, 32))),
        p("shopify-token", "SHOPIFY_TOKEN={}", format!("shpca_{}", f("shpca", HEX, 32))),
        p("shopify-token", "SHOPIFY_PRIVATE_APP={}", format!("shppa_{}", f("shppa", HEX, 32))),
        p("shopify-token", "SHOPIFY_SHARED={}", format!("shpss_{}", f("shpss", HEX, 32))),
        p("digitalocean-token", "DIGITALOCEAN_TOKEN={}", format!("dop_v1_{}", f("dop", HEX, 64))),
        p("digitalocean-token", "oauth {}", format!("doo_v1_{}", f("doo", HEX, 64))),
        p("digitalocean-token", "refresh {}", format!("dor_v1_{}", f("dor", HEX, 64))),
        p("linear-api-key", "LINEAR_API_KEY={}", format!("lin_api_{}", f("linear", ALNUM, 40))),
        p("notion-token", "NOTION_TOKEN={}", format!("secret_{}", f("notion", ALNUM, 43))),
        p("notion-token", "notion: {}", format!("ntn_{}{}", f("ntn1", DIGITS, 11), f("ntn2", ALNUM, 35))),
        p("postman-api-key", "POSTMAN_API_KEY={}", format!("PMAK-{}-{}", f("pmak1", HEX, 24), f("pmak2", HEX, 34))),
        p("grafana-token", "GRAFANA_CLOUD_TOKEN={}", format!("glc_eyJ{}", f("glc", B64, 120))),
        p("grafana-token", "Authorization: Bearer {}", format!("glsa_{}_{}", f("glsa1", ALNUM, 32), f("glsa2", HEX, 8))),
        p("newrelic-api-key", "NEW_RELIC_API_KEY={}", format!("NRAK-{}", f("nrak", UPPER, 27))),
        p("sentry-token", "SENTRY_AUTH_TOKEN={}", format!("sntrys_eyJ{}", f("sntrys", B64, 150))),
        p("sentry-token", "sentry user token {}", format!("sntryu_{}", f("sntryu", HEX, 64))),
        p("doppler-token", "DOPPLER_TOKEN={}", format!("dp.pt.{}", f("dppt", ALNUM, 43))),
        p("doppler-token", "service token {}", format!("dp.st.dev.{}", f("dpst", ALNUM, 40))),
        p("doppler-token", "service account {}", format!("dp.sa.{}", f("dpsa", ALNUM, 43))),
        p("doppler-token", "cli {}", format!("dp.ct.{}", f("dpct", ALNUM, 43))),
        p("pulumi-token", "PULUMI_ACCESS_TOKEN={}", format!("pul-{}", f("pulumi", HEX, 40))),
        p("flyio-token", "FLY_API_TOKEN=\"FlyV1 {}\"", format!("fm2_{}", f("fm2", B64, 200))),
        p("flyio-token", "fly token {}", format!("fo1_{}", f("fo1", URL_SAFE, 43))),
        p("heroku-api-key", "HEROKU_API_KEY={}", uuid("heroku")),
        p("heroku-api-key", "token: {}", format!("HRKU-{}", f("hrku", URL_SAFE, 60))),
        p("square-access-token", "SQUARE_ACCESS_TOKEN={}", format!("EAAA{}", f("eaaa", URL_SAFE, 60))),
        p("square-access-token", "square: {}", format!("sq0atp-{}", f("sq0atp", URL_SAFE, 22))),
        p("shippo-api-token", "SHIPPO_API_KEY={}", format!("shippo_live_{}", f("shippo", HEX, 40))),
        p("dynatrace-api-token", "DT_API_TOKEN={}", format!("dt0c01.{}.{}", f("dt1", UPPER, 24), f("dt2", UPPER, 64))),
        p("databricks-token", "DATABRICKS_TOKEN={}", format!("dapi{}", f("dapi", HEX, 32))),
        p("okta-api-token", "OKTA_API_TOKEN={}", format!("00{}", f("okta", URL_SAFE, 40))),
        p("okta-api-token", "Authorization: SSWS {}", format!("00{}", f("ssws", URL_SAFE, 40))),
        p("age-secret-key", "# public key: age1qqqq\n{}", format!("AGE-SECRET-KEY-1{}", f("age", BECH32, 58))),
        // Keys and structured credentials.
        p("private-key", "key.pem:\n{}\n", rsa),
        p("private-key", "{}\n", rsa_encrypted),
        p("private-key", r#"{"type": "service_account", "private_key": "{}\n", "client_id": "1"}"#, pkcs8_json),
        p("private-key", "cat ~/.ssh/id_ed25519\r\n{}\r\n", openssh),
        p("private-key", "  tls.key: |\n{}", ec),
        p("pgp-private-key", "exported:\n{}\n", pgp),
        p("jwt", r#"{"id_token": "{}"}"#, format!("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}", f("jwt1", URL_SAFE, 120), f("jwt2", URL_SAFE, 86))),
        p("jwt", "unsigned: {} end", format!("eyJhbGciOiJub25lIn0.eyJ{}.", f("jwt3", URL_SAFE, 40))),
        p("url-password", "DATABASE_URL=postgres://app_user:{}@db.internal:5432/app", f("pg", MIXED, 18)),
        p("url-password", "MONGO_URI=\"mongodb+srv://svc:{}@cluster0.mongodb.net/prod\"", f("mongo", ALNUM, 20)),
        p("url-password", "REDIS_URL=redis://:{}@cache.internal:6379/0", f("redis", ALNUM, 24)),
        p("url-password", "git remote add origin https://deploy:{}@git.acme.io/infra.git", f("https", ALNUM, 16)),
        p("url-password", "jdbc:mysql://root:{}@10.0.0.5:3306/shop", f("mysql", ALNUM, 12)),
        p("http-authorization", r#"curl -H "Authorization: Bearer {}" https://api.acme.io/v1/jobs"#, f("bearer", URL_SAFE, 40)),
        p("http-authorization", "authorization: Basic {}", format!("{}==", f("basic", B64, 22))),
        // Generic assignments, one per trigger literal and form.
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
        // Personal data.
        p("email", "Contact: {} for access", "jane.doe@acmecorp.io".to_string()),
        p("email", r#"{"email": "{}"}"#, "r.okafor+billing@mail.northwind-logistics.co.uk".to_string()),
        p("phone", "Call {} today", "(415) 555-0132".to_string()),
        p("phone", "tel: {}.", "+44 20 7946 0958".to_string()),
        p("phone", "phone={}", "415-555-0132".to_string()),
        p("phone", r#"{"phone": "{}"}"#, "+14155550132".to_string()),
        p("phone", "support: {}", "1-800-555-0199".to_string()),
        p("payment-card", "card: {} exp 12/29", grouped(&visa, 4)),
        p("payment-card", "amex {}", format!("{} {} {}", &amex[..4], &amex[4..10], &amex[10..])),
        p("payment-card", r#"{"pan": "{}"}"#, mastercard),
        p("us-ssn", "SSN: {}", "536-22-8190".to_string()),
        p("us-ssn", "ssn {} on file", "287 65 4310".to_string()),
        p("iban", "IBAN: {}", grouped(&de_iban, 4)),
        p("iban", "pay to {}.", gb_iban),
    ]
}

fn negatives() -> Vec<(&'static str, String)> {
    let mut all = legacy_negatives();
    for family in [
        cloud::cases::negatives,
        devtools::cases::negatives,
        ai::cases::negatives,
        business::cases::negatives,
        structured::cases::negatives,
        generic::cases::negatives,
        personal::cases::negatives,
    ] {
        all.extend(family());
    }
    all
}

/// The near misses written before the catalog was split by family.
fn legacy_negatives() -> Vec<(&'static str, String)> {
    vec![
        n("aws-access-key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
        n(
            "aws-access-key",
            format!("aws_access_key_id = akia{}", f("akia-lower", "abcdefghijklmnopqrstuvwxyz0123456789", 16)),
        ),
        n("aws-access-key", format!("id AKIA{} and XAKIA{}", f("akia15", UPPER, 15), f("akia-x", UPPER, 16))),
        n("aws-secret-access-key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        n("aws-secret-access-key", format!("aws_secret_access_key = {}", f("aws39", B64, 39))),
        n("aws-session-token", format!("IQoJb3JpZ2luX2Vj{}", f("sts-short", B64, 40))),
        n("gcp-api-key", format!("AIza{} AIza{}", f("aiza34", URL_SAFE, 34), f("aiza36", ALNUM, 36))),
        n("gcp-oauth-client-secret", format!("GOCSPX-{}", f("gocspx20", URL_SAFE, 20))),
        n("gcp-oauth-access-token", "ya29.short"),
        n("azure-storage-account-key", format!("AccountKey={}==", f("azure40", B64, 40))),
        n("azure-shared-access-key", "SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=;"),
        n("azure-sas-signature", format!("?sv=2022-11-02&sig={}", f("sas-short", ALNUM, 20))),
        n("azure-ad-client-secret", format!("{}7Q~{} and Q~ alone", f("entra-s", ALNUM, 3), f("entra-s2", ALNUM, 20))),
        n("github-pat", "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        n(
            "github-pat",
            format!("GHP_{} ghp_{} ghp_{}", f("ghp-up", ALNUM, 36), f("ghp35", ALNUM, 35), f("ghp37", ALNUM, 37)),
        ),
        n("github-fine-grained-pat", format!("github_pat_{}_{}", f("ghfg-s", ALNUM, 22), f("ghfg-s2", ALNUM, 40))),
        n("github-app-token", format!("ghs_{}", f("ghs30", ALNUM, 30))),
        n("github-oauth-token", format!("gho_{}", f("gho20", ALNUM, 20))),
        n("gitlab-pat", "PRIVATE-TOKEN: glpat-xxxxxxxxxxxxxxxxxxxx and glpat-short"),
        n(
            "gitlab-pipeline-trigger-token",
            format!("glptt-{} glptt-{}", f("glptt39", HEX, 39), f("glptt-up", HEX_UPPER, 40)),
        ),
        n("gitlab-deploy-token", "gldt-short"),
        n("gitlab-runner-token", format!("GR1348941{}", f("gr10", ALNUM, 10))),
        n("bitbucket-app-password", format!("ATBB{}", f("atbb20", ALNUM, 20))),
        n("atlassian-api-token", format!("ATATT3{}", f("atatt50", URL_SAFE, 50))),
        n("circleci-token", format!("CCIPAT_{}_{}", f("cci-s", ALNUM, 22), f("cci-s2", HEX, 20))),
        n("npm-token", format!("npm_{} npm_install_packages", f("npm35", ALNUM, 35))),
        n(
            "pypi-token",
            format!("pypi-AgEIcHlwaS5vcmc{} pypi-{}", f("pypi10", URL_SAFE, 10), f("pypi-other", ALNUM, 80)),
        ),
        n("docker-hub-token", "dckr_pat_short"),
        n("anthropic-api-key", "ANTHROPIC_API_KEY=sk-ant-api03-xxxx"),
        n("anthropic-api-key", format!("sk-ant-api03-{}AB", f("ant-ab", URL_SAFE, 93))),
        n("anthropic-admin-key", format!("sk-ant-admin01-{}", f("admin50", URL_SAFE, 50))),
        n("anthropic-oauth-token", "sk-ant-oat01-short"),
        n("openai-api-key", format!("sk-{} sk-proj-short task-{}", f("sk48", ALNUM, 48), f("task", ALNUM, 48))),
        n("huggingface-token", format!("hf_{} hf_{}", f("hf33", LETTERS, 33), f("hf-digits", "0123456789", 34))),
        n("groq-api-key", format!("gsk_{}", f("gsk51", ALNUM, 51))),
        n("replicate-api-token", format!("r8_{}", f("r830", ALNUM, 30))),
        n("perplexity-api-key", format!("pplx-{}", f("pplx40", ALNUM, 40))),
        n("xai-api-key", format!("xai-{}", f("xai60", ALNUM, 60))),
        n(
            "cohere-api-key",
            format!("cohere_model = \"{}\" COHERE_API_KEY={}", f("cohere-model", ALNUM, 40), f("cohere39", ALNUM, 39)),
        ),
        n("slack-bot-token", "xoxb-123-456-abc"),
        n(
            "slack-user-token",
            format!(
                "xoxp-{}-{}-{}-{}",
                f("xp1", DIGITS, 12),
                f("xp2", DIGITS, 12),
                f("xp3", DIGITS, 13),
                f("xp4", HEX, 27)
            ),
        ),
        n("slack-token", "xoxe-1-short xoxa-token"),
        n("slack-webhook-url", "https://hooks.slack.com/services/T000/B000/XXXX"),
        n("discord-webhook-url", "https://discord.com/api/webhooks/123/abc"),
        n("discord-bot-token", format!("MT{}.{} and MTime.now()", f("dbt-n1", ALNUM, 24), f("dbt-n2", URL_SAFE, 6))),
        n(
            "telegram-bot-token",
            format!(
                "{}:AA{} {}:AA{}",
                f("tg-n1", DIGITS, 12),
                f("tg-n2", URL_SAFE, 33),
                f("tg-n3", DIGITS, 10),
                f("tg-n4", URL_SAFE, 20)
            ),
        ),
        n("stripe-api-key", format!("pk_live_{} sk_live_short", f("pk", ALNUM, 24))),
        n("stripe-webhook-secret", "whsec_short"),
        n("twilio-api-key", format!("SK{} ASK{}", f("sk31", HEX, 31), f("ask", HEX, 32))),
        n("twilio-auth-token", format!("TWILIO_ACCOUNT_SID=AC{}", f("twsid", HEX, 32))),
        n("sendgrid-api-key", "SG.short.short"),
        n("mailgun-api-key", format!("key-{}", f("mg31", HEX, 31))),
        n("mailchimp-api-key", format!("MAILCHIMP_API_KEY={}-us21", f("mc31", HEX, 31))),
        n("vault-token", "hvs.short"),
        n("terraform-cloud-token", format!("\"{}.atlasv1.{}\"", f("tfc13", ALNUM, 13), f("tfc-n", URL_SAFE, 67))),
        n("shopify-token", format!("shpat_{}", f("shpat31", HEX, 31))),
        n("digitalocean-token", format!("dop_v1_{}", f("dop63", HEX, 63))),
        n("linear-api-key", format!("lin_api_{}", f("lin39", ALNUM, 39))),
        n("notion-token", format!("secret_{} client_secret_{}", f("notion20", ALNUM, 20), f("notion-cs", ALNUM, 43))),
        n("postman-api-key", format!("PMAK-{}-{}", f("pm1", HEX, 24), f("pm2", HEX, 20))),
        n("grafana-token", format!("glsa_{}_{}", f("glsa-n1", ALNUM, 32), f("glsa-n2", HEX, 7))),
        n("newrelic-api-key", format!("NRAK-{}", f("nrak26", UPPER, 26))),
        n("sentry-token", format!("sntryu_{}", f("sntryu63", HEX, 63))),
        n("doppler-token", format!("dp.pt.{}", f("dppt30", ALNUM, 30))),
        n("pulumi-token", format!("pul-{}", f("pul39", HEX, 39))),
        n("flyio-token", "fo1_short"),
        n("heroku-api-key", format!("HEROKU_APP_ID={}", uuid("heroku-app"))),
        n("square-access-token", "sq0atp-short"),
        n("shippo-api-token", format!("shippo_live_{}", f("shippo39", HEX, 39))),
        n("dynatrace-api-token", format!("dt0c01.{}.{}", f("dt-n1", HEX, 24), f("dt-n2", HEX, 64))),
        n("databricks-token", format!("rapidapi{} dapi{}", f("rapid", HEX, 32), f("dapi31", HEX, 31))),
        n(
            "okta-api-token",
            format!("OKTA_ORG_URL=https://acme.okta.com OKTA_API_TOKEN=01{}", f("okta01", URL_SAFE, 40)),
        ),
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
        n("email", "    @property\n    def name(self):"),
        n("email", "import type { Node } from \"@types/node\"; npm i lodash@4.17.21"),
        n("email", "git clone git@github.com:acme/infra.git; ssh://git@gitlab.acme.io/x.git"),
        n("email", "user@example.com, ops@mail.example.org, admin@localhost, qa@staging.test"),
        n("email", "icon@2x.png Co-Authored-By: Claude <noreply@anthropic.com>"),
        n("phone", "released 2024-11-29 at 10:30:00, version 1.2.3"),
        n("phone", "host 10.0.0.1 and 192.168.100.200, ts 1700000000"),
        n("phone", "pages 1200-1350, id 123-456-7890, +1 2"),
        n("payment-card", {
            let bad = with_luhn(&format!("4{}", f("visa-bad", DIGITS, 14)));
            let last = (bad.as_bytes()[15] - b'0' + 1) % 10;
            format!("card {}{last}", &bad[..15])
        }),
        n(
            "payment-card",
            format!("id 99{} and ts 1700000000000", with_luhn(&format!("4{}", f("visa-emb", DIGITS, 14)))),
        ),
        n("payment-card", format!("const MAGIC: u64 = {};", with_luhn(&format!("52{}", f("u64", DIGITS, 16))))),
        n("us-ssn", "SSN 666-12-3456, 900-12-3456, 536-00-8190, 536-22-0000"),
        n("us-ssn", "id 536228190, part 536-22-81901"),
        n("iban", {
            let good = iban_for("DE", &f("de-bad", DIGITS, 18));
            let bad_check = (good[2..4].parse::<u32>().unwrap() + 1) % 100;
            format!("IBAN: DE{bad_check:02}{} iban: {}", &good[4..], good.to_ascii_lowercase())
        }),
    ]
}

fn engine() -> Engine {
    Engine::new(builtin()).unwrap_or_else(|errors| panic!("catalog does not compile: {errors:?}"))
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

#[test]
fn catalog_is_well_formed() {
    let specs = builtin();
    let mut ids = BTreeSet::new();
    for spec in &specs {
        assert!(is_kebab(&spec.id), "{}: not kebab-case", spec.id);
        assert!(ids.insert(spec.id.clone()), "{}: duplicate id", spec.id);
        assert!(!spec.description.trim().is_empty() && !spec.description.contains('\n'), "{}: description", spec.id);
        assert!(regex_automata::meta::Regex::new(&spec.pattern).is_ok(), "{}: pattern does not compile", spec.id);
        assert!(spec.max_len > 0, "{}", spec.id);
        let expected_priority = match (spec.category, spec.id.as_str()) {
            (Category::Pii, _) => 20,
            (
                _,
                "url-password"
                | "http-authorization"
                | "session-cookie"
                | "netrc-password"
                | "registry-auth"
                | "xml-password"
                | "cli-password"
                | "jdbc-oracle-password",
            ) => 25,
            (_, id) if id.starts_with("generic-") => 10,
            _ => 30,
        };
        assert_eq!(spec.priority, expected_priority, "{}", spec.id);
        match &spec.trigger {
            Trigger::Prefix(literals) | Trigger::Infix { literals, .. } => {
                assert!(!literals.is_empty(), "{}", spec.id);
                assert!(literals.iter().all(|l| !l.is_empty() && l.is_ascii()), "{}", spec.id);
            }
            Trigger::Digits { min_digits, .. } => assert!(*min_digits > 0, "{}", spec.id),
        }
    }
    let credentials = specs.iter().filter(|s| s.category == Category::Credential).count();
    let pii = specs.len() - credentials;
    assert!(credentials >= 60, "{credentials} credential detectors");
    assert!(specs.len() >= 80, "{} detectors", specs.len());
    assert!(pii >= 5, "{pii} personal-data detectors");
    // The engine compiles every pattern, including the lazy DFA used while streaming.
    assert_eq!(engine().specs().len(), specs.len());
}

#[test]
fn every_detector_has_a_positive_and_a_negative_case() {
    let positive: BTreeSet<&str> = positives().iter().map(|c| c.id).collect();
    let negative: BTreeSet<&str> = negatives().iter().map(|(id, _)| *id).collect();
    for spec in builtin() {
        assert!(positive.contains(spec.id.as_str()), "{}: no true positive", spec.id);
        assert!(negative.contains(spec.id.as_str()), "{}: no near miss", spec.id);
    }
    let ids: BTreeSet<String> = builtin().into_iter().map(|s| s.id).collect();
    for id in positive.iter().chain(&negative) {
        assert!(ids.contains(*id), "table names unknown detector {id}");
    }
}

#[test]
fn true_positives_are_found_with_the_exact_span() {
    let engine = engine();
    let mut failures = Vec::new();
    for case in positives() {
        let findings = ids(&engine, &case.text);
        if !findings.contains(&(case.id.to_string(), case.secret.clone())) {
            failures.push(format!("{}: expected {:?} in {:?}, found {findings:?}", case.id, case.secret, case.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn near_misses_are_not_found() {
    let engine = engine();
    let mut failures = Vec::new();
    for (id, text) in negatives() {
        let findings = ids(&engine, &text);
        if findings.iter().any(|(found, _)| found == id) {
            failures.push(format!("{id}: false positive in {text:?}: {findings:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each `Prefix` pattern starts with its literals: every unanchored match in the positive
/// texts begins at a literal, and every literal starts a match with the expected span.
#[test]
fn prefix_literals_agree_with_patterns() {
    let specs = builtin();
    let mut covered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for case in positives() {
        let spec = specs.iter().find(|s| s.id == case.id).unwrap();
        let Trigger::Prefix(literals) = &spec.trigger else { continue };
        let regex = regex_automata::meta::Regex::new(&spec.pattern).unwrap();
        let lower = case.text.to_ascii_lowercase();
        let starts_literal =
            |at: usize| literals.iter().find(|l| lower[at..].starts_with(&l.to_ascii_lowercase())).cloned();
        for m in regex.find_iter(&case.text) {
            assert!(starts_literal(m.start()).is_some(), "{}: match at {} of {:?}", spec.id, m.start(), case.text);
        }
        let expected_start = case.text.find(&case.secret).unwrap();
        let expected = (expected_start, expected_start + case.secret.len());
        let mut caps = regex.create_captures();
        for at in 0..case.text.len() {
            let Some(literal) = starts_literal(at) else { continue };
            let input = regex_automata::Input::new(&case.text).range(at..).anchored(regex_automata::Anchored::Yes);
            regex.search_captures(&input, &mut caps);
            let span = caps.get_group_by_name("secret").or_else(|| caps.get_match().map(|m| m.span()));
            if span.is_some_and(|s| (s.start, s.end) == expected) {
                covered.entry(spec.id.clone()).or_default().insert(literal);
            }
        }
    }
    for spec in &specs {
        let Trigger::Prefix(literals) = &spec.trigger else { continue };
        for literal in literals {
            assert!(
                covered.get(&spec.id).is_some_and(|c| c.contains(literal)),
                "{}: no positive case starts at literal {literal:?}",
                spec.id
            );
        }
    }
}

/// Streaming: at every split point of a true positive, the settled text never holds part
/// of the secret unmasked, and what is settled is what the complete text gives.
#[test]
fn streamed_positives_never_settle_a_partial_secret() {
    use crate::core::dlp::engine::{Action, Scratch};
    let engine = engine();
    let active = vec![Action::Mask; engine.specs().len()];
    let mut failures = Vec::new();
    for case in positives() {
        let start = case.text.find(&case.secret).unwrap();
        let end = start + case.secret.len();
        // A visible trigger literal (`ghp_`) may be delivered before the rest is decided.
        let spec = engine.spec(engine.index_of(case.id).unwrap()).unwrap();
        let revealed = match &spec.trigger {
            Trigger::Prefix(literals) if spec.reveal_trigger => literals
                .iter()
                .filter(|l| case.secret.get(..l.len()).is_some_and(|p| p.eq_ignore_ascii_case(l)))
                .map(String::len)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        let complete = engine.find_all(&case.text);
        let step = (case.text.len() / 150).max(1);
        let mut scratch = Scratch::default();
        for cut in (0..case.text.len()).step_by(step).filter(|&c| case.text.is_char_boundary(c)) {
            let scan = engine.scan(&case.text[..cut], 0, false, &active, &mut scratch);
            let masked = scan.findings.iter().any(|x| x.start == start && x.end == end);
            if scan.settled > start + revealed && !masked {
                failures.push(format!("{}: cut {cut} settles {} of {:?}", case.id, scan.settled, case.text));
                break;
            }
            if let Some(x) = scan.findings.iter().find(|x| !complete.contains(x)) {
                failures.push(format!("{}: cut {cut} finds {x:?} that the complete text does not", case.id));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn specific_detectors_win_over_generic_and_personal_ones() {
    let engine = engine();
    let ghp = format!("ghp_{}", f("overlap-ghp", ALNUM, 36));
    assert_eq!(ids(&engine, &format!("GITHUB_TOKEN={ghp}")), vec![("github-pat".into(), ghp.clone())]);
    assert_eq!(ids(&engine, &format!("token = \"{ghp}\"")), vec![("github-pat".into(), ghp)]);
    // The password of a URL is masked, not the "pass@host" email it resembles.
    let text = "https://deploy:Zq81mVx0pL@git.acme.io/infra.git";
    assert_eq!(ids(&engine, text), vec![("url-password".into(), "Zq81mVx0pL".into())]);
    // A GCP service-account file: the JSON-escaped key is one private-key finding; the key id
    // is not a secret name; the service account's address is an email.
    let key = format!("-----BEGIN PRIVATE KEY-----\\nMIIEvQ{}\\n-----END PRIVATE KEY-----", pem_lines("sa", 6, "\\n"));
    let json = format!(
        r#"{{"type": "service_account", "private_key_id": "{}", "private_key": "{key}\n", "client_email": "ci@acme-prod.iam.gserviceaccount.com"}}"#,
        f("sa-id", HEX, 40)
    );
    assert_eq!(
        ids(&engine, &json),
        vec![("private-key".into(), key), ("email".into(), "ci@acme-prod.iam.gserviceaccount.com".into())]
    );
}

#[test]
fn email_validator_rejects_non_personal_addresses() {
    for personal in ["jane.doe@acmecorp.io", "a.b+c@mail.acme.co.uk", "dev@examples.com"] {
        assert!(email(personal), "{personal}");
    }
    for not_personal in [
        "user@example.com",
        "x@mail.example.net",
        "git@github.com",
        "noreply@anthropic.com",
        "a@b.test",
        "icon@2x.png",
        "x@host.localhost",
        "no-at-sign",
    ] {
        assert!(!email(not_personal), "{not_personal}");
    }
}

#[test]
fn phone_validator_counts_digits() {
    use crate::core::dlp::pii::phone;
    for plausible in ["+44 20 7946 0958", "+14155550132", "(415) 555-0132", "1-800-555-0199"] {
        assert!(phone(plausible), "{plausible}");
    }
    for implausible in ["+1 2345", "+1234567890123456", "555-0132", "+11111111111", "12 345 678 9012"] {
        assert!(!phone(implausible), "{implausible}");
    }
}
