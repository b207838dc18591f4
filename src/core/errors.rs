//! Refusals in Anthropic's error format.
//!
//! Every request Warden refuses gets a [`Denial`]: a stable [`Reason`] code (documented in
//! `docs/policy.md`, safe to alert on) and a human detail. [`Denial::to_reply`] renders it the way
//! Anthropic's API does, so SDKs and Claude Code show it as a normal API error:
//!
//! ```text
//! HTTP/1.1 403
//! content-type: application/json
//! request-id: req_warden_…
//! x-should-retry: false
//!
//! {"type":"error","error":{"type":"permission_error","message":"warden: model_not_allowed: …"}}
//! ```
//!
//! Refusals are deterministic, so they carry `x-should-retry: false` (Claude Code would otherwise
//! retry a 401 ten times over several minutes) — all but `audit_unavailable`, which passes once
//! the audit service is reachable again.

use serde::Serialize;

/// Anthropic's error types, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// 400: the request is malformed.
    InvalidRequest,
    /// 401: no valid credential.
    Authentication,
    /// 403: the caller may not do this.
    Permission,
    /// 404: no such resource.
    NotFound,
    /// 413: the body is over the limit.
    RequestTooLarge,
    /// 429: a budget or rate limit is used up for now.
    RateLimit,
    /// 500: Warden itself failed; fail closed.
    Api,
    /// 503: a service Warden depends on cannot keep up; try again later.
    Unavailable,
}

impl ErrorType {
    /// The HTTP status Anthropic uses for this error type.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Authentication => 401,
            Self::Permission => 403,
            Self::NotFound => 404,
            Self::RequestTooLarge => 413,
            Self::RateLimit => 429,
            Self::Api => 500,
            Self::Unavailable => 503,
        }
    }

    /// The `error.type` string in the JSON body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimit => "rate_limit_error",
            Self::Api | Self::Unavailable => "api_error",
        }
    }
}

/// Why a request was refused. The code strings are a stable interface: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No token was presented.
    TokenMissing,
    /// The token failed verification (signature, audience, issuer, two different credentials).
    TokenInvalid,
    /// The token has expired; the message says how to get a fresh one.
    TokenExpired,
    /// The token lacks `exp` or `iat`, so its lifetime cannot be bounded.
    TokenLifetimeUnknown,
    /// `exp - iat` exceeds `identity.max_token_lifetime`.
    TokenLifetimeTooLong,
    /// The token has no subject to attribute the call to.
    TokenSubjectMissing,
    /// None of the caller's groups is bound to a role.
    NoRoleBinding,
    /// The role asked for with the role header is not one the caller's groups grant.
    RoleNotEntitled,
    /// The path is not an Anthropic API path Warden knows.
    UnknownEndpoint,
    /// The method and path name an endpoint this role (or Warden) does not allow.
    EndpointNotAllowed,
    /// The body is not JSON (`content-type`).
    InvalidContentType,
    /// The body is compressed (`content-encoding`); Warden inspects plain JSON only.
    CompressedBody,
    /// The body is not valid UTF-8 JSON.
    InvalidJson,
    /// The JSON is well-formed but a field Warden checks has the wrong shape.
    InvalidRequest,
    /// The body is larger than the role's `max_body_bytes`.
    BodyTooLarge,
    /// The model does not match the role's `models`.
    ModelNotAllowed,
    /// `max_tokens` is above the role's cap (action `deny`).
    MaxTokensExceeded,
    /// The thinking budget is above the role's cap (action `deny`).
    ThinkingBudgetExceeded,
    /// A client tool's name does not match the role's `tools.client`.
    ToolNotAllowed,
    /// An Anthropic-defined tool's type does not match the role's `tools.server`.
    ServerToolNotAllowed,
    /// An `mcp_servers` URL does not match the role's `mcp_servers`.
    McpServerNotAllowed,
    /// An `anthropic-beta` value does not match the role's `betas`.
    BetaNotAllowed,
    /// `stream: true` for a role with `streaming: false`.
    StreamingNotAllowed,
    /// The request or response holds data a `block` detector of the role's DLP profile matched.
    SensitiveDataBlocked,
    /// The upstream response cannot be inspected for masking (compressed, not text, or a
    /// malformed event stream), so it is not delivered.
    ResponseUninspectable,
    /// The request needs a human's approval and nobody decided within the hold; the reply names
    /// the review to open. Re-sending the same request after approval passes.
    ApprovalPending,
    /// An approver denied the request.
    ApprovalDenied,
    /// The approval service could not be asked (unreachable, timed out, an error or a malformed
    /// answer): the request is refused, never passed.
    ApprovalUnavailable,
    /// The approval service's answer did not verify (signature, request, caller or expiry):
    /// possibly forged.
    ApprovalInvalid,
    /// Audit records cannot be delivered (the queue is full or the audit service has been
    /// unreachable too long) and the policy says `fail_closed`.
    AuditUnavailable,
    /// Warden could not do its work (a proxy call failed); the request is refused, not passed.
    InternalError,
    /// A budget of the caller cannot fit the request's reservation (429 with `retry-after`); the
    /// message names the budget, what is left and when it resets.
    BudgetExhausted,
    /// The budget ledger could not be updated (contention beyond the retry bound, or full): the
    /// request is refused rather than let through uncounted.
    BudgetUnavailable,
    /// The caller's subject, a group of theirs, their job or this token was revoked (the kill
    /// switch, `identity.revocation`): 401, so clients fetch a new token.
    Revoked,
    /// The gateway's revocation list is older than `identity.revocation.max_staleness` and the
    /// policy says `refuse`: nobody can be shown not to be revoked.
    RevocationUnavailable,
}

