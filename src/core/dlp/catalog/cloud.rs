//! Cloud providers and infrastructure: AWS, Google Cloud, Azure and other clouds, platforms as a
//! service, infrastructure as code, secrets managers and databases as a service.

use super::{assigned, detector, infix, vendor, END, END_B64};
use crate::core::dlp::detector::{Category, CharClass, DetectorSpec};

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
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
        .max_len(64)
        .reveal_trigger(),
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
        .max_len(128)
        .reveal_trigger(),
        vendor(
            "digitalocean-token",
            "DigitalOcean personal access, OAuth or refresh token (dop_v1_, doo_v1_, dor_v1_)",
            &["dop_v1_", "doo_v1_", "dor_v1_"],
            "do[por]_v1_[0-9a-f]{64}",
            END,
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
            "databricks-token",
            "Databricks personal access token (dapi…)",
            &["dapi"],
            "dapi[0-9a-f]{32}(?:-[0-9])?",
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
