//! Developer tools: source hosts, CI/CD, package registries, observability and error tracking.
//!
//! Two shapes of detector:
//! - **Vendor prefixes** (`ghp_`, `glcbt-`, `rubygems_`, `NRJS-`, `xaat-`): the token names its
//!   vendor, so it is found anywhere. GitHub and npm tokens also carry a checksum
//!   ([`Validator::Crc32Base62`]): a valid one makes the finding certain; a token without a valid
//!   one is still found unless it looks typed (placeholder, low entropy, a run of repeated or
//!   sequential characters), so fabricated test tokens are not let through.
//! - **Vendor names** ([`named`]): formats without a prefix (Datadog's 32 hex characters, a Snyk
//!   UUID) are found only after a name that starts with the vendor's word and ends with a key
//!   word (`DD_API_KEY=`, `datadog.api_key:`, `"datadogApiKey": "…"`, `Splunk <token>`). The
//!   vendor words are the triggers, so text that never names the vendor costs nothing.
//!
//! Limits: a bare value without its vendor's name (a Datadog key alone in a log line) is left
//! to the generic assignments; names whose vendor word is not at their start
//! (`MY_KEY_FOR_DATADOG`) are not recognised; a value split over lines is not found.

use super::{vendor, END, END_B64};
use crate::core::dlp::detector::{DetectorSpec, Validator};

/// A lower- or upper-case UUID (Snyk, Codecov, Loggly, Opsgenie, Splunk HEC, LaunchDarkly, Axiom).
const UUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
/// The body of GitLab's prefixed tokens: 20+ URL-safe characters, then up to two dotted parts
/// (`glpat-…​.01.0w1f2g3h4`, GitLab 17.x routable tokens).
const GITLAB_BODY: &str = r"[A-Za-z0-9_-]{20,64}(?:\.[A-Za-z0-9_-]{2,16}){0,2}";
/// How a credential's name ends (`_API_KEY`, `_AUTH_TOKEN`, `Secret`, `_PAT`), case-insensitive.
const KEY_WORD: &str = "(?:key|token|secret|pat|password|auth)";

/// Name words of Datadog credentials (`DATADOG_API_KEY`, `DD_API_KEY`, `DD_APP_KEY`).
pub(super) const DATADOG: &[&str] = &["datadog", "dd_api", "dd_app"];
/// Name words of Azure DevOps personal access tokens (`AZURE_DEVOPS_PAT`, `ADO_PAT`,
/// `SYSTEM_ACCESSTOKEN` of Azure Pipelines).
pub(super) const AZURE_DEVOPS: &[&str] =
    &["azure_devops", "azure-devops", "azuredevops", "ado_pat", "ado_token", "system_accesstoken"];
/// Name words of Gitea, Forgejo and Codeberg tokens.
pub(super) const GITEA: &[&str] = &["gitea", "forgejo", "codeberg"];
/// Name words of legacy CircleCI tokens (`CIRCLE_TOKEN`, `CIRCLECI_API_TOKEN`, `Circle-Token:`).
pub(super) const CIRCLECI: &[&str] = &["circleci", "circle_token", "circle-token"];
/// Name words of Buildkite agent tokens.
pub(super) const BUILDKITE_AGENT: &[&str] = &["buildkite_agent", "buildkite-agent"];
/// Name words of Drone CI tokens.
pub(super) const DRONE: &[&str] = &["drone_token", "drone_server_token"];
/// Name words of Hex (Elixir) API keys.
pub(super) const HEX_PM: &[&str] = &["hex_api", "hexpm"];
/// Name words of New Relic license (ingest) keys.
pub(super) const NEW_RELIC: &[&str] = &["new_relic", "newrelic", "new-relic"];
/// Name words of classic Honeycomb API keys (also the `X-Honeycomb-Team: <key>` header).
pub(super) const HONEYCOMB: &[&str] = &["honeycomb", "x-honeycomb-team"];
/// Name words of Splunk HTTP Event Collector tokens (also the `Splunk <token>` scheme).
pub(super) const SPLUNK: &[&str] = &["splunk"];
/// Name words of Logz.io tokens.
pub(super) const LOGZIO: &[&str] = &["logzio", "logz_io", "logz.io"];
/// Name words of Better Stack (Logtail) source tokens.
pub(super) const BETTER_STACK: &[&str] = &["logtail", "betterstack", "better_stack"];
/// Name words of Elastic APM secret tokens and API keys.
pub(super) const ELASTIC_APM: &[&str] = &["elastic_apm", "elastic-apm"];
/// Name words of Opsgenie API keys (also the `GenieKey <key>` scheme).
pub(super) const OPSGENIE: &[&str] = &["opsgenie", "geniekey"];
/// Name words of PagerDuty REST API keys (also the `Token token=<key>` scheme).
pub(super) const PAGERDUTY: &[&str] = &["pagerduty", "token token"];

/// A `value` after a name that starts with one of the `vendors` words, followed by up to 32 name
/// characters that end with a [`KEY_WORD`] (`DATADOG_API_KEY`, `datadog.api_key`,
/// `datadogApiKey`, `datadog --api-key`), then an assignment (`=`, `:`, `:=`, `=>`, quotes
/// allowed) or blanks (`Splunk <token>`). The vendor words are the triggers; the value must have
/// 3 bits of entropy per character (no `aaaa…`, no `1234…` slot).
fn named(id: &str, description: &str, vendors: &[&str], value: &str) -> DetectorSpec {
    let words: Vec<String> = vendors.iter().map(|word| word.replace('.', r"\.")).collect();
    let pattern = format!(
        r#"(?i:(?:{})(?:[A-Za-z0-9_. -]{{0,32}}{KEY_WORD})?)(?:["'`]?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?|[ \t]+)(?P<secret>{value}){END}"#,
        words.join("|")
    );
    DetectorSpec::prefixed(id, description, vendors, &pattern).validated(Validator::MinEntropy(3.0))
}

