//! The kill switch's list: which identities `warden serve` has revoked, and the per-request
//! check against it (docs/identity.md, "The kill switch").
//!
//! The service answers `GET /v1/revocations` with the whole active list and its version
//! ([`RevocationList::parse`]):
//!
//! ```json
//! {"version": 12, "revocations": [
//!   {"id": 3, "kind": "subject", "value": "alice@example.com", "reason": "left the company", "expires_at": null},
//!   {"id": 4, "kind": "group",   "value": "contractors",       "reason": "…", "expires_at": null},
//!   {"id": 5, "kind": "token",   "value": "<jti>",             "reason": "…", "expires_at": 1796601600},
//!   {"id": 6, "kind": "job",     "claims": {"repository": "acme/app", "run_id": "77"}, "reason": "…", "expires_at": null}]}
//! ```
//!
//! Parsing builds hash indexes, so a check ([`RevocationList::find`]) costs one lookup for the
//! token id, one for the subject, one per group and one per job claim the caller carries — never
//! a scan of the list. A `job` revocation (a set of claim = value pairs, all of which must
//! match) is indexed by its first pair in claim order; a candidate found through any pair the
//! caller carries is then checked whole. Values are compared byte for byte, exactly as the token
//! carries them (no case folding or Unicode normalisation: `Alice` is not `alice`). Subjects are
//! not qualified by issuer: a revoked `sub` is refused whichever provider issued the token.
//!
//! Expiry: an entry with `expires_at` (epoch seconds) stops matching at that instant (a token
//! revocation lapses when the token would have expired anyway); the service drops it from the
//! list too. Among duplicate entries for one value, the longest-lived one is kept.
//!
//! Hostile input: the list is refused **whole** — the gateway keeps the list it had, which goes
//! stale and then applies the policy's failure mode — when it is larger than [`MAX_LIST_BYTES`],
//! holds more than [`MAX_ENTRIES`] entries, is not this JSON shape (unknown `kind`, a float or
//! negative version, nesting beyond serde_json's limit), or has an empty value, a value over
//! [`MAX_VALUE_BYTES`], a job of no claims or more than [`MAX_JOB_CLAIMS`]. An unknown kind is
//! refused rather than skipped: skipping would let through whoever it was meant to stop. Reasons
//! are shortened to [`MAX_REASON_CHARS`] characters with control characters replaced, since
//! they are shown to the refused caller.
//!
//! [`sync`] shares the list between an Envoy's workers; [`cut_stream`] ends a live answer of a
//! revoked caller.

pub mod sync;

use crate::core::errors::{Denial, Reason};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Largest list body accepted, in bytes.
pub const MAX_LIST_BYTES: usize = 4 << 20;
/// Most entries in one list.
pub const MAX_ENTRIES: usize = 50_000;
/// Longest value (subject, group, token id, claim name or value), in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Most claim = value pairs in one `job` revocation.
pub const MAX_JOB_CLAIMS: usize = 16;
/// Longest reason kept, in characters (longer ones are shortened).
pub const MAX_REASON_CHARS: usize = 200;

/// What a revocation stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every token with this `sub`.
    Subject(String),
    /// Every token whose groups claim holds this group.
    Group(String),
    /// Every token carrying all these claims with these values (a CI job, a workload).
    Job(BTreeMap<String, String>),
    /// The one token with this `jti`.
    Token(String),
}

impl Target {
    /// The kind's name on the wire and in messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Subject(_) => "subject",
            Self::Group(_) => "group",
            Self::Job(_) => "job",
            Self::Token(_) => "token",
        }
    }
}

/// One active revocation, as the gateway keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The service's id for it.
    pub id: u64,
    /// What it stops.
    pub target: Target,
    /// Why (shown to the refused caller).
    pub reason: String,
    /// When it lapses (epoch seconds); `None`: until lifted.
    pub expires_at: Option<i64>,
}

impl Revocation {
    /// Whether it still applies at `now` (epoch seconds).
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// The refusal of a caller it matches: 401, so Claude Code asks its `apiKeyHelper` again.
    pub fn denial(&self) -> Denial {
        let reason = if self.reason.is_empty() { "no reason given" } else { self.reason.as_str() };
        Denial::new(
            Reason::Revoked,
            format!(
                "access revoked: {reason} ({} revocation #{}); sign in again (`warden login`), or ask an \
                 administrator if you think this is a mistake",
                self.target.kind(),
                self.id
            ),
        )
    }
}

