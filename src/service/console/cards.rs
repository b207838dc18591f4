//! A session's turns as readable cards (the session page, `/sessions/{id}`): one
//! `<article class="turn card" id="turn-<position>">` per record, built from
//! [`crate::service::audit::replay::Turn`] — the same reading `warden audit replay` prints.
//!
//! A card shows, in order: a header (ordinal, time, who, role, model, outcome, and
//! `class="agent"` naming the subagent that sent it), the prompt (the messages the request
//! added), the tool results it sent back with the call each answers (`class="provenance"`,
//! `suspicious` added when it answers no recorded call or a refused one), the refusal (`class="refusal"`), the approval
//! (`class="approval"`), the answer, a response error, DLP findings (`class="masked"`) and a
//! footer with tokens and cost (`class="usage"`; cost from the record's `cost_nanos`, "—" when
//! absent).
//!
//! Readability: Claude Code wraps context it adds to a prompt in `<system-reminder>` blocks; each
//! is collapsed into `<details class="reminder">`. Tool calls (`<details class="tool-call">`, input
//! as indented JSON) and tool results (`<details class="tool-result">`) are collapsed too. Masks
//! (`[REDACTED:<detector>:<hex>]`) are marked `<mark class="mask">`. Text wraps (`pre` with
//! `white-space: pre-wrap`, see [`super::STYLE`]).
//!
//! Every value is HTML-escaped before any markup is added around it.

use std::fmt::Write as _;

use crate::service::audit::replay::{Piece, Turn};

use super::escape;

/// Opening and closing tags of Claude Code's reminders.
const REMINDER_OPEN: &str = "<system-reminder>";
const REMINDER_CLOSE: &str = "</system-reminder>";
/// Start of a DLP mask in delivered text (`[REDACTED:<detector>:<6 hex>]`).
const MASK_OPEN: &str = "[REDACTED:";
/// Longest mask marked (`[REDACTED:` + a detector id + `:` + 6 hex + `]`).
const MAX_MASK_LEN: usize = 96;

