//! The Messages request body: parse what policy needs, check it, rewrite surgically.
//!
//! Algorithm: the body must be UTF-8 JSON whose top level is an object. It is deserialized once
//! into `MessagesRequest`, a borrowed view: the fields policy reads (`model`, `max_tokens`,
//! `stream`, `thinking`, `tools`, `mcp_servers`), each entry of `messages` and the `system`
//! prompt as raw JSON slices, and every other top-level value as a raw slice too; serde still
//! validates the syntax of everything while skipping it without allocation. A field the policy
//! reads appearing twice is refused (`invalid_json`), so nobody can show Warden one model and
//! Anthropic another. Messages are parsed further only by those who need them (request masking
//! parses the ones it has not seen clean before; [`Message::parse`]).
//!
//! Clamping rewrites only the bytes of the clamped value: `max_tokens` and `thinking` are kept as
//! raw JSON slices, so the rewrite is a splice at a known offset and every other byte — and so
//! Anthropic's prompt cache — is untouched. The verdict's [`Outline`] says where the parts of the
//! body lie in the body as forwarded (the audit record reads them there without parsing again).
//!
//! Identifiers a client names — the model, tool names and types, the tool `tool_choice` names,
//! MCP server names and URLs, `anthropic-beta` values — are refused with `invalid_request` when
//! longer than [`MAX_IDENTIFIER_BYTES`] (URLs: [`url::MAX_URL_BYTES`]) before anything matches
//! them, so matching costs at most the cap times the role's patterns. MCP URLs are parsed strictly
//! ([`url`]) and matched part by part; a URL the parser refuses is `invalid_request`.
//!
//! Limits: only top-level declarations are checked. Tool *use* inside history is not (a tool that
//! is not declared cannot be called). A `tool_choice` that names a tool is judged like declaring
//! it: a declared tool of that name was judged already, any other name must be an allowed client
//! tool.

use crate::core::errors::{Denial, Reason};
use crate::core::policy::config::CapAction;
use crate::core::policy::url;
use crate::core::policy::{Cap, Role};
use crate::core::request::splice::{apply, moved, splice_of, touches, Splice};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::ops::Range;

/// The longest identifier (model, tool name or type, MCP server name, `anthropic-beta` value,
/// model id in a path) a request may carry, in bytes. Real ones are under 100.
pub const MAX_IDENTIFIER_BYTES: usize = 256;

/// Refuses an identifier longer than [`MAX_IDENTIFIER_BYTES`] (`what` names it in the message;
/// the value itself is not repeated).
pub fn check_identifier(what: &str, value: &str) -> Result<(), Denial> {
    if value.len() > MAX_IDENTIFIER_BYTES {
        return Err(Denial::new(
            Reason::InvalidRequest,
            format!("{what} is {} bytes long; identifiers are at most {MAX_IDENTIFIER_BYTES} bytes", value.len()),
        ));
    }
    Ok(())
}

/// Checks a model named in a path (`GET /v1/models/{id}`): its length, then the role's models.
pub fn check_model_id(role: &Role, id: &str) -> Result<(), Denial> {
    check_identifier("the model id", id)?;
    if role.models.matches(id) {
        Ok(())
    } else {
        Err(Denial::new(
            Reason::ModelNotAllowed,
            format!("model {:?} is not allowed for role {}", shorten(id), role.name),
        ))
    }
}

/// Which body endpoint is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens` (no `max_tokens`, never streams).
    CountTokens,
}

/// What the policy concluded about an acceptable body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The model asked for.
    pub model: String,
    /// Whether the response will stream.
    pub stream: bool,
    /// Whether a cap clamped a value.
    pub clamped: bool,
    /// The rewritten body when a value was clamped or masked; `None` forwards the original bytes.
    pub rewritten: Option<Vec<u8>>,
    /// `max_tokens` as sent (before any clamp).
    pub max_tokens: Option<u64>,
    /// Declared tools: client tool names and the types of Anthropic-defined tools.
    pub tools: Vec<String>,
    /// Whether `mcp_servers` lists any server.
    pub mcp_servers: bool,
    /// Where the parts of the body lie in the body as forwarded.
    pub outline: Outline,
}

/// Where the parts of a body lie (byte ranges of the body as forwarded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    /// Every top-level field but `system`, `messages` and `tools`: its name and its value.
    pub params: Vec<(String, Range<usize>)>,
    /// The `system` value.
    pub system: Option<Range<usize>>,
    /// Each entry of `messages`, and whether a rewrite (masking) changed it.
    pub messages: Vec<(Range<usize>, bool)>,
}