/// The identity a request presents, as the check reads it.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// `sub`.
    pub subject: &'a str,
    /// The groups claim.
    pub groups: &'a [String],
    /// The job claims the gateway reads (`identity.job_claims`).
    pub job: &'a [(String, String)],
    /// `jti`, when the token has one.
    pub token_id: Option<&'a str>,
}

/// Why a list body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// Larger than [`MAX_LIST_BYTES`].
    TooLarge(usize),
    /// Not the list's JSON shape.
    Malformed(String),
    /// More than [`MAX_ENTRIES`] entries.
    TooMany(usize),
    /// An entry is unusable (its index and why).
    Entry(usize, EntryError),
}

/// Why one entry of the list is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// A subject, group or token revocation without `value`.
    MissingValue,
    /// A job revocation without `claims`.
    MissingClaims,
    /// `value` is empty or too long.
    Value(ValueError),
    /// `claims` is unusable.
    Claims(ValueError),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingValue => f.write_str("`value` is missing"),
            Self::MissingClaims => f.write_str("a job revocation needs `claims`"),
            Self::Value(why) => write!(f, "{why}"),
            Self::Claims(why) => write!(f, "`claims` {why}"),
        }
    }
}

/// Why a revoked value or a job's claims are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    /// No claims, or more than [`MAX_JOB_CLAIMS`].
    ClaimCount,
    /// An empty value (what it is).
    Empty(&'static str),
    /// A value over [`MAX_VALUE_BYTES`] (what it is).
    TooLong(&'static str),
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClaimCount => write!(f, "must hold 1 to {MAX_JOB_CLAIMS} claim=value pairs"),
            Self::Empty(what) => write!(f, "empty {what}"),
            Self::TooLong(what) => write!(f, "{what} over {MAX_VALUE_BYTES} bytes"),
        }
    }
}

impl std::error::Error for ValueError {}

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge(size) => write!(f, "the list is {size} bytes, over the limit of {MAX_LIST_BYTES}"),
            Self::Malformed(why) => write!(f, "the list is not valid: {why}"),
            Self::TooMany(count) => write!(f, "the list has {count} entries, over the limit of {MAX_ENTRIES}"),
            Self::Entry(index, why) => write!(f, "revocations[{index}]: {why}"),
        }
    }
}

/// The list's wire shape.
#[derive(Debug, Deserialize)]
struct WireList {
    version: u64,
    revocations: Vec<WireEntry>,
}

/// One entry on the wire.
#[derive(Debug, Deserialize)]
struct WireEntry {
    id: u64,
    kind: WireKind,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    claims: Option<BTreeMap<String, String>>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    expires_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireKind {
    Subject,
    Group,
    Job,
    Token,
}

/// Index of entries by value: the entry kept for each value.
type ByValue = HashMap<String, usize>;

/// A parsed, indexed list of active revocations.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    version: u64,
    entries: Vec<Revocation>,
    subjects: ByValue,
    groups: ByValue,
    tokens: ByValue,
    /// Job entries by their first claim, then that claim's value.
    jobs: HashMap<String, HashMap<String, Vec<usize>>>,
}

impl RevocationList {
    /// Parses and indexes the service's answer (see the module comment for what is refused).
    pub fn parse(body: &[u8]) -> Result<Self, ListError> {
        if body.len() > MAX_LIST_BYTES {
            return Err(ListError::TooLarge(body.len()));
        }
        let wire: WireList = serde_json::from_slice(body).map_err(|e| ListError::Malformed(e.to_string()))?;
        if wire.revocations.len() > MAX_ENTRIES {
            return Err(ListError::TooMany(wire.revocations.len()));
        }
        let mut entries = Vec::with_capacity(wire.revocations.len());
        for (index, entry) in wire.revocations.into_iter().enumerate() {
            entries.push(checked(entry).map_err(|why| ListError::Entry(index, why))?);
        }
        Ok(Self::new(wire.version, entries))
    }

    /// A list of `version` holding `entries` (already checked), indexed.
    pub fn new(version: u64, entries: impl IntoIterator<Item = Revocation>) -> Self {
        let mut list = Self { version, ..Self::default() };
        for revocation in entries {
            list.insert(revocation);
        }
        list
    }

