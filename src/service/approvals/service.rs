//! The approval service's behaviour, independent of HTTP: holds, decisions, listings.
//!
//! **Holds** ([`Service::hold`]) first look for a live session grant that covers them
//! ([`super::grants`]: same session, caller, role, reasons among the grant's; the caller not
//! revoked), which answers `approved` at once with a verdict naming the grant. Otherwise they loop
//! over [`Store::hold_step`]: a grant with uses left answers
//! `approved` at once (consuming a use), a standing denial answers `denied`, otherwise the hold
//! waits on the pending review (creating it, and firing the webhook, when there is none). Waiting
//! is a long-poll without a thread: every hold subscribes to one `tokio::sync::watch` counter that
//! each decision and each expiry sweep bumps; a woken hold re-runs its step. When two holds wait
//! on one approved review with fewer uses than holds, the ones that find the grant used up open a
//! new review and keep waiting — one approval never lets more requests through than the role's
//! `grant_uses`. When the wait (the request's `hold_seconds`, at most 600 s) ends first, the answer
//! is `pending` with the review's URL. Every answer is a signed verdict; approved and denied ones
//! are kept in the database.
//!
//! Limits: a decision wakes every waiting hold (each then runs one short query) — fine for the
//! tens of concurrent holds an approval service sees, not for thousands.
//!
//! **Decisions** ([`Service::decide`]): the approver must be in one of the role's approver groups
//! (current policy), must give a reason to deny, and the store refuses self-approval, a second
//! approval by the same person and anything not pending. [`Service::decide_for_session`]
//! approves and creates a session grant of 1 to `approvals.max_session_grant` minutes (refused
//! without a session id and for two-person roles).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::service::auth::{Approver, CsrfKey, GatewayToken, OidcVerifier};
use super::grants::{EndRefused, GrantScope, SessionGrant, MAX_SESSION_ID_CHARS};
use crate::service::revocations::RevocationStore;
use super::rules::Rules;
use super::signer::{GrantClaims, VerdictClaims, VerdictSigner, VERDICT_LIFETIME_SECONDS};
use crate::service::store::{
    AgentContext, Choice, DecideError, Decided, Decision, HoldStep, Listing, NewReview, Review, ReviewContext,
    SessionAsk, Status, Store, StoreError, ToolCallContext,
};
use crate::service::util::{format_duration, log_event, new_grant_id, new_review_id, unix_now};
use super::webhook::{Notice, Webhook};

/// Longest excerpt kept, in characters (the gateway sends at most 2000).
const MAX_EXCERPT_CHARS: usize = 4000;
/// Longest comment kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// Longest identifier-like field (subject, role, request id, model, tool, group, reason).
const MAX_FIELD_CHARS: usize = 512;
/// Most list entries (tools, groups, reasons, job claims) accepted.
const MAX_LIST_ITEMS: usize = 256;
/// Longest tool-call input accepted, in characters: the approver must see all of it, so a larger
/// one is refused (and the call fails closed at the gateway) rather than cut.
pub const MAX_TOOL_INPUT_CHARS: usize = 256 * 1024;
/// The kinds of tool-use blocks a tool-call hold may name.
const TOOL_CALL_KINDS: [&str; 3] = ["tool_use", "server_tool_use", "mcp_tool_use"];

/// Why a service call failed; each maps to one HTTP status and error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// 400 `invalid_request_error`.
    BadRequest(String),
    /// 401 `authentication_error`.
    Unauthorized(String),
    /// 403 `permission_error`.
    Forbidden(String),
    /// 404 `not_found_error`.
    NotFound(String),
    /// 409 `conflict_error`.
    Conflict(String),
    /// 429 `rate_limit_error`.
    TooManyRequests(String),
    /// 500 `api_error` (details are logged, not returned).
    Internal,
}

impl ServiceError {
    /// The message for the caller.
    pub fn message(&self) -> &str {
        match self {
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::TooManyRequests(m) => m,
            Self::Internal => "internal error in the approval service (see its log)",
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        log_event(&e.to_string());
        Self::Internal
    }
}

/// The callout body the gateway sends (docs/approvals.md). Unknown fields are ignored, so a newer
/// gateway can add some without breaking an older service.
#[derive(Debug, Clone, Deserialize)]
pub struct HoldRequest {
    /// Protocol version; must be 1.
    pub version: u32,
    /// The gateway's request id.
    pub request_id: String,
    /// SHA-256 request fingerprint, 64 lower-case hex characters.
    pub fingerprint: String,
    /// Who asks.
    pub caller: HoldCaller,
    /// The caller's role.
    pub role: String,
    /// Trigger reason codes.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Model asked for.
    #[serde(default)]
    pub model: String,
    /// Declared tools.
    #[serde(default)]
    pub tools: Vec<String>,
    /// `max_tokens`.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Body size in bytes.
    #[serde(default)]
    pub body_bytes: u64,
    /// Whether MCP servers are listed.
    #[serde(default)]
    pub mcp_servers: bool,
    /// The MCP servers' URLs, masked.
    #[serde(default)]
    pub mcp_server_urls: Vec<String>,
    /// How many messages the conversation has.
    #[serde(default)]
    pub messages: u64,
    /// The newest user turn, masked.
    #[serde(default)]
    pub excerpt: String,
    /// The system prompt, masked.
    #[serde(default)]
    pub system_excerpt: String,
    /// The assistant prefill, masked (empty without one).
    #[serde(default)]
    pub prefill_excerpt: String,
    /// How long the gateway waits, seconds.
    pub hold_seconds: u64,
    /// The agent session (a session grant covers later holds of it); absent when none is named.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The agent that sent the request (Claude Code's subagent headers).
    #[serde(default)]
    pub agent: Option<AgentContext>,
    /// The proposed tool call, for a hold of a call Claude proposed in its answer.
    #[serde(default)]
    pub tool_call: Option<ToolCallContext>,
}

/// The requester as the gateway identified it.
#[derive(Debug, Clone, Deserialize)]
pub struct HoldCaller {
    /// Token subject.
    pub subject: String,
    /// Token issuer.
    #[serde(default)]
    pub issuer: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Job claims (values other than strings are kept as their JSON text).
    #[serde(default)]
    pub job: BTreeMap<String, Value>,
}

/// Everything the HTTP layer needs.
pub struct Service {
    /// Reviews, grants, verdicts.
    pub store: Store,
    /// Approver rules from the policy.
    pub rules: Rules,
    /// Approver token verification.
    pub verifier: OidcVerifier,
    /// The gateway's bearer token.
    pub gateway_token: GatewayToken,
    /// Page CSRF tokens.
    pub csrf: CsrfKey,
    /// Base URL for links, without trailing `/`.
    pub public_url: String,
    /// Sign-in sources the console's sign-in page offers (`token_service` sources with a
    /// client; docs/identity.md, "Signing into the console").
    pub console_sign_in: Vec<String>,
    /// The kill switch's revocations, when the policy has `identity.revocation`: a revoked
    /// caller gets no answer from a session grant.
    pub revocations: Option<Arc<RevocationStore>>,
    signer: VerdictSigner,
    webhook: Option<Arc<Webhook>>,
    changes: watch::Sender<u64>,
}

/// What [`Service::new`] needs.
pub struct ServiceParts {
    /// Opened store.
    pub store: Store,
    /// Approver rules.
    pub rules: Rules,
    /// Token verifier.
    pub verifier: OidcVerifier,
    /// Gateway token.
    pub gateway_token: GatewayToken,
    /// Verdict signing key.
    pub signer: VerdictSigner,
    /// Base URL for links.
    pub public_url: String,
    /// Optional webhook.
    pub webhook: Option<Webhook>,
}

impl Service {
    /// Assembles the service.
    pub fn new(parts: ServiceParts) -> Self {
        let csrf = CsrfKey::new(parts.signer.derive_secret("warden serve page csrf v1"));
        Self {
            store: parts.store,
            rules: parts.rules,
            verifier: parts.verifier,
            gateway_token: parts.gateway_token,
            csrf,
            public_url: parts.public_url.trim_end_matches('/').to_string(),
            console_sign_in: Vec::new(),
            revocations: None,
            signer: parts.signer,
            webhook: parts.webhook.map(Arc::new),
            changes: watch::channel(0).0,
        }
    }