/// One entry of `messages`, borrowed from the body: what request masking reads.
#[derive(Deserialize)]
pub struct Message<'a> {
    /// `user` or `assistant`.
    #[serde(borrow, default)]
    pub role: Option<Cow<'a, str>>,
    /// The content as raw JSON (a string or an array of blocks).
    #[serde(borrow, default)]
    pub content: Option<&'a RawValue>,
}

impl<'a> Message<'a> {
    /// The view of one raw entry of `messages` (an object; [`check_body_with`] refused others).
    pub fn parse(raw: &'a RawValue) -> Result<Self, Denial> {
        serde_json::from_str(raw.get())
            .map_err(|e| Denial::new(Reason::InvalidRequest, format!("a message has an unexpected shape: {e}")))
    }
}

/// The top level of a body, borrowed.
#[derive(Default)]
struct MessagesRequest<'a> {
    model: Option<Cow<'a, str>>,
    max_tokens: Option<&'a RawValue>,
    stream: Option<bool>,
    thinking: Option<&'a RawValue>,
    tools: Option<Vec<ToolDeclaration<'a>>>,
    mcp_servers: Option<Vec<McpServer<'a>>>,
    tool_choice: Option<ToolChoice<'a>>,
    messages: Option<Vec<&'a RawValue>>,
    system: Option<&'a RawValue>,
    /// Every top-level value but `system`, `messages` and `tools`, in body order.
    params: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// A key, borrowed unless it has escapes (`"mod\u0065l"` is `model`).
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Deserialize<'de> for MessagesRequest<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RequestVisitor)
    }
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = MessagesRequest<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        fn once<T, E: serde::de::Error>(slot: &mut Option<T>, value: T, field: &'static str) -> Result<(), E> {
            match slot.replace(value) {
                Some(_) => Err(E::duplicate_field(field)),
                None => Ok(()),
            }
        }
        fn typed<'de, T: Deserialize<'de>, E: serde::de::Error>(raw: &'de RawValue, field: &str) -> Result<T, E> {
            serde_json::from_str(raw.get()).map_err(|e| E::custom(format_args!("`{field}`: {e}")))
        }
        let mut request = MessagesRequest::default();
        while let Some(Key(key)) = map.next_key()? {
            match key.as_ref() {
                "tools" => once(&mut request.tools, map.next_value()?, "tools")?,
                "messages" => once(&mut request.messages, map.next_value()?, "messages")?,
                "system" => once(&mut request.system, map.next_value()?, "system")?,
                name => {
                    let raw: &'de RawValue = map.next_value()?;
                    match name {
                        "model" => once(&mut request.model, typed(raw, name)?, "model")?,
                        "max_tokens" => once(&mut request.max_tokens, raw, "max_tokens")?,
                        "stream" => once(&mut request.stream, typed(raw, name)?, "stream")?,
                        "thinking" => once(&mut request.thinking, raw, "thinking")?,
                        "mcp_servers" => once(&mut request.mcp_servers, typed(raw, name)?, "mcp_servers")?,
                        "tool_choice" => once(&mut request.tool_choice, typed(raw, name)?, "tool_choice")?,
                        _ => {}
                    }
                    request.params.push((key, raw));
                }
            }
        }
        Ok(request)
    }
}

#[derive(Deserialize)]
struct ToolDeclaration<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct McpServer<'a> {
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

/// `tool_choice`: `{"type": "auto" | "any" | "none" | "tool", "name"?: …}`.
#[derive(Deserialize)]
struct ToolChoice<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    budget_tokens: Option<u64>,
}

/// The parts of a body [`check_body_with`] hands to its `also`, borrowed from the one parse.
#[derive(Debug, Clone, Copy)]
pub struct Parsed<'a> {
    /// The body text.
    pub text: &'a str,
    /// Each entry of `messages`, raw.
    pub messages: &'a [&'a RawValue],
    /// The `system` value, raw.
    pub system: Option<&'a RawValue>,
    /// The `metadata` value, raw (where Claude Code's `user_id` names the session).
    pub metadata: Option<&'a RawValue>,
}

