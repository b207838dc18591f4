//! How deeply a JSON text nests, measured without recursion.
//!
//! Request bodies are hostile: a client can nest arrays and objects (a `tool_result` inside a
//! `tool_result` inside …) as deep as its bytes allow, and every component that walks a body
//! recursively would then overflow the filter's stack (a wasm trap takes the whole worker down).
//! [`check_depth`] refuses a body nested deeper than [`MAX_BODY_DEPTH`] before anything else
//! reads it, so every later reader (policy checks, request masking, the audit trail, the approval
//! excerpt) sees at most that depth; the readers themselves walk iteratively where they can.
//!
//! Algorithm: one byte loop counts open `{`/`[` outside strings (a string ends at an unescaped
//! quote); it stops at the first byte past the limit, so its cost is linear and its memory
//! constant. Limits: it measures brackets only, it does not validate JSON (the parser does that
//! next).

use crate::core::errors::{Denial, Reason};

/// Deepest nesting of arrays and objects a request body may have. Anthropic's own request
/// shapes need about ten levels (a tool result's text block inside a message inside `messages`);
/// 64 leaves room for nested tool inputs and JSON schemas and keeps every recursive reader far
/// from the stack's end (serde_json's own limit is 128).
pub const MAX_BODY_DEPTH: usize = 64;

/// The deepest nesting of `json`, counted up to `limit + 1` (the scan stops there).
pub fn depth(json: &[u8], limit: usize) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0;
    while let Some(rest) = json.get(i..) {
        // Outside strings only brackets and quotes matter; skip to the next one.
        let Some(at) = rest.iter().position(|&b| matches!(b, b'"' | b'{' | b'[' | b'}' | b']')) else { break };
        i += at + 1;
        match rest.get(at) {
            Some(b'"') => {
                // Inside a string: skip to its closing quote, stepping over escapes; an
                // unterminated string ends the scan.
                loop {
                    let Some(end) = json.get(i..).and_then(|r| memchr::memchr2(b'"', b'\\', r)) else {
                        return deepest;
                    };
                    let escape = json.get(i + end) == Some(&b'\\');
                    i += end + if escape { 2 } else { 1 };
                    if !escape {
                        break;
                    }
                }
            }
            Some(b'{' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            _ => depth = depth.saturating_sub(1),
        }
    }
    deepest
}

/// Refuses a body nested deeper than [`MAX_BODY_DEPTH`] (400 `invalid_request_error`).
pub fn check_depth(json: &[u8]) -> Result<(), Denial> {
    if depth(json, MAX_BODY_DEPTH) > MAX_BODY_DEPTH {
        return Err(Denial::new(
            Reason::InvalidRequest,
            format!("the body nests arrays and objects deeper than {MAX_BODY_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// Runs `f` on a thread with a stack of `bytes`, like the filter's wasm stack, and returns its
/// result; a stack overflow aborts the test process, so a test that returns proves there was none.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub fn on_small_stack<T: Send + 'static>(bytes: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(bytes)
        .spawn(f)
        .expect("spawn a test thread")
        .join()
        .expect("the test thread returned")
}

/// A Messages body whose one user message nests `levels` `tool_result` blocks.
#[cfg(test)]
pub fn nested_tool_results(levels: usize, innermost: &str) -> String {
    let open = r#"[{"type":"tool_result","tool_use_id":"t","content":"#;
    let mut content = String::with_capacity(levels * (open.len() + 2) + innermost.len() + 2);
    for _ in 0..levels {
        content.push_str(open);
    }
    content.push_str(&serde_json::Value::String(innermost.to_string()).to_string());
    for _ in 0..levels {
        content.push_str("}]");
    }
    format!(r#"{{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{{"role":"user","content":{content}}}]}}"#)
}

/// Stack size the depth tests run with: about what a wasm module gets by default.
#[cfg(test)]
pub const SMALL_STACK: usize = 256 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert_eq!(depth(br#"{"a":[1,{"b":"[[[{{{"}],"c":"\"[["}"#, 100), 3);
        assert_eq!(depth(b"[]", 100), 1);
        assert_eq!(depth(b"\"x\"", 100), 0);
        assert_eq!(depth(br#"["\\", ["a\"]"]]"#, 100), 2, "escaped quotes and backslashes");
        assert_eq!(depth(br#"["unterminated [[["#, 100), 1);
    }

    #[test]
    fn the_scan_stops_just_past_the_limit() {
        let deep = "[".repeat(100_000);
        assert_eq!(depth(deep.as_bytes(), 10), 11);
    }

    #[test]
    fn deeply_nested_bodies_are_refused_with_an_invalid_request_error() {
        for levels in [4_000, 100_000] {
            let body = nested_tool_results(levels, "x");
            let denial = on_small_stack(SMALL_STACK, move || check_depth(body.as_bytes())).unwrap_err();
            assert_eq!(denial.reason, Reason::InvalidRequest);
            assert!(denial.detail.contains("64 levels"));
        }
        assert!(check_depth(nested_tool_results(20, "x").as_bytes()).is_ok());
    }
}