    /// The page URL of review `id`.
    pub fn review_url(&self, id: &str) -> String {
        format!("{}/reviews/{id}", self.public_url)
    }

    /// Whether the page's cookies must be `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Handles one hold: answers a signed verdict (see the module comment).
    pub async fn hold(&self, request: HoldRequest) -> Result<String, ServiceError> {
        let request = validate(request)?;
        let role = self.rules.role(&request.role).cloned().ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "role {:?} has no approval rules in the approval service's policy (is it the gateway's policy?)",
                request.role
            ))
        })?;
        let wait = Duration::from_secs(request.hold_seconds.min(self.rules.max_hold_seconds));
        let deadline = tokio::time::Instant::now() + wait;
        let mut changes = self.changes.subscribe();
        let subject = request.caller.subject.as_str();
        let requester = (request.caller.issuer.as_str(), subject);
        let mut waiting_on: Option<String> = None;
        loop {
            changes.borrow_and_update();
            self.expire()?;
            let now = unix_now();
            if let Some(grant) = self.grant_for_hold(&request, now)? {
                let review = self
                    .store
                    .review(&grant.review_id)?
                    .ok_or_else(|| StoreError::other("a grant without its review"))?;
                log_event(&format!(
                    "hold {} by {subject}: approved by session grant {} (session {}, review {})",
                    request.request_id, grant.id, grant.session_id, review.id
                ));
                return self.issue(&request.fingerprint, requester, &review, "approved", now, Some(&grant));
            }
            let step = self.store.hold_step(&request.fingerprint, requester, now, self.rules.review_rate, || {
                let id = new_review_id().map_err(StoreError::other)?;
                Ok(new_review(&request, id, role.two_person, role.grant_uses, now, self.rules.review_ttl_seconds))
            })?;
            let review = match step {
                HoldStep::Granted(review) => {
                    log_event(&format!(
                        "hold {} by {subject}: approved (review {}, grant used)",
                        request.request_id, review.id
                    ));
                    // The approval may have created a session grant: the verdict names it.
                    let grant = self.store.session_grant_of_review(&review.id)?.filter(|g| g.is_live(now));
                    return self.issue(&request.fingerprint, requester, &review, "approved", now, grant.as_ref());
                }
                HoldStep::Denied(review) => {
                    log_event(&format!("hold {} by {subject}: denied (review {})", request.request_id, review.id));
                    return self.issue(&request.fingerprint, requester, &review, "denied", now, None);
                }
                HoldStep::Created(review) => {
                    log_event(&format!(
                        "review created {} for {subject} (role {}, reasons {}, model {})",
                        review.id,
                        review.role,
                        join_or_dash(&review.context.reasons),
                        or_dash(&review.context.model)
                    ));
                    self.notify(&review);
                    review
                }
                HoldStep::Waiting(review) => review,
                HoldStep::RateLimited => {
                    let rate = self.rules.review_rate;
                    log_event(&format!(
                        "hold {} by {subject}: refused, {} reviews opened within {} (approvals.review_rate)",
                        request.request_id,
                        rate.reviews,
                        format_duration(rate.per_seconds)
                    ));
                    return Err(ServiceError::TooManyRequests(format!(
                        "{subject} opened {} reviews within {}, the most approvals.review_rate allows",
                        rate.reviews,
                        format_duration(rate.per_seconds)
                    )));
                }
            };
            if waiting_on.as_deref() != Some(review.id.as_str()) {
                log_event(&format!(
                    "hold {} by {subject}: waiting on review {} (up to {})",
                    request.request_id,
                    review.id,
                    format_duration(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX))
                ));
                waiting_on = Some(review.id.clone());
            }
            let woken = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(woken, Ok(Ok(()))) {
                log_event(&format!("hold {} by {subject}: still pending on review {}", request.request_id, review.id));
                return self.issue(&request.fingerprint, requester, &review, "pending", unix_now(), None);
            }
        }
    }

    /// Signs a verdict about `review` (naming the session `grant` that gave or came with an
    /// approval); keeps approved and denied ones as evidence.
    fn issue(
        &self,
        fingerprint: &str,
        (issuer, subject): (&str, &str),
        review: &Review,
        decision: &str,
        now: i64,
        grant: Option<&SessionGrant>,
    ) -> Result<String, ServiceError> {
        let (reviewer, comment) = match decision {
            "approved" => {
                let approvers: Vec<_> = review.approvers().collect();
                let names: Vec<&str> = approvers.iter().map(|v| v.reviewer.as_str()).collect();
                let comments: Vec<&str> =
                    approvers.iter().map(|v| v.comment.as_str()).filter(|c| !c.is_empty()).collect();
                (names.join(","), comments.join(" / "))
            }
            "denied" => review.denial().map(|v| (v.reviewer.clone(), v.comment.clone())).unwrap_or_default(),
            _ => (String::new(), String::new()),
        };
        let url = self.review_url(&review.id);
        let claims = VerdictClaims {
            fp: fingerprint,
            iss: issuer,
            sub: subject,
            decision,
            review: &review.id,
            reviewer: &reviewer,
            comment: &comment,
            url: &url,
            iat: now,
            exp: now + VERDICT_LIFETIME_SECONDS,
            grant: grant.map(|grant| GrantClaims {
                id: &grant.id,
                session_id: &grant.session_id,
                expires_at: grant.expires_at,
                reasons: &grant.reasons,
            }),
        };
        let token = self.signer.sign(&claims).map_err(|e| {
            log_event(&format!("signing a verdict failed: {e}"));
            ServiceError::Internal
        })?;
        if decision != "pending" {
            self.store.record_verdict(&review.id, decision, &token, now)?;
        }
        Ok(token)
    }

    fn notify(&self, review: &Review) {
        if let Some(webhook) = &self.webhook {
            webhook.notify(Notice {
                review_id: review.id.clone(),
                subject: review.subject.clone(),
                role: review.role.clone(),
                reasons: review.context.reasons.clone(),
                model: review.context.model.clone(),
                two_person: review.two_person,
                link: self.review_url(&review.id),
            });
        }
    }

    /// Expires due reviews, logs them and wakes their holds.
    pub fn expire(&self) -> Result<(), ServiceError> {
        let expired = self.store.expire_due(unix_now())?;
        for review in &expired {
            log_event(&format!(
                "review expired {} for {} (nobody decided within {})",
                review.id,
                review.subject,
                format_duration(review.expires_at - review.created_at)
            ));
        }
        if !expired.is_empty() {
            self.changes.send_modify(|version| *version = version.wrapping_add(1));
        }
        Ok(())
    }

    /// Expires reviews every `period` (their holds learn it without waiting for a decision).
    pub async fn sweep(self: Arc<Self>, period: Duration) {
        let mut interval = tokio::time::interval(period);
        loop {
            interval.tick().await;
            // Errors were logged; the next tick tries again.
            let _ = self.expire();
        }
    }

    /// Records `approver`'s decision on review `id`.
    pub fn decide(
        &self,
        approver: &Approver,
        id: &str,
        choice: Choice,
        comment: &str,
    ) -> Result<Decided, ServiceError> {
        self.decide_with(approver, id, choice, comment, None)
    }

    /// Approves review `id` and grants its session for `minutes` (1 to
    /// `approvals.max_session_grant`): later holds of the same session by the same caller for
    /// reasons among the review's are approved without a human until the grant ends
    /// ([`super::grants`]).
    pub fn decide_for_session(
        &self,
        approver: &Approver,
        id: &str,
        comment: &str,
        minutes: i64,
    ) -> Result<Decided, ServiceError> {
        let longest = self.max_session_minutes();
        if !(1..=longest).contains(&minutes) {
            return Err(ServiceError::BadRequest(format!(
                "session_minutes must be between 1 and {longest} (approvals.max_session_grant)"
            )));
        }
        let grant_id = new_grant_id().map_err(StoreError::other)?;
        self.decide_with(approver, id, Choice::Approve, comment, Some(SessionAsk { grant_id, seconds: minutes * 60 }))
    }

    fn decide_with(
        &self,
        approver: &Approver,
        id: &str,
        choice: Choice,
        comment: &str,
        session: Option<SessionAsk>,
    ) -> Result<Decided, ServiceError> {
        let comment = comment.trim();
        if choice == Choice::Deny && comment.is_empty() {
            return Err(ServiceError::BadRequest("a reason is required to deny a request".to_string()));
        }
        if comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(ServiceError::BadRequest(format!("the comment is longer than {MAX_COMMENT_CHARS} characters")));
        }
        self.expire()?;
        let review = self.review_for(approver, id)?;
        let decided = self
            .store
            .decide(&Decision {
                review_id: &review.id,
                reviewer_issuer: &approver.issuer,
                reviewer: &approver.subject,
                choice,
                comment,
                now: unix_now(),
                grant_ttl_seconds: self.rules.grant_ttl_seconds,
                session: session.clone(),
            })
            .map_err(|e| match e {
                DecideError::NotFound => ServiceError::NotFound(format!("no review {id}")),
                DecideError::OwnRequest => ServiceError::Forbidden(e.to_string()),
                DecideError::NotPending(_)
                | DecideError::AlreadyApproved
                | DecideError::NoSession
                | DecideError::SessionTwoPerson
                | DecideError::SessionWithoutReasons => ServiceError::Conflict(e.to_string()),
                DecideError::Store(e) => e.into(),
            })?;
        if let (Some(ask), Decided::Approved(review)) = (&session, &decided) {
            log_event(&format!(
                "session grant {} for {} (session {}, reasons {}) by {} for {}",
                ask.grant_id,
                review.subject,
                review.context.session_id.as_deref().unwrap_or("-"),
                join_or_dash(&review.context.reasons),
                approver.subject,
                format_duration(ask.seconds)
            ));
        }
        let event = match &decided {
            Decided::Approved(r) => format!(
                "review approved {} for {} by {} (grant: {} use(s), {})",
                r.id,
                r.subject,
                approver.subject,
                r.grant_uses,
                format_duration(self.rules.grant_ttl_seconds)
            ),
            Decided::Denied(r) => format!("review denied {} for {} by {}", r.id, r.subject, approver.subject),
            Decided::AwaitingSecondApprover(r) => {
                format!(
                    "review {} for {}: first approval by {}, a second approver is needed",
                    r.id, r.subject, approver.subject
                )
            }
        };
        log_event(&event);
        self.changes.send_modify(|version| *version = version.wrapping_add(1));
        Ok(decided)
    }

    /// Review `id` if `approver` may see it (they are in one of its role's approver groups).
    pub fn review_for(&self, approver: &Approver, id: &str) -> Result<Review, ServiceError> {
        let review = self.store.review(id)?.ok_or_else(|| ServiceError::NotFound(format!("no review {id}")))?;
        let role = self.rules.role(&review.role).ok_or_else(|| {
            ServiceError::Forbidden(format!("role {} no longer has approval rules in the policy", review.role))
        })?;
        if !role.may_decide(&approver.groups) {
            return Err(ServiceError::Forbidden(format!(
                "{} is not in an approver group of role {} (approvers: {})",
                approver.subject,
                review.role,
                role.approvers.join(", ")
            )));
        }
        Ok(review)
    }

    /// The reviews `approver` may decide, newest first.
    pub fn list_for(&self, approver: &Approver, listing: Listing, limit: u32) -> Result<Vec<Review>, ServiceError> {
        self.ensure_approver(approver)?;
        let reviews = self.store.list(listing, limit)?;
        Ok(reviews
            .into_iter()
            .filter(|review| self.rules.role(&review.role).is_some_and(|role| role.may_decide(&approver.groups)))
            .collect())
    }

    /// Refuses someone in no approver group at all.
    pub fn ensure_approver(&self, approver: &Approver) -> Result<(), ServiceError> {
        if self.rules.is_approver(&approver.groups) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "{} is not in any approver group of the policy (roles.<role>.approval.approvers)",
                approver.subject
            )))
        }
    }

    /// Refuses someone in no `approvals.auditors` group (reading transcripts is a permission of
    /// its own).
    pub fn ensure_auditor(&self, approver: &Approver) -> Result<(), ServiceError> {
        if self.rules.is_auditor(&approver.groups) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "{} is not in an auditor group of the policy (approvals.auditors): session transcripts are for auditors",
                approver.subject
            )))
        }
    }

    /// Whether `review` still counts as pending now (the sweep may not have run yet).
    pub fn is_open(review: &Review, now: i64) -> bool {
        review.status == Status::Pending && review.expires_at > now
    }
}

