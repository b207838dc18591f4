//! Cloud providers and infrastructure: AWS, Google Cloud, Azure and other clouds, platforms as a
//! service, infrastructure as code, secrets managers and databases as a service.
//!
//! Formats with a documented prefix (`LTAI`, `AKID`, `SCW`, `napi_`, `pscale_tkn_`, `tskey-`) are
//! found anywhere; formats without one (Linode, Hetzner, Vultr, Cloudflare, Fastly tokens, most
//! secret halves of key pairs) only where they are assigned to one of their vendor's names
//! (`LINODE_TOKEN=…`, `cloudflare.api_token: …`, `--hcloud-token …`), so that text without the
//! vendor's name costs nothing. Two Azure formats are self-identifying in the middle of the key:
//! AI-services keys carry `JQQJ99…ACOG` and container-registry passwords `+ACR`.
//!
//! Long values (session tokens, macaroons, service-account tokens) are open-ended repetitions
//! (`{100,}`) bounded by the detector's `max_len`: a counted repetition such as `{100,3000}`
//! compiles to thousands of automaton states in every worker.

use super::{assigned, detector, infix, named, vendor, ASSIGN, END, END_B64, NAME_GAP, UUID};
use crate::core::dlp::detector::{Category, CharClass, DetectorSpec};

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    let mut all = aws_gcp_azure();
    all.extend(other_clouds());
    all.extend(platforms_and_databases());
    all
}

/// AWS, Google Cloud and Azure.
fn aws_gcp_azure() -> Vec<DetectorSpec> {
    vec![
        DetectorSpec::prefixed(
            "aws-access-key",
            "AWS access key id: AKIA (long-term), ASIA (temporary), ABIA (STS service bearer), ACCA (context-specific) + 16 upper-case alphanumerics",
            &["AKIA", "ASIA", "ABIA", "ACCA"],
            r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?-u:\b)",
        ),
        named(
            "aws-secret-access-key",
            "AWS secret access key (40 base64 characters) assigned to aws_secret_access_key, SecretAccessKey, aws_secret_key or --aws-secret-access-key",
            &["secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret_key", "awssecretkey"],
            assigned("secret[_-]?access[_-]?key|aws_?secret_?key", "[A-Za-z0-9/+]{40}", END_B64),
        ),
        named(
            "aws-session-token",
            "AWS STS session token (base64 starting IQoJb3JpZ2luX2Vj, FwoGZXIvYXdz or FQoGZXIvYXdz), or any 100+ base64 characters assigned to aws_session_token or SessionToken",
            &["IQoJb3JpZ2luX2Vj", "FwoGZXIvYXdz", "FQoGZXIvYXdz", "session_token", "sessiontoken"],
            assigned("session_?token", "[A-Za-z0-9/+]{100,}={0,2}", END_B64).or_bare(),
        )
        .max_len(4096),
        vendor(
            "aws-bedrock-api-key",
            "Amazon Bedrock API key: long-term (ABSK + base64 of BedrockAPIKey-…) or short-term (bedrock-api-key- + base64 of a presigned bedrock.amazonaws.com URL)",
            &["ABSKQmVkcm9ja0FQSUtleS", "bedrock-api-key-"],
            "ABSKQmVkcm9ja0FQSUtleS[A-Za-z0-9+/]{60,}={0,2}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/]{60,}={0,2}",
            END_B64,
        )
        .max_len(4200),
        vendor(
            "amazon-mws-auth-token",
            "Amazon Marketplace Web Service auth token (amzn.mws. + UUID)",
            &["amzn.mws."],
            r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            END,
        ),
        vendor("gcp-api-key", "Google Cloud / Firebase / Gemini API key (AIza + 35 URL-safe characters)", &["AIza"], "AIza[A-Za-z0-9_-]{35}", END),
        vendor(
            "gcp-oauth-client-secret",
            "Google OAuth client secret (GOCSPX- + 28 URL-safe characters)",
            &["GOCSPX-"],
            "GOCSPX-[A-Za-z0-9_-]{28}",
            END,
        ),
        vendor(
            "gcp-oauth-access-token",
            "Google OAuth access token (ya29. + 50–2048 URL-safe characters)",
            &["ya29."],
            r"ya29\.[A-Za-z0-9_-]{50,}",
            END,
        )
        .max_len(2100),
        vendor(
            "gcp-oauth-refresh-token",
            "Google OAuth refresh token (1//0 + 40–400 URL-safe characters)",
            &["1//0"],
            "1//0[A-Za-z0-9_-]{40,}",
            END,
        ),
        // The sender's key id before `:APA91b` stays visible, like a vendor prefix: only the
        // 134+ characters after it are the secret.
        detector(
            "firebase-cloud-messaging-server-key",
            Category::Credential,
            "Firebase Cloud Messaging legacy server key (AAAA + 7 URL-safe characters + :APA91b + 134–140 URL-safe characters)",
            infix(":APA91b", CharClass::EmailLocal, 11),
            &format!("AAAA[A-Za-z0-9_-]{{7}}:APA91b(?P<secret>[A-Za-z0-9_-]{{134,140}}){END}"),
        )
        .max_len(200)
        .reveal_trigger(),
        named(
            "azure-storage-account-key",
            "Azure storage or Cosmos DB account key (86 base64 characters + ==) after AccountKey= or assigned to an AZURE_STORAGE_…KEY or COSMOS_…KEY name",
            &["AccountKey", "azure_storage", "cosmos"],
            assigned(&format!("accountkey|azure_storage{NAME_GAP}key|cosmos{NAME_GAP}key"), "[A-Za-z0-9+/]{86}==", END_B64),
        ),
        DetectorSpec::prefixed(
            "azure-shared-access-key",
            "Azure Service Bus, Event Hubs or IoT Hub key in a connection string (SharedAccessKey= + 43 base64 characters + =)",
            &["SharedAccessKey="],
            &format!("SharedAccessKey=(?P<secret>[A-Za-z0-9+/]{{42,43}}=){END_B64}"),
        ),
        DetectorSpec::prefixed(
            "azure-sas-signature",
            "Azure shared access signature in a SAS URL or token (sig= + 43 base64 characters + =, also URL-encoded)",
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
            "Microsoft Entra ID (Azure AD) application client secret (3 characters, a digit, Q~, 31–34 characters)",
            infix("Q~", CharClass::EmailLocal, 4),
            "[A-Za-z0-9_.-]{3}[0-9]Q~(?P<secret>[A-Za-z0-9_.~-]{31,34})",
        )
        .max_len(64)
        .reveal_trigger(),
        // Microsoft's identifiable keys carry a fixed signature at a fixed offset, but nothing
        // marks where they start: an `Infix` trigger on the signature would hold back the last
        // word of every streamed sentence (it could be the key's beginning). They are found
        // after any name ending in `key` (or a password name), and masked whole.
        DetectorSpec::prefixed(
            "azure-ai-services-key",
            "Azure AI services / Azure OpenAI / Cognitive Services key, 84-character identifiable format (52 alphanumerics + JQQJ99 + 18 + ACOG + 4), assigned to a …KEY name or in AzureKeyCredential(…)",
            &["key"],
            &format!(
                r#"(?:(?i:key[12]?){ASSIGN}|(?i:keycredential)\((?:\\?["'])?)(?P<secret>[A-Za-z0-9]{{52}}JQQJ9[9DH][A-Za-z0-9]{{18}}ACOG[A-Za-z0-9]{{4}}){END}"#
            ),
        ),
        named(
            "azure-container-registry-password",
            "Azure Container Registry password, identifiable format (42 base64 characters + +ACR + 6 alphanumerics), assigned to a …PASSWORD name or after docker login -p",
            &["password", "passwd", "-p "],
            assigned("passw(?:or)?d|-p", r"[A-Za-z0-9+/]{42}\+ACR[A-Za-z0-9]{6}", END),
        ),
        named(
            "azure-subscription-key",
            "Azure AI services, Azure OpenAI or API Management subscription key (32 hex digits) assigned to an AZURE_…KEY name or Ocp-Apim-Subscription-Key",
            &["azure", "ocp-apim-subscription-key"],
            assigned("azure[a-z0-9_.(-]{0,40}(?:key|secret)|ocp-apim-subscription-key", "[0-9a-fA-F]{32}", END),
        ),
    ]
}

