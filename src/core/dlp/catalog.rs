//! The built-in detector catalog: every kind of credential and personal data Warden looks for
//! out of the box.
//!
//! [`builtin`] returns the detectors in a stable order, grouped as: cloud keys, source hosting,
//! CI and package registries, LLM providers, chat and SaaS tokens, private keys and structured
//! credentials (JWTs, URL passwords, `Authorization` headers), generic `name = value`
//! assignments, then personal data (emails, phone numbers, payment cards, US SSNs, IBANs).
//!
//! **Ids** are kebab-case and vendor-first: `github-pat`, `aws-access-key`, `slack-bot-token`;
//! detectors that are not tied to a vendor say what they find (`private-key`, `jwt`,
//! `url-password`, `generic-secret`, `email`). Ids are stable: they appear in masks, counts and
//! policy profiles, so renaming one is a breaking change.
//!
//! **Priorities** settle overlapping findings: vendor formats 30, structural credentials (URL
//! passwords, `Authorization` headers) 25, personal data 20, generic assignments 10. So
//! `GITHUB_TOKEN=ghp_…` is reported as `github-pat`, not as the generic assignment, and the
//! password of `https://user:pass@host.com` is a `url-password`, not the start of an email.
//!
//! **Adding a detector**: pick the cheapest trigger that every match starts with (a literal
//! prefix such as `ghp_`; an infix literal such as `@` with the run of characters before it;
//! or a number-like run), write the pattern so that it begins exactly there (see
//! [`super::detector`]), end it with a guard so that a longer token is not cut short (the
//! `END`-style guards below, with a `secret` group around the value), give it a one-line
//! description, and add at least one true positive and one near miss to the tables in the tests
//! below. Test values must be fabricated (the tests generate them from a seed). An `Infix`
//! detector whose match starts before its literal must not use a `secret` group: a stream holds
//! back the run before a pending literal only for detectors that mask it whole.
//!
//! **Limits** (deliberate, to keep false positives down):
//! - Bare high-entropy strings are not secrets by themselves: a 40-character hex or base64
//!   string (an AWS secret key, a Twilio or Heroku key, an Okta or Cohere token, a Mailgun
//!   "new" key) is only found next to a name that says what it is (`aws_secret_access_key = …`),
//!   or through the generic assignments.
//! - Formats without a distinctive shape are not covered on their own: Travis CI, Datadog,
//!   Cloudflare, OpenAI-compatible `sk-…` keys of other providers, Discord bot tokens of bots
//!   created before 2022 (they do not start with `MT`).
//! - Generic assignments need a known name (`password`, `secret`, `token`, `api_key`, …), an
//!   `=`/`:`-style operator and a value of 8+ characters on the same line; an unquoted value
//!   must also contain a symbol, or be letters and digits with at least one digit, so that
//!   identifiers, dotted paths and constants (`userPassword`, `self.password`, `WBEM_128BITS`)
//!   are not values, and code (`os.environ[…]`, `getenv(…)`, `${VAR}`) never is. Letters-only
//!   unquoted values, XML elements and `.netrc` lines are not found.
//! - Email addresses at `example.com`/`.org`/`.net`, reserved TLDs (`.test`, `.example`,
//!   `.invalid`, `.localhost`), hosts without a dot (`user@localhost`), `git@…` ssh users,
//!   `noreply@` senders and retina asset names (`icon@2x.png`) are not personal data.
//! - Phone numbers need a `+` country code or the separated North-American shape
//!   (`(415) 555-0132`, `415-555-0132`); bare digit strings, dates, times, versions and IPs are
//!   not phones. Patterns cannot see the character before a token start, so a number right
//!   after `-` or `.` (`12-415-555-0132`) can still match.
//! - Payment cards: 16-digit numbers with a card-network prefix, 15-digit Amex, 14-digit Diners
//!   only when grouped; 13- and 19-digit cards are not looked for (19-digit integers are common
//!   in code). A 16-digit integer constant with a card prefix still passes Luhn one time in ten.
//! - IBANs are upper-case, optionally in groups of four; an IBAN whose length is a multiple of
//!   four followed by a four-character upper-case word is read as one longer (invalid) IBAN.

use super::detector::{Category, CharClass, DetectorSpec, Trigger, Validator};

/// Guard after a token made of `[A-Za-z0-9_-]`: the next character is not part of it.
const END: &str = r"(?:[^A-Za-z0-9_-]|$)";
/// Guard after a base64 value (`+`, `/` and `=` belong to it too).
const END_B64: &str = r"(?:[^A-Za-z0-9+/=_-]|$)";

/// `Infix` detectors whose value follows their literal: the literal stays visible.
const REVEALED_INFIX: [&str; 3] = ["url-password", "azure-ad-client-secret", "terraform-cloud-token"];