/// Checks a Messages (or count_tokens) body against `role`, then `also` — given the body's
/// [`Parsed`] parts from the same parse — may add splices of its own (request masking); all are
/// applied in one rewrite. The exchange's one entry point for a body.
pub fn check_body_with(
    role: &Role,
    kind: BodyKind,
    body: &[u8],
    also: impl FnOnce(Parsed) -> Result<Vec<Splice>, Denial>,
) -> Result<Verdict, Denial> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Denial::new(Reason::InvalidJson, format!("the body is not valid UTF-8 (byte {})", e.valid_up_to()))
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(Denial::new(Reason::InvalidJson, "the body must be a JSON object"));
    }
    // Every later reader may recurse per level: over-deep bodies stop here.
    crate::core::request::nesting::check_depth(body)?;
    let request: MessagesRequest = serde_json::from_str(text)
        .map_err(|e| Denial::new(Reason::InvalidJson, format!("the body is not a valid request object: {e}")))?;

    let model = request.model.as_deref().ok_or_else(|| Denial::new(Reason::InvalidRequest, "`model` is required"))?;
    check_identifier("`model`", model)?;
    if !role.models.matches(model) {
        return Err(Denial::new(
            Reason::ModelNotAllowed,
            format!("model {:?} is not allowed for role {}", shorten(model), role.name),
        ));
    }

    let stream = request.stream.unwrap_or(false);
    if stream && !role.streaming && kind == BodyKind::Messages {
        return Err(Denial::new(
            Reason::StreamingNotAllowed,
            format!("role {} may not stream; send stream: false", role.name),
        ));
    }

    let mut splices = Vec::new();
    let mut max_tokens = None;
    if let (Some(raw), BodyKind::Messages) = (request.max_tokens, kind) {
        let value: u64 = serde_json::from_str(raw.get())
            .map_err(|_| Denial::new(Reason::InvalidRequest, "`max_tokens` must be a non-negative integer"))?;
        max_tokens = Some(value);
        if let Some(limit) = over_cap(role.max_tokens, value, Reason::MaxTokensExceeded, "max_tokens", &role.name)? {
            splices.push(splice_of(text, raw.get(), limit.to_string().into_bytes()));
        }
    }
    if let Some(raw) = request.thinking {
        if let Some(splice) = check_thinking(role, text, raw)? {
            splices.push(splice);
        }
    }
    let mut tools = Vec::with_capacity(request.tools.as_ref().map_or(0, Vec::len));
    for (i, tool) in request.tools.iter().flatten().enumerate() {
        tools.push(check_tool(role, i, tool)?.to_string());
    }
    if let Some(choice) = &request.tool_choice {
        check_tool_choice(role, choice, request.tools.as_deref().unwrap_or_default())?;
    }
    for (i, server) in request.mcp_servers.iter().flatten().enumerate() {
        check_mcp_server(role, i, server)?;
    }

    let messages = request.messages.as_deref().unwrap_or_default();
    if let Some(i) = messages.iter().position(|m| !m.get().starts_with('{')) {
        return Err(Denial::new(Reason::InvalidJson, format!("`messages[{i}]` must be an object")));
    }
    let clamped = !splices.is_empty();
    let metadata = request.params.iter().find(|(name, _)| name == "metadata").map(|(_, raw)| *raw);
    splices.extend(also(Parsed { text, messages, system: request.system, metadata })?);
    let span = |raw: &RawValue| {
        let Splice { start, end, .. } = splice_of(text, raw.get(), Vec::new());
        start..end
    };
    let outline = Outline {
        params: request.params.iter().map(|(name, raw)| (name.to_string(), moved(span(raw), &splices))).collect(),
        system: request.system.map(|raw| moved(span(raw), &splices)),
        messages: messages.iter().map(|raw| (moved(span(raw), &splices), touches(&span(raw), &splices))).collect(),
    };
    Ok(Verdict {
        model: model.to_string(),
        stream: stream && kind == BodyKind::Messages,
        clamped,
        rewritten: apply(body, splices)?,
        max_tokens,
        tools,
        mcp_servers: request.mcp_servers.as_ref().is_some_and(|servers| !servers.is_empty()),
        outline,
    })
}

/// Checks each `anthropic-beta` value (comma-separated, possibly over several headers).
pub fn check_betas<'a>(role: &Role, header_values: impl Iterator<Item = &'a str>) -> Result<(), Denial> {
    for beta in header_values.flat_map(|v| v.split(',')).map(str::trim).filter(|b| !b.is_empty()) {
        check_identifier("an `anthropic-beta` value", beta)?;
        if !role.betas.matches(beta) {
            return Err(Denial::new(
                Reason::BetaNotAllowed,
                format!("anthropic-beta {:?} is not allowed for role {}", shorten(beta), role.name),
            ));
        }
    }
    Ok(())
}

/// `Ok(Some(limit))` when `value` must be clamped to `limit`; an error when it must be refused.
fn over_cap(cap: Option<Cap>, value: u64, reason: Reason, field: &str, role: &str) -> Result<Option<u64>, Denial> {
    match cap {
        Some(cap) if value > cap.limit => match cap.action {
            CapAction::Clamp => Ok(Some(cap.limit)),
            CapAction::Deny => {
                Err(Denial::new(reason, format!("{field} {value} exceeds the limit of {} for role {role}", cap.limit)))
            }
        },
        _ => Ok(None),
    }
}

