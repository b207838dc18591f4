//! Method + path → the Anthropic endpoint it names, deny by default.
//!
//! Warden understands four endpoints and refuses everything else:
//!
//! | request | endpoint |
//! | --- | --- |
//! | `POST /v1/messages` (query: nothing or `beta=true`) | [`Endpoint::Messages`] |
//! | `POST /v1/messages/count_tokens` (same query rule) | [`Endpoint::CountTokens`] |
//! | `GET /v1/models` (query: `limit`, `after_id`, `before_id`) | [`Endpoint::ListModels`] |
//! | `GET /v1/models/{id}` | [`Endpoint::GetModel`] |
//!
//! Paths are compared byte for byte after Envoy's normalization (`normalize_path`,
//! `merge_slashes`). Anything that could be read two ways — percent-escapes, dot segments, empty
//! segments, backslashes — is refused here too, so the path Warden judged is the path the upstream
//! gets. Other `/v1/…` API paths (batches, files, the legacy completions API, …) are refused with
//! `endpoint_not_allowed` (403); everything else is `unknown_endpoint` (404).

use crate::core::errors::{Denial, Reason};
use crate::core::policy::config::EndpointName;

/// An endpoint Warden can inspect and enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Create a message (streaming or not).
    Messages,
    /// Count the tokens of a would-be message.
    CountTokens,
    /// List models.
    ListModels,
    /// Get one model by id.
    GetModel(String),
}

impl Endpoint {
    /// The policy name that allows this endpoint.
    pub fn policy_name(&self) -> EndpointName {
        match self {
            Self::Messages => EndpointName::Messages,
            Self::CountTokens => EndpointName::CountTokens,
            Self::ListModels | Self::GetModel(_) => EndpointName::Models,
        }
    }

    /// Whether the request body must be inspected before forwarding.
    pub fn has_body(&self) -> bool {
        matches!(self, Self::Messages | Self::CountTokens)
    }

    /// Short name for logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::CountTokens => "count_tokens",
            Self::ListModels => "list_models",
            Self::GetModel(_) => "get_model",
        }
    }
}

/// Classifies a request line.
pub fn classify(method: &str, path_and_query: &str) -> Result<Endpoint, Denial> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    if !is_plain_path(path) {
        return Err(Denial::new(Reason::UnknownEndpoint, format!("{method} {} is not an API path", printable(path))));
    }
    let endpoint = match (method, path) {
        ("POST", "/v1/messages") => Some(Endpoint::Messages),
        ("POST", "/v1/messages/count_tokens") => Some(Endpoint::CountTokens),
        ("GET", "/v1/models") => Some(Endpoint::ListModels),
        ("GET", _) => {
            path.strip_prefix("/v1/models/").filter(|id| is_model_id(id)).map(|id| Endpoint::GetModel(id.to_string()))
        }
        _ => None,
    };
    let Some(endpoint) = endpoint else {
        let reason = if path.starts_with("/v1/") { Reason::EndpointNotAllowed } else { Reason::UnknownEndpoint };
        return Err(Denial::new(reason, format!("{method} {path} is not an endpoint Warden allows")));
    };
    check_query(&endpoint, query)?;
    Ok(endpoint)
}

/// Only `/`-separated segments of URL-safe characters, none empty, `.` or `..`.
fn is_plain_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else { return false };
    rest.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'@'))
    })
}

fn is_model_id(id: &str) -> bool {
    !id.is_empty() && !id.contains('/')
}

fn check_query(endpoint: &Endpoint, query: Option<&str>) -> Result<(), Denial> {
    let Some(query) = query.filter(|q| !q.is_empty()) else { return Ok(()) };
    let allowed: &[&str] = match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => &["beta"],
        Endpoint::ListModels => &["limit", "after_id", "before_id"],
        Endpoint::GetModel(_) => &[],
    };
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value_ok = value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let name_ok = allowed.contains(&name) && (name != "beta" || value == "true");
        if !name_ok || !value_ok {
            return Err(Denial::new(
                Reason::InvalidRequest,
                format!("query parameter {:?} is not allowed on {}", printable(pair), endpoint.label()),
            ));
        }
    }
    Ok(())
}

/// A path made safe for an error message: at most 200 characters, control characters escaped.
fn printable(text: &str) -> String {
    text.chars().take(200).flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(method: &str, path: &str) -> Result<Endpoint, Reason> {
        classify(method, path).map_err(|d| d.reason)
    }

    #[test]
    fn known_endpoints_are_recognized() {
        assert_eq!(reason("POST", "/v1/messages"), Ok(Endpoint::Messages));
        assert_eq!(reason("POST", "/v1/messages?beta=true"), Ok(Endpoint::Messages));
        assert_eq!(reason("POST", "/v1/messages/count_tokens?beta=true"), Ok(Endpoint::CountTokens));
        assert_eq!(reason("GET", "/v1/models?limit=20&after_id=claude-3"), Ok(Endpoint::ListModels));
        assert_eq!(reason("GET", "/v1/models/claude-haiku-4-5"), Ok(Endpoint::GetModel("claude-haiku-4-5".into())));
    }

    #[test]
    fn other_api_endpoints_and_methods_are_not_allowed() {
        for (method, path) in [
            ("POST", "/v1/messages/batches"),
            ("GET", "/v1/messages/batches/msgbatch_1"),
            ("POST", "/v1/complete"),
            ("POST", "/v1/files"),
            ("GET", "/v1/messages"),
            ("DELETE", "/v1/models/claude-haiku-4-5"),
            ("PUT", "/v1/messages"),
        ] {
            assert_eq!(reason(method, path), Err(Reason::EndpointNotAllowed), "{method} {path}");
        }
    }

    #[test]
    fn path_tricks_are_refused() {
        for path in [
            "//v1/messages",
            "/v1//messages",
            "/v1/%6dessages",
            "/v1/messages/../complete",
            "/v1/./messages",
            "/v1/messages/",
            "v1/messages",
            "/v1\\messages",
            "/v1/messages%2Fbatches",
            "",
        ] {
            assert_eq!(reason("POST", path), Err(Reason::UnknownEndpoint), "{path:?}");
        }
    }

    #[test]
    fn unexpected_query_parameters_are_refused() {
        assert_eq!(reason("POST", "/v1/messages?beta=false"), Err(Reason::InvalidRequest));
        assert_eq!(reason("POST", "/v1/messages?x=1"), Err(Reason::InvalidRequest));
        assert_eq!(reason("GET", "/v1/models?limit=%31"), Err(Reason::InvalidRequest));
    }

    #[test]
    fn unknown_paths_are_404() {
        assert_eq!(reason("GET", "/"), Err(Reason::UnknownEndpoint));
        assert_eq!(reason("GET", "/admin"), Err(Reason::UnknownEndpoint));
    }
}