/// Every built-in detector, in a stable order.
pub fn builtin() -> Vec<DetectorSpec> {
    let mut all = Vec::with_capacity(80);
    all.extend(cloud());
    all.extend(source_ci_and_registries());
    all.extend(llm_providers());
    all.extend(chat_and_saas());
    all.extend(keys_and_structured());
    all.extend(generic());
    all.extend(personal_data());
    // Vendor prefixes and assignment names stay visible (`ghp_[REDACTED:…]`): streams then never
    // hold back text that merely starts like one.
    for spec in &mut all {
        spec.reveal_trigger = match spec.trigger {
            Trigger::Prefix(_) => spec.category == Category::Credential,
            Trigger::Infix { .. } => REVEALED_INFIX.contains(&spec.id.as_str()),
            Trigger::Digits { .. } => false,
        };
    }
    all
}

/// A vendor token that starts with one of `prefixes`: `body` between a word boundary and `end`.
fn vendor(id: &str, description: &str, prefixes: &[&str], body: &str, end: &str) -> DetectorSpec {
    DetectorSpec::prefixed(id, description, prefixes, &format!(r"(?-u:\b)(?P<secret>{body}){end}"))
}

/// A value assigned to a name: `name` (a case-insensitive regex, matched from the trigger
/// literal), an optional closing quote, `=`, `:`, `:=` or `=>`, an optional opening quote, then
/// `value` (the secret) and `end`.
fn assigned(name: &str, value: &str, end: &str) -> String {
    format!(r#"(?i:{name})["'`]?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?(?P<secret>{value}){end}"#)
}

/// A detector with any trigger; like [`DetectorSpec::prefixed`], no validator, `max_len` 512 and
/// priority 30 until the builder methods say otherwise.
fn detector(id: &str, category: Category, description: &str, trigger: Trigger, pattern: &str) -> DetectorSpec {
    DetectorSpec::prefixed(id, description, &[], pattern).trigger(trigger).category(category)
}

fn infix(literal: &str, run: CharClass, max_back: usize) -> Trigger {
    Trigger::Infix { literals: vec![literal.to_string()], run, max_back }
}

fn cloud() -> Vec<DetectorSpec> {
    vec![
        DetectorSpec::prefixed(
            "aws-access-key",
            "AWS access key id (AKIA… long-term, ASIA… temporary)",
            &["AKIA", "ASIA"],
            r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)",
        ),
        DetectorSpec::prefixed(
            "aws-secret-access-key",
            "AWS secret access key assigned to aws_secret_access_key or SecretAccessKey",
            &["secret_access_key", "secretaccesskey"],
            &assigned("secret_access_key|secretaccesskey", "[A-Za-z0-9/+]{40}", END_B64),
        ),
        vendor(
            "aws-session-token",
            "AWS STS session token (IQoJb3JpZ2luX2Vj…, FwoGZXIvYXdz…)",
            &["IQoJb3JpZ2luX2Vj", "FwoGZXIvYXdz"],
            "(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdz)[A-Za-z0-9/+]{100,3000}={0,2}",
            END_B64,
        )
        .max_len(4096),
        vendor("gcp-api-key", "Google Cloud / Firebase API key (AIza…)", &["AIza"], "AIza[A-Za-z0-9_-]{35}", END),
        vendor(
            "gcp-oauth-client-secret",
            "Google OAuth client secret (GOCSPX-…)",
            &["GOCSPX-"],
            "GOCSPX-[A-Za-z0-9_-]{28}",
            END,
        ),
        vendor(
            "gcp-oauth-access-token",
            "Google OAuth access token (ya29.…)",
            &["ya29."],
            r"ya29\.[A-Za-z0-9_-]{50,2048}",
            END,
        )
        .max_len(2100),
        DetectorSpec::prefixed(
            "azure-storage-account-key",
            "Azure storage account key in a connection string (AccountKey=…)",
            &["AccountKey="],
            &format!("AccountKey=(?P<secret>[A-Za-z0-9+/]{{86}}==){END_B64}"),
        ),
        DetectorSpec::prefixed(
            "azure-shared-access-key",
            "Azure Service Bus, Event Hubs or IoT Hub key in a connection string (SharedAccessKey=…)",
            &["SharedAccessKey="],
            &format!("SharedAccessKey=(?P<secret>[A-Za-z0-9+/]{{42,43}}=){END_B64}"),
        ),
        DetectorSpec::prefixed(
            "azure-sas-signature",
            "Azure shared access signature in a SAS URL or token (sig=…)",
            &["sig="],
            r"(?-u:\b)sig=(?P<secret>(?:[A-Za-z0-9+/]|%2[BbFf]){43}(?:=|%3[Dd]))(?:[^A-Za-z0-9%+/=]|$)",
        ),
        // The run before `Q~` is at most the 4 characters the format puts there; a `~` among
        // them (the class has no `~`) hides the secret. Only what follows `Q~` is masked (the
        // 4 characters before it stay visible, like a vendor prefix), so streams never hold
        // back a short word that might precede a `Q~`.
        detector(
            "azure-ad-client-secret",
            Category::Credential,
            "Microsoft Entra ID (Azure AD) application client secret (…Q~…)",
            infix("Q~", CharClass::EmailLocal, 4),
            "[A-Za-z0-9_.-]{3}[0-9]Q~(?P<secret>[A-Za-z0-9_.~-]{31,34})",
        )
        .max_len(64),
    ]
}