fn check_thinking(role: &Role, text: &str, raw: &RawValue) -> Result<Option<Splice>, Denial> {
    let thinking: Thinking = serde_json::from_str(raw.get())
        .map_err(|_| Denial::new(Reason::InvalidRequest, "`thinking` must be an object with a `type`"))?;
    let forbidden = role.thinking_budget.is_some_and(|cap| cap.limit == 0);
    match thinking.kind.as_str() {
        "disabled" => Ok(None),
        _ if forbidden => Err(Denial::new(
            Reason::ThinkingBudgetExceeded,
            format!("extended thinking is not allowed for role {}", role.name),
        )),
        "enabled" => {
            let budget = thinking.budget_tokens.ok_or_else(|| {
                Denial::new(Reason::InvalidRequest, "`thinking.budget_tokens` is required when thinking is enabled")
            })?;
            let clamp = over_cap(
                role.thinking_budget,
                budget,
                Reason::ThinkingBudgetExceeded,
                "thinking.budget_tokens",
                &role.name,
            )?;
            let Some(limit) = clamp else { return Ok(None) };
            // The object parsed as `Thinking` above, so it parses as a map too; should either
            // step fail anyway, refuse rather than forward a broken body.
            let rewrite_failed = |_| Denial::new(Reason::InternalError, "rewriting `thinking` failed");
            let mut object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(raw.get()).map_err(rewrite_failed)?;
            object.insert("budget_tokens".to_string(), limit.into());
            let bytes = serde_json::to_vec(&object).map_err(rewrite_failed)?;
            Ok(Some(splice_of(text, raw.get(), bytes)))
        }
        // Newer thinking modes (e.g. `adaptive`) have no budget to cap; the role's max_tokens cap
        // still bounds them.
        _ => Ok(None),
    }
}

/// Checks one entry of `mcp_servers`: its name's length, then its URL parsed strictly and
/// matched part by part. Messages show the URL without its query, which may carry a credential.
fn check_mcp_server(role: &Role, i: usize, server: &McpServer) -> Result<(), Denial> {
    if let Some(name) = &server.name {
        check_identifier(&format!("`mcp_servers[{i}].name`"), name)?;
    }
    let text = server
        .url
        .as_deref()
        .ok_or_else(|| Denial::new(Reason::InvalidRequest, "every `mcp_servers` entry needs a `url`"))?;
    let parsed = url::parse(text)
        .map_err(|e| Denial::new(Reason::InvalidRequest, format!("`mcp_servers[{i}].url` is refused: {e}")))?;
    if role.mcp_servers.matches(&parsed) {
        Ok(())
    } else {
        Err(Denial::new(
            Reason::McpServerNotAllowed,
            format!("MCP server {:?} is not allowed for role {}", shorten(&parsed.without_query()), role.name),
        ))
    }
}

/// Judges a `tool_choice` that names a tool like declaring it: a declared tool of that name was
/// judged with the declarations; any other name must be an allowed client tool. Choices without
/// a name (`auto`, `any`, `none`) need nothing.
fn check_tool_choice(role: &Role, choice: &ToolChoice, declared: &[ToolDeclaration]) -> Result<(), Denial> {
    let name = match (choice.kind.as_deref(), choice.name.as_deref()) {
        (_, Some(name)) => name,
        (Some("tool"), None) => {
            return Err(Denial::new(Reason::InvalidRequest, "`tool_choice` of type `tool` needs a `name`"))
        }
        _ => return Ok(()),
    };
    check_identifier("`tool_choice.name`", name)?;
    if declared.iter().any(|tool| tool.name.as_deref() == Some(name)) || role.client_tools.matches(name) {
        Ok(())
    } else {
        Err(Denial::new(
            Reason::ToolNotAllowed,
            format!("tool {:?} (named by tool_choice) is not allowed for role {}", shorten(name), role.name),
        ))
    }
}

/// Checks one declared tool; returns its name (client tools) or type (Anthropic-defined tools).
fn check_tool<'t>(role: &Role, i: usize, tool: &'t ToolDeclaration) -> Result<&'t str, Denial> {
    if let Some(name) = &tool.name {
        check_identifier(&format!("`tools[{i}].name`"), name)?;
    }
    if let Some(kind) = &tool.kind {
        check_identifier(&format!("`tools[{i}].type`"), kind)?;
    }
    match tool.kind.as_deref() {
        None | Some("custom") => {
            let name =
                tool.name.as_deref().ok_or_else(|| Denial::new(Reason::InvalidRequest, "every tool needs a `name`"))?;
            if role.client_tools.matches(name) {
                Ok(name)
            } else {
                Err(Denial::new(
                    Reason::ToolNotAllowed,
                    format!("tool {:?} is not allowed for role {}", shorten(name), role.name),
                ))
            }
        }
        Some(kind) if role.server_tools.matches(kind) => Ok(kind),
        Some(kind) => Err(Denial::new(
            Reason::ServerToolNotAllowed,
            format!("tool type {:?} is not allowed for role {}", shorten(kind), role.name),
        )),
    }
}

