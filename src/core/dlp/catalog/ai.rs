//! AI and machine-learning providers: Anthropic, OpenAI and other model APIs, model hubs and
//! AI platforms.

use super::{assigned, vendor, END};
use crate::core::dlp::detector::DetectorSpec;

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
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