fn source_ci_and_registries() -> Vec<DetectorSpec> {
    vec![
        vendor("github-pat", "GitHub personal access token, classic (ghp_…)", &["ghp_"], "ghp_[A-Za-z0-9]{36}", END),
        vendor(
            "github-fine-grained-pat",
            "GitHub fine-grained personal access token (github_pat_…)",
            &["github_pat_"],
            "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
            END,
        ),
        vendor(
            "github-app-token",
            "GitHub App installation (ghs_…) or user-to-server (ghu_…) token",
            &["ghs_", "ghu_"],
            "gh[su]_[A-Za-z0-9]{36}",
            END,
        ),
        vendor(
            "github-oauth-token",
            "GitHub OAuth access (gho_…) or refresh (ghr_…) token",
            &["gho_", "ghr_"],
            "gho_[A-Za-z0-9]{36}|ghr_[A-Za-z0-9]{36,76}",
            END,
        ),
        vendor(
            "gitlab-pat",
            "GitLab personal, project or group access token (glpat-…)",
            &["glpat-"],
            r"glpat-[A-Za-z0-9_-]{20,64}(?:\.[A-Za-z0-9_-]{2,16}){0,2}",
            END,
        ),
        vendor(
            "gitlab-pipeline-trigger-token",
            "GitLab pipeline trigger token (glptt-…)",
            &["glptt-"],
            "glptt-[0-9a-f]{40}",
            END,
        ),
        vendor("gitlab-deploy-token", "GitLab deploy token (gldt-…)", &["gldt-"], "gldt-[A-Za-z0-9_-]{20,64}", END),
        vendor(
            "gitlab-runner-token",
            "GitLab runner authentication (glrt-…) or registration (GR1348941…) token",
            &["glrt-", "GR1348941"],
            r"glrt-[A-Za-z0-9_-]{20,64}(?:\.[A-Za-z0-9_-]{2,16}){0,2}|GR1348941[A-Za-z0-9_-]{20}",
            END,
        ),
        vendor("bitbucket-app-password", "Bitbucket app password (ATBB…)", &["ATBB"], "ATBB[A-Za-z0-9_=-]{32,64}", END),
        vendor(
            "atlassian-api-token",
            "Atlassian (Jira, Confluence) API token (ATATT3…)",
            &["ATATT3"],
            "ATATT3[A-Za-z0-9_=-]{150,250}",
            END,
        ),
        vendor(
            "circleci-token",
            "CircleCI personal or project API token (CCIPAT_…, CCIPRJ_…)",
            &["CCIPAT_", "CCIPRJ_"],
            "CCIP(?:AT|RJ)_[A-Za-z0-9]{20,24}_[0-9a-f]{40}",
            END,
        ),
        vendor("npm-token", "npm access token (npm_…)", &["npm_"], "npm_[A-Za-z0-9]{36}", END),
        vendor(
            "pypi-token",
            "PyPI or TestPyPI API token (pypi-AgEIcHlwaS5vcmc…, pypi-AgENdGVzdC5weXBpLm9yZw…)",
            &["pypi-"],
            "pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,1000}",
            END,
        )
        .max_len(1100),
        vendor(
            "docker-hub-token",
            "Docker Hub personal or organization access token (dckr_pat_…, dckr_oat_…)",
            &["dckr_"],
            "dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,64}",
            END,
        ),
    ]
}

fn llm_providers() -> Vec<DetectorSpec> {
    vec![
        vendor(
            "anthropic-api-key",
            "Anthropic API key (sk-ant-api03-…)",
            &["sk-ant-api03-"],
            "sk-ant-api03-[A-Za-z0-9_-]{93}AA",
            END,
        ),
        vendor(
            "anthropic-admin-key",
            "Anthropic Admin API key (sk-ant-admin01-…)",
            &["sk-ant-admin01-"],
            "sk-ant-admin01-[A-Za-z0-9_-]{93}AA",
            END,
        ),
        vendor(
            "anthropic-oauth-token",
            "Anthropic OAuth access or refresh token, as used by Claude Code (sk-ant-oat01-…, sk-ant-ort01-…)",
            &["sk-ant-oat01-", "sk-ant-ort01-"],
            "sk-ant-o[ar]t01-[A-Za-z0-9_-]{80,200}",
            END,
        ),
        vendor(
            "openai-api-key",
            "OpenAI API key: project, service-account, admin or legacy (sk-proj-…, sk-svcacct-…, sk-admin-…, sk-…T3BlbkFJ…)",
            &["sk-"],
            "sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{40,250}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}",
            END,
        ),
        vendor("huggingface-token", "Hugging Face access token (hf_…)", &["hf_"], "hf_[A-Za-z]{34}", END),
        vendor("groq-api-key", "Groq API key (gsk_…)", &["gsk_"], "gsk_[A-Za-z0-9]{52}", END),
        vendor("replicate-api-token", "Replicate API token (r8_…)", &["r8_"], "r8_[A-Za-z0-9]{37}", END),
        vendor("perplexity-api-key", "Perplexity API key (pplx-…)", &["pplx-"], "pplx-[A-Za-z0-9]{48}", END),
        vendor("xai-api-key", "xAI (Grok) API key (xai-…)", &["xai-"], "xai-[A-Za-z0-9]{80}", END),
        DetectorSpec::prefixed(
            "cohere-api-key",
            "Cohere API key, only when assigned to a COHERE_…KEY/TOKEN name",
            &["cohere"],
            &assigned("cohere[a-z0-9_-]{0,16}(?:key|token)", "[A-Za-z0-9]{40}", END),
        ),
    ]
}

