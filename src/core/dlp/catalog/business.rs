//! Business SaaS: chat and messaging, email delivery, payments and commerce, CRM, support,
//! productivity and identity providers.
//!
//! Three shapes, each with the cheapest trigger it allows:
//! - **Vendor prefixes** (`xoxb-`, `xkeysib-`, `EZAK`, `FLWSECK`): found anywhere with
//!   [`vendor`], the prefix left visible.
//! - **Webhook URLs** whose path or query carries the credential (Slack, Microsoft Teams, Zapier,
//!   Power Automate, Google Chat, IFTTT): triggered on the host name.
//! - **Name-only formats** (a UUID, 32 hex digits, 40 letters and digits): found only next to a
//!   name holding the vendor's word ([`named`]), so text that never names the vendor costs
//!   nothing more than the literal pass.
//!
//! Limits: a name-only secret under a name without the vendor's word (`api_key = …`) is left to
//! the generic detectors; more than 30 characters between the vendor's word and the secret word
//! (deep YAML or JSON nesting) are not followed; public keys and ids (`pk_live_…`, Mapbox `pk.…`,
//! `FLWPUBK…`, Razorpay `rzp_live_…`, Algolia search keys) are not masked; `sk_live_`/`sk_test_`
//! keys of Clerk, Paystack and WorkOS share Stripe's shape and are reported as `stripe-api-key`;
//! JWT-shaped tokens (Monday, Lemon Squeezy, Zoom access tokens) are left to `jwt`.

use super::{assigned, detector, vendor, END, END_B64};
use crate::core::dlp::detector::{Category, CharClass, DetectorSpec, Trigger};

/// A UUID in either case (Postmark, Wise, DocuSign, HubSpot and Plaid put secrets in this shape).
const UUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

/// What may separate a vendor's word from the secret word in a name: name characters, and the
/// spaces, quotes, colons and braces of a nested YAML or JSON key (`zendesk:\n  api_token: …`,
/// `"zendesk": {"token": …`) or of prose (`Zendesk API token: …`).
const NAME_GAP: &str = r#"[a-z0-9_. \t\r\n"':{-]{0,30}"#;