impl Reason {
    /// The stable reason code that follows `warden:` in every message.
    pub fn code(self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::TokenLifetimeUnknown => "token_lifetime_unknown",
            Self::TokenLifetimeTooLong => "token_lifetime_too_long",
            Self::TokenSubjectMissing => "token_subject_missing",
            Self::NoRoleBinding => "no_role_binding",
            Self::RoleNotEntitled => "role_not_entitled",
            Self::UnknownEndpoint => "unknown_endpoint",
            Self::EndpointNotAllowed => "endpoint_not_allowed",
            Self::InvalidContentType => "invalid_content_type",
            Self::CompressedBody => "compressed_body",
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::BodyTooLarge => "body_too_large",
            Self::ModelNotAllowed => "model_not_allowed",
            Self::MaxTokensExceeded => "max_tokens_exceeded",
            Self::ThinkingBudgetExceeded => "thinking_budget_exceeded",
            Self::ToolNotAllowed => "tool_not_allowed",
            Self::ServerToolNotAllowed => "server_tool_not_allowed",
            Self::McpServerNotAllowed => "mcp_server_not_allowed",
            Self::BetaNotAllowed => "beta_not_allowed",
            Self::StreamingNotAllowed => "streaming_not_allowed",
            Self::SensitiveDataBlocked => "sensitive_data_blocked",
            Self::ResponseUninspectable => "response_uninspectable",
            Self::ApprovalPending => "approval_pending",
            Self::ApprovalDenied => "approval_denied",
            Self::ApprovalUnavailable => "approval_unavailable",
            Self::ApprovalInvalid => "approval_invalid",
            Self::AuditUnavailable => "audit_unavailable",
            Self::InternalError => "internal_error",
            Self::BudgetExhausted => "budget_exhausted",
            Self::BudgetUnavailable => "budget_unavailable",
            Self::Revoked => "revoked",
            Self::RevocationUnavailable => "revocation_unavailable",
        }
    }

    /// The Anthropic error type (and so the HTTP status) this reason is reported with.
    pub fn error_type(self) -> ErrorType {
        match self {
            Self::TokenMissing
            | Self::TokenInvalid
            | Self::TokenExpired
            | Self::TokenLifetimeUnknown
            | Self::TokenLifetimeTooLong
            | Self::TokenSubjectMissing
            | Self::Revoked => ErrorType::Authentication,
            Self::NoRoleBinding
            | Self::RoleNotEntitled
            | Self::EndpointNotAllowed
            | Self::ModelNotAllowed
            | Self::MaxTokensExceeded
            | Self::ThinkingBudgetExceeded
            | Self::ToolNotAllowed
            | Self::ServerToolNotAllowed
            | Self::McpServerNotAllowed
            | Self::BetaNotAllowed
            | Self::StreamingNotAllowed
            | Self::SensitiveDataBlocked
            | Self::ApprovalPending
            | Self::ApprovalDenied
            | Self::ApprovalUnavailable
            | Self::ApprovalInvalid => ErrorType::Permission,
            Self::UnknownEndpoint => ErrorType::NotFound,
            Self::InvalidContentType | Self::CompressedBody | Self::InvalidJson | Self::InvalidRequest => {
                ErrorType::InvalidRequest
            }
            Self::BodyTooLarge => ErrorType::RequestTooLarge,
            Self::InternalError | Self::ResponseUninspectable => ErrorType::Api,
            Self::AuditUnavailable | Self::BudgetUnavailable | Self::RevocationUnavailable => ErrorType::Unavailable,
            Self::BudgetExhausted => ErrorType::RateLimit,
        }
    }

    /// Whether the same request may pass later: only when a service Warden depends on is
    /// temporarily out of reach; every other refusal is deterministic.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::AuditUnavailable | Self::BudgetExhausted | Self::BudgetUnavailable | Self::RevocationUnavailable
        )
    }

    /// Every reason, for documentation and exhaustive tests.
    pub const ALL: [Reason; 35] = [
        Self::TokenMissing,
        Self::TokenInvalid,
        Self::TokenExpired,
        Self::TokenLifetimeUnknown,
        Self::TokenLifetimeTooLong,
        Self::TokenSubjectMissing,
        Self::NoRoleBinding,
        Self::RoleNotEntitled,
        Self::UnknownEndpoint,
        Self::EndpointNotAllowed,
        Self::InvalidContentType,
        Self::CompressedBody,
        Self::InvalidJson,
        Self::InvalidRequest,
        Self::BodyTooLarge,
        Self::ModelNotAllowed,
        Self::MaxTokensExceeded,
        Self::ThinkingBudgetExceeded,
        Self::ToolNotAllowed,
        Self::ServerToolNotAllowed,
        Self::McpServerNotAllowed,
        Self::BetaNotAllowed,
        Self::StreamingNotAllowed,
        Self::SensitiveDataBlocked,
        Self::ResponseUninspectable,
        Self::ApprovalPending,
        Self::ApprovalDenied,
        Self::ApprovalUnavailable,
        Self::ApprovalInvalid,
        Self::AuditUnavailable,
        Self::InternalError,
        Self::BudgetExhausted,
        Self::BudgetUnavailable,
        Self::Revoked,
        Self::RevocationUnavailable,
    ];
}