fn chat_and_saas() -> Vec<DetectorSpec> {
    vec![
        vendor(
            "slack-bot-token",
            "Slack bot token (xoxb-…)",
            &["xoxb-"],
            "xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}",
            END,
        ),
        vendor(
            "slack-user-token",
            "Slack user token (xoxp-…)",
            &["xoxp-"],
            "xoxp-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[0-9a-f]{32}",
            END,
        ),
        vendor(
            "slack-token",
            "Other Slack tokens: workspace (xoxa-), refresh (xoxr-, xoxe-) and configuration (xoxe.xoxp-)",
            &["xoxa-", "xoxr-", "xoxe.", "xoxe-"],
            r"xox[ar]-(?:[0-9]{1,13}-){1,4}[A-Za-z0-9]{24,128}|xoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{100,250}|xoxe-[0-9]-[A-Za-z0-9]{100,250}",
            END,
        ),
        DetectorSpec::prefixed(
            "slack-webhook-url",
            "Slack incoming-webhook URL (hooks.slack.com/services/T…/B…/…)",
            &["hooks.slack.com/"],
            r"hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24}(?-u:\b)",
        ),
        DetectorSpec::prefixed(
            "discord-webhook-url",
            "Discord webhook URL (discord.com/api/webhooks/…)",
            &["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"],
            &format!(r"(?P<secret>discord(?:app)?\.com/api/webhooks/[0-9]{{17,20}}/[A-Za-z0-9_-]{{60,68}}){END}"),
        ),
        vendor(
            "discord-bot-token",
            "Discord bot token of a bot created since 2022 (MT….….…)",
            &["MT"],
            r"MT[A-Za-z0-9]{22,26}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}",
            END,
        ),
        detector(
            "telegram-bot-token",
            Category::Credential,
            "Telegram bot token (bot id:AA…)",
            Trigger::Digits { run: CharClass::Number, min_digits: 8 },
            &format!("(?P<secret>[0-9]{{8,10}}:A[A-Za-z0-9_-]{{34}}){END}"),
        )
        .max_len(64),
        vendor(
            "stripe-api-key",
            "Stripe secret or restricted API key (sk_live_…, sk_test_…, rk_live_…, rk_test_…)",
            &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
            "[sr]k_(?:live|test)_[A-Za-z0-9]{24,247}",
            END,
        ),
        vendor(
            "stripe-webhook-secret",
            "Stripe webhook signing secret (whsec_…)",
            &["whsec_"],
            "whsec_[A-Za-z0-9+/]{32,88}={0,2}",
            END_B64,
        ),
        vendor("twilio-api-key", "Twilio API key SID (SK + 32 hex)", &["SK"], "SK[0-9a-f]{32}", END),
        DetectorSpec::prefixed(
            "twilio-auth-token",
            "Twilio auth token or API secret, only when assigned to a TWILIO_…TOKEN/SECRET name",
            &["twilio"],
            &assigned("twilio[a-z0-9_-]{0,16}(?:token|secret)", "[A-Za-z0-9]{32}", END),
        ),
        vendor(
            "sendgrid-api-key",
            "SendGrid API key (SG.….…)",
            &["SG."],
            r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
            END,
        ),
        vendor("mailgun-api-key", "Mailgun API key (key-…)", &["key-"], "key-[0-9a-f]{32}", END),
        // Mailchimp keys (32 hex digits, `-us`, a datacenter) have no prefix: the hex part
        // could start at any hex-only word ("add", "cafe"), so a stream would hold such words
        // back. Only keys assigned to a MAILCHIMP_…KEY name are detected; a bare key assigned
        // to a generic name (`apikey:`) is still masked by `generic-secret`.
        DetectorSpec::prefixed(
            "mailchimp-api-key",
            "Mailchimp API key (32 hex digits, -us, datacenter), when assigned to a MAILCHIMP_…KEY name",
            &["mailchimp"],
            &assigned("mailchimp[a-z0-9_-]{0,16}(?:key|token)", "[0-9a-f]{32}-us[0-9]{1,2}", END),
        ),
        vendor(
            "vault-token",
            "HashiCorp Vault service, batch or recovery token (hvs., hvb., hvr.)",
            &["hvs.", "hvb.", "hvr."],
            r"hv[sbr]\.[A-Za-z0-9_-]{24,512}",
            END,
        )
        .max_len(600),
        detector(
            "terraform-cloud-token",
            Category::Credential,
            "Terraform Cloud / Enterprise API token (….atlasv1.…)",
            infix(".atlasv1.", CharClass::UrlScheme, 14),
            r"[A-Za-z0-9]{14}\.atlasv1\.(?P<secret>[A-Za-z0-9_=-]{60,70})",
        )
        .max_len(128),
        vendor(
            "shopify-token",
            "Shopify access, custom-app or private-app token, or shared secret (shpat_, shpca_, shppa_, shpss_)",
            &["shpat_", "shpca_", "shppa_", "shpss_"],
            "shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}",
            END,
        ),
        vendor(
            "digitalocean-token",
            "DigitalOcean personal access, OAuth or refresh token (dop_v1_, doo_v1_, dor_v1_)",
            &["dop_v1_", "doo_v1_", "dor_v1_"],
            "do[por]_v1_[0-9a-f]{64}",
            END,
        ),
        vendor("linear-api-key", "Linear API key (lin_api_…)", &["lin_api_"], "lin_api_[A-Za-z0-9]{40}", END),
        vendor(
            "notion-token",
            "Notion integration token (secret_…, ntn_…)",
            &["secret_", "ntn_"],
            "secret_[A-Za-z0-9]{43}|ntn_[0-9]{11}[A-Za-z0-9]{35}",
            END,
        ),
        vendor("postman-api-key", "Postman API key (PMAK-…)", &["PMAK-"], "PMAK-[0-9a-f]{24}-[0-9a-f]{34}", END),
        vendor(
            "grafana-token",
            "Grafana Cloud access-policy token (glc_…) or service-account token (glsa_…)",
            &["glc_", "glsa_"],
            "glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[0-9a-f]{8}",
            END_B64,
        ),
        vendor("newrelic-api-key", "New Relic user API key (NRAK-…)", &["NRAK-"], "NRAK-[A-Z0-9]{27}", END),
        vendor(
            "sentry-token",
            "Sentry organization (sntrys_…) or user (sntryu_…) auth token",
            &["sntrys_", "sntryu_"],
            "sntrys_eyJ[A-Za-z0-9+/=_-]{50,400}|sntryu_[0-9a-f]{64}",
            END_B64,
        ),
        vendor(
            "doppler-token",
            "Doppler personal, service, service-account or CLI token (dp.pt., dp.st., dp.sa., dp.ct.)",
            &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct."],
            r"dp\.(?:pt|st|sa|ct)\.(?:[a-z0-9_-]{2,35}\.)?[A-Za-z0-9]{40,44}",
            END,
        ),
        vendor("pulumi-token", "Pulumi access token (pul-…)", &["pul-"], "pul-[0-9a-f]{40}", END),
        vendor(
            "flyio-token",
            "Fly.io access token (fo1_…, FlyV1 fm2_…)",
            &["fo1_", "fm2_"],
            "fo1_[A-Za-z0-9_-]{43}|fm2_[A-Za-z0-9+/=_-]{64,4000}",
            END_B64,
        )
        .max_len(4096),
        DetectorSpec::prefixed(
            "heroku-api-key",
            "Heroku API key (HRKU-…, or a UUID assigned to a HEROKU_…KEY/TOKEN name)",
            &["HRKU-", "heroku"],
            &format!(
                r#"(?:(?i:heroku[a-z0-9_-]{{0,16}}(?:key|token))["'`]?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?)?(?-u:\b)(?P<secret>HRKU-[A-Za-z0-9_-]{{30,80}}|[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}){END}"#
            ),
        ),
        vendor(
            "square-access-token",
            "Square access token (EAAA…, sq0atp-…)",
            &["EAAA", "sq0atp-"],
            "EAAA[A-Za-z0-9_+-]{60}|sq0atp-[A-Za-z0-9_-]{22}",
            END,
        ),
        vendor(
            "shippo-api-token",
            "Shippo API token (shippo_live_…, shippo_test_…)",
            &["shippo_"],
            "shippo_(?:live|test)_[0-9a-f]{40}",
            END,
        ),
        vendor(
            "dynatrace-api-token",
            "Dynatrace API token (dt0c01.…)",
            &["dt0c01."],
            r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}",
            END,
        ),
        vendor(
            "databricks-token",
            "Databricks personal access token (dapi…)",
            &["dapi"],
            "dapi[0-9a-f]{32}(?:-[0-9])?",
            END,
        ),
        DetectorSpec::prefixed(
            "okta-api-token",
            "Okta API token (00…), assigned to an OKTA_…KEY/TOKEN name or after SSWS",
            &["okta", "SSWS"],
            &format!(
                r#"(?:(?i:okta[a-z0-9_-]{{0,16}}(?:key|token))["'`]?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?|SSWS[ \t]+)(?P<secret>00[A-Za-z0-9_-]{{40}}){END}"#
            ),
        ),
        vendor(
            "age-secret-key",
            "age encryption secret key (AGE-SECRET-KEY-1…)",
            &["AGE-SECRET-KEY-1"],
            "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
            END,
        ),
    ]
}