/// Other public clouds and CDNs.
fn other_clouds() -> Vec<DetectorSpec> {
    vec![
        vendor("alibaba-access-key-id", "Alibaba Cloud AccessKey id (LTAI + 12–20 alphanumerics)", &["LTAI"], "LTAI[A-Za-z0-9]{12,20}", END),
        named(
            "alibaba-access-key-secret",
            "Alibaba Cloud AccessKey secret (30 alphanumerics) assigned to an ALIBABA_CLOUD_…SECRET, ALICLOUD_SECRET_KEY or access_key_secret name",
            &["alibaba", "alicloud", "aliyun", "access_key_secret", "accesskeysecret"],
            assigned(&format!("(?:alibaba|alicloud|aliyun){NAME_GAP}secret(?:_?key)?|access_?key_?secret"), "[A-Za-z0-9]{30}", END),
        ),
        vendor("tencent-cloud-secret-id", "Tencent Cloud SecretId (AKID + 32 alphanumerics)", &["AKID"], "AKID[A-Za-z0-9]{32}", END),
        named(
            "tencent-cloud-secret-key",
            "Tencent Cloud SecretKey (32 alphanumerics) assigned to a TENCENTCLOUD_…SECRET_KEY or QCLOUD_…SECRET name",
            &["tencent", "qcloud"],
            assigned(&format!("(?:tencent|qcloud){NAME_GAP}secret(?:_?key)?"), "[A-Za-z0-9]{32}", END),
        ),
        named(
            "huawei-cloud-secret-key",
            "Huawei Cloud secret access key (40 alphanumerics) assigned to a HUAWEICLOUD_SDK_SK or HUAWEI_…SECRET_KEY name",
            &["huawei"],
            assigned(&format!("huawei{NAME_GAP}(?:sk|secret(?:_?(?:access_?)?key)?)"), "[A-Za-z0-9]{40}", END),
        ),
        named(
            "ibm-cloud-api-key",
            "IBM Cloud API key (44 URL-safe characters) assigned to IBMCLOUD_API_KEY, IBM_CLOUD_API_KEY or IC_API_KEY",
            &["ibm", "ic_api_key"],
            assigned("ibm[a-z0-9_.-]{0,16}api_?key|ic_api_key", "[A-Za-z0-9_-]{44}", END),
        ),
        named(
            "linode-token",
            "Linode / Akamai Cloud personal access token (64 hex digits) assigned to a LINODE_…TOKEN name",
            &["linode"],
            assigned(&format!("linode{NAME_GAP}(?:token|key|pat)"), "[0-9a-f]{64}", END),
        ),
        named(
            "vultr-api-key",
            "Vultr API key (36 upper-case alphanumerics) assigned to a VULTR_…KEY name",
            &["vultr"],
            assigned(&format!("vultr{NAME_GAP}(?:key|token)"), "[A-Z0-9]{36}", END),
        ),
        named(
            "hetzner-cloud-token",
            "Hetzner Cloud API token (64 alphanumerics) assigned to HCLOUD_TOKEN or a HETZNER_…TOKEN name",
            &["hcloud", "hetzner"],
            assigned(&format!("(?:hcloud|hetzner){NAME_GAP}(?:token|key)"), "[A-Za-z0-9]{64}", END),
        ),
        vendor("scaleway-access-key", "Scaleway access key (SCW + 17 upper-case alphanumerics)", &["SCW"], "SCW[A-Z0-9]{17}", END),
        named(
            "scaleway-secret-key",
            "Scaleway secret key (a UUID) assigned to SCW_SECRET_KEY or a SCALEWAY_…SECRET name",
            &["scw_secret", "scaleway"],
            assigned(&format!("scw_secret_?key|scaleway{NAME_GAP}secret(?:_?key)?"), UUID, END),
        ),
        named(
            "ovh-api-secret",
            "OVHcloud application secret or consumer key (32 alphanumerics) assigned to an OVH_…SECRET or OVH_CONSUMER_KEY name",
            &["ovh"],
            assigned(&format!("ovh{NAME_GAP}(?:secret|consumer_?key)"), "[A-Za-z0-9]{32}", END),
        ),
        vendor(
            "yandex-cloud-api-key",
            "Yandex Cloud API key (AQVN + 35–38 URL-safe characters)",
            &["AQVN"],
            "AQVN[A-Za-z0-9_-]{35,38}",
            END,
        ),
        vendor(
            "yandex-cloud-iam-token",
            "Yandex Cloud IAM token (t1. + URL-safe characters + . + 86 URL-safe characters)",
            &["t1."],
            r"t1\.[A-Za-z0-9_-]{20,}={0,2}\.[A-Za-z0-9_-]{86}={0,2}",
            END_B64,
        )
        .max_len(1024),
        named(
            "yandex-cloud-static-key",
            "Yandex Cloud static access key secret (YC + 38 URL-safe characters) assigned to a YANDEX_…SECRET/KEY name",
            &["yandex"],
            assigned(&format!("yandex{NAME_GAP}(?:secret|key)"), "YC[A-Za-z0-9_-]{38}", END),
        ),
        named(
            "cloudflare-api-token",
            "Cloudflare API token (40 URL-safe characters) assigned to a CLOUDFLARE_…TOKEN name, CF_API_TOKEN or CF_DNS_API_TOKEN",
            &["cloudflare", "cf_api_token", "cf_dns_api_token"],
            assigned(&format!("cloudflare{NAME_GAP}token|cf_(?:dns_)?api_token"), "[A-Za-z0-9_-]{40}", END),
        ),
        named(
            "cloudflare-global-api-key",
            "Cloudflare global API key (37 hex digits) assigned to a CLOUDFLARE_…KEY name, CF_API_KEY or X-Auth-Key",
            &["cloudflare", "cf_api_key", "x-auth-key"],
            assigned(&format!("cloudflare{NAME_GAP}key|cf_api_key|x-auth-key"), "[0-9a-f]{37}", END),
        ),
        vendor(
            "cloudflare-origin-ca-key",
            "Cloudflare Origin CA key (v1.0- + 24 hex digits + - + 146 hex digits)",
            &["v1.0-"],
            r"v1\.0-[0-9a-f]{24}-[0-9a-f]{146}",
            END,
        ),
        named(
            "fastly-api-token",
            "Fastly API token (32 URL-safe characters) assigned to a FASTLY_…TOKEN/KEY name or Fastly-Key",
            &["fastly"],
            assigned(&format!("fastly{NAME_GAP}(?:token|key)"), "[A-Za-z0-9_-]{32}", END),
        ),
        vendor(
            "akamai-edgegrid-token",
            "Akamai EdgeGrid client or access token (akab- + 16 + - + 16 lower-case alphanumerics)",
            &["akab-"],
            "akab-[a-z0-9]{16}-[a-z0-9]{16}",
            END,
        ),
        named(
            "backblaze-b2-application-key",
            "Backblaze B2 application key (K + 3 digits + 27 base64 characters) assigned to B2_APPLICATION_KEY or a BACKBLAZE_…KEY name",
            &["b2_app", "backblaze"],
            assigned(&format!("b2_app(?:lication)?_key|backblaze{NAME_GAP}key"), "K[0-9]{3}[A-Za-z0-9+/]{27}", END_B64),
        ),
        vendor(
            "openshift-user-token",
            "OpenShift OAuth user token (sha256~ + 43 URL-safe characters)",
            &["sha256~"],
            "sha256~[A-Za-z0-9_-]{43}",
            END,
        ),
    ]
}

