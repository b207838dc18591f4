//! Business SaaS: chat and messaging, email delivery, payments and commerce, CRM, support,
//! productivity and identity providers.

use super::{assigned, detector, vendor, END, END_B64};
use crate::core::dlp::detector::{Category, CharClass, DetectorSpec, Trigger};

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
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