fn keys_and_structured() -> Vec<DetectorSpec> {
    // Key blocks: from the BEGIN line through the first END line, with real line breaks or the
    // two characters `\n` of a JSON string (a GCP service-account file's "private_key").
    const PEM_TYPES: &str = "(?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?";
    vec![
        DetectorSpec::prefixed(
            "private-key",
            "PEM or OpenSSH private key block (RSA, EC, DSA, PKCS#8, encrypted), also JSON-escaped",
            &["-----BEGIN "],
            &format!(
                r"-----BEGIN {PEM_TYPES}PRIVATE KEY-----(?:[A-Za-z0-9+/=:,.\s-]|\\[nrt/])+?-----END {PEM_TYPES}PRIVATE KEY-----"
            ),
        )
        .max_len(16384),
        DetectorSpec::prefixed(
            "pgp-private-key",
            "PGP private key block (-----BEGIN PGP PRIVATE KEY BLOCK-----), also JSON-escaped",
            &["-----BEGIN "],
            r"-----BEGIN PGP PRIVATE KEY BLOCK-----(?:[A-Za-z0-9+/=:,.()<>@'_!?;\s-]|\\[nrt/])+?-----END PGP PRIVATE KEY BLOCK-----",
        )
        .max_len(16384),
        DetectorSpec::prefixed(
            "jwt",
            "JSON Web Token (eyJ….eyJ….signature)",
            &["eyJ"],
            r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*",
        )
        .max_len(8192),
        detector(
            "url-password",
            Category::Credential,
            "Password in a URL or connection string (postgres://, mysql://, mongodb+srv://, redis://, amqp://, https://user:password@host…)",
            infix("://", CharClass::UrlScheme, 32),
            r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@"'<>\\{}()\[\]]{0,128}:(?P<secret>[^\s/?#"'<>\\{}()\[\]$][^\s/?#"'<>\\{}()\[\]]{2,255})@[A-Za-z0-9\[]"#,
)
        .max_len(512)
        .priority(25),
        DetectorSpec::prefixed(
            "http-authorization",
            "Credential in an HTTP Authorization header (Bearer, Basic or Token scheme)",
            &["authorization"],
            r#"(?i:authorization)["'`]?[ \t]*[:=][ \t]*["'`]?(?i:bearer|basic|token)[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{12,}=*)(?:[^A-Za-z0-9._~+/=-]|$)"#,
        )
        .max_len(4096)
        .priority(25),
    ]
}