fn new_review(request: &HoldRequest, id: String, two_person: bool, grant_uses: u32, now: i64, ttl: i64) -> NewReview {
    let job = request
        .caller
        .job
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    NewReview {
        id,
        fingerprint: request.fingerprint.clone(),
        subject: request.caller.subject.clone(),
        role: request.role.clone(),
        two_person,
        grant_uses,
        context: ReviewContext {
            request_id: request.request_id.clone(),
            issuer: request.caller.issuer.clone(),
            groups: request.caller.groups.clone(),
            job,
            reasons: request.reasons.clone(),
            model: request.model.clone(),
            tools: request.tools.clone(),
            max_tokens: request.max_tokens,
            body_bytes: request.body_bytes,
            mcp_servers: request.mcp_servers,
            mcp_server_urls: request.mcp_server_urls.clone(),
            messages: request.messages,
            excerpt: request.excerpt.clone(),
            system_excerpt: request.system_excerpt.clone(),
            prefill_excerpt: request.prefill_excerpt.clone(),
            session_id: request.session_id.clone(),
            agent: request.agent.clone(),
            tool_call: request.tool_call.clone(),
        },
        created_at: now,
        expires_at: now.saturating_add(ttl),
    }
}

/// Checks a hold request's fields; cuts the excerpt to [`MAX_EXCERPT_CHARS`].
fn validate(mut request: HoldRequest) -> Result<HoldRequest, ServiceError> {
    let bad = |m: String| Err(ServiceError::BadRequest(m));
    if request.version != 1 {
        return bad(format!("unsupported hold protocol version {} (this service speaks 1)", request.version));
    }
    let fp = &request.fingerprint;
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return bad("fingerprint must be 64 lower-case hex characters".to_string());
    }
    for (name, value) in
        [("caller.subject", &request.caller.subject), ("role", &request.role), ("request_id", &request.request_id)]
    {
        if value.trim().is_empty() {
            return bad(format!("{name} must not be empty"));
        }
    }
    let single = [
        ("caller.subject", &request.caller.subject),
        ("caller.issuer", &request.caller.issuer),
        ("role", &request.role),
        ("request_id", &request.request_id),
        ("model", &request.model),
    ];
    for (name, value) in single {
        if value.chars().count() > MAX_FIELD_CHARS {
            return bad(format!("{name} is longer than {MAX_FIELD_CHARS} characters"));
        }
    }
    let lists = [
        ("reasons", &request.reasons),
        ("tools", &request.tools),
        ("caller.groups", &request.caller.groups),
        ("mcp_server_urls", &request.mcp_server_urls),
    ];
    for (name, list) in lists {
        if list.len() > MAX_LIST_ITEMS || list.iter().any(|item| item.chars().count() > MAX_FIELD_CHARS) {
            return bad(format!("{name}: at most {MAX_LIST_ITEMS} entries of at most {MAX_FIELD_CHARS} characters"));
        }
    }
    if request.caller.job.len() > MAX_LIST_ITEMS {
        return bad(format!("caller.job: at most {MAX_LIST_ITEMS} claims"));
    }
    validate_agent_fields(&mut request)?;
    for excerpt in [&mut request.excerpt, &mut request.system_excerpt, &mut request.prefill_excerpt] {
        if let Some((cut, _)) = excerpt.char_indices().nth(MAX_EXCERPT_CHARS) {
            excerpt.truncate(cut);
            excerpt.push('…');
        }
    }
    Ok(request)
}

