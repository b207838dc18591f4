//! Notifying approvers of a new review: a Slack-compatible incoming-webhook POST.
//!
//! The payload is `{"text": …, "blocks": [section, context, actions]}`: `text` is the fallback
//! for clients without blocks (and for non-Slack receivers such as Mattermost or a chat bridge);
//! the blocks say who asks, under which role, why (reason codes), the model, and carry a button
//! linking to the review page. The masked excerpt is *not* sent: it stays on the service, behind
//! the approvers' login.
//!
//! Sending runs on tokio's blocking pool (ureq is a blocking client) and is never awaited by the
//! hold: a slow or failing receiver cannot delay or fail a request. Each attempt has a 10 s
//! timeout and is tried once; a failure is logged with the review id and a short cause (HTTP
//! status, timeout, …) — never the webhook URL, which is itself a secret.

use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;

use crate::service::util::log_event;

/// What a new review notification says.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Review id.
    pub review_id: String,
    /// The requester.
    pub subject: String,
    /// The requester's role.
    pub role: String,
    /// Reason codes.
    pub reasons: Vec<String>,
    /// Model asked for.
    pub model: String,
    /// Whether two approvers are needed.
    pub two_person: bool,
    /// Link to the review page.
    pub link: String,
}

/// A configured webhook receiver.
pub struct Webhook {
    url: String,
    agent: ureq::Agent,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Webhook([REDACTED URL])")
    }
}

impl Webhook {
    /// A webhook posting to `url` (`http://` or `https://`).
    pub fn new(url: &str) -> Result<Self, String> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err("--webhook must be an http:// or https:// URL".to_string());
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self { url: url.to_string(), agent })
    }

    /// Sends `notice` in the background; returns at once.
    pub fn notify(self: &std::sync::Arc<Self>, notice: Notice) {
        let webhook = std::sync::Arc::clone(self);
        // The join handle is dropped: the task runs to completion on its own.
        drop(tokio::task::spawn_blocking(move || webhook.send(&notice)));
    }

    fn send(&self, notice: &Notice) {
        let body = payload(notice).to_string();
        let result = self.agent.post(&self.url).header("content-type", "application/json").send(body.as_str());
        match result {
            Ok(response) if response.status().is_success() => {
                log_event(&format!("webhook sent for review {}", notice.review_id));
            }
            Ok(response) => log_event(&format!(
                "webhook failed for review {}: the receiver answered HTTP {}",
                notice.review_id,
                response.status().as_u16()
            )),
            Err(e) => {
                log_event(&format!("webhook failed for review {}: {}", notice.review_id, describe_http_error(&e)))
            }
        }
    }
}

/// The Slack-compatible JSON for `notice`.
pub fn payload(notice: &Notice) -> Value {
    let reasons = if notice.reasons.is_empty() { "none given".to_string() } else { notice.reasons.join(", ") };
    let model = if notice.model.is_empty() { "-" } else { notice.model.as_str() };
    let rule = if notice.two_person { " (two approvers needed)" } else { "" };
    let text = format!(
        "Warden: {} (role {}) asks for approval{rule}: {reasons}; model {model}. Review {}: {}",
        notice.subject, notice.role, notice.review_id, notice.link
    );
    let section = format!(
        "*Approval needed*{rule}\n*{}* (role `{}`) asks to use `{}`\nReasons: `{}`",
        mrkdwn(&notice.subject),
        mrkdwn(&notice.role),
        mrkdwn(model),
        mrkdwn(&reasons)
    );
    json!({
        "text": mrkdwn(&text),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Review `{}`", notice.review_id)}]},
            {"type": "actions", "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Open the review"},
                "url": notice.link,
                "style": "primary"
            }]}
        ]
    })
}

/// Slack's mrkdwn escaping: `&`, `<` and `>`.
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A short cause for an HTTP client error, without URLs or bodies.
pub fn describe_http_error(error: &ureq::Error) -> String {
    match error {
        ureq::Error::StatusCode(code) => format!("HTTP {code}"),
        ureq::Error::Timeout(_) => "timed out".to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Io(e) => format!("I/O error ({:?})", e.kind()),
        ureq::Error::BodyExceedsLimit(limit) => format!("the answer is larger than {limit} bytes"),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error".to_string(),
        ureq::Error::BadUri(_) => "invalid URL".to_string(),
        _ => "request failed".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            review_id: "rev_0011223344556677".into(),
            subject: "alice<script>".into(),
            role: "developer".into(),
            reasons: vec!["opus_model".into(), "shell_tool".into()],
            model: "claude-opus-4-1".into(),
            two_person: true,
            link: "https://warden.example/reviews/rev_0011223344556677".into(),
        }
    }

    #[test]
    fn the_payload_is_slack_compatible_and_links_to_the_review() {
        let body = payload(&notice());
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("https://warden.example/reviews/rev_0011223344556677"), "{text}");
        assert!(text.contains("opus_model, shell_tool"));
        assert!(text.contains("two approvers"));
        assert_eq!(body["blocks"][0]["type"], "section");
        assert_eq!(body["blocks"][2]["elements"][0]["url"], "https://warden.example/reviews/rev_0011223344556677");
        let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(section.contains("alice&lt;script&gt;"), "mrkdwn is escaped: {section}");
    }

    #[test]
    fn only_http_urls_are_accepted_and_the_url_is_never_shown() {
        assert!(Webhook::new("ftp://x").is_err());
        let webhook = Webhook::new("https://hooks.example/T000/B000/secret").unwrap();
        assert!(!format!("{webhook:?}").contains("secret"));
    }
}