/// The card of `turn`, the `ordinal`-th of its session (from 1).
pub fn card(turn: &Turn, ordinal: i64) -> String {
    let mut html = String::with_capacity(1024);
    let outcome_class: String =
        turn.outcome.chars().filter(|c| c.is_ascii_lowercase() || *c == '_').collect::<String>().replace('_', "-");
    let _ = write!(
        html,
        r##"<article class="turn card" id="turn-{position}"><header><a class="ordinal" href="#turn-{position}">#{ordinal}</a> {time} · <b class="subject">{subject}</b> <span class="meta">({role})</span> · <code>{model}</code> · <span class="status status-{outcome_class}">{outcome}</span> <span class="meta record-id">{id}</span></header>"##,
        position = turn.position,
        time = time_html(turn.time),
        subject = escape(&turn.subject),
        role = escape(&turn.role),
        model = escape(&turn.model),
        outcome = escape(&turn.outcome),
        id = escape(&turn.id),
    );
    if let Some(label) = turn.agent_label() {
        let html_at = html.len().saturating_sub("</header>".len());
        html.insert_str(html_at, &format!(r#" <span class="agent">{}</span>"#, escape(&label)));
    }
    if !turn.prompt.is_empty() {
        html.push_str(r#"<div class="prompt">"#);
        turn.prompt.iter().for_each(|piece| piece_html(piece, &mut html));
        html.push_str("</div>");
    }
    if !turn.results.is_empty() {
        html.push_str(r#"<ul class="tool-results">"#);
        for result in &turn.results {
            let suspicious = result.provenance.is_suspicious();
            let _ = write!(
                html,
                r#"<li class="provenance{}">{}{}</li>"#,
                if suspicious { " suspicious" } else { "" },
                if suspicious { "⚠ " } else { "" },
                escape(&result.describe())
            );
        }
        html.push_str("</ul>");
    }
    if let Some(refusal) = &turn.refusal {
        let _ = write!(
            html,
            r#"<div class="refusal" role="note"><b>Refused</b>: <code>{}</code> ({}) {}</div>"#,
            escape(&refusal.reason),
            escape(&refusal.status),
            escape(&refusal.message)
        );
    }
    if let Some(approval) = &turn.approval {
        let _ = write!(
            html,
            r#"<div class="approval" role="note"><b>Approval</b>: {} by <b>{}</b> (review <a href="/reviews/{review}">{review}</a>){}</div>"#,
            escape(&approval.decision),
            escape(&approval.reviewer),
            approval
                .grant
                .as_ref()
                .map(|g| format!(r#" — <span class="grant">by {}</span>"#, escape(g)))
                .unwrap_or_default(),
            review = escape(&approval.review)
        );
    }
    if !turn.answer.is_empty() {
        html.push_str(r#"<div class="answer">"#);
        turn.answer.iter().for_each(|piece| piece_html(piece, &mut html));
        html.push_str("</div>");
    }
    if let Some(error) = &turn.response_error {
        let _ = write!(html, r#"<div class="refusal"><b>Response error</b>: <code>{}</code></div>"#, escape(error));
    }
    for (action, counts) in &turn.dlp {
        let _ = write!(html, r#"<div class="masked"><b>DLP {}</b>: {}</div>"#, escape(action), escape(counts));
    }
    html.push_str(&usage_html(turn));
    html.push_str("</article>");
    html
}

/// `<time>` of `ms` since the epoch (see [`super::time_element`]).
pub fn time_html(ms: i64) -> String {
    super::time_element(ms.div_euclid(1000))
}

/// `$0.0123` for billionths of a dollar (four decimals; `<$0.0001` below that).
pub fn dollars(nanos: u64) -> String {
    if nanos > 0 && nanos < 100_000 {
        return "&lt;$0.0001".to_string();
    }
    let ten_thousandths = nanos.saturating_add(50_000) / 100_000;
    format!("${}.{:04}", ten_thousandths / 10_000, ten_thousandths % 10_000)
}

fn usage_html(turn: &Turn) -> String {
    let cost = turn.cost_nanos.map_or_else(|| "—".to_string(), dollars);
    match &turn.tokens {
        Some(t) => format!(
            r#"<div class="usage">tokens: in {} · out {} · cache read {} · cache write {} · cost <span class="cost">{cost}</span></div>"#,
            t.input, t.output, t.cache_read, t.cache_write
        ),
        None => format!(r#"<div class="usage">tokens: — · cost <span class="cost">{cost}</span></div>"#),
    }
}

fn piece_html(piece: &Piece, html: &mut String) {
    match piece {
        Piece::Text { speaker, text } => {
            let _ = write!(
                html,
                r#"<div class="msg msg-{class}"><div class="who">{speaker}</div>{body}</div>"#,
                class = if speaker == "assistant" { "assistant" } else { "user" },
                speaker = escape(speaker),
                body = text_html(text),
            );
        }
        Piece::ToolCall { name, id, input, .. } => {
            let input = serde_json::to_string_pretty(input).unwrap_or_default();
            let _ = write!(
                html,
                r#"<details class="tool-call"><summary>Tool call <b>{}</b> <code>{}</code></summary><pre>{}</pre></details>"#,
                escape(name),
                escape(id),
                marked(&escape(&input))
            );
        }
        Piece::ToolResult { id, is_error, text } => {
            let _ = write!(
                html,
                r#"<details class="tool-result{error_class}"><summary>Tool result{error} <code>{id}</code> <span class="meta">({lines} line{s})</span></summary><pre>{text}</pre></details>"#,
                error_class = if *is_error { " tool-error" } else { "" },
                error = if *is_error { " (error)" } else { "" },
                id = escape(id),
                lines = text.lines().count(),
                s = if text.lines().count() == 1 { "" } else { "s" },
                text = marked(&escape(text)),
            );
        }
        Piece::Other { speaker, kind } => {
            let _ = write!(html, r#"<p class="note">{}: [{}]</p>"#, escape(speaker), escape(kind));
        }
        Piece::Missing { name } => {
            let _ = write!(
                html,
                r#"<p class="refusal">Message <code>{}</code> is missing from the store</p>"#,
                escape(name)
            );
        }
        Piece::NotJson { name } => {
            let _ = write!(html, r#"<p class="refusal">Message <code>{}</code> is not JSON</p>"#, escape(name));
        }
    }
}

/// A message's text: plain parts as wrapped `<pre>`, each `<system-reminder>` block collapsed.
pub fn text_html(text: &str) -> String {
    let mut html = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (plain, reminder, after) = match rest.find(REMINDER_OPEN) {
            Some(start) => {
                let plain = rest.get(..start).unwrap_or_default();
                let inner = rest.get(start + REMINDER_OPEN.len()..).unwrap_or_default();
                match inner.find(REMINDER_CLOSE) {
                    Some(end) => (
                        plain,
                        Some(inner.get(..end).unwrap_or_default()),
                        inner.get(end + REMINDER_CLOSE.len()..).unwrap_or_default(),
                    ),
                    None => (plain, Some(inner), ""),
                }
            }
            None => (rest, None, ""),
        };
        if !plain.trim().is_empty() {
            let _ = write!(html, "<pre>{}</pre>", marked(&escape(plain.trim_matches('\n'))));
        }
        if let Some(reminder) = reminder {
            let first_line = reminder.trim().lines().next().unwrap_or_default();
            let summary: String = first_line.chars().take(80).collect();
            let ellipsis = if first_line.chars().count() > 80 { "…" } else { "" };
            let _ = write!(
                html,
                r#"<details class="reminder"><summary>System reminder: {}{ellipsis}</summary><pre>{}</pre></details>"#,
                escape(&summary),
                marked(&escape(reminder.trim_matches('\n')))
            );
        }
        rest = after;
    }
    html
}

/// `escaped` with each DLP mask wrapped in `<mark class="mask">` (masks hold no character that
/// escaping changes, so they are found in the escaped text as they were).
fn marked(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(start) = rest.find(MASK_OPEN) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let end = from.char_indices().take(MAX_MASK_LEN).find(|&(_, c)| c == ']').map(|(i, _)| i + 1);
        let mask = end.and_then(|end| from.get(..end)).filter(|mask| {
            mask.get(MASK_OPEN.len()..mask.len() - 1)
                .is_some_and(|inner| inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'))
        });
        match mask {
            Some(mask) => {
                let _ = write!(out, r#"<mark class="mask">{mask}</mark>"#);
                rest = from.get(mask.len()..).unwrap_or_default();
            }
            None => {
                out.push_str(MASK_OPEN);
                rest = from.get(MASK_OPEN.len()..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::audit::replay::{ApprovalNote, Refusal, Tokens};
    use serde_json::json;

    const HOSTILE: &str = r#"<script>alert(1)</script><img src=x onerror="alert(2)">'"#;

    fn turn() -> Turn {
        Turn {
            position: 7,
            time: 1_796_601_600_000,
            id: "gw-1".into(),
            subject: "alice".into(),
            role: "developer".into(),
            model: "claude-sonnet-4-6".into(),
            outcome: "completed".into(),
            prompt: Vec::new(),
            refusal: None,
            approval: None,
            answer: Vec::new(),
            response_error: None,
            dlp: Vec::new(),
            tokens: None,
            cost_nanos: None,
            agent: None,
            results: Vec::new(),
        }
    }

    #[test]
    fn system_reminders_are_collapsed_and_the_prompt_stays_in_view() {
        let html = text_html(
            "<system-reminder>\nAs you answer, use this context: CLAUDE.md says be brief\n</system-reminder>\nFix the failing test\n<system-reminder>unterminated",
        );
        assert_eq!(html.matches(r#"<details class="reminder">"#).count(), 2, "{html}");
        assert!(
            html.contains(
                "<summary>System reminder: As you answer, use this context: CLAUDE.md says be brief</summary>"
            ),
            "{html}"
        );
        assert!(html.contains("<pre>Fix the failing test</pre>"), "{html}");
        let prompt = html.find("Fix the failing test").unwrap_or(usize::MAX);
        assert!(!html
            .get(..prompt)
            .unwrap_or_default()
            .contains("<details class=\"reminder\"><summary>System reminder: unterminated"));
        assert_eq!(text_html("just text"), "<pre>just text</pre>");
    }

    #[test]
    fn tool_calls_and_results_are_collapsed_with_their_name_in_view() {
        let mut t = turn();
        t.answer = vec![Piece::ToolCall {
            speaker: "assistant".into(),
            name: "Bash".into(),
            id: "toolu_1".into(),
            input: json!({"command": "ls build"}),
        }];
        t.prompt = vec![Piece::ToolResult { id: "toolu_0".into(), is_error: true, text: "a\nb".into() }];
        let html = card(&t, 3);
        assert!(
            html.contains(
                r#"<details class="tool-call"><summary>Tool call <b>Bash</b> <code>toolu_1</code></summary>"#
            ),
            "{html}"
        );
        assert!(html.contains("&quot;command&quot;: &quot;ls build&quot;"), "{html}");
        assert!(html.contains(r#"<details class="tool-result tool-error"><summary>Tool result (error) <code>toolu_0</code> <span class="meta">(2 lines)</span>"#), "{html}");
        assert!(!html.contains("<details open"), "collapsed by default");
        assert!(html.contains(r##"<a class="ordinal" href="#turn-7">#3</a>"##), "{html}");
    }

    #[test]
    fn refusals_approvals_and_masks_are_highlighted_and_cost_is_a_dash_when_unknown() {
        let mut t = turn();
        t.outcome = "refused".into();
        t.refusal =
            Some(Refusal { reason: "model_not_allowed".into(), status: "403".into(), message: "no opus".into() });
        t.approval = Some(ApprovalNote {
            decision: "approved".into(),
            reviewer: "bob".into(),
            review: "rev_1".into(),
            grant: Some("grant grt_1 (for session <s> until 2026-12-07T20:00:00Z)".into()),
        });
        t.answer = vec![Piece::Text {
            speaker: "assistant".into(),
            text: "key ghp_[REDACTED:github-pat:3f2a9c] [REDACTED:<b>]".into(),
        }];
        t.dlp = vec![("masked".into(), "github-pat×1".into())];
        t.tokens = Some(Tokens { input: 10, output: 2, cache_read: 0, cache_write: 0 });
        let html = card(&t, 1);
        assert!(
            html.contains(
                r#"<div class="refusal" role="note"><b>Refused</b>: <code>model_not_allowed</code> (403) no opus</div>"#
            ),
            "{html}"
        );
        assert!(html.contains(r#"<span class="status status-refused">refused</span>"#), "{html}");
        assert!(
            html.contains(r#"<div class="approval" role="note"><b>Approval</b>: approved by <b>bob</b>"#),
            "{html}"
        );
        assert!(
            html.contains(
                r#" — <span class="grant">by grant grt_1 (for session &lt;s&gt; until 2026-12-07T20:00:00Z)</span>"#
            ),
            "the session grant is named, escaped: {html}"
        );
        assert!(html.contains(r#"ghp_<mark class="mask">[REDACTED:github-pat:3f2a9c]</mark>"#), "{html}");
        assert!(
            html.contains("[REDACTED:&lt;b&gt;]") && !html.contains("<mark class=\"mask\">[REDACTED:&lt;"),
            "{html}"
        );
        assert!(html.contains(r#"<div class="masked"><b>DLP masked</b>: github-pat×1</div>"#), "{html}");
        assert!(
            html.contains(r#"tokens: in 10 · out 2 · cache read 0 · cache write 0 · cost <span class="cost">—</span>"#),
            "{html}"
        );
        t.cost_nanos = Some(12_340_000);
        assert!(card(&t, 1).contains(r#"<span class="cost">$0.0123</span>"#));
    }

    #[test]
    fn broken_or_overlong_masks_are_left_unmarked() {
        assert_eq!(marked("[REDACTED:"), "[REDACTED:");
        assert_eq!(marked("a [REDACTED:é] b"), "a [REDACTED:é] b");
        assert_eq!(marked("[REDACTED:[REDACTED:x:1]"), r#"[REDACTED:<mark class="mask">[REDACTED:x:1]</mark>"#);
        let long = format!("[REDACTED:{}]", "a".repeat(200));
        assert_eq!(marked(&long), long);
        assert_eq!(
            marked("ü[REDACTED:aws-access-key:3f2a9c]ü"),
            r#"ü<mark class="mask">[REDACTED:aws-access-key:3f2a9c]</mark>ü"#
        );
    }

    #[test]
    fn costs_read_as_dollars() {
        assert_eq!(dollars(0), "$0.0000");
        assert_eq!(dollars(99_999), "&lt;$0.0001");
        assert_eq!(dollars(1_000_000_000), "$1.0000");
        assert_eq!(dollars(12_345_678_900), "$12.3457");
        assert_eq!(dollars(u64::MAX), "$18446744073.7095", "saturates, never overflows");
    }

    #[test]
    fn every_value_on_a_card_is_escaped() {
        let mut t = turn();
        t.id = HOSTILE.into();
        t.subject = HOSTILE.into();
        t.role = HOSTILE.into();
        t.model = HOSTILE.into();
        t.outcome = HOSTILE.into();
        t.prompt = vec![
            Piece::Text {
                speaker: HOSTILE.into(),
                text: format!("{HOSTILE}<system-reminder>{HOSTILE}</system-reminder>"),
            },
            Piece::ToolResult { id: HOSTILE.into(), is_error: false, text: HOSTILE.into() },
            Piece::Other { speaker: HOSTILE.into(), kind: HOSTILE.into() },
            Piece::Missing { name: HOSTILE.into() },
            Piece::NotJson { name: HOSTILE.into() },
        ];
        t.answer = vec![Piece::ToolCall {
            speaker: "assistant".into(),
            name: HOSTILE.into(),
            id: HOSTILE.into(),
            input: json!({HOSTILE: HOSTILE}),
        }];
        t.refusal = Some(Refusal { reason: HOSTILE.into(), status: HOSTILE.into(), message: HOSTILE.into() });
        t.approval = Some(ApprovalNote {
            decision: HOSTILE.into(),
            reviewer: HOSTILE.into(),
            review: HOSTILE.into(),
            grant: Some(HOSTILE.into()),
        });
        t.response_error = Some(HOSTILE.into());
        t.dlp = vec![(HOSTILE.into(), HOSTILE.into())];
        let html = card(&t, 1);
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("onerror=\""), "{html}");
        assert!(!html.contains("'"), "no raw quote can end an attribute: {html}");
    }

    #[test]
    fn a_subagents_card_names_it_and_flags_a_result_for_a_refused_call() {
        use crate::service::audit::agents::{AgentNote, Provenance, ResultNote};
        let mut t = turn();
        t.agent = Some(AgentNote { id: Some(HOSTILE.into()), parent: None });
        let result = |id: &str, outcome: &str| ResultNote {
            tool_use_id: id.into(),
            bytes: 9,
            over_limit: false,
            is_error: false,
            provenance: Provenance::Call { record: "gw-1".into(), outcome: outcome.into() },
        };
        t.results = vec![result("toolu_ok", "allowed"), result("toolu_bad", "denied")];
        let html = card(&t, 1);
        assert!(html.contains(r#"<span class="agent">subagent &lt;script&gt;"#), "{html}");
        assert!(!html.contains(HOSTILE));
        let ok = r#"<li class="provenance">result toolu_ok: 9 bytes · answers gw-1&#39;s call (allowed)</li>"#;
        assert!(html.contains(ok), "{html}");
        assert!(html.contains(r#"<li class="provenance suspicious">⚠ result toolu_bad"#), "{html}");
        assert!(html.find(r#"class="agent""#).unwrap() < html.find("</header>").unwrap());
    }
}