/// A credential without a shape of its own, found only when assigned to a name that starts with
/// one of the `vendors` literals (its trigger), continues with up to 30 characters of
/// [`NAME_GAP`], one of the `words` alternatives and up to 12 more name characters:
/// `POSTMARK_SERVER_TOKEN=…`, `postmark.api_token: …`, `X-Postmark-Server-Token: …`,
/// `DOCUSIGN_SECRET_KEY=…`. Only `value` is masked.
fn named(id: &str, description: &str, vendors: &[&str], words: &str, value: &str, end: &str) -> DetectorSpec {
    let names = vendors.iter().map(|v| v.replace('.', r"\.")).collect::<Vec<_>>().join("|");
    DetectorSpec::prefixed(
        id,
        description,
        vendors,
        &assigned(&format!("(?:{names}){NAME_GAP}(?:{words})[a-z0-9_-]{{0,12}}"), value, end),
    )
}

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    vec![
        vendor(
            "slack-bot-token",
            "Slack bot token (xoxb-…-…-…, legacy xoxb-…-…)",
            &["xoxb-"],
            "xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}|xoxb-[0-9]{8,14}-[A-Za-z0-9]{18,26}",
            END,
        ),
        vendor(
            "slack-user-token",
            "Slack user token (xoxp-…)",
            &["xoxp-"],
            "xoxp-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{28,34}",
            END,
        ),
        vendor(
            "slack-token",
            "Other Slack tokens: workspace (xoxa-), refresh (xoxr-, xoxe-), configuration (xoxe.xoxp-) and legacy (xoxs-, xoxo-)",
            &["xoxa-", "xoxr-", "xoxe.", "xoxe-", "xoxs-", "xoxo-"],
            r"xox[ar]-(?:[0-9]{1,13}-){1,4}[A-Za-z0-9]{24,128}|xox[ar]-(?:[0-9]-)?[A-Za-z0-9]{8,48}|xoxe-(?:[0-9]{10,13}-){3}[A-Za-z0-9]{28,34}|xoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{100,250}|xoxe-[0-9]-[A-Za-z0-9]{100,250}|xox[os]-[0-9]{1,13}-[0-9]{1,13}-[0-9]{1,13}-[0-9a-f]{10,64}",
            END,
        ),
        DetectorSpec::prefixed(
            "slack-webhook-url",
            "Slack incoming-webhook or workflow-trigger URL (hooks.slack.com/services/T…/B…/…, …/workflows/…, …/triggers/…)",
            &["hooks.slack.com/"],
            r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,90}(?-u:\b)",
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
            "Stripe secret or restricted API key (sk_live_…, sk_test_…, rk_live_…, rk_test_…); also the sk_live_/sk_test_ secret keys of Clerk, Paystack and WorkOS",
            &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
            "[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,247}",
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
            "shopify-token",
            "Shopify access, custom-app or private-app token, or shared secret (shpat_, shpca_, shppa_, shpss_)",
            &["shpat_", "shpca_", "shppa_", "shpss_"],
            "shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}",
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
        DetectorSpec::prefixed(
            "okta-api-token",
            "Okta API token (00…), assigned to an OKTA_…KEY/TOKEN name or after SSWS",
            &["okta", "SSWS"],
            &format!(
                r#"(?:(?i:okta[a-z0-9_-]{{0,16}}(?:key|token))["'`]?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?|SSWS[ \t]+)(?P<secret>00[A-Za-z0-9_-]{{40}}){END}"#
            ),
        ),
        // --- Chat and messaging ------------------------------------------------------------
        vendor(
            "slack-app-token",
            "Slack app-level token (xapp-1-A…-…-…)",
            &["xapp-"],
            "xapp-[0-9]-[A-Z0-9]{8,14}-[0-9]{10,14}-[A-Za-z0-9]{32,80}",
            END,
        ),
        DetectorSpec::prefixed(
            "microsoft-teams-webhook-url",
            "Microsoft Teams incoming-webhook URL (….webhook.office.com/webhookb2/…/IncomingWebhook/…)",
            &["webhook.office.com/", "outlook.office.com/webhook"],
            &format!(
                r"(?P<secret>(?:webhook\.office\.com/webhookb2|outlook\.office\.com/webhook)/{UUID}@{UUID}/IncomingWebhook/[A-Za-z0-9]{{32}}/{UUID}(?:/[A-Za-z0-9_-]{{20,80}})?){END}"
            ),
        ),
        DetectorSpec::prefixed(
            "power-automate-webhook-url",
            "Power Automate / Logic Apps HTTP-trigger URL signature (logic.azure.com…&sig=…)",
            &["logic.azure.com", "api.powerplatform.com"],
            &format!(
                r"(?:logic\.azure\.com|api\.powerplatform\.com)(?::443)?/[A-Za-z0-9_./%-]{{1,200}}\?[A-Za-z0-9_.%&=-]{{0,300}}?sig=(?P<secret>[A-Za-z0-9_-]{{43}}){END}"
            ),
        )
        .max_len(700),
        DetectorSpec::prefixed(
            "google-chat-webhook-url",
            "Google Chat incoming-webhook token (chat.googleapis.com/v1/spaces/…/messages?…&token=…)",
            &["chat.googleapis.com/"],
            r"chat\.googleapis\.com/v1/spaces/[A-Za-z0-9_-]{6,20}/messages\?[A-Za-z0-9_.%&=-]{0,120}?token=(?P<secret>[A-Za-z0-9_-]{40,50}(?:%3D|=)?)(?:[^A-Za-z0-9_%=-]|$)",
        ),
        named("mattermost-token", "Mattermost personal access or bot token (26 characters), assigned to a MATTERMOST_…TOKEN name", &["mattermost"], "token|key|secret", "[a-z0-9]{26}", END),
        named("rocketchat-token", "Rocket.Chat personal access token (43 characters), assigned to a ROCKETCHAT_…TOKEN name", &["rocketchat", "rocket_chat"], "token|secret", "[A-Za-z0-9_-]{43}", END),
        named("zulip-api-key", "Zulip API key (32 characters), assigned to a ZULIP_…KEY name", &["zulip"], "key|token", "[A-Za-z0-9]{32}", END),
        named("twitch-token", "Twitch client secret or OAuth token (30 characters, optionally oauth:), assigned to a TWITCH_…SECRET/TOKEN name", &["twitch"], "token|secret", "(?:oauth:)?[a-z0-9]{30}", END),
        DetectorSpec::prefixed(
            "line-channel-token",
            "LINE Messaging API channel access token or channel secret, assigned to a LINE_CHANNEL_… name",
            &["line_channel", "linechannel"],
            &assigned(r"line_?channel_?(?:access_?token|secret)", "[A-Za-z0-9+/]{100,200}={0,2}|[0-9a-f]{32}", END_B64),
        ),
        vendor(
            "facebook-access-token",
            "Meta (Facebook, Instagram, WhatsApp Business) Graph API access token (EAA…)",
            &["EAA"],
            "EAA[A-Za-z0-9]{90,400}",
            END,
        ),
        named("facebook-app-secret", "Meta (Facebook) app secret (32 hex digits) or app access token (app id|secret), assigned to a FACEBOOK_… or FB_APP_… name", &["facebook", "fb_app"], "secret|token", r"[0-9a-f]{32}|[0-9]{15,16}(?:\||%7C)[A-Za-z0-9_-]{27,40}", END),
        vendor(
            "twitter-bearer-token",
            "X (Twitter) app-only bearer token (AAAAAAAAAAAAAAAAAAAAA…)",
            &["AAAAAAAAAAAAAAAAAAAAA"],
            "A{21}[A-Za-z0-9%]{60,140}",
            END_B64,
        ),
        named("twitter-api-secret", "X (Twitter) API key or secret, access token or access-token secret, assigned to a TWITTER_…KEY/SECRET/TOKEN name", &["twitter"], "secret|token|key", "[0-9]{6,25}-[A-Za-z0-9]{20,40}|[A-Za-z0-9]{45,50}|[A-Za-z0-9]{25}", END),
        named("linkedin-client-secret", "LinkedIn client secret (WPL_AP1.… or 16 characters) or access token (AQ…), assigned to a LINKEDIN_…SECRET/TOKEN name", &["linkedin"], "secret|token", r"WPL_AP[0-9]\.[A-Za-z0-9]{16}\.[A-Za-z0-9+/]{4,16}={0,2}|AQ[A-Za-z0-9_-]{100,400}|[A-Za-z0-9]{16}", END_B64),
        named("reddit-client-secret", "Reddit OAuth client secret (27–30 characters), assigned to a REDDIT_…SECRET name", &["reddit"], "secret|token", "[A-Za-z0-9_-]{27,30}", END),
        named("pusher-secret", "Pusher Channels app secret (20 hex digits), assigned to a PUSHER_…SECRET name", &["pusher"], "secret", "[A-Za-z0-9]{20}", END),
        named("ably-api-key", "Ably API key (app.key:secret), assigned to an ABLY_…KEY name", &["ably"], "key|token", r"[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{6}:[A-Za-z0-9_-]{43}", END),
        named("getstream-secret", "Stream (getstream.io) API secret, assigned to a STREAM_API_SECRET or GETSTREAM_…SECRET name", &["getstream", "stream_api"], "secret", "[a-z0-9]{40,80}", END),
        named("sendbird-api-token", "Sendbird API token (40 hex digits), assigned to a SENDBIRD_…TOKEN name", &["sendbird"], "token|key", "[0-9a-f]{40}", END),
        vendor(
            "intercom-access-token",
            "Intercom access token (base64 of tok:…, dG9rO…)",
            &["dG9rO"],
            "dG9rO[A-Za-z0-9+/]{40,80}={0,2}",
            END_B64,
        ),
        named("zoom-secret", "Zoom client secret, JWT secret or webhook secret token, assigned to a ZOOM_…SECRET/TOKEN name", &["zoom"], "secret|token", "[A-Za-z0-9]{20,40}", END),
        named("vonage-api-secret", "Vonage (Nexmo) API or signature secret, assigned to a VONAGE_/NEXMO_…SECRET name", &["vonage", "nexmo"], "secret", "[A-Za-z0-9]{16,64}", END),
        named("messagebird-api-key", "MessageBird (Bird) access key (25 characters), assigned to a MESSAGEBIRD_…KEY name", &["messagebird"], "key|token", "[A-Za-z0-9]{25}", END),
        named("plivo-auth-token", "Plivo auth token (40 characters), assigned to a PLIVO_…TOKEN name", &["plivo"], "token|secret", "[A-Za-z0-9]{40}", END),
        named("sinch-secret", "Sinch API token or access-key secret, assigned to a SINCH_…SECRET/TOKEN name", &["sinch"], "secret|token", "[A-Za-z0-9_~.-]{24,64}", END),
        named("discord-token", "Discord bot token of a bot created before 2022, or OAuth client secret, assigned to a DISCORD_…TOKEN/SECRET name", &["discord"], "token|secret", r"(?:[NO][A-Za-z0-9_-]|M[A-SU-Za-z0-9_-])[A-Za-z0-9_-]{21,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}|[a-f0-9]{64}|[A-Za-z0-9_-]{32}", END),
        // --- Email delivery ----------------------------------------------------------------
        named("mailgun-private-key", "Mailgun private API key or webhook signing key (32-8-8 hex), assigned to a MAILGUN_… name", &["mailgun"], "key|secret|token", "[a-z0-9]{32}-[a-z0-9]{8}-[a-z0-9]{8}", END),
        named("mandrill-api-key", "Mandrill (Mailchimp Transactional) API key (22 characters), assigned to a MANDRILL_…KEY name", &["mandrill"], "key|token|password", "[A-Za-z0-9_-]{22}", END),
        named("postmark-token", "Postmark server or account token (a UUID), assigned to a POSTMARK_…TOKEN name or X-Postmark-…-Token header", &["postmark"], "token|key", UUID, END),
        vendor(
            "brevo-api-key",
            "Brevo (Sendinblue) API key or SMTP key (xkeysib-…, xsmtpsib-…)",
            &["xkeysib-", "xsmtpsib-"],
            "x(?:keysib|smtpsib)-[0-9a-f]{64}-[A-Za-z0-9]{16}",
            END,
        ),
        DetectorSpec::prefixed(
            "mailjet-api-key",
            "Mailjet API key or secret key (32 hex digits), assigned to a MAILJET_… or MJ_APIKEY_PRIVATE name",
            &["mailjet", "mj_apikey_private"],
            &assigned("mailjet[a-z0-9_.-]{0,20}(?:key|secret|token)|mj_apikey_private", "[A-Za-z0-9]{32}", END),
        ),
        named("sparkpost-api-key", "SparkPost API key (40 hex digits), assigned to a SPARKPOST_… name", &["sparkpost"], "key|token|secret|password", "[A-Za-z0-9]{40}", END),
        vendor("resend-api-key", "Resend API key (re_…_…)", &["re_"], "re_[A-Za-z0-9]{6,12}_[A-Za-z0-9]{18,32}", END),
        named("loops-api-key", "Loops API key (32 hex digits), assigned to a LOOPS_…KEY name", &["loops"], "key|token", "[A-Za-z0-9]{32}", END),
        named("convertkit-api-secret", "Kit (ConvertKit) API key or secret, assigned to a CONVERTKIT_… name", &["convertkit"], "secret|key|token", "[A-Za-z0-9_-]{22,64}", END),
        named("customerio-api-key", "Customer.io Track (20 hex) or App API key (32 hex), assigned to a CUSTOMERIO_… name", &["customerio", "customer_io"], "key|token|secret", "[A-Za-z0-9]{32}|[A-Za-z0-9]{20}", END),
        // --- Payments and commerce ---------------------------------------------------------
        vendor(
            "braintree-access-token",
            "PayPal Braintree access token (access_token$production$…$…)",
            &["access_token$"],
            r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}",
            END,
        ),
        named("braintree-private-key", "Braintree private key (32 hex digits), assigned to a BRAINTREE_PRIVATE_KEY name", &["braintree"], "private_?key|secret", "[A-Za-z0-9]{32}", END),
        named("paypal-client-secret", "PayPal REST client secret (about 80 characters), assigned to a PAYPAL_…SECRET name", &["paypal"], "secret", "[A-Za-z0-9_-]{60,90}", END),
        vendor("square-oauth-secret", "Square application secret (sq0csp-…)", &["sq0csp-"], "sq0csp-[A-Za-z0-9_-]{43}", END),
        DetectorSpec::prefixed(
            "adyen-api-key",
            "Adyen API key (AQE…==-…=-…)",
            &["AQE"],
            r#"(?-u:\b)(?P<secret>AQE[A-Za-z0-9+/]{60,120}={0,2}-[A-Za-z0-9+/]{40,50}={0,2}(?:-[!-~&&[^"'`\\,;]]{1,24})?)"#,
        ),
        vendor(
            "checkout-secret-key",
            "Checkout.com secret key (sk_sbox_…, or sk_test_ and a UUID)",
            &["sk_sbox_", "sk_test_"],
            &format!("sk_sbox_[a-z0-9]{{26,30}}|sk_test_{UUID}"),
            END,
        ),
        named("razorpay-key-secret", "Razorpay key secret (24 characters), assigned to a RAZORPAY_…SECRET name", &["razorpay"], "secret", "[A-Za-z0-9]{24}", END),
        vendor(
            "flutterwave-secret-key",
            "Flutterwave secret or encryption key (FLWSECK-…-X, FLWSECK_TEST-…-X, FLWSECK_TEST…)",
            &["FLWSECK"],
            "FLWSECK(?:_TEST)?-[0-9a-z]{32}-X|FLWSECK_TEST[0-9a-z]{12}",
            END,
        ),
        named("mollie-api-key", "Mollie API key (live_/test_ and 30 characters) or organization token (access_…), assigned to a MOLLIE_… name", &["mollie"], "key|token", "(?:live|test)_[A-Za-z0-9]{30}|access_[A-Za-z0-9]{40}", END),
        named("coinbase-api-secret", "Coinbase API secret, assigned to a COINBASE_…SECRET name", &["coinbase"], "secret|token", "[A-Za-z0-9+/_-]{32,88}={0,2}", END_B64),
        vendor(
            "plaid-access-token",
            "Plaid access token (access-sandbox-, access-development-, access-production- and a UUID)",
            &["access-sandbox-", "access-development-", "access-production-"],
            &format!("access-(?:sandbox|development|production)-{UUID}"),
            END,
        ),
        named("plaid-secret", "Plaid secret (30 hex digits), assigned to a PLAID_…SECRET name", &["plaid"], "secret", "[a-z0-9]{30}", END),
        named("gocardless-access-token", "GoCardless access token (live_/sandbox_ and 40 characters), assigned to a GOCARDLESS_… name", &["gocardless"], "token|key|secret", "(?:live|sandbox)_[A-Za-z0-9_=-]{40}", END),
        vendor("easypost-api-key", "EasyPost production or test API key (EZAK…, EZTK…)", &["EZAK", "EZTK"], "EZ[AT]K[A-Za-z0-9]{54}", END),
        vendor("woocommerce-api-key", "WooCommerce REST consumer key or secret (ck_…, cs_… and 40 hex digits)", &["ck_", "cs_"], "c[ks]_[0-9a-f]{40}", END),
        named("bigcommerce-access-token", "BigCommerce API account access token, assigned to a BIGCOMMERCE_…TOKEN name", &["bigcommerce"], "token|secret", "[a-z0-9]{25,40}", END),
        vendor(
            "paddle-api-key",
            "Paddle Billing API key (pdl_live_apikey_…, pdl_sdbx_apikey_…)",
            &["pdl_"],
            "pdl_(?:live|sdbx)_apikey_[a-z0-9]{26}_[A-Za-z0-9]{22}_[A-Za-z0-9]{3}",
            END,
        ),
        named("recurly-api-key", "Recurly private API key (32 hex digits), assigned to a RECURLY_… name", &["recurly"], "key|token|secret", "[A-Za-z0-9]{32}", END),
        named("chargebee-api-key", "Chargebee API key (live_/test_…), assigned to a CHARGEBEE_… name", &["chargebee"], "key|token|secret", "(?:live|test)_[A-Za-z0-9]{20,40}", END),
        named("wise-api-token", "Wise (TransferWise) API token (a UUID), assigned to a WISE_…TOKEN name", &["wise_", "transferwise"], "token|key", UUID, END),
        // --- CRM, support, productivity and identity ---------------------------------------
        vendor(
            "hubspot-token",
            "HubSpot private-app or personal access token (pat-na1-…, pat-eu1-… and a UUID)",
            &["pat-na", "pat-eu"],
            &format!("pat-(?:na|eu)[0-9]-{UUID}"),
            END,
        ),
        DetectorSpec::prefixed(
            "hubspot-api-key",
            "HubSpot legacy API key (a UUID) after hapikey= or assigned to a HUBSPOT_…KEY name",
            &["hapikey", "hubspot"],
            &assigned("hapikey|hubspot[a-z0-9_.-]{0,20}(?:key|token)", UUID, END),
        ),
        vendor(
            "salesforce-access-token",
            "Salesforce OAuth access or session token (00D…!…)",
            &["00D"],
            r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{80,200}",
            END,
        ),
        named("zendesk-api-token", "Zendesk API token (40 characters), assigned to a ZENDESK_… name", &["zendesk"], "token|key|secret", "[A-Za-z0-9]{40}", END),
        named("freshdesk-api-key", "Freshdesk API key (20 characters), assigned to a FRESHDESK_… name", &["freshdesk"], "key|token", "[A-Za-z0-9]{20}", END),
        // An Asana token has no literal prefix: it starts a digit run (`2/1204…/1205…:…`).
        detector(
            "asana-pat",
            Category::Credential,
            "Asana personal access token (1/…:… or 2/…/…:… with 32 hex digits)",
            Trigger::Digits { run: CharClass::Number, min_digits: 11 },
            &format!("(?P<secret>[12]/[0-9]{{10,19}}(?:/[0-9]{{10,19}})?:[0-9a-f]{{32}}){END}"),
        )
        .max_len(96),
        vendor("airtable-pat", "Airtable personal access token (pat…. and 64 hex digits)", &["pat"], r"pat[A-Za-z0-9]{14}\.[0-9a-f]{64}", END),
        vendor("clickup-api-token", "ClickUp personal API token (pk_…_…)", &["pk_"], "pk_[0-9]{5,10}_[A-Z0-9]{32}", END),
        vendor("trello-token", "Trello API token (ATTA…)", &["ATTA"], "ATTA[A-Za-z0-9]{60,72}", END),
        vendor("figma-token", "Figma personal access token (figd_…)", &["figd_"], "figd_[A-Za-z0-9_-]{38,44}", END),
        vendor(
            "miro-access-token",
            "Miro access token (eyJtaXJv…, the base64 of {\"miro.origin\"…)",
            &["eyJtaXJv"],
            "eyJtaXJv[A-Za-z0-9]{10,40}_[A-Za-z0-9_-]{20,60}",
            END,
        ),
        vendor(
            "dropbox-short-lived-token",
            "Dropbox short-lived access token (sl.…, sl.u.…)",
            &["sl."],
            r"sl\.(?:u\.)?[A-Za-z0-9_=-]{130,1400}",
            END,
        )
        .max_len(1500),
        named("dropbox-token", "Dropbox long-lived access or refresh token (…AAAAAAAAAA…) or app secret, assigned to a DROPBOX_…TOKEN/SECRET name", &["dropbox"], "token|secret", "[A-Za-z0-9_-]{11}AAAAAAAAAA[A-Za-z0-9_-]{43}|[a-z0-9]{15}", END),
        named("box-token", "Box client secret or developer token (32 characters), assigned to a BOX_…SECRET/TOKEN name", &["box_"], "secret|token", "[A-Za-z0-9]{32}", END),
        vendor("typeform-token", "Typeform personal access token (tfp_…)", &["tfp_"], "tfp_[A-Za-z0-9_.=-]{56,64}", END),
        vendor("contentful-token", "Contentful personal access token (CFPAT-…)", &["CFPAT-"], "CFPAT-[A-Za-z0-9_-]{43}", END),
        named("sanity-token", "Sanity API token (sk…), assigned to a SANITY_…TOKEN name", &["sanity"], "token|key|secret", "sk[A-Za-z0-9]{60,200}", END),
        DetectorSpec::prefixed(
            "algolia-admin-key",
            "Algolia admin or write API key (32 hex digits), assigned to an ALGOLIA_ADMIN/WRITE/API/SECRET_KEY name (not the public search key)",
            &["algolia"],
            &assigned("algolia[_.-]?(?:admin|write|secret|api)[_.-]?(?:api[_.-]?)?key", "[0-9a-f]{32}", END),
        ),
        vendor(
            "mapbox-secret-token",
            "Mapbox secret access token (sk.eyJ…; public pk. tokens are not secrets)",
            &["sk.eyJ"],
            r"sk\.eyJ[A-Za-z0-9_-]{20,200}\.[A-Za-z0-9_-]{20,40}",
            END,
        ),
        named("auth0-client-secret", "Auth0 application client secret, assigned to an AUTH0_…SECRET name", &["auth0"], "secret", "[A-Za-z0-9_-]{32,100}", END),
        vendor(
            "stytch-secret",
            "Stytch project secret (secret-test-…, secret-live-…)",
            &["secret-test-", "secret-live-"],
            "secret-(?:test|live)-[A-Za-z0-9_=-]{30,40}",
            END_B64,
        ),
        vendor("duffel-token", "Duffel API access token (duffel_live_…, duffel_test_…)", &["duffel_"], "duffel_(?:live|test)_[A-Za-z0-9_=-]{43}", END),
        vendor("frameio-token", "Frame.io developer token (fio-u-…)", &["fio-u-"], "fio-u-[A-Za-z0-9_=-]{64}", END),
        named("docusign-secret", "DocuSign integration secret key (a UUID), assigned to a DOCUSIGN_…SECRET name", &["docusign"], "secret|password", UUID, END),
        named("intercom-api-key", "Intercom access token of any shape (60 characters), assigned to an INTERCOM_…TOKEN/KEY name", &["intercom"], "token|key|secret", "[A-Za-z0-9=_-]{60}", END),
        named("gitter-token", "Gitter access token (40 characters), assigned to a GITTER_…TOKEN name", &["gitter"], "token|key|secret", "[A-Za-z0-9_-]{40}", END),
        named("freshbooks-access-token", "FreshBooks access token (64 characters), assigned to a FRESHBOOKS_… name", &["freshbooks"], "token|secret", "[A-Za-z0-9]{64}", END),
        named("trello-api-key", "Trello API key (32) or legacy token (64 hex digits), assigned to a TRELLO_… name", &["trello"], "key|token|secret", "[a-f0-9]{64}|[A-Za-z0-9]{32}", END),
        named("etsy-api-key", "Etsy API keystring (24) or shared secret (10), assigned to an ETSY_… name", &["etsy"], "key|token|secret", "[A-Za-z0-9]{24}|[A-Za-z0-9]{10}", END),
        named("squarespace-api-key", "Squarespace API key (a UUID), assigned to a SQUARESPACE_… name", &["squarespace"], "key|token|secret", UUID, END),
        named("lob-api-key", "Lob secret API key (live_/test_ and 35 hex digits), assigned to a LOB_…KEY name (not the live_pub_ key)", &["lob_"], "key|token|secret", "(?:live|test)_[a-f0-9]{35}", END),
        named("kraken-api-secret", "Kraken API private key (base64, 80–90 characters), assigned to a KRAKEN_… name", &["kraken"], "secret|key|token", "[A-Za-z0-9/=_+-]{80,90}", END_B64),
        named("kucoin-api-secret", "KuCoin API secret (a UUID) or key (24 hex digits), assigned to a KUCOIN_… name", &["kucoin"], "secret|key|token", &format!("{UUID}|[a-f0-9]{{24}}"), END),
        named("bittrex-api-secret", "Bittrex API key or secret (32 characters), assigned to a BITTREX_… name", &["bittrex"], "secret|key", "[A-Za-z0-9]{32}", END),
        DetectorSpec::prefixed(
            "zapier-webhook-url",
            "Zapier catch-hook URL (hooks.zapier.com/hooks/catch/…/…)",
            &["hooks.zapier.com/"],
            &format!(r"(?P<secret>hooks\.zapier\.com/hooks/catch/[0-9]{{4,12}}/[a-z0-9]{{5,12}}){END}"),
        ),
        DetectorSpec::prefixed(
            "ifttt-webhook-key",
            "IFTTT Webhooks (Maker) key in a maker.ifttt.com URL",
            &["maker.ifttt.com/"],
            &format!(r"maker\.ifttt\.com/(?:trigger/[A-Za-z0-9_.%-]{{1,100}}/(?:json/)?)?(?:with/key|use)/(?P<secret>[A-Za-z0-9_-]{{22}}){END}"),
        ),
    ]
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::{f, n, p, uuid, Case, ALNUM, B64, DIGITS, HEX, HEX_UPPER, UPPER, URL_SAFE};

    const LOWER_ALNUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        let hex = |seed: &str, len: usize| f(seed, HEX, len);
        let alnum = |seed: &str, len: usize| f(seed, ALNUM, len);
        let safe = |seed: &str, len: usize| f(seed, URL_SAFE, len);
        let lower = |seed: &str, len: usize| f(seed, LOWER_ALNUM, len);
        vec![
            // Chat and messaging.
            p("slack-token", "legacy {}", format!("xoxs-{}-{}-{}-{}", f("xoxs1", DIGITS, 12), f("xoxs2", DIGITS, 12), f("xoxs3", DIGITS, 13), hex("xoxs4", 64))),
            p("slack-token", "SLACK_LEGACY_TOKEN={}", format!("xoxo-{}-{}-{}-{}", f("xoxo1", DIGITS, 11), f("xoxo2", DIGITS, 12), f("xoxo3", DIGITS, 12), hex("xoxo4", 32))),
            p("slack-webhook-url", "SLACK_WORKFLOW_URL=https://{}", format!("hooks.slack.com/workflows/T{}/A{}/{}/{}", f("swf-t", UPPER, 10), f("swf-a", UPPER, 10), f("swf-n", DIGITS, 18), alnum("swf-s", 24))),
            p("slack-webhook-url", "curl -X POST https://{} -d '{{}}'", format!("hooks.slack.com/triggers/T{}/{}/{}", f("str-t", UPPER, 10), f("str-n", DIGITS, 13), hex("str-s", 32))),
            p("slack-app-token", "SLACK_APP_TOKEN={}", format!("xapp-1-A{}-{}-{}", f("xapp1", UPPER, 10), f("xapp2", DIGITS, 13), hex("xapp3", 64))),
            p("microsoft-teams-webhook-url", "TEAMS_WEBHOOK_URL=\"https://acme.{}\"", format!("webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{}/V2{}", uuid("teams1"), uuid("teams2"), alnum("teams3", 32), uuid("teams4"), safe("teams5", 45))),
            p("microsoft-teams-webhook-url", "url: https://{}", format!("outlook.office.com/webhook/{}@{}/IncomingWebhook/{}/{}", uuid("teams-o1"), uuid("teams-o2"), alnum("teams-o3", 32), uuid("teams-o4"))),
            p("power-automate-webhook-url", &format!("https://prod-27.westeurope.logic.azure.com:443/workflows/{}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={{}}", hex("pa1", 32)), safe("pa-sig", 43)),
            p("power-automate-webhook-url", &format!("\"url\": \"https://default{}.0d.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/{}/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={{}}\"", hex("pp1", 30), hex("pp2", 32)), safe("pp-sig", 43)),
            p("google-chat-webhook-url", &format!("https://chat.googleapis.com/v1/spaces/AAAA{}/messages?key=AIza{}&token={{}}", alnum("gchat1", 7), safe("gchat2", 35)), format!("{}%3D", safe("gchat3", 43))),
            p("mattermost-token", "MATTERMOST_TOKEN={}", lower("mm", 26)),
            p("rocketchat-token", "ROCKETCHAT_AUTH_TOKEN={}", safe("rc1", 43)),
            p("rocketchat-token", "rocket_chat_token: \"{}\"", safe("rc2", 43)),
            p("zulip-api-key", "ZULIP_API_KEY={}", alnum("zulip", 32)),
            p("twitch-token", "TWITCH_CLIENT_SECRET={}", f("twitch1", "abcdefghijklmnopqrstuvwxyz0123456789", 30)),
            p("twitch-token", "twitch_oauth_token: {}", format!("oauth:{}", lower("twitch2", 30))),
            p("line-channel-token", "LINE_CHANNEL_ACCESS_TOKEN={}", format!("{}=", f("line1", B64, 171))),
            p("line-channel-token", "lineChannelSecret: \"{}\"", hex("line2", 32)),
            p("facebook-access-token", "FACEBOOK_ACCESS_TOKEN={}", format!("EAAG{}", alnum("fb", 180))),
            p("facebook-app-secret", "FACEBOOK_APP_SECRET={}", hex("fbs1", 32)),
            p("facebook-app-secret", "FB_APP_SECRET={}", hex("fbs2", 32)),
            p("twitter-bearer-token", "TWITTER_BEARER_TOKEN={}", format!("AAAAAAAAAAAAAAAAAAAAAM{}%2B{}%3D{}", alnum("xb1", 20), alnum("xb2", 30), alnum("xb3", 50))),
            p("twitter-api-secret", "TWITTER_API_SECRET={}", alnum("xs1", 50)),
            p("twitter-api-secret", "TWITTER_ACCESS_TOKEN={}", format!("{}-{}", f("xs2", DIGITS, 19), alnum("xs3", 40))),
            p("linkedin-client-secret", "LINKEDIN_CLIENT_SECRET={}", format!("WPL_AP1.{}.{}==", alnum("li1", 16), alnum("li2", 6))),
            p("reddit-client-secret", "REDDIT_CLIENT_SECRET={}", safe("reddit", 27)),
            p("pusher-secret", "PUSHER_APP_SECRET={}", hex("pusher", 20)),
            p("ably-api-key", "ABLY_API_KEY={}", format!("{}.{}:{}", safe("ably1", 6), safe("ably2", 6), safe("ably3", 43))),
            p("getstream-secret", "STREAM_API_SECRET={}", lower("stream1", 64)),
            p("getstream-secret", "GETSTREAM_SECRET={}", lower("stream2", 64)),
            p("sendbird-api-token", "SENDBIRD_API_TOKEN={}", hex("sendbird", 40)),
            p("intercom-access-token", "token: {}", format!("dG9rO{}=", f("intercom", B64, 54))),
            p("zoom-secret", "ZOOM_CLIENT_SECRET={}", alnum("zoom", 32)),
            p("vonage-api-secret", "VONAGE_API_SECRET={}", alnum("vonage", 16)),
            p("vonage-api-secret", "NEXMO_API_SECRET={}", alnum("nexmo", 16)),
            p("messagebird-api-key", "MESSAGEBIRD_ACCESS_KEY={}", alnum("mbird", 25)),
            p("plivo-auth-token", "PLIVO_AUTH_TOKEN={}", alnum("plivo", 40)),
            p("sinch-secret", "SINCH_KEY_SECRET={}", alnum("sinch", 30)),
            p("discord-token", "DISCORD_BOT_TOKEN={}", format!("OD{}.{}.{}", alnum("dt1", 24), safe("dt2", 6), safe("dt3", 38))),
            p("discord-token", "DISCORD_CLIENT_SECRET={}", safe("dt4", 32)),
            // Email delivery.
            p("mailgun-private-key", "MAILGUN_API_KEY={}", format!("{}-{}-{}", hex("mg1", 32), hex("mg2", 8), hex("mg3", 8))),
            p("mandrill-api-key", "MANDRILL_API_KEY={}", safe("mandrill", 22)),
            p("postmark-token", "X-Postmark-Server-Token: {}", uuid("postmark1")),
            p("postmark-token", "POSTMARK_API_TOKEN={}", uuid("postmark2")),
            p("brevo-api-key", "BREVO_API_KEY={}", format!("xkeysib-{}-{}", hex("brevo1", 64), alnum("brevo2", 16))),
            p("brevo-api-key", "smtp password {}", format!("xsmtpsib-{}-{}", hex("brevo3", 64), alnum("brevo4", 16))),
            p("mailjet-api-key", "MAILJET_SECRET_KEY={}", hex("mailjet1", 32)),
            p("mailjet-api-key", "MJ_APIKEY_PRIVATE={}", hex("mailjet2", 32)),
            p("sparkpost-api-key", "SPARKPOST_API_KEY={}", hex("sparkpost", 40)),
            p("resend-api-key", "RESEND_API_KEY={}", format!("re_{}_{}", alnum("resend1", 8), alnum("resend2", 24))),
            p("loops-api-key", "LOOPS_API_KEY={}", hex("loops", 32)),
            p("convertkit-api-secret", "CONVERTKIT_API_SECRET={}", safe("ck", 43)),
            p("customerio-api-key", "CUSTOMERIO_API_KEY={}", hex("cio1", 20)),
            p("customerio-api-key", "customer_io_app_api_key: {}", hex("cio2", 32)),
            // Payments and commerce.
            p("braintree-access-token", "BRAINTREE_ACCESS_TOKEN={}", format!("access_token$production${}${}", lower("bt1", 16), hex("bt2", 32))),
            p("braintree-private-key", "BRAINTREE_PRIVATE_KEY={}", hex("bt3", 32)),
            p("paypal-client-secret", "PAYPAL_CLIENT_SECRET={}", format!("E{}", safe("paypal", 79))),
            p("square-oauth-secret", "SQUARE_APPLICATION_SECRET={}", format!("sq0csp-{}", safe("sq0csp", 43))),
            p("adyen-api-key", "ADYEN_API_KEY={}", format!("AQE{}==-{}=-{}", f("adyen1", B64, 95), f("adyen2", B64, 43), alnum("adyen3", 16))),
            p("checkout-secret-key", "CHECKOUT_SECRET_KEY={}", format!("sk_sbox_{}", lower("cko1", 26))),
            p("checkout-secret-key", "ckoSecretKey: '{}'", format!("sk_test_{}", uuid("cko2"))),
            p("razorpay-key-secret", "RAZORPAY_KEY_SECRET={}", alnum("razorpay", 24)),
            p("flutterwave-secret-key", "FLW_SECRET_KEY={}", format!("FLWSECK-{}-X", hex("flw1", 32))),
            p("flutterwave-secret-key", "FLW_ENCRYPTION_KEY={}", format!("FLWSECK_TEST{}", hex("flw2", 12))),
            p("mollie-api-key", "MOLLIE_API_KEY={}", format!("live_{}", alnum("mollie", 30))),
            p("coinbase-api-secret", "COINBASE_API_SECRET={}", format!("{}==", f("coinbase", B64, 86))),
            p("plaid-access-token", "access_token: {}", format!("access-sandbox-{}", uuid("plaid1"))),
            p("plaid-access-token", "PLAID_ACCESS_TOKEN={}", format!("access-development-{}", uuid("plaid2"))),
            p("plaid-access-token", "\"access_token\": \"{}\"", format!("access-production-{}", uuid("plaid3"))),
            p("plaid-secret", "PLAID_SECRET={}", hex("plaid4", 30)),
            p("gocardless-access-token", "GOCARDLESS_ACCESS_TOKEN={}", format!("live_{}", safe("gc", 40))),
            p("easypost-api-key", "EASYPOST_API_KEY={}", format!("EZAK{}", alnum("ezak", 54))),
            p("easypost-api-key", "test key {}", format!("EZTK{}", alnum("eztk", 54))),
            p("woocommerce-api-key", "WOOCOMMERCE_CONSUMER_KEY={}", format!("ck_{}", hex("wc1", 40))),
            p("woocommerce-api-key", "consumer_secret: {}", format!("cs_{}", hex("wc2", 40))),
            p("bigcommerce-access-token", "BIGCOMMERCE_ACCESS_TOKEN={}", lower("bc", 31)),
            p("paddle-api-key", "PADDLE_API_KEY={}", format!("pdl_live_apikey_{}_{}_{}", lower("pdl1", 26), alnum("pdl2", 22), alnum("pdl3", 3))),
            p("recurly-api-key", "RECURLY_API_KEY={}", hex("recurly", 32)),
            p("chargebee-api-key", "CHARGEBEE_API_KEY={}", format!("live_{}", alnum("chargebee", 34))),
            p("wise-api-token", "WISE_API_TOKEN={}", uuid("wise")),
            p("wise-api-token", "transferwise_token: {}", uuid("transferwise")),
            // CRM, support, productivity and identity.
            p("hubspot-token", "HUBSPOT_ACCESS_TOKEN={}", format!("pat-na1-{}", uuid("hs1"))),
            p("hubspot-token", "Authorization: Bearer {}", format!("pat-eu1-{}", uuid("hs2"))),
            p("hubspot-api-key", "https://api.hubapi.com/contacts/v1/lists?hapikey={}", uuid("hs3")),
            p("hubspot-api-key", "HUBSPOT_API_KEY={}", uuid("hs4")),
            p("salesforce-access-token", "SF_ACCESS_TOKEN={}", format!("00D{}!{}.{}", alnum("sf1", 12), alnum("sf2", 4), alnum("sf3", 90))),
            p("zendesk-api-token", "ZENDESK_API_TOKEN={}", alnum("zendesk", 40)),
            p("freshdesk-api-key", "FRESHDESK_API_KEY={}", alnum("freshdesk", 20)),
            p("asana-pat", "ASANA_TOKEN={}", format!("2/{}/{}:{}", f("asana1", DIGITS, 16), f("asana2", DIGITS, 16), hex("asana3", 32))),
            p("asana-pat", "Authorization: Bearer {}", format!("1/{}:{}", f("asana4", DIGITS, 16), hex("asana5", 32))),
            p("airtable-pat", "AIRTABLE_API_KEY={}", format!("pat{}.{}", alnum("airtable1", 14), hex("airtable2", 64))),
            p("clickup-api-token", "CLICKUP_API_TOKEN={}", format!("pk_{}_{}", f("clickup1", DIGITS, 8), f("clickup2", UPPER, 32))),
            p("trello-token", "TRELLO_TOKEN={}", format!("ATTA{}{}", hex("trello1", 64), f("trello2", HEX_UPPER, 8))),
            p("figma-token", "FIGMA_TOKEN={}", format!("figd_{}", safe("figma", 40))),
            p("miro-access-token", "MIRO_ACCESS_TOKEN={}", format!("eyJtaXJv{}_{}", alnum("miro1", 22), safe("miro2", 27))),
            p("dropbox-short-lived-token", "DROPBOX_ACCESS_TOKEN={}", format!("sl.B{}", safe("dbx1", 140))),
            p("dropbox-short-lived-token", "Authorization: Bearer {}", format!("sl.u.{}", safe("dbx2", 400))),
            p("dropbox-token", "DROPBOX_REFRESH_TOKEN={}", format!("{}AAAAAAAAAA{}", alnum("dbx3", 11), safe("dbx4", 43))),
            p("box-token", "BOX_CLIENT_SECRET={}", alnum("box", 32)),
            p("typeform-token", "TYPEFORM_TOKEN={}", format!("tfp_{}", alnum("typeform", 59))),
            p("contentful-token", "CONTENTFUL_MANAGEMENT_TOKEN={}", format!("CFPAT-{}", safe("cfpat", 43))),
            p("sanity-token", "SANITY_API_TOKEN={}", format!("sk{}", alnum("sanity", 180))),
            p("algolia-admin-key", "ALGOLIA_ADMIN_KEY={}", hex("algolia", 32)),
            p("mapbox-secret-token", "MAPBOX_SECRET_TOKEN={}", format!("sk.eyJ1Ijoi{}.{}", safe("mapbox1", 40), safe("mapbox2", 22))),
            p("auth0-client-secret", "AUTH0_CLIENT_SECRET={}", safe("auth0", 64)),
            p("stytch-secret", "STYTCH_SECRET={}", format!("secret-test-{}", safe("stytch1", 36))),
            p("stytch-secret", "stytch live {}", format!("secret-live-{}", safe("stytch2", 36))),
            p("duffel-token", "DUFFEL_ACCESS_TOKEN={}", format!("duffel_test_{}", safe("duffel", 43))),
            p("frameio-token", "FRAMEIO_TOKEN={}", format!("fio-u-{}", safe("frameio", 64))),
            p("docusign-secret", "DOCUSIGN_SECRET_KEY={}", uuid("docusign")),
            // Shapes added to the Slack, Meta, X and Discord detectors above.
            p("slack-bot-token", "legacy bot {}", format!("xoxb-{}-{}", f("xoxb-l1", DIGITS, 11), alnum("xoxb-l2", 24))),
            p("slack-token", "SLACK_REFRESH={}", format!("xoxr-{}", alnum("xoxr-s", 40))),
            p("slack-token", "rotated user token {}", format!("xoxe-{}-{}-{}-{}", f("xoxe-u1", DIGITS, 12), f("xoxe-u2", DIGITS, 12), f("xoxe-u3", DIGITS, 13), alnum("xoxe-u4", 30))),
            p("facebook-app-secret", "FACEBOOK_APP_TOKEN={}", format!("{}|{}", f("fbt1", DIGITS, 16), safe("fbt2", 27))),
            p("twitter-api-secret", "TWITTER_CONSUMER_KEY={}", alnum("xk", 25)),
            p("discord-token", "DISCORD_API_TOKEN={}", hex("dt5", 64)),
            // Names nested in YAML or JSON, or written in prose.
            p("zendesk-api-token", "zendesk:\n  subdomain: acme\n  api_token: {}\n", alnum("zendesk-yaml", 40)),
            p("postmark-token", r#"{"postmark": {"serverToken": "{}"}}"#, uuid("postmark-json")),
            p("sendbird-api-token", "The Sendbird API token: {}", hex("sendbird-prose", 40)),
            // Crypto exchanges, commerce and chat formats found by name only.
            p("intercom-api-key", "INTERCOM_TOKEN={}", safe("intercom-any", 60)),
            p("gitter-token", "GITTER_TOKEN={}", safe("gitter", 40)),
            p("freshbooks-access-token", "FRESHBOOKS_ACCESS_TOKEN={}", alnum("freshbooks", 64)),
            p("trello-api-key", "TRELLO_API_KEY={}", alnum("trello-key", 32)),
            p("etsy-api-key", "ETSY_API_KEY={}", alnum("etsy", 24)),
            p("squarespace-api-key", "SQUARESPACE_API_KEY={}", uuid("squarespace")),
            p("lob-api-key", "LOB_API_KEY={}", format!("live_{}", hex("lob", 35))),
            p("kraken-api-secret", "KRAKEN_API_SECRET={}", format!("{}==", f("kraken", B64, 86))),
            p("kucoin-api-secret", "KUCOIN_API_SECRET={}", uuid("kucoin")),
            p("bittrex-api-secret", "BITTREX_API_SECRET={}", alnum("bittrex", 32)),
            p("zapier-webhook-url", "ZAPIER_WEBHOOK=https://{}/", format!("hooks.zapier.com/hooks/catch/{}/{}", f("zap1", DIGITS, 7), lower("zap2", 7))),
            p("ifttt-webhook-key", "https://maker.ifttt.com/trigger/door_open/with/key/{}", safe("ifttt", 22)),
        ]
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        let hex = |seed: &str, len: usize| f(seed, HEX, len);
        let alnum = |seed: &str, len: usize| f(seed, ALNUM, len);
        let safe = |seed: &str, len: usize| f(seed, URL_SAFE, len);
        vec![
            n("slack-token", format!("xoxs-{}-{}", f("xoxs-n", DIGITS, 12), hex("xoxs-n2", 32))),
            n("slack-webhook-url", "see https://hooks.slack.com/workflows/ for the docs"),
            n("slack-app-token", format!("xapp-1-A{}-{}-short", f("xapp-n", UPPER, 10), f("xapp-n2", DIGITS, 13))),
            n("microsoft-teams-webhook-url", format!("https://acme.webhook.office.com/webhookb2/{}@{}", uuid("tn1"), uuid("tn2"))),
            n("power-automate-webhook-url", format!("https://prod-27.westeurope.logic.azure.com:443/workflows/{}/triggers/manual/paths/invoke?api-version=2016-06-01&sig=short", hex("pan", 32))),
            n("google-chat-webhook-url", format!("https://chat.googleapis.com/v1/spaces/AAAA{}/messages?threadKey=x", alnum("gcn", 7))),
            n("mattermost-token", "MATTERMOST_TOKEN=short and mattermost_url=https://chat.acme.io"),
            n("rocketchat-token", format!("ROCKETCHAT_USER_ID={}", alnum("rcn", 17))),
            n("zulip-api-key", format!("ZULIP_API_KEY={}", alnum("zn", 31))),
            n("twitch-token", format!("TWITCH_CLIENT_ID={}", f("twn", "abcdefghijklmnopqrstuvwxyz0123456789", 30))),
            n("line-channel-token", format!("LINE_CHANNEL_ID={} and line channel secret", f("lcn", DIGITS, 10))),
            n("facebook-access-token", format!("EAA{} and EAAA{}", alnum("fbn", 50), f("fbn2", URL_SAFE, 60))),
            n("facebook-app-secret", format!("FACEBOOK_APP_ID={}", f("fbn3", DIGITS, 16))),
            n("twitter-bearer-token", format!("blob: {}== end", "A".repeat(100))),
            n("twitter-api-secret", format!("TWITTER_USERNAME=acme_corp TWITTER_API_KEY={}", alnum("xn", 24))),
            n("linkedin-client-secret", format!("LINKEDIN_CLIENT_ID={}", alnum("lin", 14))),
            n("reddit-client-secret", "REDDIT_CLIENT_SECRET=short reddit_user_agent"),
            n("pusher-secret", format!("PUSHER_APP_KEY={} PUSHER_APP_SECRET={}", hex("pun", 20), hex("pun2", 19))),
            n("ably-api-key", format!("ABLY_API_KEY={}.{}", safe("abn", 6), safe("abn2", 6))),
            n("getstream-secret", format!("STREAM_API_KEY={} upstream_api_secret_name=x", alnum("gsn", 12))),
            n("sendbird-api-token", format!("SENDBIRD_APP_ID={}", uuid("sbn"))),
            n("intercom-access-token", "dG9rOshort and dG9r alone"),
            n("zoom-secret", "zoom: 1.5; zoom_secret_name=\"short\""),
            n("vonage-api-secret", format!("VONAGE_API_KEY={}", hex("vn", 8))),
            n("messagebird-api-key", format!("MESSAGEBIRD_API_KEY={}", alnum("mbn", 24))),
            n("plivo-auth-token", format!("PLIVO_AUTH_ID=MA{}", f("pln", UPPER, 18))),
            n("sinch-secret", "SINCH_SECRET=short"),
            n("discord-token", format!("DISCORD_TOKEN=MT{}.{}.{}", alnum("dbn", 24), safe("dbn2", 6), safe("dbn3", 38))),
            n("mailgun-private-key", format!("MAILGUN_DOMAIN=mg.acme.io MAILGUN_API_KEY={}-{}", hex("mgn", 32), hex("mgn2", 8))),
            n("mandrill-api-key", "MANDRILL_API_KEY=short"),
            n("postmark-token", format!("POSTMARK_TEMPLATE_ID={} postmark token: none", f("pmn", DIGITS, 8))),
            n("brevo-api-key", format!("xkeysib-{}-{}", hex("brn", 63), alnum("brn2", 16))),
            n("mailjet-api-key", format!("MAILJET_API_KEY={}", hex("mjn", 31))),
            n("sparkpost-api-key", format!("SPARKPOST_API_KEY={}", hex("spn", 39))),
            n("resend-api-key", "re_match_group(pattern) and RESEND_API_KEY=re_123456789"),
            n("loops-api-key", "for loops_key in range(10): loops_token = 1"),
            n("convertkit-api-secret", "CONVERTKIT_FORM_ID=1234567 convertkit secret"),
            n("customerio-api-key", format!("CUSTOMERIO_SITE_ID={}", hex("cion", 19))),
            n("braintree-access-token", "access_token$production$short"),
            n("braintree-private-key", format!("BRAINTREE_PUBLIC_KEY={} BRAINTREE_MERCHANT_ID=x", hex("btn", 16))),
            n("paypal-client-secret", format!("PAYPAL_CLIENT_SECRET={}", safe("ppn", 20))),
            n("square-oauth-secret", format!("sq0idp-{} sq0csp-short", safe("sqn", 22))),
            n("adyen-api-key", format!("AQE{}== alone", f("adn", B64, 40))),
            n("checkout-secret-key", format!("sk_sbox_short pk_sbox_{}", f("cokn", "abcdefghijklmnopqrstuvwxyz0123456789", 26))),
            n("razorpay-key-secret", format!("RAZORPAY_KEY_ID=rzp_live_{}", alnum("rzn", 14))),
            n("flutterwave-secret-key", format!("FLWPUBK-{}-X and FLWSECK-{}-X", hex("flwn", 32), hex("flwn2", 31))),
            n("mollie-api-key", format!("MOLLIE_PROFILE_ID=pfl_{}", alnum("mon", 10))),
            n("coinbase-api-secret", format!("COINBASE_API_KEY={} coinbase secret", alnum("cbn", 16))),
            n("plaid-access-token", format!("access-sandbox-{} public-sandbox-{}", hex("pln1", 20), uuid("pln2"))),
            n("plaid-secret", format!("PLAID_CLIENT_ID={}", hex("pln3", 24))),
            n("gocardless-access-token", format!("GOCARDLESS_ACCESS_TOKEN=live_{}", safe("gcn", 20))),
            n("easypost-api-key", format!("EZAK{}", alnum("ezn", 53))),
            n("woocommerce-api-key", format!("ck_{} cs_test_{}", hex("wcn", 39), alnum("wcn2", 40))),
            n("bigcommerce-access-token", "BIGCOMMERCE_STORE_HASH=abc123 bigcommerce token"),
            n("paddle-api-key", format!("pdl_live_apikey_short PADDLE_CLIENT_TOKEN=live_{}", hex("pdn", 27))),
            n("recurly-api-key", format!("RECURLY_PUBLIC_KEY=ewr1-{}", alnum("ren", 22))),
            n("chargebee-api-key", format!("CHARGEBEE_SITE=acme-test CHARGEBEE_API_KEY={}", alnum("cbe", 20))),
            n("wise-api-token", format!("otherwise_token = {} WISE_PROFILE_ID=12345678", hex("wn", 32))),
            n("hubspot-token", format!("pat-na1-{} and patterns", alnum("hsn", 20))),
            n("hubspot-api-key", format!("HUBSPOT_PORTAL_ID={} hapikey=YOUR_API_KEY", f("hsn2", DIGITS, 8))),
            n("salesforce-access-token", format!("00D{}!{}", alnum("sfn", 12), alnum("sfn2", 20))),
            n("zendesk-api-token", format!("ZENDESK_SUBDOMAIN=acme ZENDESK_API_TOKEN={}", alnum("zdn", 39))),
            n("freshdesk-api-key", format!("FRESHDESK_API_KEY={}", alnum("fdn", 19))),
            n("asana-pat", format!("page 1/2, id 2/{}/{}:{}", f("asn1", DIGITS, 16), f("asn2", DIGITS, 16), hex("asn3", 31))),
            n("airtable-pat", format!("path pattern pat{}.{}", alnum("atn", 14), hex("atn2", 63))),
            n("clickup-api-token", format!("STRIPE_PUBLISHABLE_KEY=pk_live_{} pk_url_kwarg", alnum("cun", 24))),
            n("trello-token", format!("attachment ATTACHMENT ATTA{}", alnum("trn", 20))),
            n("figma-token", "figd_short"),
            n("miro-access-token", "eyJtaXJvshort"),
            n("dropbox-short-lived-token", format!("ssl.wrap_socket(sock) sl.{}", safe("dbn", 50))),
            n("dropbox-token", format!("DROPBOX_APP_KEY={}", f("dbkn", "abcdefghijklmnopqrstuvwxyz0123456789", 15))),
            n("box-token", format!("bounding_box_token = {}", alnum("bxn", 31))),
            n("typeform-token", "tfp_short"),
            n("contentful-token", "CFPAT-short"),
            n("sanity-token", format!("SANITY_PROJECT_ID={}", f("san", "abcdefghijklmnopqrstuvwxyz0123456789", 8))),
            n("algolia-admin-key", format!("ALGOLIA_SEARCH_KEY={} ALGOLIA_APP_ID={}", hex("aln", 32), f("aln2", UPPER, 10))),
            n("mapbox-secret-token", format!("MAPBOX_TOKEN=pk.eyJ1Ijoi{}.{}", safe("mbn1", 40), safe("mbn2", 22))),
            n("auth0-client-secret", "AUTH0_CLIENT_SECRET=short AUTH0_DOMAIN=acme.eu.auth0.com"),
            n("stytch-secret", "secret-test-short"),
            n("duffel-token", "duffel_live_short"),
            n("frameio-token", "fio-u-short"),
            n("docusign-secret", format!("DOCUSIGN_INTEGRATION_KEY={}", uuid("dsn"))),
            n("intercom-api-key", "INTERCOM_APP_ID=abc123xy intercom token"),
            n("gitter-token", "GITTER_ROOM=acme/dev gitter token"),
            n("freshbooks-access-token", format!("FRESHBOOKS_ACCOUNT_ID={}", alnum("fbkn", 6))),
            n("trello-api-key", format!("TRELLO_BOARD_ID={}", hex("trn2", 24))),
            n("etsy-api-key", "ETSY_SHOP_ID=12345678 etsy key"),
            n("squarespace-api-key", format!("SQUARESPACE_SITE_ID={}", hex("sqsn", 24))),
            n("lob-api-key", format!("LOB_PUBLISHABLE_KEY=live_pub_{} blob_key = test_{}", hex("lobn", 31), hex("lobn2", 20))),
            n("kraken-api-secret", format!("KRAKEN_API_SECRET={}", f("krn", B64, 40))),
            n("kucoin-api-secret", "KUCOIN_API_PASSPHRASE=hunter2hunter2"),
            n("bittrex-api-secret", format!("BITTREX_API_SECRET={}", alnum("btxn", 31))),
            n("zapier-webhook-url", "see https://hooks.zapier.com/hooks/catch/ in the docs"),
            n("ifttt-webhook-key", "https://maker.ifttt.com/trigger/door/with/key/short"),
        ]
    }
}