/// Checks the session id, the agent ids and the tool call; a tool-call hold without reasons gets
/// its rule id as its reason (what a session grant's scope is made of).
fn validate_agent_fields(request: &mut HoldRequest) -> Result<(), ServiceError> {
    let bad = |m: String| Err(ServiceError::BadRequest(m));
    let label_ok = |text: &str| {
        !text.is_empty() && text.chars().count() <= MAX_SESSION_ID_CHARS && text.chars().all(|c| c.is_ascii_graphic())
    };
    let labels = [
        ("session_id", request.session_id.as_deref()),
        ("agent.id", request.agent.as_ref().and_then(|a| a.id.as_deref())),
        ("agent.parent", request.agent.as_ref().and_then(|a| a.parent.as_deref())),
    ];
    for (name, value) in labels {
        if value.is_some_and(|v| !label_ok(v)) {
            return bad(format!("{name} must be 1 to {MAX_SESSION_ID_CHARS} printable ASCII characters"));
        }
    }
    let Some(call) = &request.tool_call else { return Ok(()) };
    if !TOOL_CALL_KINDS.contains(&call.kind.as_str()) {
        return bad(format!("tool_call.kind must be one of {}", TOOL_CALL_KINDS.join(", ")));
    }
    let fields = [
        ("tool_call.id", call.id.as_str()),
        ("tool_call.name", call.name.as_str()),
        ("tool_call.rule", call.rule.as_str()),
        ("tool_call.server_name", call.server_name.as_deref().unwrap_or("")),
    ];
    for (name, value) in fields {
        if value.chars().count() > MAX_FIELD_CHARS {
            return bad(format!("{name} is longer than {MAX_FIELD_CHARS} characters"));
        }
    }
    if call.name.trim().is_empty() || call.rule.trim().is_empty() {
        return bad("tool_call.name and tool_call.rule must not be empty".to_string());
    }
    if call.reason.chars().count() > MAX_COMMENT_CHARS {
        return bad(format!("tool_call.reason is longer than {MAX_COMMENT_CHARS} characters"));
    }
    if call.input.chars().count() > MAX_TOOL_INPUT_CHARS {
        return bad(format!(
            "tool_call.input is longer than {MAX_TOOL_INPUT_CHARS} characters: an approver could not see all of it"
        ));
    }
    if request.reasons.is_empty() {
        request.reasons = vec![call.rule.clone()];
    }
    Ok(())
}