/// A refusal: the reason and a detail for the human reading the error.
///
/// The detail must never contain a credential or token; it may name the caller's own request
/// values (model, tool names) so the caller can fix the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The stable reason.
    pub reason: Reason,
    /// What exactly was refused, in words.
    pub detail: String,
}

impl Denial {
    /// A refusal for `reason` with a detail message.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self { reason, detail: detail.into() }
    }

    /// The error message: `warden: <code>: <detail>`.
    pub fn message(&self) -> String {
        format!("warden: {}: {}", self.reason.code(), self.detail)
    }

    /// The refusal as an SSE `event: error`, for a stream whose headers already went out.
    pub fn to_error_event(&self) -> String {
        format!("event: error\ndata: {}\n\n", self.error_json())
    }

    /// `{"type":"error","error":{"type":…,"message":…}}`.
    fn error_json(&self) -> String {
        let body = ErrorBody {
            kind: "error",
            error: ErrorDetail { kind: self.reason.error_type().as_str(), message: self.message() },
        };
        // Serializing two string fields cannot fail; the fallback keeps the no-panic rule.
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"type":"error","error":{"type":"api_error","message":"warden: internal_error"}}"#.to_string()
        })
    }

    /// Renders the refusal as the complete local reply Envoy sends to the client.
    pub fn to_reply(&self, request_id: &str) -> LocalReply {
        let error_type = self.reason.error_type();
        let body = self.error_json();
        LocalReply {
            reason: self.reason,
            message: self.message(),
            status: error_type.status(),
            headers: vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("request-id".to_string(), request_id.to_string()),
                ("x-should-retry".to_string(), self.reason.retryable().to_string()),
            ],
            body,
        }
    }
}

/// A response the gateway makes itself instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// Why the gateway answers itself (for metrics and logs).
    pub reason: Reason,
    /// The error message (`warden: <reason>: <detail>`), also in the body.
    pub message: String,
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Response body (JSON).
    pub body: String,
}

impl LocalReply {
    /// The reply without `x-should-retry`: Claude Code, before retrying a 401 that does not
    /// forbid it, runs its `apiKeyHelper` again — so the retry carries a fresh token.
    pub fn letting_the_client_refresh(mut self) -> Self {
        self.headers.retain(|(name, _)| name != "x-should-retry");
        self
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_has_anthropic_shape_and_no_retry_header() {
        let reply = Denial::new(Reason::ModelNotAllowed, "model \"claude-opus-4\" is not allowed for role analyst")
            .to_reply("req_warden_1");
        assert_eq!(reply.status, 403);
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "permission_error");
        assert_eq!(
            body["error"]["message"],
            "warden: model_not_allowed: model \"claude-opus-4\" is not allowed for role analyst"
        );
        assert!(reply.headers.contains(&("x-should-retry".into(), "false".into())));
        assert!(reply.headers.contains(&("request-id".into(), "req_warden_1".into())));
    }

    #[test]
    fn reason_codes_are_unique_snake_case() {
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert!(codes.iter().all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    #[test]
    fn every_reason_is_documented_with_its_status() {
        let reference = include_str!("../../docs/policy.md");
        for reason in Reason::ALL {
            let row = format!(
                "| `{}` | {} | {} |",
                reason.code(),
                reason.error_type().status(),
                reason.error_type().as_str()
            );
            assert!(reference.contains(&row), "docs/policy.md lacks the row {row}");
        }
    }

    #[test]
    fn authentication_reasons_map_to_401() {
        assert_eq!(Reason::TokenInvalid.error_type().status(), 401);
        assert_eq!(Reason::BodyTooLarge.error_type().status(), 413);
        assert_eq!(Reason::UnknownEndpoint.error_type().status(), 404);
        assert_eq!(Reason::InvalidJson.error_type().status(), 400);
    }
}