/// Names whose value is a secret (case-insensitive); the trigger literals below start them.
const SECRET_NAMES: &str = "pass(?:word|wd|phrase)?|pwd|secret|private[_-]?key|api[_-]?key|token";
/// What may follow such a name and still name a secret: `SECRET_KEY`, `tokenSecret`, `PASSWORD2`.
const SECRET_NAME_TAIL: &str = "(?:[_-]?(?:access[_-]?key|key|token|secret|value|[0-9]))?";
const SECRET_NAME_LITERALS: [&str; 10] =
    ["pass", "pwd", "secret", "private_key", "private-key", "privatekey", "api_key", "api-key", "apikey", "token"];

/// An unquoted value of 8+ characters that is not code: it starts with a letter or digit, has no
/// quotes, brackets, parentheses, `:`, `,`, `;`, `&`, `|`, backslash or `…` (a documentation
/// ellipsis), and either contains a symbol (`s3cr3t-V4lue!`, base64) or is letters and digits
/// with at least one digit (`hunter2hunter2`, hex and alphanumeric keys). Identifiers, dotted
/// paths and constants (`userPassword`, `self.password`, `node.colon2_token`, `WBEM_128BITS`)
/// are neither.
fn unquoted_value() -> String {
    const FIRST: &str = "[A-Za-z0-9]";
    const CHAR: &str = r#"[^\s"'`(){}\[\]<>\\,;:&|…]"#;
    const SYMBOL: &str = "[!@#$%^*+=/?~-]";
    let with_symbol = at_least_one(FIRST, CHAR, SYMBOL);
    let with_digit = at_least_one(FIRST, FIRST, "[0-9]");
    format!("{with_symbol}|[0-9]{FIRST}{{7,}}|{with_digit}")
}

/// 8+ characters: `first`, then `rest` characters of which at least one is `needed` (a subset of
/// `rest`).
fn at_least_one(first: &str, rest: &str, needed: &str) -> String {
    let mut alternatives: Vec<String> =
        (0..6).map(|before| format!("{first}{rest}{{{before}}}{needed}{rest}{{{},}}", 6 - before)).collect();
    alternatives.push(format!("{first}{rest}{{6,}}{needed}{rest}*"));
    alternatives.join("|")
}