/// `items` joined with `, `, or `-`.
pub fn join_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

/// `text`, or `-` when empty.
pub fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

// Session grants (docs/approvals.md, "Session grants"): [`super::grants`] keeps them.
impl Service {
    /// The live grant that covers `request` now, or `None`: without a session id, for a revoked
    /// caller (kill switch), or when no grant's scope covers it.
    pub fn grant_for_hold(&self, request: &HoldRequest, now: i64) -> Result<Option<SessionGrant>, ServiceError> {
        let Some(session_id) = request.session_id.as_deref() else { return Ok(None) };
        let caller = &request.caller;
        let scope = GrantScope {
            session_id,
            issuer: &caller.issuer,
            subject: &caller.subject,
            role: &request.role,
            reasons: &request.reasons,
        };
        if let Some(revocations) = &self.revocations {
            let job = caller
                .job
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect();
            if let Some(revocation) = revocations.covers(&caller.subject, &caller.groups, &job, None, now)? {
                log_event(&format!(
                    "hold {} by {}: no session grant answers a revoked caller ({})",
                    request.request_id, caller.subject, revocation.reason
                ));
                return Ok(None);
            }
        }
        Ok(self.store.session_grant_covering(&scope, now)?)
    }

    /// The grants `approver` may see (those of roles they decide), live ones only or all.
    pub fn grants_for(&self, approver: &Approver, live_only: bool) -> Result<Vec<SessionGrant>, ServiceError> {
        self.ensure_approver(approver)?;
        let grants = self.store.session_grants(live_only.then(unix_now))?;
        Ok(grants.into_iter().filter(|grant| self.may_see(approver, grant)).collect())
    }

    fn may_see(&self, approver: &Approver, grant: &SessionGrant) -> bool {
        self.rules.role(&grant.role).is_some_and(|role| role.may_decide(&approver.groups))
    }

    /// Ends grant `id` at once, if `approver` decides its role.
    pub fn end_grant(&self, approver: &Approver, id: &str) -> Result<SessionGrant, ServiceError> {
        let not_found = || ServiceError::NotFound(format!("no session grant {id}"));
        let grant = self.store.session_grant(id)?.ok_or_else(not_found)?;
        if !self.may_see(approver, &grant) {
            return Err(ServiceError::Forbidden(format!(
                "{} is not in an approver group of role {}",
                approver.subject, grant.role
            )));
        }
        match self.store.end_session_grant(id, &approver.subject, unix_now())? {
            Ok(ended) => {
                log_event(&format!(
                    "session grant ended {} (session {}, {}) by {}",
                    ended.id, ended.session_id, ended.subject, approver.subject
                ));
                Ok(ended)
            }
            Err(EndRefused::NotFound) => Err(not_found()),
            Err(EndRefused::NotLive) => Err(ServiceError::Conflict(format!("session grant {id} has already ended"))),
        }
    }

    /// The longest session grant, in whole minutes (`approvals.max_session_grant`).
    pub fn max_session_minutes(&self) -> i64 {
        self.rules.max_session_grant_seconds / 60
    }
}