    /// The version the service gave this list.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many entries the list holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn insert(&mut self, revocation: Revocation) {
        let index = self.entries.len();
        let entries = &self.entries;
        let keep_longest = |slot: &mut usize| {
            let kept = entries.get(*slot).and_then(|r| r.expires_at);
            let outlives = match (kept, revocation.expires_at) {
                (Some(_), None) => true,
                (Some(kept), Some(new)) => new > kept,
                (None, _) => false,
            };
            if outlives {
                *slot = index;
            }
        };
        let index_of = match &revocation.target {
            Target::Subject(value) => Some((&mut self.subjects, value)),
            Target::Group(value) => Some((&mut self.groups, value)),
            Target::Token(value) => Some((&mut self.tokens, value)),
            Target::Job(claims) => {
                if let Some((claim, value)) = claims.iter().next() {
                    self.jobs.entry(claim.clone()).or_default().entry(value.clone()).or_default().push(index);
                }
                None
            }
        };
        if let Some((by_value, value)) = index_of {
            by_value.entry(value.clone()).and_modify(keep_longest).or_insert(index);
        }
        self.entries.push(revocation);
    }

    /// The first live revocation (at `now`, epoch seconds) that covers `who`: its token id,
    /// subject, any of its groups, or a job whose every claim it carries.
    pub fn find(&self, who: &Presented<'_>, now: i64) -> Option<&Revocation> {
        let live = |index: &usize| self.entries.get(*index).filter(|r| r.is_live(now));
        if let Some(found) = who.token_id.and_then(|jti| self.tokens.get(jti)).and_then(live) {
            return Some(found);
        }
        if let Some(found) = self.subjects.get(who.subject).and_then(live) {
            return Some(found);
        }
        if !self.groups.is_empty() {
            if let Some(found) = who.groups.iter().find_map(|group| self.groups.get(group).and_then(live)) {
                return Some(found);
            }
        }
        if self.jobs.is_empty() {
            return None;
        }
        who.job.iter().find_map(|(claim, value)| {
            let candidates = self.jobs.get(claim)?.get(value)?;
            candidates.iter().filter_map(live).find(|r| match &r.target {
                Target::Job(wanted) => wanted.iter().all(|(k, v)| who.job.iter().any(|(ck, cv)| ck == k && cv == v)),
                _ => false,
            })
        })
    }
}

/// An entry checked and turned into a [`Revocation`].
fn checked(entry: WireEntry) -> Result<Revocation, EntryError> {
    let value = |value: Option<String>| -> Result<String, EntryError> {
        let value = value.ok_or(EntryError::MissingValue)?;
        check_value("value", &value).map_err(EntryError::Value)?;
        Ok(value)
    };
    let target = match entry.kind {
        WireKind::Subject => Target::Subject(value(entry.value)?),
        WireKind::Group => Target::Group(value(entry.value)?),
        WireKind::Token => Target::Token(value(entry.value)?),
        WireKind::Job => {
            let claims = entry.claims.ok_or(EntryError::MissingClaims)?;
            check_claims(&claims).map_err(EntryError::Claims)?;
            Target::Job(claims)
        }
    };
    Ok(Revocation { id: entry.id, target, reason: clean_reason(&entry.reason), expires_at: entry.expires_at })
}

/// Checks a job's claims: 1 to [`MAX_JOB_CLAIMS`] pairs, names and values 1 to
/// [`MAX_VALUE_BYTES`] bytes.
pub fn check_claims(claims: &BTreeMap<String, String>) -> Result<(), ValueError> {
    if claims.is_empty() || claims.len() > MAX_JOB_CLAIMS {
        return Err(ValueError::ClaimCount);
    }
    for (claim, value) in claims {
        check_value("claim name", claim)?;
        check_value("claim value", value)?;
    }
    Ok(())
}

fn check_value(what: &'static str, value: &str) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::Empty(what));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ValueError::TooLong(what));
    }
    Ok(())
}