fn generic() -> Vec<DetectorSpec> {
    let name = format!(r#"(?i:{SECRET_NAMES})(?i:{SECRET_NAME_TAIL})["'`]?\]?"#);
    // `password: str = "…"`, `const API_KEY: &str = "…"`. A quoted value does not start like a
    // path, a format string or a template, and does not end like a prefix being concatenated
    // (`"sk-ant-bench-" + suffix`).
    let annotation = r"(?:[ \t]*:[ \t]*[A-Za-z_&][A-Za-z0-9_.&|\[\] ]{0,40}?)?";
    let quoted = format!(
        r#"{name}{annotation}[ \t]*(?::=|=>|==|=|:)[ \t]*[bBrRuU]?["'](?P<secret>[^\s"'`\\{{}}<>…$/~.%#][^\s"'`\\{{}}<>…]{{6,254}}[^\s"'`\\{{}}<>…/._-])["']"#
    );
    let unquoted =
        format!(r#"{name}[ \t]*(?::=|=>|=|:)[ \t]*(?P<secret>{}){}"#, unquoted_value(), r#"(?:[\s,;)}\]"'`\\&]|$)"#);
    vec![
        DetectorSpec::prefixed(
            "generic-secret",
            "Quoted value assigned to a password, secret, token, API-key or private-key name in code, config or JSON",
            &SECRET_NAME_LITERALS,
            &quoted,
        )
        .validated(Validator::MinEntropy(2.5))
        .priority(10),
        DetectorSpec::prefixed(
            "generic-env-secret",
            "Unquoted value assigned to a password, secret, token or API-key name (.env files, YAML, headers, flags, URLs)",
            &SECRET_NAME_LITERALS,
            &unquoted,
        )
        .validated(Validator::MinEntropy(2.5))
        .priority(10),
    ]
}

fn personal_data() -> Vec<DetectorSpec> {
    vec![
        detector(
            "email",
            Category::Pii,
            "Email address (not example or reserved domains, git@ ssh users or noreply@ senders)",
            infix("@", CharClass::EmailLocal, 64),
            r"[A-Za-z0-9._%+-]*[A-Za-z0-9_-]@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?-u:\b)",
)
        .validated(Validator::Email)
        .max_len(320)
        .priority(20),
        detector(
            "phone",
            Category::Pii,
            "Phone number: international (+44 20 7946 0958, +14155550132) or North American ((415) 555-0132)",
            Trigger::Digits { run: CharClass::Number, min_digits: 8 },
            r"(?P<secret>\+[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}|(?:(?-u:\b)1[ .-]?)?(?:\([2-9][0-9]{2}\)[ .-]?|(?-u:\b)[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4})(?:$|[^0-9.-]|[.-]$|[.-][^0-9])",
)
        .validated(Validator::Phone)
        .max_len(40)
        .priority(20),
        detector(
            "payment-card",
            Category::Pii,
            "Payment card number passing Luhn: 16-digit Visa, Mastercard, Discover, JCB, UnionPay; 15-digit Amex; grouped Diners",
            Trigger::Digits { run: CharClass::Number, min_digits: 13 },
            r"(?-u:\b)(?:(?:4[0-9]{3}|5[1-5][0-9]{2}|2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)|6(?:011|5[0-9]{2}|4[4-9][0-9]|2[0-9]{2})|35(?:2[89]|[3-8][0-9]))(?:[ -]?[0-9]{4}){3}|3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5}|3(?:0[0-5]|[689][0-9])[0-9][ -][0-9]{6}[ -][0-9]{4})(?-u:\b)",
)
        .validated(Validator::Luhn)
        .max_len(32)
        .priority(20),
        detector(
            "us-ssn",
            Category::Pii,
            "US social security number written AAA-GG-SSSS or AAA GG SSSS, in an issued range",
            Trigger::Digits { run: CharClass::Number, min_digits: 9 },
            r"(?-u:\b)(?P<secret>[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4})(?:$|[^0-9 -]|[ -]$|[ -][^0-9])",
)
        .validated(Validator::UsSsn)
        .max_len(16)
        .priority(20),
        // A number-like run of upper-case letters, digits and spaces starts at the country code
        // (or at a later word of the run: every token start is a candidate).
        detector(
            "iban",
            Category::Pii,
            "International bank account number (IBAN), compact or in groups of four, passing mod-97",
            Trigger::Digits { run: CharClass::UpperAlnum, min_digits: 8 },
            r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[0-9]{1,3})?(?-u:\b)",
)
        .validated(Validator::Iban)
        .max_len(48)
        .priority(20),
    ]
}

/// Whether a matched email address is personal data worth masking: not an example or reserved
/// domain (RFC 2606/6761), not an ssh user (`git@host`), not a `noreply@` sender, not an asset
/// name such as `icon@2x.png`.
pub(crate) fn email(value: &str) -> bool {
    const NOT_PERSONAL: [&str; 3] = ["git", "noreply", "no-reply"];
    const EXAMPLE_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];
    const RESERVED_TLDS: [&str; 5] = ["test", "example", "invalid", "localhost", "local"];
    const FILE_EXTENSIONS: [&str; 9] = ["png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "avif"];
    let Some((local, domain)) = value.rsplit_once('@') else { return false };
    let local = local.trim_start_matches(['.', '_', '%', '+', '-']).to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let example = EXAMPLE_DOMAINS
        .iter()
        .any(|d| domain.strip_suffix(d).is_some_and(|rest| rest.is_empty() || rest.ends_with('.')));
    !(local.is_empty()
        || NOT_PERSONAL.contains(&local.as_str())
        || example
        || RESERVED_TLDS.contains(&tld)
        || FILE_EXTENSIONS.contains(&tld))
}

/// Whether a matched phone number has a plausible number of digits: 8–15 after a `+` (E.164),
/// otherwise 10, or 11 starting with the North-American `1`; and not one digit repeated.
pub(crate) fn phone(value: &str) -> bool {
    let digits: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
    let count = digits.len();
    let plausible = if value.starts_with('+') {
        (8..=15).contains(&count)
    } else {
        count == 10 || (count == 11 && digits.first() == Some(&b'1'))
    };
    plausible && !digits.iter().all(|d| Some(d) == digits.first())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::core::dlp::engine::tests::ids;
    use crate::core::dlp::engine::Engine;
    use std::collections::{BTreeMap, BTreeSet};

    // Every test value is fabricated: generated from a seed with the alphabet and length of the
    // format, never copied from a real credential.
    const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const HEX: &str = "0123456789abcdef";
    const HEX_UPPER: &str = "0123456789ABCDEF";
    const DIGITS: &str = "0123456789";
    const URL_SAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const BECH32: &str = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
    const MIXED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!%*+-_=~";

    /// `len` characters of `alphabet`, pseudo-random from `seed` (xorshift over an FNV hash).
    fn f(seed: &str, alphabet: &str, len: usize) -> String {
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

    fn uuid(seed: &str) -> String {
        let h = f(seed, HEX, 32);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }

    /// `digits` followed by its Luhn check digit.
    fn with_luhn(digits: &str) -> String {
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
    fn iban_for(country: &str, bban: &str) -> String {
        let rearranged = format!("{bban}{country}00");
        let mut rem = 0u32;
        for c in rearranged.chars() {
            let v = c.to_digit(36).unwrap();
            rem = if v < 10 { (rem * 10 + v) % 97 } else { (rem * 100 + v) % 97 };
        }
        format!("{country}{:02}{bban}", 98 - rem)
    }

    fn grouped(compact: &str, size: usize) -> String {
        compact.as_bytes().chunks(size).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
    }

    /// A true positive: `template` with `{}` replaced by `secret`, which must be found as `id`.
    struct Case {
        id: &'static str,
        text: String,
        secret: String,
    }

    fn p(id: &'static str, template: &str, secret: String) -> Case {
        assert!(template.contains("{}"), "{id}: template without {{}}");
        Case { id, text: template.replacen("{}", &secret, 1), secret }
    }

    fn n(id: &'static str, text: impl Into<String>) -> (&'static str, String) {
        (id, text.into())
    }

    fn pem_lines(seed: &str, lines: usize, sep: &str) -> String {
        (0..lines).map(|i| f(&format!("{seed}{i}"), B64, 64)).collect::<Vec<_>>().join(sep)
    }

    fn positives() -> Vec<Case> {
        let az_tail = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";
        let generic_value = |seed: &str| format!("{}{}", f(seed, LETTERS, 1), f(seed, MIXED, 17));
        let env_value = |seed: &str| format!("{}7{}", f(seed, LETTERS, 1), f(seed, ALNUM, 22));
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
            n(
                "azure-ad-client-secret",
                format!("{}7Q~{} and Q~ alone", f("entra-s", ALNUM, 3), f("entra-s2", ALNUM, 20)),
            ),
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
                format!(
                    "cohere_model = \"{}\" COHERE_API_KEY={}",
                    f("cohere-model", ALNUM, 40),
                    f("cohere39", ALNUM, 39)
                ),
            ),
            n("slack-bot-token", "xoxb-123-456-abc"),
            n(
                "slack-user-token",
                format!(
                    "xoxp-{}-{}-{}-{}",
                    f("xp1", DIGITS, 12),
                    f("xp2", DIGITS, 12),
                    f("xp3", DIGITS, 13),
                    f("xp4", HEX, 31)
                ),
            ),
            n("slack-token", "xoxe-1-short xoxa-token"),
            n("slack-webhook-url", "https://hooks.slack.com/services/T000/B000/XXXX"),
            n("discord-webhook-url", "https://discord.com/api/webhooks/123/abc"),
            n(
                "discord-bot-token",
                format!("MT{}.{} and MTime.now()", f("dbt-n1", ALNUM, 24), f("dbt-n2", URL_SAFE, 6)),
            ),
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
            n(
                "notion-token",
                format!("secret_{} client_secret_{}", f("notion20", ALNUM, 20), f("notion-cs", ALNUM, 43)),
            ),
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
            n(
                "private-key",
                format!("-----BEGIN RSA PRIVATE KEY-----\nMIIE{}\n(truncated)", pem_lines("trunc", 4, "\n")),
            ),
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
            assert!(
                !spec.description.trim().is_empty() && !spec.description.contains('\n'),
                "{}: description",
                spec.id
            );
            assert!(regex_automata::meta::Regex::new(&spec.pattern).is_ok(), "{}: pattern does not compile", spec.id);
            assert!(spec.max_len > 0, "{}", spec.id);
            let expected_priority = match (spec.category, spec.id.as_str()) {
                (Category::Pii, _) => 20,
                (_, "url-password" | "http-authorization") => 25,
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
        assert!((65..=80).contains(&specs.len()), "{} detectors", specs.len());
        assert_eq!(pii, 5);
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
                failures
                    .push(format!("{}: expected {:?} in {:?}, found {findings:?}", case.id, case.secret, case.text));
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
        let key =
            format!("-----BEGIN PRIVATE KEY-----\\nMIIEvQ{}\\n-----END PRIVATE KEY-----", pem_lines("sa", 6, "\\n"));
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
        for plausible in ["+44 20 7946 0958", "+14155550132", "(415) 555-0132", "1-800-555-0199"] {
            assert!(phone(plausible), "{plausible}");
        }
        for implausible in ["+1 2345", "+1234567890123456", "555-0132", "+11111111111", "12 345 678 9012"] {
            assert!(!phone(implausible), "{implausible}");
        }
    }
}