#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::service::auth::tests::{verifier_with, TestIssuer};
    use crate::core::policy::Policy;
    use crate::core::approval::verdict::{verify, Decision as Verdict};

    pub(crate) const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_service_reads_every_field_of_the_hold_the_filter_writes() {
        use crate::core::approval::{CallerView, HoldRequest as FilterHold};
        let groups = vec!["eng".to_string()];
        let tools = vec!["Bash".to_string(), "web_search_20250305".to_string()];
        let urls = vec!["https://mcp.example/a".to_string()];
        let sent = FilterHold {
            version: 1,
            request_id: "req_warden_9",
            fingerprint: FP,
            caller: CallerView {
                subject: "alice",
                issuer: "warden-demo",
                groups: &groups,
                job: [("repository", "org/app"), ("run_id", "7")].into_iter().collect(),
            },
            role: "developer",
            reasons: &["opus_model", "after_hours"],
            model: "claude-opus-4-1",
            tools: &tools,
            max_tokens: Some(32_000),
            body_bytes: 57_039,
            mcp_servers: true,
            mcp_server_urls: &urls,
            messages: 7,
            excerpt: "deploy with [REDACTED:github-pat:1a2b3c]",
            system_excerpt: "You are Claude Code",
            prefill_excerpt: "Sure:",
            hold_seconds: 120,
            session_id: None,
            agent: None,
            tool_call: None,
        };
        let got: HoldRequest = serde_json::from_str(&serde_json::to_string(&sent).unwrap()).unwrap();
        assert_eq!((got.version, got.request_id.as_str(), got.fingerprint.as_str()), (1, "req_warden_9", FP));
        assert_eq!((got.caller.subject.as_str(), got.caller.issuer.as_str()), ("alice", "warden-demo"));
        assert_eq!(got.caller.groups, groups);
        assert_eq!(got.caller.job.get("run_id"), Some(&Value::from("7")));
        assert_eq!(
            (got.role.as_str(), got.reasons.clone()),
            ("developer", vec!["opus_model".into(), "after_hours".into()])
        );
        assert_eq!((got.model.as_str(), &got.tools, got.max_tokens), ("claude-opus-4-1", &tools, Some(32_000)));
        assert_eq!((got.body_bytes, got.mcp_servers, got.hold_seconds), (57_039, true, 120));
        assert_eq!(got.excerpt, sent.excerpt);
        assert_eq!((got.system_excerpt.as_str(), got.prefill_excerpt.as_str()), ("You are Claude Code", "Sure:"));
        assert_eq!((&got.mcp_server_urls, got.messages), (&urls, 7));
    }

    pub(crate) fn hold_request(subject: &str, hold_seconds: u64) -> HoldRequest {
        serde_json::from_value(serde_json::json!({
            "version": 1, "request_id": "req_1", "fingerprint": FP,
            "caller": {"subject": subject, "issuer": "warden-demo", "groups": ["eng"], "job": {"repository": "org/repo"}},
            "role": "developer", "reasons": ["opus_model"], "model": "claude-opus-4-1", "tools": ["Bash"],
            "max_tokens": 1024, "body_bytes": 100, "mcp_servers": false, "excerpt": "deploy to prod",
            "hold_seconds": hold_seconds, "some_future_field": true
        }))
        .unwrap()
    }

    /// A service over an in-memory store, its verdict key, and the identity provider its
    /// approvers' tokens come from (`issuer.token(…, "warden-demo", "warden-approvals", ttl)`).
    pub(crate) struct Fixture {
        pub service: Arc<Service>,
        public_key: [u8; 32],
        pub issuer: TestIssuer,
        dir: std::path::PathBuf,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(crate) fn fixture(name: &str, two_person: bool) -> Fixture {
        fixture_with(name, two_person, |_| (Store::open_in_memory().unwrap(), None))
    }

    /// [`fixture`] over the store (and revocations) `open` makes in the fixture's directory.
    pub(crate) fn fixture_with(
        name: &str,
        two_person: bool,
        open: impl FnOnce(&std::path::Path) -> (Store, Option<Arc<RevocationStore>>),
    ) -> Fixture {
        let dir = std::env::temp_dir().join(format!("warden-service-{name}-{}", std::process::id()));
        let issuer = TestIssuer::new("k");
        let verifier = verifier_with(&issuer, &dir);
        let text = crate::service::approvals::rules::tests::POLICY
            .replace("two_person: true", &format!("two_person: {two_person}"))
            .replace("grant_uses: 3", "grant_uses: 1");
        let rules = Rules::from_policy(&Policy::parse(&text).unwrap()).unwrap();
        let signer = VerdictSigner::generate().unwrap();
        let public_key = signer.public_key();
        let _ = std::fs::create_dir_all(&dir);
        let (store, revocations) = open(&dir);
        let mut service = Service::new(ServiceParts {
            store,
            rules,
            verifier,
            gateway_token: GatewayToken::new("gateway-token-for-tests").unwrap(),
            signer,
            public_url: "http://127.0.0.1:8787/".into(),
            webhook: None,
        });
        service.revocations = revocations;
        Fixture { service: Arc::new(service), public_key, issuer, dir }
    }

    fn approver(subject: &str, groups: &[&str]) -> Approver {
        Approver {
            subject: subject.into(),
            issuer: "warden-demo".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            expires_at: i64::MAX,
        }
    }

    fn read(f: &Fixture, token: &str, subject: &str) -> Verdict {
        verify(token, &f.public_key, FP, ("warden-demo", subject), unix_now() as f64).unwrap()
    }

    fn pending_id(service: &Service) -> String {
        service.store.list(Listing::Pending, 10).unwrap().first().map(|r| r.id.clone()).unwrap()
    }

    #[tokio::test]
    async fn a_hold_that_times_out_answers_pending_with_the_review_url() {
        let f = fixture("pending", false);
        let token = f.service.hold(hold_request("alice", 0)).await.unwrap();
        match read(&f, &token, "alice") {
            Verdict::Pending { review, url } => {
                assert!(review.starts_with("rev_"));
                assert_eq!(url, format!("http://127.0.0.1:8787/reviews/{review}"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_waiting_hold_is_answered_when_an_approver_approves() {
        let f = fixture("approve", false);
        let service = Arc::clone(&f.service);
        let held = tokio::spawn(async move { service.hold(hold_request("alice", 30)).await });
        let id = loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Some(review) = f.service.store.list(Listing::Pending, 1).unwrap().first() {
                break review.id.clone();
            }
        };
        f.service.decide(&approver("bob", &["leads"]), &id, Choice::Approve, "fine").unwrap();
        let token = held.await.unwrap().unwrap();
        assert_eq!(read(&f, &token, "alice"), Verdict::Approved { review: id.clone(), reviewer: "bob".into() });
        assert_eq!(f.service.store.verdicts(&id).unwrap().len(), 1, "the approved verdict is kept");
        // Single use: the retry after the approval opens a new review.
        let retry = f.service.hold(hold_request("alice", 0)).await.unwrap();
        let retried = read(&f, &retry, "alice");
        assert!(matches!(&retried, Verdict::Pending { review, .. } if *review != id), "{retried:?}");
    }

    #[tokio::test]
    async fn a_retry_after_approval_passes_and_a_retry_after_denial_is_denied() {
        let f = fixture("retry", false);
        f.service.hold(hold_request("alice", 0)).await.unwrap();
        let id = pending_id(&f.service);
        f.service.decide(&approver("bob", &["leads"]), &id, Choice::Approve, "").unwrap();
        let token = f.service.hold(hold_request("alice", 0)).await.unwrap();
        assert!(matches!(read(&f, &token, "alice"), Verdict::Approved { .. }));

        f.service.hold(hold_request("carol", 0)).await.unwrap();
        let id = pending_id(&f.service);
        f.service.decide(&approver("bob", &["leads"]), &id, Choice::Deny, "not on prod").unwrap();
        let token = f.service.hold(hold_request("carol", 5)).await.unwrap();
        assert_eq!(
            read(&f, &token, "carol"),
            Verdict::Denied { review: id, reviewer: "bob".into(), comment: "not on prod".into() }
        );
    }

    #[tokio::test]
    async fn two_person_verdicts_name_both_approvers() {
        let f = fixture("two", true);
        f.service.hold(hold_request("alice", 0)).await.unwrap();
        let id = pending_id(&f.service);
        assert!(matches!(
            f.service.decide(&approver("bob", &["leads"]), &id, Choice::Approve, "ok").unwrap(),
            Decided::AwaitingSecondApprover(_)
        ));
        assert!(matches!(
            f.service.decide(&approver("carol", &["leads"]), &id, Choice::Approve, "agreed").unwrap(),
            Decided::Approved(_)
        ));
        let token = f.service.hold(hold_request("alice", 0)).await.unwrap();
        assert_eq!(read(&f, &token, "alice"), Verdict::Approved { review: id, reviewer: "bob,carol".into() });
    }

    #[tokio::test]
    async fn approver_rules_are_enforced_with_clear_errors() {
        let f = fixture("rules", false);
        f.service.hold(hold_request("alice", 0)).await.unwrap();
        let id = pending_id(&f.service);
        let outsider = f.service.decide(&approver("eve", &["eng"]), &id, Choice::Approve, "").unwrap_err();
        assert!(
            matches!(&outsider, ServiceError::Forbidden(m) if m.contains("not in an approver group")),
            "{outsider:?}"
        );
        let own = f.service.decide(&approver("alice", &["leads"]), &id, Choice::Approve, "").unwrap_err();
        assert!(matches!(&own, ServiceError::Forbidden(m) if m.contains("own request")), "{own:?}");
        let reasonless = f.service.decide(&approver("bob", &["leads"]), &id, Choice::Deny, "  ").unwrap_err();
        assert!(matches!(&reasonless, ServiceError::BadRequest(m) if m.contains("reason")), "{reasonless:?}");
        let missing = f.service.decide(&approver("bob", &["leads"]), "rev_none", Choice::Approve, "").unwrap_err();
        assert!(matches!(missing, ServiceError::NotFound(_)));
        f.service.decide(&approver("bob", &["leads"]), &id, Choice::Approve, "").unwrap();
        let again = f.service.decide(&approver("dave", &["leads"]), &id, Choice::Deny, "late").unwrap_err();
        assert!(matches!(again, ServiceError::Conflict(_)));
        assert!(matches!(
            f.service.list_for(&approver("eve", &["eng"]), Listing::All, 10),
            Err(ServiceError::Forbidden(_))
        ));
    }

    const OTHER_FP: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn in_session(subject: &str, session: Option<&str>, fingerprint: &str, reasons: &[&str]) -> HoldRequest {
        let mut request = hold_request(subject, 0);
        request.session_id = session.map(str::to_string);
        request.fingerprint = fingerprint.to_string();
        request.reasons = reasons.iter().map(|r| r.to_string()).collect();
        request
    }

    /// The decision and grant a verdict for `fingerprint` from `subject` carries.
    fn read_with_grant(
        f: &Fixture,
        token: &str,
        fingerprint: &str,
        subject: &str,
    ) -> (Verdict, Option<crate::core::approval::verdict::Grant>) {
        crate::core::approval::verdict::verify_with_grant(
            token,
            &f.public_key,
            fingerprint,
            ("warden-demo", subject),
            unix_now() as f64,
        )
        .unwrap()
    }

    /// A review of alice's opus request in session `s-1`, approved by bob for the session.
    async fn granted(f: &Fixture, minutes: i64) -> (String, String) {
        f.service.hold(in_session("alice", Some("s-1"), FP, &["opus_model"])).await.unwrap();
        let id = pending_id(&f.service);
        let decided = f.service.decide_for_session(&approver("bob", &["leads"]), &id, "loop of pushes", minutes);
        assert!(matches!(decided, Ok(Decided::Approved(_))), "{decided:?}");
        let grant = f.service.store.session_grant_of_review(&id).unwrap().unwrap();
        (id, grant.id)
    }

    #[tokio::test]
    async fn a_session_grant_answers_later_holds_of_the_session_at_once_with_their_own_verdict() {
        let f = fixture("session-grant", false);
        let (review, grant_id) = granted(&f, 30).await;
        // The retry of the approved request: approved, naming the grant it came with.
        let token = f.service.hold(in_session("alice", Some("s-1"), FP, &["opus_model"])).await.unwrap();
        let (decision, grant) = read_with_grant(&f, &token, FP, "alice");
        assert_eq!(decision, Verdict::Approved { review: review.clone(), reviewer: "bob".into() });
        assert_eq!(grant.as_ref().map(|g| g.id.as_str()), Some(grant_id.as_str()));
        // Another request of the session: no review, a verdict for its own fingerprint.
        let token = f.service.hold(in_session("alice", Some("s-1"), OTHER_FP, &["opus_model"])).await.unwrap();
        let (decision, grant) = read_with_grant(&f, &token, OTHER_FP, "alice");
        assert_eq!(decision, Verdict::Approved { review: review.clone(), reviewer: "bob".into() });
        let grant = grant.unwrap();
        assert_eq!((grant.id, grant.session_id, grant.reasons), (grant_id, "s-1".into(), vec!["opus_model".into()]));
        assert!(grant.expires_at >= unix_now() as u64 + 29 * 60);
        assert!(
            crate::core::approval::verdict::verify(&token, &f.public_key, FP, ("warden-demo", "alice"), unix_now() as f64)
                .is_err(),
            "the verdict is bound to the hold it answers"
        );
        assert!(f.service.store.list(Listing::Pending, 10).unwrap().is_empty(), "no review was opened");
        assert_eq!(f.service.store.verdicts(&review).unwrap().len(), 2, "each answer is kept as evidence");
    }

    #[tokio::test]
    async fn a_session_grant_does_not_cover_another_caller_session_or_reason() {
        let f = fixture("session-scope", false);
        granted(&f, 30).await;
        let outside = [
            in_session("mallory", Some("s-1"), OTHER_FP, &["opus_model"]),
            in_session("alice", Some("s-2"), OTHER_FP, &["opus_model"]),
            in_session("alice", None, OTHER_FP, &["opus_model"]),
            in_session("alice", Some("s-1"), OTHER_FP, &["opus_model", "after_hours"]),
        ];
        for request in outside {
            let who = request.caller.subject.clone();
            let token = f.service.hold(request).await.unwrap();
            let (decision, grant) = read_with_grant(&f, &token, OTHER_FP, &who);
            assert!(matches!(decision, Verdict::Pending { .. }), "{decision:?}");
            assert_eq!(grant, None);
        }
        // The same subject from another issuer is another caller.
        let mut spoof = in_session("alice", Some("s-1"), OTHER_FP, &["opus_model"]);
        spoof.caller.issuer = "another-idp".into();
        let token = f.service.hold(spoof).await.unwrap();
        let claims =
            crate::core::approval::verdict::verify(&token, &f.public_key, OTHER_FP, ("another-idp", "alice"), unix_now() as f64);
        assert!(matches!(claims, Ok(Verdict::Pending { .. })), "{claims:?}");
    }

    #[tokio::test]
    async fn an_ended_grant_stops_covering_at_once_and_cannot_end_twice() {
        let f = fixture("session-end", false);
        let (_, grant_id) = granted(&f, 30).await;
        let outsider = f.service.end_grant(&approver("eve", &["eng"]), &grant_id).unwrap_err();
        assert!(matches!(outsider, ServiceError::Forbidden(_)), "{outsider:?}");
        let ended = f.service.end_grant(&approver("carol", &["leads"]), &grant_id).unwrap();
        assert_eq!(ended.ended.map(|(who, _)| who).as_deref(), Some("carol"));
        let token = f.service.hold(in_session("alice", Some("s-1"), OTHER_FP, &["opus_model"])).await.unwrap();
        assert!(matches!(read_with_grant(&f, &token, OTHER_FP, "alice").0, Verdict::Pending { .. }));
        let again = f.service.end_grant(&approver("carol", &["leads"]), &grant_id).unwrap_err();
        assert!(matches!(again, ServiceError::Conflict(_)), "{again:?}");
        assert!(f.service.grants_for(&approver("carol", &["leads"]), true).unwrap().is_empty());
        assert_eq!(f.service.grants_for(&approver("carol", &["leads"]), false).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_expired_grant_covers_nothing() {
        let f = fixture("session-expiry", false);
        let (_, grant_id) = granted(&f, 1).await;
        let scope = crate::service::approvals::grants::GrantScope {
            session_id: "s-1",
            issuer: "warden-demo",
            subject: "alice",
            role: "developer",
            reasons: &["opus_model".to_string()],
        };
        let now = unix_now();
        assert_eq!(f.service.store.session_grant_covering(&scope, now).unwrap().map(|g| g.id), Some(grant_id));
        assert_eq!(f.service.store.session_grant_covering(&scope, now + 61).unwrap(), None);
    }

    #[tokio::test]
    async fn session_grants_need_a_session_one_approver_and_a_length_within_the_policy() {
        let f = fixture("session-refusals", false);
        f.service.hold(in_session("alice", None, FP, &["opus_model"])).await.unwrap();
        let id = pending_id(&f.service);
        let bob = approver("bob", &["leads"]);
        let none = f.service.decide_for_session(&bob, &id, "", 30).unwrap_err();
        assert!(matches!(&none, ServiceError::Conflict(m) if m.contains("names no agent session")), "{none:?}");
        for minutes in [0, -5, 61, i64::MAX] {
            let bad = f.service.decide_for_session(&bob, &id, "", minutes).unwrap_err();
            assert!(matches!(&bad, ServiceError::BadRequest(m) if m.contains("between 1 and 60")), "{bad:?}");
        }
        assert_eq!(f.service.store.review(&id).unwrap().unwrap().status, Status::Pending, "nothing was recorded");

        let f = fixture("session-two-person", true);
        f.service.hold(in_session("alice", Some("s-1"), FP, &["opus_model"])).await.unwrap();
        let id = pending_id(&f.service);
        let two = f.service.decide_for_session(&bob, &id, "", 30).unwrap_err();
        assert!(matches!(&two, ServiceError::Conflict(m) if m.contains("two-person")), "{two:?}");
        assert!(f.service.store.review(&id).unwrap().unwrap().votes.is_empty());
    }

    #[tokio::test]
    async fn a_revoked_caller_gets_no_answer_from_a_session_grant() {
        let f = fixture_with("session-revoked", false, |dir| {
            let path = dir.join("warden.db");
            let store = Store::open(&path).unwrap();
            (store, Some(Arc::new(RevocationStore::open(&path).unwrap())))
        });
        granted(&f, 30).await;
        let revocations = f.service.revocations.clone().unwrap();
        revocations
            .revoke(
                &crate::core::revocation::Target::Subject("alice".into()),
                "laptop stolen",
                None,
                "sec",
                unix_now(),
            )
            .unwrap();
        let token = f.service.hold(in_session("alice", Some("s-1"), OTHER_FP, &["opus_model"])).await.unwrap();
        assert!(matches!(read_with_grant(&f, &token, OTHER_FP, "alice").0, Verdict::Pending { .. }));
    }

    #[tokio::test]
    async fn two_holds_at_once_are_both_answered_from_the_grant() {
        let f = fixture("session-race", false);
        granted(&f, 30).await;
        let (a, b) = tokio::join!(
            f.service.hold(in_session("alice", Some("s-1"), OTHER_FP, &["opus_model"])),
            f.service.hold(in_session("alice", Some("s-1"), OTHER_FP, &["opus_model"]))
        );
        for token in [a.unwrap(), b.unwrap()] {
            assert!(read_with_grant(&f, &token, OTHER_FP, "alice").1.is_some());
        }
        let grants = f.service.grants_for(&approver("bob", &["leads"]), true).unwrap();
        assert_eq!(grants[0].holds_covered, 2, "each hold is counted once");
    }

    #[tokio::test]
    async fn tool_call_holds_are_validated_and_take_their_rule_as_reason() {
        let f = fixture("tool-call", false);
        let call = |input: String| {
            let mut request = in_session("alice", Some("s-1"), FP, &[]);
            request.tool_call = Some(ToolCallContext {
                id: "toolu_1".into(),
                kind: "tool_use".into(),
                name: "Bash".into(),
                server_name: None,
                input,
                rule: "git-push-force".into(),
                reason: "force pushes rewrite history".into(),
            });
            request
        };
        f.service.hold(call(r#"{"command":"git push --force"}"#.into())).await.unwrap();
        let review = f.service.store.list(Listing::Pending, 1).unwrap().remove(0);
        assert_eq!(review.context.reasons, vec!["git-push-force".to_string()]);
        assert_eq!(review.context.tool_call.unwrap().input, r#"{"command":"git push --force"}"#);
        let huge = f.service.hold(call("x".repeat(MAX_TOOL_INPUT_CHARS + 1))).await.unwrap_err();
        assert!(matches!(&huge, ServiceError::BadRequest(m) if m.contains("tool_call.input")), "{huge:?}");
        let mut odd = call("{}".into());
        odd.tool_call.as_mut().unwrap().kind = "text".into();
        assert!(matches!(f.service.hold(odd).await, Err(ServiceError::BadRequest(m)) if m.contains("kind")));
        for session in ["", "has space", "é", &"s".repeat(129)] {
            let request = in_session("alice", Some(session), FP, &["opus_model"]);
            let refused = f.service.hold(request).await.unwrap_err();
            assert!(matches!(&refused, ServiceError::BadRequest(m) if m.contains("session_id")), "{session:?}");
        }
    }

    #[tokio::test]
    async fn malformed_holds_are_refused() {
        let f = fixture("malformed", false);
        let mut request = hold_request("alice", 0);
        request.fingerprint = "short".into();
        assert!(matches!(f.service.hold(request).await, Err(ServiceError::BadRequest(m)) if m.contains("fingerprint")));
        let mut request = hold_request("alice", 0);
        request.version = 2;
        assert!(matches!(f.service.hold(request).await, Err(ServiceError::BadRequest(m)) if m.contains("version")));
        let mut request = hold_request("alice", 0);
        request.role = "analyst".into();
        assert!(
            matches!(f.service.hold(request).await, Err(ServiceError::BadRequest(m)) if m.contains("no approval rules"))
        );
        let mut request = hold_request("alice", 0);
        request.excerpt = "x".repeat(5000);
        f.service.hold(request).await.unwrap();
        let review = f.service.store.list(Listing::Pending, 1).unwrap().remove(0);
        assert_eq!(review.context.excerpt.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert_eq!(review.context.job["repository"], "org/repo");
    }
}