/// A reason fit to show: at most [`MAX_REASON_CHARS`] characters, control characters as spaces.
pub fn clean_reason(reason: &str) -> String {
    reason.trim().chars().take(MAX_REASON_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// What to deliver instead of `chunk` (the bytes about to go to the client) to end a revoked
/// caller's event stream: the chunk up to and including its **first** blank line — which
/// finishes an event an earlier chunk began, or else is one more whole event — then `denial` as
/// an SSE `event: error`. Nothing is delivered after it. (Stateless: which of the two it is
/// would take tracking every chunk's tail.)
///
/// Limit: when the upstream split an event across chunks and `chunk` holds no event end, the
/// client's partial event is left unfinished before the error event.
pub fn cut_stream(chunk: &[u8], denial: &Denial) -> Vec<u8> {
    let complete = first_event_end(chunk).unwrap_or(0);
    let mut out = chunk.get(..complete).map(<[u8]>::to_vec).unwrap_or_default();
    out.extend_from_slice(denial.to_error_event().as_bytes());
    out
}

/// The offset just past the first blank line (`\n\n`, `\r\n\r\n` or `\r\r`) in `bytes`.
fn first_event_end(bytes: &[u8]) -> Option<usize> {
    let ends = [&b"\n\n"[..], b"\r\n\r\n", b"\r\r"];
    ends.iter()
        .filter_map(|end| {
            bytes.windows(end.len()).position(|window| window == *end).map(|at| at.saturating_add(end.len()))
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_601_600;

    fn list(entries: &str) -> RevocationList {
        RevocationList::parse(format!(r#"{{"version":7,"revocations":[{entries}]}}"#).as_bytes()).unwrap()
    }

    fn who<'a>(
        subject: &'a str,
        groups: &'a [String],
        job: &'a [(String, String)],
        jti: Option<&'a str>,
    ) -> Presented<'a> {
        Presented { subject, groups, job, token_id: jti }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_kind_matches_only_what_it_names() {
        let list = list(
            r#"{"id":1,"kind":"subject","value":"alice","reason":"left"},
               {"id":2,"kind":"group","value":"contractors","reason":"contract ended"},
               {"id":3,"kind":"token","value":"jti-9","reason":"leaked"},
               {"id":4,"kind":"job","claims":{"repository":"acme/app","run_id":"77"},"reason":"compromised run"}"#,
        );
        assert_eq!(list.version(), 7);
        assert_eq!(list.len(), 4);
        let none: Vec<String> = Vec::new();
        let no_job: Vec<(String, String)> = Vec::new();
        assert_eq!(list.find(&who("alice", &none, &no_job, None), NOW).unwrap().id, 1);
        assert!(list.find(&who("Alice", &none, &no_job, None), NOW).is_none(), "compared byte for byte");
        let groups = vec!["devs".to_string(), "contractors".to_string()];
        assert_eq!(list.find(&who("bob", &groups, &no_job, None), NOW).unwrap().id, 2);
        assert_eq!(list.find(&who("bob", &none, &no_job, Some("jti-9")), NOW).unwrap().id, 3);
        assert!(list.find(&who("bob", &none, &no_job, Some("jti-8")), NOW).is_none());
        let run = pairs(&[("repository", "acme/app"), ("workflow", "ci"), ("run_id", "77")]);
        assert_eq!(list.find(&who("ci", &none, &run, None), NOW).unwrap().id, 4);
        let other_run = pairs(&[("repository", "acme/app"), ("run_id", "78")]);
        assert!(list.find(&who("ci", &none, &other_run, None), NOW).is_none(), "every claim must match");
        let partial = pairs(&[("run_id", "77")]);
        assert!(list.find(&who("ci", &none, &partial, None), NOW).is_none());
    }

    #[test]
    fn a_job_is_found_through_any_of_its_claims_order_regardless() {
        let list = list(r#"{"id":4,"kind":"job","claims":{"run_id":"77","actor":"mallory"}}"#);
        let none: Vec<String> = Vec::new();
        let job = pairs(&[("run_id", "77"), ("actor", "mallory")]);
        assert_eq!(list.find(&who("x", &none, &job, None), NOW).unwrap().id, 4);
    }

    #[test]
    fn expired_entries_stop_matching_and_duplicates_keep_the_longest_lived() {
        let later = NOW + 60;
        let list = list(&format!(
            r#"{{"id":1,"kind":"token","value":"t","expires_at":{NOW}}},
               {{"id":2,"kind":"subject","value":"s","expires_at":{later}}},
               {{"id":3,"kind":"subject","value":"s"}},
               {{"id":4,"kind":"subject","value":"s","expires_at":{NOW}}}"#
        ));
        let none: Vec<String> = Vec::new();
        let no_job: Vec<(String, String)> = Vec::new();
        assert!(list.find(&who("x", &none, &no_job, Some("t")), NOW).is_none(), "lapsed at its expiry");
        assert_eq!(list.find(&who("x", &none, &no_job, Some("t")), NOW - 1).unwrap().id, 1);
        assert_eq!(list.find(&who("s", &none, &no_job, None), later + 1).unwrap().id, 3, "the one without expiry");
    }

    #[test]
    fn hostile_lists_are_refused_whole() {
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not valid"),
            (r#"{"version":-1,"revocations":[]}"#.into(), "not valid"),
            (r#"{"version":1.5,"revocations":[]}"#.into(), "not valid"),
            (r#"{"version":18446744073709551616,"revocations":[]}"#.into(), "not valid"),
            (r#"{"version":1,"revocations":[{"id":1,"kind":"device","value":"x"}]}"#.into(), "unknown variant"),
            (r#"{"version":1,"revocations":[{"id":1,"kind":"subject","value":""}]}"#.into(), "revocations[0]: empty"),
            (r#"{"version":1,"revocations":[{"id":1,"kind":"subject"}]}"#.into(), "`value` is missing"),
            (r#"{"version":1,"revocations":[{"id":1,"kind":"job","claims":{}}]}"#.into(), "1 to 16 claim=value pairs"),
            (r#"{"version":1,"revocations":[{"id":1,"kind":"job","value":"x"}]}"#.into(), "needs `claims`"),
            (
                format!(r#"{{"version":1,"revocations":[{{"id":1,"kind":"group","value":"{}"}}]}}"#, "g".repeat(1025)),
                "over 1024 bytes",
            ),
            (format!("{}1{}", "[".repeat(200), "]".repeat(200)), "not valid"),
        ];
        for (body, expected) in cases {
            let error = RevocationList::parse(body.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "{body:.80}: {error}");
        }
        let huge = vec![b' '; MAX_LIST_BYTES + 1];
        assert_eq!(RevocationList::parse(&huge).unwrap_err(), ListError::TooLarge(MAX_LIST_BYTES + 1));
        let entry = r#"{"id":1,"kind":"subject","value":"s"}"#;
        let many = format!(r#"{{"version":1,"revocations":[{}]}}"#, vec![entry; MAX_ENTRIES + 1].join(","));
        assert_eq!(RevocationList::parse(many.as_bytes()).unwrap_err(), ListError::TooMany(MAX_ENTRIES + 1));
    }

    #[test]
    fn unicode_values_match_exactly_and_reasons_are_made_safe_to_show() {
        let list = list(r#"{"id":1,"kind":"subject","value":"zoë","reason":"bad\u0007 actor\nreally"}"#);
        let none: Vec<String> = Vec::new();
        let no_job: Vec<(String, String)> = Vec::new();
        let found = list.find(&who("zoë", &none, &no_job, None), NOW).unwrap();
        assert_eq!(found.reason, "bad  actor really");
        assert!(list.find(&who("zoe\u{308}", &none, &no_job, None), NOW).is_none(), "no normalisation");
        let long = clean_reason(&"é".repeat(500));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn a_revoked_caller_gets_401_telling_them_to_sign_in_again() {
        let list = list(r#"{"id":12,"kind":"group","value":"g","reason":"incident 42"}"#);
        let groups = vec!["g".to_string()];
        let no_job: Vec<(String, String)> = Vec::new();
        let denial = list.find(&who("x", &groups, &no_job, None), NOW).unwrap().denial();
        let reply = denial.to_reply("req_1");
        assert_eq!(reply.status, 401);
        assert!(reply.body.contains(r#""type":"authentication_error""#), "{}", reply.body);
        assert!(reply
            .message
            .starts_with("warden: revoked: access revoked: incident 42 (group revocation #12); sign in again"));
    }

    #[test]
    fn a_cut_keeps_whole_events_then_ends_with_the_error_event() {
        let denial = Denial::new(Reason::Revoked, "access revoked: r");
        let chunk =
            b"data: \"tail of an earlier event\"}\n\nevent: ping\ndata: {}\n\nevent: message_stop\ndata: {}\n\n";
        let out = String::from_utf8(cut_stream(chunk, &denial)).unwrap();
        assert!(out.starts_with("data: \"tail of an earlier event\"}\n\nevent: error\ndata: {"), "{out}");
        assert!(out.ends_with("}\n\n") && !out.contains("ping") && !out.contains("message_stop"), "{out}");
        let crlf = String::from_utf8(cut_stream(b"data: a\r\n\r\ndata: b", &denial)).unwrap();
        assert!(crlf.starts_with("data: a\r\n\r\nevent: error"), "{crlf}");
        let none = String::from_utf8(cut_stream(b"data: partial", &denial)).unwrap();
        assert!(none.starts_with("event: error\n"), "{none}");
    }
}