/// Platforms as a service, infrastructure as code, secrets managers, networking and databases as
/// a service.
fn platforms_and_databases() -> Vec<DetectorSpec> {
    vec![
        named(
            "vault-token",
            "HashiCorp Vault service, batch or recovery token (hvs., hvb., hvr. + 24–512 URL-safe characters), or a legacy s. + 24 token assigned to VAULT_TOKEN or X-Vault-Token",
            &["hvs.", "hvb.", "hvr.", "vault_token", "x-vault-token"],
            assigned("vault_token|x-vault-token", r"hv[sbr]\.[A-Za-z0-9_-]{24,}|s\.[A-Za-z0-9]{24}", END).or_bare(),
        )
        .max_len(600),
        detector(
            "terraform-cloud-token",
            Category::Credential,
            "Terraform Cloud / Enterprise API token (14 alphanumerics + .atlasv1. + 60–70 characters)",
            infix(".atlasv1.", CharClass::UrlScheme, 14),
            r"[A-Za-z0-9]{14}\.atlasv1\.(?P<secret>[A-Za-z0-9_=-]{60,70})",
        )
        .max_len(128)
        .reveal_trigger(),
        vendor(
            "digitalocean-token",
            "DigitalOcean personal access, OAuth or refresh token (dop_v1_, doo_v1_, dor_v1_ + 64 hex digits)",
            &["dop_v1_", "doo_v1_", "dor_v1_"],
            "do[por]_v1_[0-9a-f]{64}",
            END,
        ),
        vendor(
            "doppler-token",
            "Doppler personal, service, service-account or CLI token (dp.pt., dp.st., dp.sa., dp.ct. + 40–44 alphanumerics)",
            &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct."],
            r"dp\.(?:pt|st|sa|ct)\.(?:[a-z0-9_-]{2,35}\.)?[A-Za-z0-9]{40,44}",
            END,
        ),
        vendor("pulumi-token", "Pulumi access token (pul- + 40 hex digits)", &["pul-"], "pul-[0-9a-f]{40}", END),
        vendor(
            "flyio-token",
            "Fly.io access token (fo1_ + 43 URL-safe characters; FlyV1 fm1a_, fm1r_ or fm2_ + base64)",
            &["fo1_", "fm1a_", "fm1r_", "fm2_"],
            "fo1_[A-Za-z0-9_-]{43}|fm(?:1[ar]|2)_[A-Za-z0-9+/=_-]{64,}",
            END_B64,
        )
        .max_len(4096),
        named(
            "heroku-api-key",
            "Heroku API key (HRKU- + 30–80 URL-safe characters, or a UUID assigned to a HEROKU_…KEY/TOKEN name)",
            &["HRKU-", "heroku"],
            assigned("heroku[a-z0-9_-]{0,16}(?:key|token)", &format!("HRKU-[A-Za-z0-9_-]{{30,80}}|{UUID}"), END).or_bare(),
        ),
        vendor(
            "databricks-token",
            "Databricks personal access token (dapi + 32 hex digits) or OAuth secret (dose + 32 hex digits)",
            &["dapi", "dose"],
            "(?:dapi|dose)[0-9a-f]{32}(?:-[0-9])?",
            END,
        ),
        named(
            "netlify-access-token",
            "Netlify personal access token (nfp_ + 36 alphanumerics, or 40–46 URL-safe characters) assigned to a NETLIFY_…TOKEN name",
            &["netlify"],
            assigned(&format!("netlify{NAME_GAP}(?:token|key)"), "nfp_[A-Za-z0-9]{36}|[A-Za-z0-9_-]{40,46}", END),
        ),
        vendor("netlify-token", "Netlify personal access token (nfp_ + 36 alphanumerics)", &["nfp_"], "nfp_[A-Za-z0-9]{36}", END),
        named(
            "vercel-token",
            "Vercel access token (24 alphanumerics, or vck_/vcp_ + 24–64) assigned to a VERCEL_…TOKEN name",
            &["vercel"],
            assigned(&format!("vercel{NAME_GAP}(?:token|key)"), "vc[kp]_[A-Za-z0-9]{24,64}|[A-Za-z0-9]{24}", END),
        ),
        vendor("render-api-key", "Render API key (rnd_ + 32 alphanumerics)", &["rnd_"], "rnd_[A-Za-z0-9]{32}", END),
        named(
            "railway-token",
            "Railway account or project token (a UUID) assigned to RAILWAY_TOKEN or RAILWAY_API_TOKEN",
            &["railway"],
            assigned(&format!("railway{NAME_GAP}(?:token|key)"), UUID, END),
        ),
        vendor(
            "scalingo-api-token",
            "Scalingo API token (tk-us- + 48 URL-safe characters)",
            &["tk-us-"],
            "tk-us-[A-Za-z0-9_-]{48}",
            END,
        ),
        vendor(
            "supabase-token",
            "Supabase personal access token (sbp_ + 40 hex digits) or secret API key (sb_secret_ + 30–64 URL-safe characters)",
            &["sbp_", "sb_secret_"],
            "sbp_[0-9a-f]{40}|sb_secret_[A-Za-z0-9_-]{30,64}",
            END,
        ),
        vendor(
            "planetscale-token",
            "PlanetScale service token, password or OAuth token (pscale_tkn_, pscale_pw_, pscale_oauth_ + 32–64 characters)",
            &["pscale_tkn_", "pscale_pw_", "pscale_oauth_"],
            r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.-]{32,64}",
            END,
        ),
        vendor("neon-api-key", "Neon API key (napi_ + 64 lower-case alphanumerics)", &["napi_"], "napi_[a-z0-9]{64}", END),
        vendor(
            "mongodb-atlas-service-account-secret",
            "MongoDB Atlas service-account client secret (mdb_sa_sk_ + 40 URL-safe characters)",
            &["mdb_sa_sk_"],
            "mdb_sa_sk_[A-Za-z0-9_-]{40}",
            END,
        ),
        named(
            "mongodb-atlas-private-key",
            "MongoDB Atlas programmatic API private key (a UUID) assigned to MONGODB_ATLAS_PRIVATE_KEY, ATLAS_PRIVATE_KEY or MCLI_PRIVATE_API_KEY",
            &["mongodb_atlas", "atlas_private", "mcli_private"],
            assigned("(?:mongodb_atlas[a-z0-9_.-]{0,16}|atlas_|mcli_)private_(?:api_)?key", UUID, END),
        ),
        vendor(
            "clickhouse-cloud-api-secret",
            "ClickHouse Cloud API key secret (4b1d + 38 alphanumerics)",
            &["4b1d"],
            "4b1d[A-Za-z0-9]{38}",
            END,
        ),
        vendor(
            "pinecone-api-key",
            "Pinecone API key (pcsk_ + 4–8 alphanumerics + _ + 50–80 alphanumerics)",
            &["pcsk_"],
            "pcsk_[A-Za-z0-9]{4,8}_[A-Za-z0-9]{50,80}",
            END,
        ),
        named(
            "upstash-token",
            "Upstash Redis REST or QStash token (40–300 base64url characters) assigned to an UPSTASH_…TOKEN or QSTASH_TOKEN name",
            &["upstash", "qstash"],
            assigned("(?:upstash|qstash)[a-z0-9_.-]{0,32}token", "[A-Za-z0-9_=-]{40,}", END),
        ),
        named(
            "aiven-token",
            "Aiven API token (40–400 base64 characters) assigned to an AIVEN_…TOKEN name",
            &["aiven"],
            assigned(&format!("aiven{NAME_GAP}(?:token|key)"), "[A-Za-z0-9+/=]{40,}", END_B64),
        ),
        named(
            "confluent-api-secret",
            "Confluent Cloud API secret (64 base64 characters) assigned to a CONFLUENT_…SECRET name",
            &["confluent"],
            assigned("confluent[a-z0-9_.-]{0,32}secret", "[A-Za-z0-9+/]{64}", END_B64),
        ),
        named(
            "elastic-api-key",
            "Elasticsearch / Elastic Cloud API key (40–200 base64 characters) assigned to an ELASTIC_…API_KEY name",
            &["elastic"],
            assigned("elastic(?:search)?[a-z0-9_.-]{0,16}api_?key", "[A-Za-z0-9+/=_-]{40,}", END_B64),
        ),
        named(
            "infisical-token",
            "Infisical service token (st.….….…) or machine-identity client secret (64 hex digits) assigned to an INFISICAL_…TOKEN/SECRET name",
            &["infisical"],
            assigned(&format!("infisical{NAME_GAP}(?:token|secret)"), r"st\.[A-Za-z0-9]{16,40}\.[A-Za-z0-9]{16,40}\.[A-Za-z0-9]{16,40}|[0-9a-f]{64}", END),
        ),
        vendor(
            "onepassword-service-account-token",
            "1Password service account token (ops_eyJ + 250+ base64 characters)",
            &["ops_eyJ"],
            "ops_eyJ[A-Za-z0-9+/_-]{250,}={0,3}",
            END_B64,
        )
        .max_len(4200),
        vendor(
            "onepassword-secret-key",
            "1Password account secret key (A3- + 6 + 11 (or 6-5) + 5 + 5 + 5 upper-case alphanumerics, dash-separated)",
            &["A3-"],
            "A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}",
            END,
        ),
        vendor(
            "tailscale-key",
            "Tailscale auth, API, OAuth-client, SCIM or webhook key (tskey-<kind>- + key id + - + secret)",
            &["tskey-"],
            "tskey-[a-z]{3,8}-[A-Za-z0-9]{8,24}-[A-Za-z0-9]{16,64}",
            END,
        ),
        named(
            "ngrok-authtoken",
            "ngrok authtoken or API key (a digit + 24–27 alphanumerics + _ + 20–22 alphanumerics) assigned to an NGROK_…TOKEN/KEY name or authtoken",
            &["ngrok", "authtoken"],
            assigned(&format!("ngrok{NAME_GAP}(?:token|key)|authtoken"), "[1-3][A-Za-z0-9]{24,27}_[A-Za-z0-9]{20,22}", END),
        ),
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::{f, n, p, uuid, Case, ALNUM, B64, HEX, UPPER, URL_SAFE};

    const LOWER_ALNUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
    const UPPER_ONLY: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        let az_tail = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";
        let acr = |seed: &str| format!("{}+ACR{}", f(seed, B64, 42), f(&format!("{seed}-tail"), ALNUM, 6));
        let ai_services = |seed: &str| {
            format!(
                "{}JQQJ99{}ACOG{}",
                f(seed, ALNUM, 52),
                f(&format!("{seed}-mid"), ALNUM, 18),
                f(&format!("{seed}-end"), ALNUM, 4)
            )
        };
        vec![
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
            p("vault-token", "export VAULT_TOKEN={}", format!("hvs.{}", f("hvs", URL_SAFE, 90))),
            p("vault-token", "batch token {}", format!("hvb.{}", f("hvb", URL_SAFE, 130))),
            p("vault-token", "recovery token {}", format!("hvr.{}", f("hvr", URL_SAFE, 24))),
            p(
                "terraform-cloud-token",
                &format!(r#"{{"credentials": {{"app.terraform.io": {{"token": "{}.atlasv1.{{}}"}}}}}}"#, f("tfc1", ALNUM, 14)),
                f("tfc2", URL_SAFE, 67),
            ),
            p("digitalocean-token", "DIGITALOCEAN_TOKEN={}", format!("dop_v1_{}", f("dop", HEX, 64))),
            p("digitalocean-token", "oauth {}", format!("doo_v1_{}", f("doo", HEX, 64))),
            p("digitalocean-token", "refresh {}", format!("dor_v1_{}", f("dor", HEX, 64))),
            p("doppler-token", "DOPPLER_TOKEN={}", format!("dp.pt.{}", f("dppt", ALNUM, 43))),
            p("doppler-token", "service token {}", format!("dp.st.dev.{}", f("dpst", ALNUM, 40))),
            p("doppler-token", "service account {}", format!("dp.sa.{}", f("dpsa", ALNUM, 43))),
            p("doppler-token", "cli {}", format!("dp.ct.{}", f("dpct", ALNUM, 43))),
            p("pulumi-token", "PULUMI_ACCESS_TOKEN={}", format!("pul-{}", f("pulumi", HEX, 40))),
            p("flyio-token", "FLY_API_TOKEN=\"FlyV1 {}\"", format!("fm2_{}", f("fm2", B64, 200))),
            p("flyio-token", "fly token {}", format!("fo1_{}", f("fo1", URL_SAFE, 43))),
            p("heroku-api-key", "HEROKU_API_KEY={}", uuid("heroku")),
            p("heroku-api-key", "token: {}", format!("HRKU-{}", f("hrku", URL_SAFE, 60))),
            p("databricks-token", "DATABRICKS_TOKEN={}", format!("dapi{}", f("dapi", HEX, 32))),
            // AWS.
            p("aws-access-key", "AWS_ACCESS_KEY_ID={}", format!("ABIA{}", f("abia", UPPER, 16))),
            p("aws-access-key", "aws_access_key_id: {}", format!("ACCA{}", f("acca", UPPER, 16))),
            p("aws-secret-access-key", "aws configure set --aws-secret-access-key {}", f("aws-flag", B64, 40)),
            p("aws-secret-access-key", "export AWS_SECRET_KEY=\"{}\"", f("aws-secret-key", B64, 40)),
            p("aws-secret-access-key", "{\\\"awsSecretKey\\\": \\\"{}\\\"}", f("aws-escaped", B64, 40)),
            p("aws-session-token", "creds = {\"SessionToken\": \"{}\"}", f("sts-plain", B64, 240)),
            p("aws-session-token", "token {}", format!("FQoGZXIvYXdz{}", f("sts-old", B64, 180))),
            p(
                "aws-bedrock-api-key",
                "AWS_BEARER_TOKEN_BEDROCK={}",
                format!("ABSKQmVkcm9ja0FQSUtleS{}", f("absk", B64, 120)),
            ),
            p(
                "aws-bedrock-api-key",
                "export AWS_BEARER_TOKEN_BEDROCK={}&Version=1",
                format!("bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t{}", f("bedrock-short", B64, 400)),
            ),
            p("amazon-mws-auth-token", "MWS_AUTH_TOKEN={}", format!("amzn.mws.{}", uuid("mws"))),
            // Google.
            p("gcp-api-key", "GEMINI_API_KEY={}", format!("AIza{}", f("gemini", URL_SAFE, 35))),
            p(
                "gcp-oauth-refresh-token",
                r#"{"refresh_token": "{}", "token_uri": "x"}"#,
                format!("1//0{}", f("g-refresh", URL_SAFE, 99)),
            ),
            p(
                "firebase-cloud-messaging-server-key",
                &format!("FCM_SERVER_KEY=AAAA{}:APA91b{{}}", f("fcm-id", URL_SAFE, 7)),
                f("fcm", URL_SAFE, 134),
            ),
            // Azure.
            p(
                "azure-storage-account-key",
                "AZURE_STORAGE_ACCOUNT_KEY={}",
                format!("{}==", f("az-storage-env", B64, 86)),
            ),
            p("azure-storage-account-key", "cosmos_primary_key: \"{}\"", format!("{}==", f("cosmos", B64, 86))),
            p("azure-ai-services-key", "AZURE_OPENAI_API_KEY={}", ai_services("acog")),
            p("azure-ai-services-key", "credential = AzureKeyCredential(\"{}\")", ai_services("acog-sdk")),
            p("azure-container-registry-password", r#""password" : "{}""#, acr("acr")),
            p("azure-container-registry-password", "ACR_PASSWD={}", acr("acr-env")),
            p("azure-container-registry-password", "docker login acme.azurecr.io -u acme -p {}", acr("acr-cli")),
            p("azure-subscription-key", "AZURE_OPENAI_API_KEY = '{}'", f("az-oai", HEX, 32)),
            p("azure-subscription-key", "curl -H \"Ocp-Apim-Subscription-Key: {}\" https://x", f("apim", HEX, 32)),
            // Other clouds.
            p("alibaba-access-key-id", "ALIBABA_CLOUD_ACCESS_KEY_ID={}", format!("LTAI{}", f("ltai", ALNUM, 20))),
            p("alibaba-access-key-secret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET={}", f("ali-secret", ALNUM, 30)),
            p("alibaba-access-key-secret", "alicloud_secret_key = \"{}\"", f("alicloud", ALNUM, 30)),
            p("alibaba-access-key-secret", "aliyun.secret: {}", f("aliyun", ALNUM, 30)),
            p("alibaba-access-key-secret", "config.access_key_secret = '{}'", f("ali-sdk", ALNUM, 30)),
            p("alibaba-access-key-secret", "{\"accessKeySecret\": \"{}\"}", f("ali-json", ALNUM, 30)),
            p("tencent-cloud-secret-id", "TENCENTCLOUD_SECRET_ID={}", format!("AKID{}", f("akid", ALNUM, 32))),
            p("tencent-cloud-secret-key", "TENCENTCLOUD_SECRET_KEY={}", f("tencent", ALNUM, 32)),
            p("tencent-cloud-secret-key", "qcloud_secret_key: {}", f("qcloud", ALNUM, 32)),
            p("huawei-cloud-secret-key", "HUAWEICLOUD_SDK_SK={}", f("huawei", ALNUM, 40)),
            p("ibm-cloud-api-key", "IBMCLOUD_API_KEY={}", f("ibm", URL_SAFE, 44)),
            p("ibm-cloud-api-key", "export IC_API_KEY=\"{}\"", f("ic", URL_SAFE, 44)),
            p("linode-token", "LINODE_TOKEN={}", f("linode", HEX, 64)),
            p("vultr-api-key", "VULTR_API_KEY={}", f("vultr", UPPER_ONLY, 36)),
            p("hetzner-cloud-token", "HCLOUD_TOKEN={}", f("hcloud", ALNUM, 64)),
            p("hetzner-cloud-token", "HETZNER_API_TOKEN: {}", f("hetzner", ALNUM, 64)),
            p("scaleway-access-key", "SCW_ACCESS_KEY={}", format!("SCW{}", f("scw", UPPER_ONLY, 17))),
            p("scaleway-secret-key", "SCW_SECRET_KEY={}", uuid("scw-secret")),
            p("scaleway-secret-key", "scaleway_secret_key = \"{}\"", uuid("scaleway-secret")),
            p("ovh-api-secret", "OVH_APPLICATION_SECRET={}", f("ovh", ALNUM, 32)),
            p("yandex-cloud-api-key", "YC_API_KEY={}", format!("AQVN{}", f("aqvn", URL_SAFE, 36))),
            p(
                "yandex-cloud-iam-token",
                "Authorization: Bearer {}",
                format!("t1.{}.{}", f("yc-iam1", URL_SAFE, 120), f("yc-iam2", URL_SAFE, 86)),
            ),
            p("yandex-cloud-static-key", "yandex_secret_key: {}", format!("YC{}", f("ycm", URL_SAFE, 38))),
            p("cloudflare-api-token", "CLOUDFLARE_API_TOKEN={}", f("cf-token", URL_SAFE, 40)),
            p("cloudflare-api-token", "cf_api_token: {}", f("cf-api-token", URL_SAFE, 40)),
            p("cloudflare-api-token", "CF_DNS_API_TOKEN={}", f("cf-dns", URL_SAFE, 40)),
            p("cloudflare-global-api-key", "CLOUDFLARE_API_KEY={}", f("cf-global", HEX, 37)),
            p("cloudflare-global-api-key", "CF_API_KEY={}", f("cf-api-key", HEX, 37)),
            p("cloudflare-global-api-key", "-H 'X-Auth-Key: {}'", f("cf-header", HEX, 37)),
            p(
                "cloudflare-origin-ca-key",
                "origin_ca_key = \"{}\"",
                format!("v1.0-{}-{}", f("cf-ca1", HEX, 24), f("cf-ca2", HEX, 146)),
            ),
            p("fastly-api-token", "Fastly-Key: {}", f("fastly", URL_SAFE, 32)),
            p(
                "akamai-edgegrid-token",
                "client_token = {}",
                format!("akab-{}-{}", f("akab1", LOWER_ALNUM, 16), f("akab2", LOWER_ALNUM, 16)),
            ),
            p("backblaze-b2-application-key", "B2_APPLICATION_KEY={}", format!("K005{}", f("b2", B64, 27))),
            p("backblaze-b2-application-key", "backblaze_key: {}", format!("K001{}", f("b2-yaml", B64, 27))),
            p("openshift-user-token", "oc login --token={}", format!("sha256~{}", f("ocp", URL_SAFE, 43))),
            // Platforms, secrets managers, databases.
            p("vault-token", "VAULT_TOKEN={}", format!("s.{}", f("vault-legacy", ALNUM, 24))),
            p("vault-token", "-H \"X-Vault-Token: {}\"", format!("s.{}", f("vault-header", ALNUM, 24))),
            p("flyio-token", "FLY_API_TOKEN=\"FlyV1 {}\"", format!("fm1r_{}", f("fm1r", B64, 120))),
            p("flyio-token", "fly macaroon {}", format!("fm1a_{}", f("fm1a", B64, 120))),
            p("databricks-token", "DATABRICKS_CLIENT_SECRET={}", format!("dose{}", f("dose", HEX, 32))),
            p("netlify-access-token", "NETLIFY_AUTH_TOKEN={}", f("netlify", URL_SAFE, 43)),
            p("netlify-token", "token: {}", format!("nfp_{}", f("nfp", ALNUM, 36))),
            p("vercel-token", "VERCEL_TOKEN={}", f("vercel", ALNUM, 24)),
            p("render-api-key", "RENDER_API_KEY={}", format!("rnd_{}", f("rnd", ALNUM, 32))),
            p("railway-token", "RAILWAY_TOKEN={}", uuid("railway")),
            p("scalingo-api-token", "SCALINGO_API_TOKEN={}", format!("tk-us-{}", f("scalingo", URL_SAFE, 48))),
            p("supabase-token", "SUPABASE_ACCESS_TOKEN={}", format!("sbp_{}", f("sbp", HEX, 40))),
            p("supabase-token", "SUPABASE_SECRET_KEY={}", format!("sb_secret_{}", f("sb-secret", URL_SAFE, 31))),
            p(
                "planetscale-token",
                "PLANETSCALE_SERVICE_TOKEN={}",
                format!("pscale_tkn_{}", f("pscale-tkn", URL_SAFE, 43)),
            ),
            p("planetscale-token", "password: {}", format!("pscale_pw_{}", f("pscale-pw", URL_SAFE, 43))),
            p("planetscale-token", "oauth {}", format!("pscale_oauth_{}", f("pscale-oauth", URL_SAFE, 43))),
            p("neon-api-key", "NEON_API_KEY={}", format!("napi_{}", f("napi", LOWER_ALNUM, 64))),
            p(
                "mongodb-atlas-service-account-secret",
                "ATLAS_CLIENT_SECRET={}",
                format!("mdb_sa_sk_{}", f("mdb", URL_SAFE, 40)),
            ),
            p("mongodb-atlas-private-key", "MONGODB_ATLAS_PRIVATE_KEY={}", uuid("atlas")),
            p("mongodb-atlas-private-key", "atlas_private_key = \"{}\"", uuid("atlas-tf")),
            p("mongodb-atlas-private-key", "MCLI_PRIVATE_API_KEY={}", uuid("mcli")),
            p("clickhouse-cloud-api-secret", "CLICKHOUSE_KEY_SECRET={}", format!("4b1d{}", f("ch", ALNUM, 38))),
            p(
                "pinecone-api-key",
                "pc = Pinecone(api_key=\"{}\")",
                format!("pcsk_{}_{}", f("pcsk1", ALNUM, 6), f("pcsk2", ALNUM, 63)),
            ),
            p("upstash-token", "UPSTASH_REDIS_REST_TOKEN=\"{}\"", format!("A{}=", f("upstash", URL_SAFE, 70))),
            p("upstash-token", "QSTASH_TOKEN={}", format!("ey{}=", f("qstash", URL_SAFE, 90))),
            p("aiven-token", "AIVEN_TOKEN={}", f("aiven", B64, 372)),
            p("confluent-api-secret", "CONFLUENT_CLOUD_API_SECRET={}", f("confluent", B64, 64)),
            p("elastic-api-key", "ELASTIC_API_KEY={}", format!("{}==", f("elastic", B64, 58))),
            p(
                "infisical-token",
                "INFISICAL_TOKEN={}",
                format!("st.{}.{}.{}", f("inf1", ALNUM, 24), f("inf2", ALNUM, 32), f("inf3", ALNUM, 32)),
            ),
            p(
                "onepassword-service-account-token",
                "OP_SERVICE_ACCOUNT_TOKEN={}",
                format!("ops_eyJ{}", f("ops", B64, 600)),
            ),
            p(
                "onepassword-secret-key",
                "Secret Key: {}",
                format!(
                    "A3-{}-{}-{}-{}-{}",
                    f("op1", UPPER_ONLY, 6),
                    f("op2", UPPER_ONLY, 11),
                    f("op3", UPPER_ONLY, 5),
                    f("op4", UPPER_ONLY, 5),
                    f("op5", UPPER_ONLY, 5)
                ),
            ),
            p(
                "tailscale-key",
                "TS_AUTHKEY={}",
                format!("tskey-auth-{}CNTRL-{}", f("ts1", ALNUM, 10), f("ts2", ALNUM, 33)),
            ),
            p(
                "ngrok-authtoken",
                "ngrok config add-authtoken {}",
                format!("2{}_{}", f("ngrok1", ALNUM, 26), f("ngrok2", ALNUM, 21)),
            ),
            p(
                "ngrok-authtoken",
                "NGROK_AUTHTOKEN={}",
                format!("2{}_{}", f("ngrok3", ALNUM, 26), f("ngrok4", ALNUM, 21)),
            ),
        ]
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
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
            n("vault-token", "hvs.short"),
            n("terraform-cloud-token", format!("\"{}.atlasv1.{}\"", f("tfc13", ALNUM, 13), f("tfc-n", URL_SAFE, 67))),
            n("digitalocean-token", format!("dop_v1_{}", f("dop63", HEX, 63))),
            n("doppler-token", format!("dp.pt.{}", f("dppt30", ALNUM, 30))),
            n("pulumi-token", format!("pul-{}", f("pul39", HEX, 39))),
            n("flyio-token", "fo1_short"),
            n("heroku-api-key", format!("HEROKU_APP_ID={}", uuid("heroku-app"))),
            n("databricks-token", format!("rapidapi{} dapi{}", f("rapid", HEX, 32), f("dapi31", HEX, 31))),
            n("aws-bedrock-api-key", format!("ABSKQmVkcm9ja0FQSUtleS{}", f("absk-short", B64, 20))),
            n("amazon-mws-auth-token", "amzn.mws.not-a-uuid"),
            n("gcp-oauth-refresh-token", "x = n//0 + 1//0; y = 1//0short"),
            n(
                "firebase-cloud-messaging-server-key",
                format!("device token d1{}:APA91b{}", f("fcm-dev", URL_SAFE, 9), f("fcm-dev2", URL_SAFE, 134)),
            ),
            n(
                "azure-ai-services-key",
                format!(
                    "api_key={}JQQJ99{}XXXX{}",
                    f("acog-n1", ALNUM, 52),
                    f("acog-n2", ALNUM, 18),
                    f("acog-n3", ALNUM, 4)
                ),
            ),
            n("azure-ai-services-key", "the key is fine; key = value"),
            n(
                "azure-container-registry-password",
                format!("password={}+ACR{}", f("acr-n", B64, 30), f("acr-n2", ALNUM, 6)),
            ),
            n(
                "azure-subscription-key",
                format!("AZURE_CLIENT_ID={} AZURE_OPENAI_ENDPOINT=https://x", uuid("az-client")),
            ),
            n("alibaba-access-key-id", "LTAI_short"),
            n("alibaba-access-key-secret", format!("ALIBABA_CLOUD_ACCESS_KEY_SECRET={}", f("ali-n", ALNUM, 24))),
            n("tencent-cloud-secret-id", format!("AKID{}", f("akid-n", ALNUM, 20))),
            n("tencent-cloud-secret-key", "TENCENTCLOUD_SECRET_KEY=${TENCENT_SECRET}"),
            n("huawei-cloud-secret-key", format!("HUAWEICLOUD_SDK_AK={}", f("hw-ak", UPPER_ONLY, 20))),
            n("ibm-cloud-api-key", "IBMCLOUD_API_KEY=<your-ibm-cloud-api-key>"),
            n("linode-token", format!("LINODE_TOKEN={}", f("linode-n", HEX, 40))),
            n("vultr-api-key", "VULTR_API_KEY=your-vultr-api-key-goes-here"),
            n("hetzner-cloud-token", "HCLOUD_TOKEN: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            n("scaleway-access-key", "SCWRL is not a key; SCW12345"),
            n("scaleway-secret-key", "SCW_SECRET_KEY=not-a-uuid"),
            n("ovh-api-secret", "the ovh secret is rotated daily"),
            n("yandex-cloud-api-key", "AQVN_short"),
            n("yandex-cloud-iam-token", "t1.join(); t1.start()"),
            n("yandex-cloud-static-key", format!("YANDEX_KEY_ID=YCAJ{}", f("ycaj", URL_SAFE, 21))),
            n("cloudflare-api-token", "CLOUDFLARE_API_TOKEN=${{ secrets.CLOUDFLARE_API_TOKEN }}"),
            n("cloudflare-global-api-key", format!("CLOUDFLARE_ZONE_ID={}", f("cf-zone", HEX, 32))),
            n("cloudflare-origin-ca-key", "v1.0-beta released"),
            n("fastly-api-token", "fastly api token: see the vault"),
            n("akamai-edgegrid-token", "akab-short-key"),
            n("backblaze-b2-application-key", format!("B2_APPLICATION_KEY_ID=005{}", f("b2-id", HEX, 22))),
            n("openshift-user-token", "sha256~short"),
            n("vault-token", "VAULT_TOKEN=s.short and s.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123 in prose"),
            n("netlify-access-token", "NETLIFY_SITE_ID=my-site"),
            n("netlify-token", "nfp_short"),
            n("vercel-token", "VERCEL_ORG_ID=team_abc and VERCEL_TOKEN=${VERCEL_TOKEN}"),
            n("render-api-key", "rnd_short"),
            n("railway-token", "RAILWAY_PROJECT_ID=not-a-uuid"),
            n("scalingo-api-token", "tk-us-short"),
            n("supabase-token", format!("SUPABASE_ANON_KEY=sb_publishable_{}", f("sb-pub", URL_SAFE, 31))),
            n("planetscale-token", "pscale_tkn_short"),
            n("neon-api-key", format!("napi_{}", f("napi-n", LOWER_ALNUM, 32))),
            n("mongodb-atlas-service-account-secret", format!("ATLAS_CLIENT_ID=mdb_sa_id_{}", f("mdb-id", HEX, 24))),
            n(
                "mongodb-atlas-private-key",
                format!("MONGODB_ATLAS_PUBLIC_KEY={}", f("atlas-pub", "abcdefghijklmnopqrstuvwxyz", 8)),
            ),
            n("clickhouse-cloud-api-secret", format!("sha {}", f("ch-hex", HEX, 40))),
            n("pinecone-api-key", "pcsk_short_key"),
            n("upstash-token", "UPSTASH_REDIS_REST_URL=https://eu1-x.upstash.io"),
            n("aiven-token", "AIVEN_PROJECT=my-project"),
            n("confluent-api-secret", format!("CONFLUENT_CLOUD_API_KEY={}", f("confluent-key", UPPER_ONLY, 16))),
            n("elastic-api-key", "ELASTIC_API_KEY=changeme"),
            n("infisical-token", "INFISICAL_TOKEN=st.short.x.y"),
            n("onepassword-service-account-token", "ops_eyJshort"),
            n("onepassword-secret-key", "A3-ABCDEF-short"),
            n("tailscale-key", "tskey-auth-short"),
            n("ngrok-authtoken", "ngrok authtoken: see the dashboard"),
        ]
    }
}