/// A caller-supplied value cut to a length fit for an error message.
fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        text.chars().take(MAX).chain("…".chars()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::Policy;

    const POLICY: &str = r#"
version: 1
identity: {}
credentials: { k: { env: K } }
roles:
  developer:
    credential: k
    models: ["claude-*"]
    max_tokens: { limit: 8000, action: clamp }
    thinking_budget: { limit: 4000, action: clamp }
    tools: { client: ["Bash", "Read", "mcp__github__*"], server: ["web_search_*"] }
    mcp_servers: ["https://mcp.example.com/*", "https://*.corp.example/**"]
    betas: ["interleaved-thinking-*", "context-management-2025-06-27"]
  analyst:
    credential: k
    models: ["claude-haiku-*"]
    max_tokens: { limit: 1024 }
    thinking_budget: { limit: 0 }
    streaming: false
"#;

    fn role(name: &str) -> Role {
        let policy = Policy::parse(POLICY).unwrap();
        policy.roles.into_iter().find(|r| r.name == name).unwrap()
    }

    /// The body check with nothing added (no request masking).
    fn check_body(role: &Role, kind: BodyKind, body: &[u8]) -> Result<Verdict, Denial> {
        check_body_with(role, kind, body, |_| Ok(Vec::new()))
    }

    fn check(role_name: &str, body: &str) -> Result<Verdict, Reason> {
        check_body(&role(role_name), BodyKind::Messages, body.as_bytes()).map_err(|d| d.reason)
    }

    #[test]
    fn allowed_request_passes_unchanged() {
        let body = r#"{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
        let verdict = check("analyst", body).unwrap();
        assert_eq!(verdict.model, "claude-haiku-4-5");
        assert_eq!(verdict.rewritten, None);
    }

    #[test]
    fn model_outside_the_role_is_refused() {
        let body = r#"{"model":"claude-opus-4-1","max_tokens":100,"messages":[]}"#;
        assert_eq!(check("analyst", body), Err(Reason::ModelNotAllowed));
    }

    #[test]
    fn max_tokens_over_cap_is_denied_or_clamped_in_place() {
        let body = r#"{"model":"claude-haiku-4-5","max_tokens":2048,"messages":[]}"#;
        assert_eq!(check("analyst", body), Err(Reason::MaxTokensExceeded));
        let body = r#"{"model":"claude-sonnet-4-5", "max_tokens" : 64000 ,"messages":[{"role":"user","content":"x"}]}"#;
        let rewritten = check("developer", body).unwrap().rewritten.unwrap();
        assert_eq!(
            String::from_utf8(rewritten).unwrap(),
            r#"{"model":"claude-sonnet-4-5", "max_tokens" : 8000 ,"messages":[{"role":"user","content":"x"}]}"#
        );
    }

    #[test]
    fn thinking_is_capped_or_forbidden() {
        let body = r#"{"model":"claude-sonnet-4-5","max_tokens":8000,"thinking":{"type":"enabled","budget_tokens":6000},"messages":[]}"#;
        let rewritten = String::from_utf8(check("developer", body).unwrap().rewritten.unwrap()).unwrap();
        assert!(rewritten.contains(r#""thinking":{"budget_tokens":4000,"type":"enabled"}"#), "{rewritten}");
        let body = r#"{"model":"claude-haiku-4-5","max_tokens":100,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[]}"#;
        assert_eq!(check("analyst", body), Err(Reason::ThinkingBudgetExceeded));
        let body = r#"{"model":"claude-haiku-4-5","max_tokens":100,"thinking":{"type":"disabled"},"messages":[]}"#;
        assert!(check("analyst", body).is_ok());
    }

    #[test]
    fn tools_are_matched_by_name_or_type() {
        let ok = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"tools":[
            {"name":"Bash","input_schema":{}},{"name":"mcp__github__search","input_schema":{}},
            {"type":"web_search_20250305","name":"web_search"}]}"#;
        assert!(check("developer", ok).is_ok());
        let bad_client = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"tools":[{"name":"Write","input_schema":{}}]}"#;
        assert_eq!(check("developer", bad_client), Err(Reason::ToolNotAllowed));
        let bad_server = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"tools":[{"type":"code_execution_20250522","name":"code_execution"}]}"#;
        assert_eq!(check("developer", bad_server), Err(Reason::ServerToolNotAllowed));
        let any_tool =
            r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"tools":[{"name":"Read","input_schema":{}}]}"#;
        assert_eq!(check("analyst", any_tool), Err(Reason::ToolNotAllowed));
    }

    #[test]
    fn mcp_servers_must_be_allowlisted() {
        let ok = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"mcp_servers":[{"type":"url","url":"https://mcp.example.com/sse","name":"x"}]}"#;
        assert!(check("developer", ok).is_ok());
        let bad = ok.replace("mcp.example.com", "evil.example.net");
        assert_eq!(check("developer", &bad), Err(Reason::McpServerNotAllowed));
    }

    fn with_mcp_url(url: &str) -> String {
        let server = serde_json::json!([{"type": "url", "url": url, "name": "x"}]);
        format!(r#"{{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"mcp_servers":{server}}}"#)
    }

    #[test]
    fn mcp_urls_are_matched_by_their_parts_not_their_text() {
        for url in ["https://mcp.corp.example/sse", "https://A.B.Corp.Example:443/x?y=1"] {
            assert!(check("developer", &with_mcp_url(url)).is_ok(), "{url}");
        }
        for url in [
            "https://evil.com?.corp.example/x",
            "https://evil.com/.corp.example/x",
            "https://mcp.corp.example.evil.com/x",
            "https://mcp.example.com/sse/../../admin",
        ] {
            let reason = check("developer", &with_mcp_url(url)).map(|_| ()).unwrap_err();
            assert!(matches!(reason, Reason::McpServerNotAllowed | Reason::InvalidRequest), "{url}: {reason:?}");
        }
        for url in [
            "https://evil.com#.corp.example/x",
            "https://evil.com\\.corp.example/x",
            "https://evil.com@mcp.corp.example/x",
            "https://mcp.corp.example@evil.com/x",
            "https://mcp.corp.example./x",
            "https://2130706433/x",
            "https://mcp.corp.example/%2e%2e/x",
            " https://mcp.corp.example/x",
            "https://mcp.corp.example:0443/x",
            "https://xn--mcp.corp.exämple/x",
        ] {
            assert_eq!(check("developer", &with_mcp_url(url)).map(|_| ()), Err(Reason::InvalidRequest), "{url}");
        }
    }

    #[test]
    fn a_second_url_or_tool_choice_name_cannot_be_smuggled() {
        let body = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"mcp_servers":[
            {"type":"url","url":"https://mcp.corp.example/x","u\u0072l":"https://evil.example/","name":"x"}]}"#;
        assert_eq!(check("developer", body), Err(Reason::InvalidJson));
        let body = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],
            "tool_choice":{"type":"tool","name":"Bash","n\u0061me":"Read"}}"#;
        assert_eq!(check("analyst", body), Err(Reason::InvalidJson));
    }

    #[test]
    fn refused_mcp_urls_never_echo_their_query() {
        let body = with_mcp_url("https://evil.example/sse?token=sk-secret-value");
        let denial = check_body(&role("developer"), BodyKind::Messages, body.as_bytes()).unwrap_err();
        assert_eq!(denial.reason, Reason::McpServerNotAllowed);
        assert!(
            denial.message().contains("https://evil.example/sse") && !denial.message().contains("sk-secret"),
            "{}",
            denial.message()
        );
        let body = with_mcp_url("https://user:sk-secret-value@evil.example/sse");
        let denial = check_body(&role("developer"), BodyKind::Messages, body.as_bytes()).unwrap_err();
        assert!(!denial.message().contains("sk-secret"), "{}", denial.message());
    }

    #[test]
    fn over_long_identifiers_are_refused_before_matching() {
        let long = "x".repeat(MAX_IDENTIFIER_BYTES + 1);
        let fits = "x".repeat(MAX_IDENTIFIER_BYTES);
        let bodies = [
            format!(r#"{{"model":"claude-{long}","max_tokens":10,"messages":[]}}"#),
            format!(
                r#"{{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"tools":[{{"name":"{long}","input_schema":{{}}}}]}}"#
            ),
            format!(
                r#"{{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"tools":[{{"type":"web_search_{long}","name":"w"}}]}}"#
            ),
            format!(
                r#"{{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"tool_choice":{{"type":"tool","name":"{long}"}}}}"#
            ),
            format!(
                r#"{{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"mcp_servers":[{{"type":"url","url":"https://mcp.example.com/sse","name":"{long}"}}]}}"#
            ),
            with_mcp_url(&format!("https://mcp.example.com/{}", "a".repeat(url::MAX_URL_BYTES))),
        ];
        for body in &bodies {
            let denial = check_body(&role("developer"), BodyKind::Messages, body.as_bytes()).unwrap_err();
            assert_eq!(denial.reason, Reason::InvalidRequest, "{}", denial.message());
            assert!(!denial.message().contains(&long), "the value is not repeated");
        }
        let at_cap = format!(r#"{{"model":"claude-{}","max_tokens":10,"messages":[]}}"#, &fits[7..]);
        assert!(check("developer", &at_cap).is_ok());
        let beta = format!("interleaved-thinking-{long}");
        assert_eq!(
            check_betas(&role("developer"), [beta.as_str()].into_iter()).unwrap_err().reason,
            Reason::InvalidRequest
        );
        assert_eq!(
            check_model_id(&role("developer"), &format!("claude-{long}")).unwrap_err().reason,
            Reason::InvalidRequest
        );
        assert_eq!(check_model_id(&role("analyst"), "claude-opus-4-1").unwrap_err().reason, Reason::ModelNotAllowed);
        assert!(check_model_id(&role("analyst"), "claude-haiku-4-5").is_ok());
    }

    #[test]
    fn a_tool_choice_naming_a_tool_is_judged_like_declaring_it() {
        let choice = |name: &str| {
            format!(
                r#"{{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"tool_choice":{{"type":"tool","name":"{name}"}}}}"#
            )
        };
        assert_eq!(check("analyst", &choice("Bash")), Err(Reason::ToolNotAllowed));
        let developer = |name: &str| choice(name).replace("claude-haiku-4-5", "claude-sonnet-4-5");
        assert!(check("developer", &developer("Bash")).is_ok());
        assert_eq!(check("developer", &developer("Write")), Err(Reason::ToolNotAllowed));
        // A declared (and so already judged) tool may be chosen by its name, server tools too.
        let declared = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],
            "tools":[{"type":"web_search_20250305","name":"web_search"}],"tool_choice":{"type":"tool","name":"web_search"}}"#;
        assert!(check("developer", declared).is_ok());
        // Any choice that carries a name is judged, whatever its type.
        let odd = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"tool_choice":{"type":"future","name":"Bash"}}"#;
        assert_eq!(check("analyst", odd), Err(Reason::ToolNotAllowed));
        for ok in [
            r#"{"type":"auto"}"#,
            r#"{"type":"any"}"#,
            r#"{"type":"none"}"#,
            r#"{"type":"auto","disable_parallel_tool_use":true}"#,
        ] {
            let body = format!(r#"{{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"tool_choice":{ok}}}"#);
            assert!(check("analyst", &body).is_ok(), "{ok}");
        }
        let nameless = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"tool_choice":{"type":"tool"}}"#;
        assert_eq!(check("analyst", nameless), Err(Reason::InvalidRequest));
        let twice = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"tool_choice":{"type":"auto"},"tool_choice":{"type":"tool","name":"Bash"}}"#;
        assert_eq!(check("analyst", twice), Err(Reason::InvalidJson));
        let not_an_object = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[],"tool_choice":"Bash"}"#;
        assert_eq!(check("analyst", not_an_object), Err(Reason::InvalidJson));
    }

    #[test]
    fn streaming_can_be_forbidden() {
        let body = r#"{"model":"claude-haiku-4-5","max_tokens":10,"stream":true,"messages":[]}"#;
        assert_eq!(check("analyst", body), Err(Reason::StreamingNotAllowed));
        assert!(check("developer", &body.replace("haiku", "sonnet")).unwrap().stream);
    }

    #[test]
    fn over_deep_bodies_are_refused_before_any_reader_recurses() {
        use crate::core::request::nesting::{nested_tool_results, on_small_stack, SMALL_STACK};
        for levels in [4_000, 100_000] {
            let reason = on_small_stack(SMALL_STACK, move || check("developer", &nested_tool_results(levels, "x")));
            assert_eq!(reason.unwrap_err(), Reason::InvalidRequest);
        }
        assert!(check("developer", &nested_tool_results(20, "x")).is_ok());
    }

    #[test]
    fn malformed_bodies_are_invalid_json() {
        for body in ["", "   ", "{", "[]", "\"x\"", r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[}"#] {
            assert_eq!(check("analyst", body), Err(Reason::InvalidJson), "{body:?}");
        }
        let not_utf8 = b"{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"content\":\"\xff\"}]}";
        assert_eq!(
            check_body(&role("analyst"), BodyKind::Messages, not_utf8).map_err(|d| d.reason),
            Err(Reason::InvalidJson)
        );
    }

    #[test]
    fn duplicate_policy_fields_are_refused() {
        let body = r#"{"model":"claude-haiku-4-5","model":"claude-opus-4-1","max_tokens":10,"messages":[]}"#;
        assert_eq!(check("analyst", body), Err(Reason::InvalidJson));
    }

    #[test]
    fn escaped_key_names_cannot_smuggle_a_second_model() {
        let escaped = r#"{"mod\u0065l":"claude-opus-4-1","max_tokens":10,"messages":[]}"#;
        assert_eq!(check("analyst", escaped), Err(Reason::ModelNotAllowed));
        let both = r#"{"model":"claude-haiku-4-5","mod\u0065l":"claude-opus-4-1","max_tokens":10,"messages":[]}"#;
        assert_eq!(check("analyst", both), Err(Reason::InvalidJson));
        let nested = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],
            "thinking":{"type":"enabled","budget_tokens":100,"budget_tokens":99999}}"#;
        assert_eq!(check("developer", nested), Err(Reason::InvalidRequest));
        let stream_as_text = r#"{"model":"claude-haiku-4-5","max_tokens":10,"stream":"true","messages":[]}"#;
        assert_eq!(check("analyst", stream_as_text), Err(Reason::InvalidJson));
    }

    #[test]
    fn wrongly_typed_fields_are_invalid() {
        assert_eq!(check("analyst", r#"{"max_tokens":10,"messages":[]}"#), Err(Reason::InvalidRequest));
        assert_eq!(check("analyst", r#"{"model":"claude-haiku-4-5","max_tokens":"10"}"#), Err(Reason::InvalidRequest));
        assert_eq!(check("analyst", r#"{"model":7}"#), Err(Reason::InvalidJson));
    }

    #[test]
    fn the_outline_finds_each_part_in_the_body_as_forwarded() {
        let body = r#"{"model":"claude-sonnet-4-5","system":"be brief","max_tokens":99999,
            "messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}],
            "tools":[{"name":"Bash","input_schema":{}}],"metadata":{"user_id":"u"}}"#;
        let verdict = check("developer", body).unwrap();
        let forwarded = String::from_utf8(verdict.rewritten.unwrap()).unwrap();
        let part = |range: &Range<usize>| &forwarded[range.clone()];
        let params: Vec<(&str, &str)> = verdict.outline.params.iter().map(|(k, r)| (k.as_str(), part(r))).collect();
        assert_eq!(
            params,
            [("model", r#""claude-sonnet-4-5""#), ("max_tokens", "8000"), ("metadata", r#"{"user_id":"u"}"#)]
        );
        assert_eq!(verdict.outline.system.as_ref().map(part), Some(r#""be brief""#));
        let messages: Vec<(&str, bool)> =
            verdict.outline.messages.iter().map(|(r, changed)| (part(r), *changed)).collect();
        assert_eq!(
            messages,
            [(r#"{"role":"user","content":"hi"}"#, false), (r#"{"role":"assistant","content":"hello"}"#, false)]
        );
    }

    #[test]
    fn messages_must_be_objects_and_appear_once() {
        let text = r#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":["hi"]}"#;
        assert_eq!(check("analyst", text), Err(Reason::InvalidJson));
        for field in ["messages", "system", "tools"] {
            let twice = format!(r#"{{"model":"claude-haiku-4-5","max_tokens":10,"{field}":[],"{field}":[]}}"#);
            assert_eq!(check("analyst", &twice), Err(Reason::InvalidJson), "{field}");
        }
    }

    #[test]
    fn count_tokens_ignores_max_tokens_and_stream() {
        let body = br#"{"model":"claude-haiku-4-5","messages":[]}"#;
        assert!(check_body(&role("analyst"), BodyKind::CountTokens, body).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = check_body(&role("developer"), BodyKind::Messages, &bytes);
        }

        #[test]
        fn clamped_body_is_valid_json_and_differs_only_in_the_value(
            spaces in "[ \t\n]{0,3}", max in 64_001u64..10_000_000, extra in "[a-z]{0,12}",
        ) {
            let body = format!(
                r#"{{"model":"claude-sonnet-4-5","extra":"{extra}","max_tokens":{spaces}{max}{spaces},"messages":[]}}"#
            );
            let verdict = check_body(&role("developer"), BodyKind::Messages, body.as_bytes()).unwrap();
            let rewritten = String::from_utf8(verdict.rewritten.unwrap()).unwrap();
            proptest::prop_assert_eq!(rewritten.replace(&format!("{spaces}8000{spaces}"), &format!("{spaces}{max}{spaces}")), body.clone());
            let value: serde_json::Value = serde_json::from_str(&rewritten).unwrap();
            proptest::prop_assert_eq!(value["max_tokens"].as_u64(), Some(8000));
        }
    }

    #[test]
    fn beta_values_are_checked_one_by_one() {
        let dev = role("developer");
        assert!(
            check_betas(&dev, ["interleaved-thinking-2025-05-14, context-management-2025-06-27"].into_iter()).is_ok()
        );
        let err =
            check_betas(&dev, ["interleaved-thinking-2025-05-14", "files-api-2025-04-14"].into_iter()).unwrap_err();
        assert_eq!(err.reason, Reason::BetaNotAllowed);
        assert!(check_betas(&role("analyst"), std::iter::empty()).is_ok());
    }
}
