//! Developer tools: source hosts, CI/CD, package registries, observability and error tracking.

use super::{vendor, END, END_B64};
use crate::core::dlp::detector::DetectorSpec;

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
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
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::Case;

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        Vec::new()
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        Vec::new()
    }
}