/// A GitLab token with its own `prefix` (GitLab docs, "Token prefixes").
fn gitlab(id: &str, description: &str, prefix: &str) -> DetectorSpec {
    vendor(id, description, &[prefix], &format!("{prefix}{GITLAB_BODY}"), END)
}

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    vec![
        vendor("github-pat", "GitHub personal access token, classic (ghp_…, CRC-32 checksum in the last 6 characters)", &["ghp_"], "ghp_[A-Za-z0-9]{36}", END)
            .validated(Validator::Crc32Base62),
        vendor(
            "github-fine-grained-pat",
            "GitHub fine-grained personal access token (github_pat_…)",
            &["github_pat_"],
            "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
            END,
        ),
        vendor(
            "github-app-token",
            "GitHub App installation (ghs_…) or user-to-server (ghu_…) token, CRC-32 checksum in the last 6 characters",
            &["ghs_", "ghu_"],
            "gh[su]_[A-Za-z0-9]{36}",
            END,
        )
        .validated(Validator::Crc32Base62),
        vendor(
            "github-oauth-token",
            "GitHub OAuth access (gho_…) or refresh (ghr_…) token, CRC-32 checksum in the last 6 characters",
            &["gho_", "ghr_"],
            "gho_[A-Za-z0-9]{36}|ghr_[A-Za-z0-9]{36,76}",
            END,
        )
        .validated(Validator::Crc32Base62),
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
        vendor("npm-token", "npm access token (npm_…, CRC-32 checksum in the last 6 characters)", &["npm_"], "npm_[A-Za-z0-9]{36}", END)
            .validated(Validator::Crc32Base62),
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
            "dynatrace-api-token",
            "Dynatrace API token (dt0c01.…)",
            &["dt0c01."],
            r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}",
            END,
        ),
        // Source hosts.
        gitlab("gitlab-ci-job-token", "GitLab CI/CD job token (glcbt-…)", "glcbt-"),
        gitlab("gitlab-incoming-mail-token", "GitLab incoming email token (glimt-…)", "glimt-"),
        gitlab("gitlab-feed-token", "GitLab feed token (glft-…)", "glft-"),
        gitlab("gitlab-scim-token", "GitLab SCIM OAuth access token (glsoat-…)", "glsoat-"),
        gitlab("gitlab-oauth-app-secret", "GitLab OAuth application secret (gloas-…)", "gloas-"),
        gitlab("gitlab-agent-token", "GitLab agent for Kubernetes token (glagent-…)", "glagent-"),
        gitlab("gitlab-feature-flag-client-token", "GitLab feature flags client token (glffct-…)", "glffct-"),
        vendor(
            "bitbucket-access-token",
            "Bitbucket repository, project or workspace access token (ATCTT3…)",
            &["ATCTT3"],
            "ATCTT3[A-Za-z0-9_=-]{150,250}",
            END,
        ),
        named(
            "azure-devops-pat",
            "Azure DevOps personal access token (52 base32 characters, or 84 in the 2024 format) after AZURE_DEVOPS_PAT, ADO_PAT, SYSTEM_ACCESSTOKEN",
            AZURE_DEVOPS,
            "[a-z2-7]{52}|[A-Za-z0-9]{84}",
        ),
        named("gitea-token", "Gitea, Forgejo or Codeberg access token (40 hex) after GITEA_TOKEN and the like", GITEA, "[0-9a-f]{40}"),
        vendor(
            "youtrack-token",
            "JetBrains YouTrack or Hub permanent token (perm:<login>.<name>.<secret>)",
            &["perm:", "perm-"],
            r"perm[:-][A-Za-z0-9+/]{2,100}={0,2}\.[A-Za-z0-9+/]{2,100}={0,2}\.[A-Za-z0-9]{20,40}",
            END,
        ),
        // CI/CD.
        named(
            "circleci-legacy-token",
            "CircleCI legacy personal or project API token (40 hex) after CIRCLE_TOKEN, CIRCLECI_TOKEN, Circle-Token",
            CIRCLECI,
            "[0-9a-f]{40}",
        ),
        named("travis-ci-token", "Travis CI API token (22 characters) after TRAVIS_TOKEN and the like", &["travis"], "[A-Za-z0-9_-]{22}"),
        vendor("buildkite-token", "Buildkite user API access token (bkua_…)", &["bkua_"], "bkua_[0-9a-f]{40}", END),
        named(
            "buildkite-agent-token",
            "Buildkite agent registration token after BUILDKITE_AGENT_TOKEN",
            BUILDKITE_AGENT,
            "[A-Za-z0-9]{40,80}",
        ),
        named("drone-token", "Drone CI personal token (32 characters) after DRONE_TOKEN", DRONE, "[A-Za-z0-9]{32}"),
        named(
            "jenkins-api-token",
            "Jenkins API token (11 and 32 hex) after JENKINS_API_TOKEN and the like",
            &["jenkins"],
            "11[0-9a-f]{32}",
        ),
        vendor(
            "teamcity-token",
            "JetBrains TeamCity access token (eyJ0eXAiOiAiVENWMiJ9.…, a TCV2 header)",
            &["eyJ0eXAiOiAiVENWMiJ9."],
            r"eyJ0eXAiOiAiVENWMiJ9\.[A-Za-z0-9_-]{20,80}\.[A-Za-z0-9_-]{20,120}",
            END,
        ),
        vendor(
            "harness-token",
            "Harness personal (pat.…) or service account (sat.…) token: account id, token id, secret",
            &["pat.", "sat."],
            r"[ps]at\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{20,30}\.[A-Za-z0-9]{20}",
            END,
        ),
        vendor("octopus-deploy-api-key", "Octopus Deploy API key (API-…)", &["API-"], "API-[A-Z0-9]{25,32}", END),
        named("snyk-token", "Snyk API token (a UUID) after SNYK_TOKEN and the like", &["snyk"], UUID),
        vendor(
            "sonarqube-token",
            "SonarQube or SonarCloud user (squ_…), project analysis (sqp_…) or global analysis (sqa_…) token",
            &["squ_", "sqp_", "sqa_"],
            "sq[upa]_[0-9a-f]{40}",
            END,
        ),
        named("codecov-token", "Codecov upload token (a UUID) after CODECOV_TOKEN", &["codecov"], UUID),
        named("coveralls-token", "Coveralls repository token after COVERALLS_REPO_TOKEN", &["coveralls"], "[A-Za-z0-9]{32,40}"),
        // Package registries.
        vendor("rubygems-api-key", "RubyGems API key (rubygems_ and 48 hex)", &["rubygems_"], "rubygems_[0-9a-f]{48}", END),
        vendor("nuget-api-key", "NuGet.org API key (oy2 and 43 lower-case characters)", &["oy2"], "oy2[a-z0-9]{43}", END),
        vendor("crates-io-token", "crates.io API token (cio and 32 characters)", &["cio"], "cio[A-Za-z0-9]{32}", END),
        vendor(
            "jfrog-artifactory-token",
            "JFrog Artifactory API key (AKCp…) or reference token (cmVmdGtu…, base64 of reftkn)",
            &["AKCp", "cmVmdGtu"],
            "AKCp[A-Za-z0-9]{69}|cmVmdGtu[A-Za-z0-9]{56}",
            END,
        ),
        vendor(
            "packagist-token",
            "Private Packagist token (packagist_ and a three-letter kind)",
            &["packagist_"],
            "packagist_[a-z]{3}_[A-Za-z0-9]{32,128}",
            END,
        ),
        vendor("clojars-token", "Clojars deploy token (CLOJARS_ and 60 characters)", &["CLOJARS_"], "CLOJARS_[a-z0-9]{60}", END),
        named("hex-api-key", "Hex (Elixir) API key (32 hex) after HEX_API_KEY", HEX_PM, "[0-9a-f]{32}"),
        named("cocoapods-trunk-token", "CocoaPods trunk token (32 hex) after COCOAPODS_TRUNK_TOKEN", &["cocoapods"], "[0-9a-f]{32}"),
        // Observability and error tracking.
        named("sentry-legacy-token", "Sentry legacy auth token (64 hex) after SENTRY_AUTH_TOKEN and the like", &["sentry"], "[0-9a-f]{64}"),
        vendor(
            "grafana-api-key",
            "Grafana API key (eyJrIjoi…, base64 of {\"k\":…})",
            &["eyJrIjoi"],
            "eyJrIjoi[A-Za-z0-9+/]{40,200}={0,2}",
            END_B64,
        ),
        vendor("newrelic-browser-key", "New Relic browser API key (NRJS-…)", &["NRJS-"], "NRJS-[0-9a-f]{19}", END),
        vendor(
            "newrelic-insights-key",
            "New Relic Insights insert (NRII-…) or query (NRIQ-…) key",
            &["NRII-", "NRIQ-"],
            "NRI[IQ]-[A-Za-z0-9_-]{32}",
            END,
        ),
        vendor(
            "newrelic-admin-key",
            "New Relic admin (NRAA-…) or REST API (NRRA-…) key",
            &["NRAA-", "NRRA-"],
            "NR(?:AA|RA)-[A-Za-z0-9]{27,44}",
            END,
        ),
        named(
            "newrelic-license-key",
            "New Relic license (ingest) key (36 hex and NRAL, or 40 hex) after NEW_RELIC_LICENSE_KEY",
            NEW_RELIC,
            "[0-9a-f]{36}NRAL|[0-9a-f]{40}",
        ),
        named("datadog-api-key", "Datadog API key (32 hex) after DD_API_KEY, DATADOG_API_KEY, datadog.api_key", DATADOG, "[0-9a-f]{32}"),
        named(
            "datadog-app-key",
            "Datadog application key (40 hex) after DD_APP_KEY, DATADOG_APP_KEY, DD_APPLICATION_KEY",
            DATADOG,
            "[0-9a-f]{40}",
        ),
        vendor(
            "honeycomb-ingest-key",
            "Honeycomb ingest key (hcaik_…, hcxik_…)",
            &["hcaik_", "hcxik_"],
            "hc[ax]ik_[A-Za-z0-9]{20,80}",
            END,
        ),
        named(
            "honeycomb-api-key",
            "Honeycomb API or write key (22 characters, or 32 hex) after HONEYCOMB_API_KEY, HONEYCOMB_WRITEKEY, X-Honeycomb-Team",
            HONEYCOMB,
            "[A-Za-z0-9]{22}|[0-9a-f]{32}",
        ),
        named("splunk-hec-token", "Splunk HTTP Event Collector token (a UUID) after SPLUNK_HEC_TOKEN or Splunk", SPLUNK, UUID),
        named("sumologic-access-key", "Sumo Logic access key (64 characters) after SUMO_ACCESS_KEY", &["sumo"], "[A-Za-z0-9]{64}"),
        named("rollbar-access-token", "Rollbar access token (32 hex) after ROLLBAR_ACCESS_TOKEN", &["rollbar"], "[0-9a-f]{32}"),
        named("bugsnag-api-key", "Bugsnag API key (32 hex) after BUGSNAG_API_KEY", &["bugsnag"], "[0-9a-f]{32}"),
        vendor(
            "launchdarkly-key",
            "LaunchDarkly API access token (api-…), server SDK key (sdk-…) or mobile key (mob-…), each a UUID",
            &["api-", "sdk-", "mob-"],
            &format!("(?:api|sdk|mob)-{UUID}"),
            END,
        ),
        named("segment-write-key", "Segment write key (32 characters) after SEGMENT_WRITE_KEY", &["segment"], "[A-Za-z0-9]{32}"),
        named("mixpanel-api-secret", "Mixpanel API secret or token (32 hex) after MIXPANEL_API_SECRET", &["mixpanel"], "[0-9a-f]{32}"),
        named("amplitude-api-key", "Amplitude API or secret key (32 hex) after AMPLITUDE_API_KEY", &["amplitude"], "[0-9a-f]{32}"),
        vendor(
            "posthog-api-key",
            "PostHog project (phc_…) or personal (phx_…) API key",
            &["phc_", "phx_"],
            "ph[cx]_[A-Za-z0-9]{32,64}",
            END,
        ),
        named(
            "logzio-token",
            "Logz.io shipping token (32 letters) or API token (a UUID) after LOGZIO_TOKEN",
            LOGZIO,
            &format!("[A-Za-z]{{32}}|{UUID}"),
        ),
        named("loggly-token", "Loggly customer token (a UUID) after LOGGLY_TOKEN", &["loggly"], UUID),
        named("papertrail-token", "Papertrail API token (20 characters) after PAPERTRAIL_API_TOKEN", &["papertrail"], "[A-Za-z0-9]{20}"),
        named(
            "betterstack-token",
            "Better Stack (Logtail) source or API token (24–32 characters) after LOGTAIL_SOURCE_TOKEN",
            BETTER_STACK,
            "[A-Za-z0-9]{24,32}",
        ),
        vendor("axiom-token", "Axiom API (xaat-…) or personal (xapt-…) token", &["xaat-", "xapt-"], &format!("xa[ap]t-{UUID}"), END),
        named(
            "elastic-apm-secret",
            "Elastic APM secret token or API key after ELASTIC_APM_SECRET_TOKEN, ELASTIC_APM_API_KEY",
            ELASTIC_APM,
            "[A-Za-z0-9+/=_-]{16,128}",
        ),
        named("opsgenie-api-key", "Opsgenie API key (a UUID) after OPSGENIE_API_KEY or GenieKey", OPSGENIE, UUID),
        named(
            "pagerduty-api-key",
            "PagerDuty REST API key (20 characters) after PAGERDUTY_TOKEN or Token token=",
            PAGERDUTY,
            "[A-Za-z0-9_+-]{20}",
        ),
        named(
            "statuspage-api-key",
            "Atlassian Statuspage API key (a UUID or 32 hex) after STATUSPAGE_API_KEY",
            &["statuspage"],
            &format!("{UUID}|[0-9a-f]{{32}}"),
        ),
        named("checkly-api-key", "Checkly API key (cu_ and 32 hex) after CHECKLY_API_KEY", &["checkly"], "(?:cu_)?[0-9a-f]{32}"),
        named("codacy-token", "Codacy project or API token after CODACY_PROJECT_TOKEN", &["codacy"], "[A-Za-z0-9]{20,40}"),
        vendor("deepsource-token", "DeepSource personal access token (dsp_…)", &["dsp_"], "dsp_[A-Za-z0-9]{32,64}", END),
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::{f, n, p, uuid, Case, ALNUM, B64, HEX, HEX_UPPER, LETTERS, UPPER, URL_SAFE};
    use super::{
        AZURE_DEVOPS, BETTER_STACK, BUILDKITE_AGENT, CIRCLECI, DATADOG, DRONE, ELASTIC_APM, GITEA, HEX_PM, HONEYCOMB,
        LOGZIO, NEW_RELIC, OPSGENIE, PAGERDUTY, SPLUNK,
    };
    use crate::core::dlp::validators::with_crc32_base62 as with_checksum;

    const LOWER_ALNUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
    const BASE32_LOWER: &str = "abcdefghijklmnopqrstuvwxyz234567";

    /// One positive per name word of a [`super::named`] detector (`{WORD}_KEY={}`), so that every
    /// trigger literal starts a case.
    fn per_word(id: &'static str, words: &[&str], value: impl Fn(&str) -> String) -> Vec<Case> {
        words.iter().map(|word| p(id, &format!("{}_KEY={{}}", word.to_ascii_uppercase()), value(word))).collect()
    }

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        let checked = with_checksum(&f("ghp-crc", ALNUM, 30));
        // A valid checksum makes a token certain even when it looks like a slot: typed
        // characters, or a placeholder word.
        let typed = with_checksum("abcdefghijklmnopqrstuvwxyzABCD");
        let worded = with_checksum(&format!("example{}", f("ghp-ex", ALNUM, 23)));
        let mut all = vec![
            p("github-pat", "export GITHUB_TOKEN={}", format!("ghp_{}", f("ghp", ALNUM, 36))),
            p(
                "github-fine-grained-pat",
                r#"{"token": "{}"}"#,
                format!("github_pat_{}_{}", f("ghfg1", ALNUM, 22), f("ghfg2", ALNUM, 59)),
            ),
            p(
                "github-app-token",
                "git clone https://x-access-token:{}@github.com/acme/infra.git",
                format!("ghs_{}", f("ghs", ALNUM, 36)),
            ),
            p("github-app-token", "GH_TOKEN: {}", format!("ghu_{}", f("ghu", ALNUM, 36))),
            p(
                "github-oauth-token",
                "github.com:\n    oauth_token: {}\n    user: octo",
                format!("gho_{}", f("gho", ALNUM, 36)),
            ),
            p("github-oauth-token", "refresh_token={}", format!("ghr_{}", f("ghr", ALNUM, 76))),
            p("gitlab-pat", "PRIVATE-TOKEN: {}", format!("glpat-{}", f("glpat", URL_SAFE, 20))),
            p(
                "gitlab-pipeline-trigger-token",
                "curl -X POST -F token={} -F ref=main https://gitlab.acme.io/api/v4/projects/42/trigger/pipeline",
                format!("glptt-{}", f("glptt", HEX, 40)),
            ),
            p(
                "gitlab-deploy-token",
                "docker login -u gitlab+deploy-token-7 -p {} registry.gitlab.com",
                format!("gldt-{}", f("gldt", URL_SAFE, 20)),
            ),
            p("gitlab-runner-token", "[[runners]]\n  token = \"{}\"", format!("glrt-{}", f("glrt", URL_SAFE, 20))),
            p(
                "gitlab-runner-token",
                "gitlab-runner register --registration-token {}",
                format!("GR1348941{}", f("gr", URL_SAFE, 20)),
            ),
            p("bitbucket-app-password", "BITBUCKET_APP_PASSWORD={}", format!("ATBB{}", f("atbb", ALNUM, 32))),
            p(
                "atlassian-api-token",
                "JIRA_API_TOKEN={}",
                format!("ATATT3xFfGF0{}={}", f("atatt", URL_SAFE, 180), f("atatt-crc", HEX_UPPER, 8)),
            ),
            p(
                "circleci-token",
                "CIRCLECI_TOKEN={}",
                format!("CCIPAT_{}_{}", f("ccipat", ALNUM, 22), f("ccipat2", HEX, 40)),
            ),
            p(
                "circleci-token",
                "Circle-Token: {}",
                format!("CCIPRJ_{}_{}", f("cciprj", ALNUM, 22), f("cciprj2", HEX, 40)),
            ),
            p("npm-token", "//registry.npmjs.org/:_authToken={}", format!("npm_{}", f("npm", ALNUM, 36))),
            p(
                "pypi-token",
                "[pypi]\nusername = __token__\npassword = {}",
                format!("pypi-AgEIcHlwaS5vcmc{}", f("pypi", URL_SAFE, 150)),
            ),
            p(
                "pypi-token",
                "TWINE_PASSWORD={}",
                format!("pypi-AgENdGVzdC5weXBpLm9yZw{}", f("testpypi", URL_SAFE, 120)),
            ),
            p(
                "docker-hub-token",
                "echo {} | docker login -u acme --password-stdin",
                format!("dckr_pat_{}", f("dckr", URL_SAFE, 27)),
            ),
            p("postman-api-key", "POSTMAN_API_KEY={}", format!("PMAK-{}-{}", f("pmak1", HEX, 24), f("pmak2", HEX, 34))),
            p("grafana-token", "GRAFANA_CLOUD_TOKEN={}", format!("glc_eyJ{}", f("glc", B64, 120))),
            p(
                "grafana-token",
                "Authorization: Bearer {}",
                format!("glsa_{}_{}", f("glsa1", ALNUM, 32), f("glsa2", HEX, 8)),
            ),
            p("newrelic-api-key", "NEW_RELIC_API_KEY={}", format!("NRAK-{}", f("nrak", UPPER, 27))),
            p("sentry-token", "SENTRY_AUTH_TOKEN={}", format!("sntrys_eyJ{}", f("sntrys", B64, 150))),
            p("sentry-token", "sentry user token {}", format!("sntryu_{}", f("sntryu", HEX, 64))),
            p(
                "dynatrace-api-token",
                "DT_API_TOKEN={}",
                format!("dt0c01.{}.{}", f("dt1", UPPER, 24), f("dt2", UPPER, 64)),
            ),
            p("github-pat", "GITHUB_TOKEN={}", format!("ghp_{checked}")),
            p("github-pat", "token: {}", format!("ghp_{typed}")),
            p("github-pat", "gh auth login --with-token <<< {}", format!("ghp_{worded}")),
            p(
                "github-app-token",
                "Authorization: token {}",
                format!("ghs_{}", with_checksum(&f("ghs-crc", ALNUM, 30))),
            ),
            p(
                "github-oauth-token",
                "GH_ENTERPRISE_TOKEN={}",
                format!("gho_{}", with_checksum(&f("gho-crc", ALNUM, 30))),
            ),
            p(
                "npm-token",
                "//npm.pkg.github.com/:_authToken={}",
                format!("npm_{}", with_checksum(&f("npm-crc", ALNUM, 30))),
            ),
            p("npm-token", "NPM_TOKEN={}", format!("npm_{typed}")),
            // Source hosts.
            p(
                "gitlab-ci-job-token",
                "curl --header \"JOB-TOKEN: {}\" https://gitlab.acme.io/api/v4/jobs",
                format!("glcbt-64_{}", f("glcbt", URL_SAFE, 20)),
            ),
            p(
                "gitlab-incoming-mail-token",
                "GITLAB_INCOMING_EMAIL_TOKEN={}",
                format!("glimt-{}", f("glimt", ALNUM, 25)),
            ),
            p(
                "gitlab-feed-token",
                "https://gitlab.acme.io/dashboard/projects.atom?feed_token={}",
                format!("glft-{}", f("glft", URL_SAFE, 20)),
            ),
            p("gitlab-scim-token", "scim_token: {}", format!("glsoat-{}", f("glsoat", URL_SAFE, 20))),
            p("gitlab-oauth-app-secret", "GITLAB_CLIENT_SECRET={}", format!("gloas-{}", f("gloas", ALNUM, 64))),
            p(
                "gitlab-agent-token",
                "helm upgrade --install agent --set config.token={}",
                format!("glagent-{}", f("glagent", URL_SAFE, 50)),
            ),
            p(
                "gitlab-feature-flag-client-token",
                "UNLEASH_API_TOKEN={}",
                format!("glffct-{}", f("glffct", URL_SAFE, 20)),
            ),
            p(
                "bitbucket-access-token",
                "BITBUCKET_ACCESS_TOKEN={}",
                format!("ATCTT3xFfGN0{}={}", f("atctt", URL_SAFE, 180), f("atctt-crc", "0123456789ABCDEF", 8)),
            ),
            p("azure-devops-pat", "AZURE_DEVOPS_EXT_PAT={}", f("ado", BASE32_LOWER, 52)),
            p("azure-devops-pat", "  AZURE_DEVOPS_TOKEN: {}", f("ado-84", ALNUM, 84)),
            p("gitea-token", "GITEA_TOKEN={}", f("gitea", HEX, 40)),
            p(
                "youtrack-token",
                "Authorization: Bearer {}",
                format!("perm:{}==.{}==.{}", f("yt1", B64, 6), f("yt2", B64, 10), f("yt3", ALNUM, 30)),
            ),
            p(
                "youtrack-token",
                "YOUTRACK_TOKEN={}",
                format!("perm-{}.{}.{}", f("yt4", ALNUM, 8), f("yt5", ALNUM, 8), f("yt6", ALNUM, 30)),
            ),
            // CI/CD.
            p("circleci-legacy-token", "Circle-Token: {}", f("circle", HEX, 40)),
            p("travis-ci-token", "travis_api_token: {}", f("travis", URL_SAFE, 22)),
            p("buildkite-token", "BUILDKITE_API_TOKEN={}", format!("bkua_{}", f("bkua", HEX, 40))),
            p("drone-token", "export DRONE_TOKEN={}", f("drone", ALNUM, 32)),
            p("jenkins-api-token", "jenkins_api_token = \"{}\"", format!("11{}", f("jenkins", HEX, 32))),
            p(
                "teamcity-token",
                "TEAMCITY_TOKEN={}",
                format!("eyJ0eXAiOiAiVENWMiJ9.{}.{}", f("tc1", URL_SAFE, 36), f("tc2", URL_SAFE, 48)),
            ),
            p(
                "harness-token",
                "x-api-key: {}",
                format!("pat.{}.{}.{}", f("hn1", URL_SAFE, 22), f("hn2", HEX, 24), f("hn3", ALNUM, 20)),
            ),
            p(
                "harness-token",
                "HARNESS_TOKEN={}",
                format!("sat.{}.{}.{}", f("hn4", URL_SAFE, 22), f("hn5", HEX, 24), f("hn6", ALNUM, 20)),
            ),
            p("octopus-deploy-api-key", "X-Octopus-ApiKey: {}", format!("API-{}", f("octo", UPPER, 26))),
            p("snyk-token", "snyk auth {}", uuid("snyk")),
            p("snyk-token", "SNYK_TOKEN={}", uuid("snyk2")),
            p("sonarqube-token", "sonar.token={}", format!("squ_{}", f("squ", HEX, 40))),
            p("sonarqube-token", "SONAR_TOKEN={}", format!("sqp_{}", f("sqp", HEX, 40))),
            p("sonarqube-token", "SONAR_TOKEN: {}", format!("sqa_{}", f("sqa", HEX, 40))),
            p("codecov-token", "CODECOV_TOKEN={}", uuid("codecov")),
            p("coveralls-token", "COVERALLS_REPO_TOKEN={}", f("coveralls", ALNUM, 32)),
            // Package registries.
            p("rubygems-api-key", "---\n:rubygems_api_key: {}", format!("rubygems_{}", f("rubygems", HEX, 48))),
            p(
                "nuget-api-key",
                "dotnet nuget push pkg.nupkg --api-key {} --source nuget.org",
                format!("oy2{}", f("nuget", LOWER_ALNUM, 43)),
            ),
            p("crates-io-token", "CARGO_REGISTRY_TOKEN={}", format!("cio{}", f("cio", ALNUM, 32))),
            p("jfrog-artifactory-token", "X-JFrog-Art-Api: {}", format!("AKCp{}", f("akcp", ALNUM, 69))),
            p("jfrog-artifactory-token", "ARTIFACTORY_TOKEN={}", format!("cmVmdGtu{}", f("reftkn", ALNUM, 56))),
            p("packagist-token", "COMPOSER_AUTH token {}", format!("packagist_uut_{}", f("packagist", HEX, 68))),
            p("clojars-token", "CLOJARS_PASSWORD={}", format!("CLOJARS_{}", f("clojars", LOWER_ALNUM, 60))),
            p("cocoapods-trunk-token", "COCOAPODS_TRUNK_TOKEN={}", f("cocoapods", HEX, 32)),
            // Observability and error tracking.
            p("sentry-legacy-token", "sentry.auth_token: {}", f("sentry", HEX, 64)),
            p("grafana-api-key", "GRAFANA_API_KEY={}", format!("eyJrIjoi{}==", f("grafana", B64, 90))),
            p("newrelic-browser-key", "NEW_RELIC_BROWSER_KEY={}", format!("NRJS-{}", f("nrjs", HEX, 19))),
            p("newrelic-insights-key", "X-Insert-Key: {}", format!("NRII-{}", f("nrii", URL_SAFE, 32))),
            p("newrelic-insights-key", "X-Query-Key: {}", format!("NRIQ-{}", f("nriq", URL_SAFE, 32))),
            p("newrelic-admin-key", "X-Api-Key: {}", format!("NRAA-{}", f("nraa", HEX, 27))),
            p("newrelic-admin-key", "X-Api-Key: {}", format!("NRRA-{}", f("nrra", HEX, 42))),
            p("newrelic-license-key", "newrelic.license_key = '{}'", format!("{}NRAL", f("nral", HEX, 36))),
            p("datadog-api-key", "datadog.api_key: {}", f("dd-api", HEX, 32)),
            p("datadog-api-key", r#"{"datadogApiKey": "{}"}"#, f("dd-api2", HEX, 32)),
            p("datadog-app-key", "DD_APPLICATION_KEY={}", f("dd-app", HEX, 40)),
            p(
                "honeycomb-ingest-key",
                "OTEL_EXPORTER_OTLP_HEADERS=x-honeycomb-team={}",
                format!("hcaik_{}", f("hcaik", LOWER_ALNUM, 58)),
            ),
            p("honeycomb-ingest-key", "HONEYCOMB_API_KEY={}", format!("hcxik_{}", f("hcxik", LOWER_ALNUM, 58))),
            p("honeycomb-api-key", "HONEYCOMB_WRITEKEY={}", f("honeycomb", ALNUM, 22)),
            p(
                "honeycomb-api-key",
                "curl -H 'X-Honeycomb-Team: {}' https://api.honeycomb.io/1/auth",
                f("honeycomb-h", ALNUM, 22),
            ),
            p("splunk-hec-token", "Authorization: Splunk {}", uuid("splunk")),
            p("sumologic-access-key", "SUMO_ACCESS_KEY={}", f("sumo", ALNUM, 64)),
            p("rollbar-access-token", "ROLLBAR_ACCESS_TOKEN={}", f("rollbar", HEX, 32)),
            p("bugsnag-api-key", "Bugsnag.apiKey = \"{}\";", f("bugsnag", HEX, 32)),
            p("launchdarkly-key", "LD_SDK_KEY={}", format!("sdk-{}", uuid("ld-sdk"))),
            p("launchdarkly-key", "mobileKey: {}", format!("mob-{}", uuid("ld-mob"))),
            p("launchdarkly-key", "Authorization: {}", format!("api-{}", uuid("ld-api"))),
            p("segment-write-key", "SEGMENT_WRITE_KEY={}", f("segment", ALNUM, 32)),
            p("mixpanel-api-secret", "MIXPANEL_API_SECRET={}", f("mixpanel", HEX, 32)),
            p("amplitude-api-key", "AMPLITUDE_API_KEY={}", f("amplitude", HEX, 32)),
            p(
                "posthog-api-key",
                "posthog.init('{}', {api_host: 'https://us.i.posthog.com'})",
                format!("phc_{}", f("phc", ALNUM, 43)),
            ),
            p("posthog-api-key", "POSTHOG_PERSONAL_API_KEY={}", format!("phx_{}", f("phx", ALNUM, 43))),
            p("loggly-token", "LOGGLY_TOKEN={}", uuid("loggly")),
            p("papertrail-token", "X-Papertrail-Token: {}", f("papertrail", ALNUM, 20)),
            p("axiom-token", "AXIOM_TOKEN={}", format!("xaat-{}", uuid("xaat"))),
            p("axiom-token", "Authorization: Bearer {}", format!("xapt-{}", uuid("xapt"))),
            p("pagerduty-api-key", "Authorization: Token token={}", format!("u+{}", f("pd", URL_SAFE, 18))),
            p("statuspage-api-key", "STATUSPAGE_API_KEY={}", uuid("statuspage")),
            p("checkly-api-key", "CHECKLY_API_KEY={}", format!("cu_{}", f("checkly", HEX, 32))),
            p("codacy-token", "CODACY_PROJECT_TOKEN={}", f("codacy", ALNUM, 32)),
            p("deepsource-token", "DEEPSOURCE_PAT={}", format!("dsp_{}", f("dsp", HEX, 40))),
        ];
        // Every name word of the name-dependent detectors starts a case.
        let hex = |len: usize| move |word: &str| f(word, HEX, len);
        all.extend(per_word("datadog-api-key", DATADOG, hex(32)));
        all.extend(per_word("datadog-app-key", DATADOG, hex(40)));
        all.extend(per_word("azure-devops-pat", AZURE_DEVOPS, |w| f(w, BASE32_LOWER, 52)));
        all.extend(per_word("gitea-token", GITEA, hex(40)));
        all.extend(per_word("circleci-legacy-token", CIRCLECI, hex(40)));
        all.extend(per_word("buildkite-agent-token", BUILDKITE_AGENT, |w| f(w, ALNUM, 50)));
        all.extend(per_word("drone-token", DRONE, |w| f(w, ALNUM, 32)));
        all.extend(per_word("hex-api-key", HEX_PM, hex(32)));
        all.extend(per_word("newrelic-license-key", NEW_RELIC, hex(40)));
        all.extend(per_word("honeycomb-api-key", HONEYCOMB, |w| f(w, ALNUM, 22)));
        all.extend(per_word("splunk-hec-token", SPLUNK, uuid));
        all.extend(per_word("logzio-token", LOGZIO, |w| f(w, LETTERS, 32)));
        all.extend(per_word("betterstack-token", BETTER_STACK, |w| f(w, ALNUM, 24)));
        all.extend(per_word("elastic-apm-secret", ELASTIC_APM, |w| f(w, URL_SAFE, 40)));
        all.extend(per_word("opsgenie-api-key", OPSGENIE, uuid));
        all.extend(per_word("pagerduty-api-key", PAGERDUTY, |w| f(w, ALNUM, 20)));
        all
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        let typed = "abcdefghijklmnopqrstuvwxyzABCD";
        let checked = with_checksum(&f("ghp-crc-n", ALNUM, 30));
        let broken = format!("{}{}", &checked[..30], if checked.ends_with('A') { "BBBBBB" } else { "AAAAAA" });
        vec![
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
            n("postman-api-key", format!("PMAK-{}-{}", f("pm1", HEX, 24), f("pm2", HEX, 20))),
            n("grafana-token", format!("glsa_{}_{}", f("glsa-n1", ALNUM, 32), f("glsa-n2", HEX, 7))),
            n("newrelic-api-key", format!("NRAK-{}", f("nrak26", UPPER, 26))),
            n("sentry-token", format!("sntryu_{}", f("sntryu63", HEX, 63))),
            n("dynatrace-api-token", format!("dt0c01.{}.{}", f("dt-n1", HEX, 24), f("dt-n2", HEX, 64))),
            // No valid checksum: typed characters and placeholder words are slots, not tokens.
            n("github-pat", format!("ghp_{typed}012345 ghp_{}Zq999999", "Zq81".repeat(7))),
            n("github-pat", format!("token: ghp_example{}", &broken[7..])),
            n("github-app-token", format!("ghs_{typed}aaaaaa")),
            n("github-oauth-token", "gho_your_token_here gho_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            n("npm-token", format!("npm_{typed}ZZZZZZ npm_{}", "0".repeat(36))),
            // Source hosts.
            n("gitlab-ci-job-token", "glcbt-short and CI_JOB_TOKEN=$CI_JOB_TOKEN"),
            n("gitlab-incoming-mail-token", "glimt-tooshort"),
            n("gitlab-feed-token", "glft-xxxxxxxxxxxxxxxxxxxx"),
            n("gitlab-scim-token", "glsoat-"),
            n("gitlab-oauth-app-secret", "gloas-<your-secret>"),
            n("gitlab-agent-token", "glagent-abc"),
            n("gitlab-feature-flag-client-token", "glffct-1234"),
            n("bitbucket-access-token", format!("ATCTT3{}", f("atctt-s", ALNUM, 40))),
            n("azure-devops-pat", format!("AZURE_DEVOPS_PAT={} ADO_PAT=$(ADO_PAT)", f("ado-n", BASE32_LOWER, 51))),
            n("gitea-token", format!("GITEA_URL=https://gitea.acme.io GITEA_TOKEN={}", f("gitea-n", HEX, 39))),
            n("youtrack-token", "see perm:read and perm-gen settings"),
            // CI/CD.
            n("circleci-legacy-token", format!("CIRCLE_SHA1={} CIRCLE_TOKEN=", f("circle-sha", HEX, 40))),
            n("travis-ci-token", format!("TRAVIS_COMMIT={}", f("travis-n", HEX, 40))),
            n("buildkite-token", format!("bkua_{}", f("bkua-n", HEX, 30))),
            n("buildkite-agent-token", "BUILDKITE_AGENT_TOKEN=${BUILDKITE_AGENT_TOKEN}"),
            n("drone-token", format!("DRONE_SERVER={}", f("drone-n", ALNUM, 32))),
            n("jenkins-api-token", format!("JENKINS_API_TOKEN={}", f("jenkins-n", HEX, 34).replace("11", "ab"))),
            n("teamcity-token", "eyJ0eXAiOiAiVENWMiJ9.short.x"),
            n("harness-token", "pat. pending; sat. on it; pat.abc.def.ghi"),
            n("octopus-deploy-api-key", "api-gateway API-KEY API-v2 x-api-key"),
            n("snyk-token", format!("SNYK_ORG_ID={}", uuid("snyk-org"))),
            n("sonarqube-token", format!("squ_{} sqx_{}", f("squ-n", HEX, 39), f("sqx", HEX, 40))),
            n("codecov-token", format!("CODECOV_URL={}", uuid("codecov-n"))),
            n("coveralls-token", "COVERALLS_REPO_TOKEN=short"),
            // Package registries.
            n("rubygems-api-key", format!("rubygems_{}", f("rubygems-n", HEX, 40))),
            n("nuget-api-key", format!("oy2{} toy2{}", f("nuget-n", LOWER_ALNUM, 40), f("nuget-n2", LOWER_ALNUM, 43))),
            n("crates-io-token", format!("precious {} cio{}", f("cio-n", ALNUM, 32), f("cio-n2", ALNUM, 31))),
            n("jfrog-artifactory-token", format!("AKCp{}", f("akcp-n", ALNUM, 40))),
            n("packagist-token", "packagist_url: https://repo.packagist.com"),
            n("clojars-token", "CLOJARS_USERNAME=acme"),
            n("hex-api-key", format!("HEX_API_URL={}", f("hex-n", HEX, 32))),
            n("cocoapods-trunk-token", format!("COCOAPODS_TRUNK_TOKEN={}", f("cocoapods-n", HEX, 31))),
            // Observability and error tracking.
            n("sentry-legacy-token", format!("SENTRY_RELEASE={}", f("sentry-n", HEX, 64))),
            n("grafana-api-key", "eyJrIjoi"),
            n("newrelic-browser-key", format!("NRJS-{}", f("nrjs-n", HEX, 10))),
            n("newrelic-insights-key", "NRII-short"),
            n("newrelic-admin-key", "NRAA-short NRRA-"),
            n("newrelic-license-key", format!("NEW_RELIC_APP_NAME={}", f("nral-n", HEX, 40))),
            n("datadog-api-key", format!("DD_SITE=datadoghq.eu DD_API_KEY={} DD_ENV=prod", f("dd-n", HEX, 31))),
            n("datadog-app-key", format!("DD_APP_KEY={}", "0".repeat(40))),
            n("honeycomb-ingest-key", "hcaik_short"),
            n("honeycomb-api-key", "HONEYCOMB_DATASET=frontend-production1"),
            n("splunk-hec-token", "Splunk Enterprise 9.1 and splunk_hec_token=${HEC_TOKEN}"),
            n("sumologic-access-key", format!("SUMO_ACCESS_ID=su{}", f("sumo-n", ALNUM, 12))),
            n("rollbar-access-token", "ROLLBAR_ENV=production"),
            n("bugsnag-api-key", "bugsnag.apiKey = 'YOUR_API_KEY'"),
            n("launchdarkly-key", format!("api-gateway sdk-version mob-{}", f("ld-n", HEX, 32))),
            n("segment-write-key", "segment: abc, SEGMENT_WRITE_KEY=<your-write-key>"),
            n("mixpanel-api-secret", format!("MIXPANEL_PROJECT_ID={}", f("mixpanel-n", "0123456789", 7))),
            n("amplitude-api-key", "amplitude = 0.5 * amplitude_max"),
            n("posthog-api-key", format!("phc_{}", f("phc-n", ALNUM, 20))),
            n("logzio-token", "LOGZIO_LISTENER=listener.logz.io"),
            n("loggly-token", format!("LOGGLY_TAG={}", uuid("loggly-n"))),
            n("papertrail-token", "PAPERTRAIL_HOST=logs5.papertrailapp.com"),
            n("betterstack-token", "LOGTAIL_SOURCE_TOKEN=changeme"),
            n("axiom-token", format!("xaat-{}", f("xaat-n", HEX, 20))),
            n("elastic-apm-secret", "ELASTIC_APM_SERVER_URL=http://127.0.0.1:8200"),
            n("opsgenie-api-key", "GenieKey <your-api-key>"),
            n("pagerduty-api-key", "PAGERDUTY_TOKEN=xxxxxxxxxxxxxxxxxxxx"),
            n("statuspage-api-key", format!("STATUSPAGE_PAGE_ID={}", f("sp-n", LOWER_ALNUM, 12))),
            n("checkly-api-key", format!("CHECKLY_ACCOUNT_ID={}", uuid("checkly-n"))),
            n("codacy-token", "CODACY_PROJECT_TOKEN=${{ secrets.CODACY }}"),
            n("deepsource-token", "dsp_short"),
        ]
    }

    /// The checksum decides first: valid means certain, even for a slot-like body; invalid
    /// leaves the token to the heuristics, which keep a generated-looking body and drop a typed
    /// one.
    #[test]
    fn a_valid_checksum_is_certain_and_an_invalid_one_falls_back_to_the_heuristics() {
        let engine = crate::core::dlp::engine::Engine::new(super::super::builtin()).unwrap();
        let github_pat = |token: &str| {
            crate::core::dlp::engine::tests::ids(&engine, &format!("GITHUB_TOKEN={token}"))
                .into_iter()
                .filter(|(id, _)| id == "github-pat")
                .map(|(_, span)| span)
                .collect::<Vec<_>>()
        };
        let typed = "abcdefghijklmnopqrstuvwxyzABCD";
        let certain = format!("ghp_{}", with_checksum(typed));
        assert_eq!(github_pat(&certain), vec![certain.clone()]);
        let generated_without_checksum = format!("ghp_{}q1W2e3", f("checksum-paths", ALNUM, 30));
        assert_eq!(github_pat(&generated_without_checksum), vec![generated_without_checksum.clone()]);
        assert!(github_pat(&format!("ghp_{typed}q1W2e3")).is_empty());
        assert!(github_pat(&format!("ghp_{}q1W2e3", "Ab".repeat(15))).is_empty());
    }
}
