"""Cloud providers, infrastructure, secrets managers, databases as a service.

One Kind per documented format; `names` are the names people really assign the value to (env
vars, config keys, SDK arguments, CLI flags). Formats without a distinctive prefix are only
recognisable next to such a name.
"""

from . import ALNUM, B64, DIGITS, HEX, LOWER_ALNUM, UPPER_ALNUM, URL_SAFE, Kind, Secret, rand, snippet, token


def _uuid(r):
    h = rand(r, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _aws_key_id(prefix):
    return lambda r: token(prefix, rand(r, UPPER_ALNUM, 16))


def _aws_credentials_file(r):
    return snippet(
        "[profile deploy]\naws_access_key_id = AKIA{key_id}\naws_secret_access_key = {secret}\nregion = eu-west-1\n",
        key_id=rand(r, UPPER_ALNUM, 16),
        secret=rand(r, B64, 40),
    )


def _azure_connection_string(r):
    return snippet(
        "DefaultEndpointsProtocol=https;AccountName=acmedata;AccountKey={key}==;EndpointSuffix=core.windows.net",
        key=rand(r, B64, 86),
    )


def _cosmos_connection_string(r):
    return snippet(
        "AccountEndpoint=https://acme.documents.azure.com:443/;AccountKey={key}==;",
        key=rand(r, B64, 86),
    )


def _azure_ai_services(r):
    return Secret(f"{rand(r, ALNUM, 52)}JQQJ99{rand(r, UPPER_ALNUM, 4)}{rand(r, ALNUM, 14)}ACOG{rand(r, ALNUM, 4)}")


def _fcm(r):
    return token(f"AAAA{rand(r, URL_SAFE, 7)}:APA91b", rand(r, URL_SAFE, 134))


AWS_SECRET_NAMES = (
    "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "secretAccessKey", "aws_secret_key", "SecretAccessKey",
    "--aws-secret-access-key",
)

KINDS = [
    # AWS.
    Kind("aws-access-key", "credential", _aws_key_id("AKIA"), ("aws_access_key_id", "AWS_ACCESS_KEY_ID"), "AWS IAM docs: access key ids"),
    Kind("aws-access-key", "credential", _aws_key_id("ASIA"), ("AWS_ACCESS_KEY_ID", "AccessKeyId"), "AWS STS docs: temporary credentials"),
    Kind("aws-access-key", "credential", _aws_key_id("ABIA"), (), "AWS IAM docs: unique id prefixes (STS service bearer token)"),
    Kind("aws-access-key", "credential", _aws_key_id("ACCA"), (), "AWS IAM docs: unique id prefixes (context-specific credential)"),
    Kind("aws-secret-access-key", "credential", lambda r: token("", rand(r, B64, 40)), AWS_SECRET_NAMES, "AWS IAM docs"),
    Kind("aws-secret-access-key", "credential", _aws_credentials_file, (), "AWS CLI docs: credentials file"),
    Kind("aws-session-token", "credential", lambda r: token("", "IQoJb3JpZ2luX2Vj" + rand(r, B64, 300)), ("aws_session_token", "AWS_SESSION_TOKEN"), "AWS STS docs"),
    Kind("aws-session-token", "credential", lambda r: token("", "FwoGZXIvYXdz" + rand(r, B64, 200)), ("aws_session_token",), "AWS STS docs (older tokens)"),
    Kind("aws-bedrock-api-key", "credential", lambda r: token("ABSKQmVkcm9ja0FQSUtleS", rand(r, B64, 110)), ("AWS_BEARER_TOKEN_BEDROCK",), "Amazon Bedrock docs: API keys (long-term)"),
    Kind("aws-bedrock-api-key", "credential", lambda r: token("bedrock-api-key-", "YmVkcm9jay5hbWF6b25hd3MuY29t" + rand(r, B64, 600)), ("AWS_BEARER_TOKEN_BEDROCK",), "Amazon Bedrock docs: API keys (short-term)"),
    Kind("amazon-mws-auth-token", "credential", lambda r: token("amzn.mws.", _uuid(r)), ("MWS_AUTH_TOKEN",), "Amazon MWS developer guide"),
    # Google.
    Kind("gcp-api-key", "credential", lambda r: token("AIza", rand(r, URL_SAFE, 35)), ("GOOGLE_API_KEY", "apiKey", "GEMINI_API_KEY"), "Google Cloud docs: API keys"),
    Kind("gcp-oauth-client-secret", "credential", lambda r: token("GOCSPX-", rand(r, URL_SAFE, 28)), ("client_secret",), "Google OAuth docs"),
    Kind("gcp-oauth-access-token", "credential", lambda r: token("ya29.", rand(r, URL_SAFE, 160)), ("access_token",), "Google OAuth docs"),
    Kind("gcp-oauth-refresh-token", "credential", lambda r: token("1//0", rand(r, URL_SAFE, 99)), ("refresh_token",), "Google OAuth docs"),
    Kind("firebase-cloud-messaging-server-key", "credential", _fcm, ("FCM_SERVER_KEY", "serverKey"), "Firebase docs: legacy server keys"),
    # Azure.
    Kind("azure-storage-account-key", "credential", _azure_connection_string, (), "Azure Storage docs: connection strings"),
    Kind("azure-storage-account-key", "credential", _cosmos_connection_string, (), "Azure Cosmos DB docs: connection strings"),
    Kind("azure-storage-account-key", "credential", lambda r: token("", rand(r, B64, 86) + "=="), ("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY", "accountKey", "COSMOS_KEY"), "Azure Storage docs"),
    Kind("azure-ai-services-key", "credential", _azure_ai_services, ("AZURE_OPENAI_API_KEY", "SPEECH_KEY", "api_key"), "Azure AI services docs: keys (84-character format)"),
    Kind("azure-subscription-key", "credential", lambda r: token("", rand(r, HEX, 32)), ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_KEY", "Ocp-Apim-Subscription-Key", "AZURE_SPEECH_KEY"), "Azure AI services docs: keys (32 hex)"),
    Kind("azure-container-registry-password", "credential", lambda r: Secret(rand(r, B64, 42) + "+ACR" + rand(r, ALNUM, 6)), ("password", "ACR_PASSWORD"), "Azure Container Registry docs: admin account"),
    # Other clouds.
    Kind("alibaba-access-key-id", "credential", lambda r: token("LTAI", rand(r, ALNUM, 20)), ("ALIBABA_CLOUD_ACCESS_KEY_ID",), "Alibaba Cloud docs: AccessKey pairs"),
    Kind("alibaba-access-key-secret", "credential", lambda r: token("", rand(r, ALNUM, 30)), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECRET_KEY", "accessKeySecret", "access_key_secret"), "Alibaba Cloud docs: AccessKey pairs"),
    Kind("tencent-cloud-secret-id", "credential", lambda r: token("AKID", rand(r, ALNUM, 32)), ("TENCENTCLOUD_SECRET_ID",), "Tencent Cloud docs: API keys"),
    Kind("tencent-cloud-secret-key", "credential", lambda r: token("", rand(r, ALNUM, 32)), ("TENCENTCLOUD_SECRET_KEY", "tencentcloud_secret_key"), "Tencent Cloud docs: API keys"),
    Kind("huawei-cloud-secret-key", "credential", lambda r: token("", rand(r, ALNUM, 40)), ("HUAWEICLOUD_SDK_SK", "huaweicloud_secret_key"), "Huawei Cloud docs: access keys"),
    Kind("ibm-cloud-api-key", "credential", lambda r: token("", rand(r, URL_SAFE, 44)), ("IBMCLOUD_API_KEY", "IC_API_KEY", "ibmcloud_api_key"), "IBM Cloud docs: API keys"),
    Kind("linode-token", "credential", lambda r: token("", rand(r, HEX, 64)), ("LINODE_TOKEN", "LINODE_CLI_TOKEN", "linode_token"), "Linode API docs: personal access tokens"),
    Kind("vultr-api-key", "credential", lambda r: token("", rand(r, UPPER_ALNUM, 36)), ("VULTR_API_KEY",), "Vultr API docs"),
    Kind("hetzner-cloud-token", "credential", lambda r: token("", rand(r, ALNUM, 64)), ("HCLOUD_TOKEN", "hcloud_token", "HETZNER_API_TOKEN"), "Hetzner Cloud API docs"),
    Kind("scaleway-access-key", "credential", lambda r: token("SCW", rand(r, UPPER_ALNUM, 17)), ("SCW_ACCESS_KEY",), "Scaleway docs: API keys"),
    Kind("scaleway-secret-key", "credential", lambda r: token("", _uuid(r)), ("SCW_SECRET_KEY", "scw_secret_key"), "Scaleway docs: API keys"),
    Kind("ovh-api-secret", "credential", lambda r: token("", rand(r, ALNUM, 32)), ("OVH_APPLICATION_SECRET", "OVH_CONSUMER_KEY"), "OVHcloud API docs"),
    Kind("yandex-cloud-api-key", "credential", lambda r: token("AQVN", rand(r, URL_SAFE, 36)), ("YC_API_KEY",), "Yandex Cloud docs: API keys"),
    Kind("yandex-cloud-iam-token", "credential", lambda r: token("t1.", rand(r, URL_SAFE, 150) + "." + rand(r, URL_SAFE, 86)), ("YC_TOKEN", "IAM_TOKEN"), "Yandex Cloud docs: IAM tokens"),
    Kind("yandex-cloud-static-key", "credential", lambda r: token("", "YC" + rand(r, URL_SAFE, 38)), ("YANDEX_SECRET_KEY", "yandex_secret_access_key"), "Yandex Cloud docs: static access keys"),
    Kind("cloudflare-api-token", "credential", lambda r: token("", rand(r, URL_SAFE, 40)), ("CLOUDFLARE_API_TOKEN", "CF_API_TOKEN", "CF_DNS_API_TOKEN", "cloudflare_api_token"), "Cloudflare docs: API tokens"),
    Kind("cloudflare-global-api-key", "credential", lambda r: token("", rand(r, HEX, 37)), ("CLOUDFLARE_API_KEY", "CF_API_KEY", "X-Auth-Key"), "Cloudflare docs: global API key"),
    Kind("cloudflare-origin-ca-key", "credential", lambda r: token("v1.0-", rand(r, HEX, 24) + "-" + rand(r, HEX, 146)), ("CF_ORIGIN_CA_KEY",), "Cloudflare docs: Origin CA keys"),
    Kind("fastly-api-token", "credential", lambda r: token("", rand(r, URL_SAFE, 32)), ("FASTLY_API_TOKEN", "FASTLY_API_KEY", "Fastly-Key"), "Fastly docs: API tokens"),
    Kind("akamai-edgegrid-token", "credential", lambda r: token("akab-", rand(r, LOWER_ALNUM, 16) + "-" + rand(r, LOWER_ALNUM, 16)), ("client_token", "access_token"), "Akamai docs: EdgeGrid .edgerc"),
    Kind("backblaze-b2-application-key", "credential", lambda r: token("", "K00" + rand(r, DIGITS, 1) + rand(r, B64, 27)), ("B2_APPLICATION_KEY",), "Backblaze B2 docs: application keys"),
    Kind("openshift-user-token", "credential", lambda r: token("sha256~", rand(r, URL_SAFE, 43)), ("--token",), "OpenShift docs: OAuth tokens"),
    # Platforms, secrets managers, databases.
    Kind("vault-token", "credential", lambda r: token("hvs.", rand(r, URL_SAFE, 90)), ("VAULT_TOKEN",), "HashiCorp Vault docs: token formats"),
    Kind("vault-token", "credential", lambda r: token("", "s." + rand(r, ALNUM, 24)), ("VAULT_TOKEN", "X-Vault-Token"), "HashiCorp Vault docs: legacy token format"),
    Kind("flyio-token", "credential", lambda r: token("fm2_", rand(r, B64, 200)), ("FLY_API_TOKEN",), "Fly.io docs: access tokens"),
    Kind("flyio-token", "credential", lambda r: token("fo1_", rand(r, URL_SAFE, 43)), ("FLY_API_TOKEN",), "Fly.io docs: access tokens"),
    Kind("heroku-api-key", "credential", lambda r: token("HRKU-", rand(r, URL_SAFE, 60)), ("HEROKU_API_KEY",), "Heroku docs: API tokens"),
    Kind("heroku-api-key", "credential", lambda r: token("", _uuid(r)), ("HEROKU_API_KEY", "heroku_api_token"), "Heroku docs: API keys (legacy)"),
    Kind("databricks-token", "credential", lambda r: token("dapi", rand(r, HEX, 32)), ("DATABRICKS_TOKEN",), "Databricks docs: personal access tokens"),
    Kind("databricks-token", "credential", lambda r: token("dose", rand(r, HEX, 32)), ("DATABRICKS_CLIENT_SECRET",), "Databricks docs: OAuth secrets"),
    Kind("digitalocean-token", "credential", lambda r: token("dop_v1_", rand(r, HEX, 64)), ("DIGITALOCEAN_TOKEN",), "DigitalOcean docs: token prefixes"),
    Kind("netlify-token", "credential", lambda r: token("nfp_", rand(r, ALNUM, 36)), ("NETLIFY_AUTH_TOKEN",), "Netlify docs: personal access tokens"),
    Kind("netlify-access-token", "credential", lambda r: token("", rand(r, URL_SAFE, 43)), ("NETLIFY_AUTH_TOKEN", "netlify_token"), "Netlify docs: personal access tokens (legacy)"),
    Kind("vercel-token", "credential", lambda r: token("", rand(r, ALNUM, 24)), ("VERCEL_TOKEN", "vercel_api_token"), "Vercel docs: access tokens"),
    Kind("render-api-key", "credential", lambda r: token("rnd_", rand(r, ALNUM, 32)), ("RENDER_API_KEY",), "Render docs: API keys"),
    Kind("railway-token", "credential", lambda r: token("", _uuid(r)), ("RAILWAY_TOKEN", "RAILWAY_API_TOKEN"), "Railway docs: tokens"),
    Kind("scalingo-api-token", "credential", lambda r: token("tk-us-", rand(r, URL_SAFE, 48)), ("SCALINGO_API_TOKEN",), "Scalingo docs: API tokens"),
    Kind("supabase-token", "credential", lambda r: token("sbp_", rand(r, HEX, 40)), ("SUPABASE_ACCESS_TOKEN",), "Supabase docs: access tokens"),
    Kind("supabase-token", "credential", lambda r: token("sb_secret_", rand(r, URL_SAFE, 31)), ("SUPABASE_SECRET_KEY",), "Supabase docs: API keys"),
    Kind("planetscale-token", "credential", lambda r: token("pscale_tkn_", rand(r, URL_SAFE, 43)), ("PLANETSCALE_SERVICE_TOKEN",), "PlanetScale docs: service tokens"),
    Kind("planetscale-token", "credential", lambda r: token("pscale_pw_", rand(r, URL_SAFE, 43)), ("DATABASE_PASSWORD",), "PlanetScale docs: passwords"),
    Kind("neon-api-key", "credential", lambda r: token("napi_", rand(r, LOWER_ALNUM, 64)), ("NEON_API_KEY",), "Neon docs: API keys"),
    Kind("mongodb-atlas-service-account-secret", "credential", lambda r: token("mdb_sa_sk_", rand(r, URL_SAFE, 40)), ("ATLAS_CLIENT_SECRET",), "MongoDB Atlas docs: service accounts"),
    Kind("mongodb-atlas-private-key", "credential", lambda r: token("", _uuid(r)), ("MONGODB_ATLAS_PRIVATE_KEY", "MCLI_PRIVATE_API_KEY", "atlas_private_key"), "MongoDB Atlas docs: programmatic API keys"),
    Kind("clickhouse-cloud-api-secret", "credential", lambda r: token("4b1d", rand(r, ALNUM, 38)), ("CLICKHOUSE_KEY_SECRET",), "ClickHouse Cloud docs: API keys"),
    Kind("pinecone-api-key", "credential", lambda r: token("pcsk_", rand(r, ALNUM, 6) + "_" + rand(r, ALNUM, 63)), ("PINECONE_API_KEY",), "Pinecone docs: API keys"),
    Kind("upstash-token", "credential", lambda r: token("", "A" + rand(r, URL_SAFE, 70) + "="), ("UPSTASH_REDIS_REST_TOKEN", "QSTASH_TOKEN"), "Upstash docs: REST API"),
    Kind("aiven-token", "credential", lambda r: token("", rand(r, B64, 372)), ("AIVEN_TOKEN", "AIVEN_API_TOKEN"), "Aiven docs: authentication tokens"),
    Kind("confluent-api-secret", "credential", lambda r: token("", rand(r, B64, 64)), ("CONFLUENT_CLOUD_API_SECRET", "confluent_api_secret"), "Confluent Cloud docs: API keys"),
    Kind("elastic-api-key", "credential", lambda r: token("", rand(r, B64, 58) + "=="), ("ELASTIC_API_KEY", "ELASTICSEARCH_API_KEY"), "Elasticsearch docs: API keys"),
    Kind("infisical-token", "credential", lambda r: token("", f"st.{rand(r, ALNUM, 24)}.{rand(r, ALNUM, 32)}.{rand(r, ALNUM, 32)}"), ("INFISICAL_TOKEN",), "Infisical docs: service tokens"),
    Kind("onepassword-service-account-token", "credential", lambda r: token("ops_eyJ", rand(r, B64, 600)), ("OP_SERVICE_ACCOUNT_TOKEN",), "1Password docs: service accounts"),
    Kind("onepassword-secret-key", "credential", lambda r: token("A3-", "-".join(rand(r, UPPER_ALNUM, k) for k in (6, 11, 5, 5, 5))), ("OP_SECRET_KEY",), "1Password docs: Secret Key"),
    Kind("tailscale-key", "credential", lambda r: token("tskey-auth-", rand(r, ALNUM, 12) + "CNTRL-" + rand(r, ALNUM, 33)), ("TS_AUTHKEY", "TAILSCALE_API_KEY"), "Tailscale docs: keys"),
    Kind("ngrok-authtoken", "credential", lambda r: token("", "2" + rand(r, ALNUM, 26) + "_" + rand(r, ALNUM, 21)), ("NGROK_AUTHTOKEN", "authtoken", "NGROK_API_KEY"), "ngrok docs: authtokens"),
    Kind("terraform-cloud-token", "credential", lambda r: token(rand(r, ALNUM, 14) + ".atlasv1.", rand(r, URL_SAFE, 67)), ("TFE_TOKEN",), "HashiCorp Terraform Cloud docs: API tokens"),
    Kind("doppler-token", "credential", lambda r: token("dp.st.", rand(r, ALNUM, 43)), ("DOPPLER_TOKEN",), "Doppler docs: token formats"),
    Kind("pulumi-token", "credential", lambda r: token("pul-", rand(r, HEX, 40)), ("PULUMI_ACCESS_TOKEN",), "Pulumi docs: access tokens"),
]
