//! Budgets: usage accounting, the price table, and the reservation checked before admission.
//!
//! A request that may cost money (`POST /v1/messages`) reserves an estimate before it goes
//! upstream — input tokens from the body's size ([`Settings::input_bytes_per_token`], a
//! conservative ratio), output tokens from `max_tokens` (or [`Settings::expected_output_tokens`]),
//! web searches from [`Settings::web_searches_reserved`] when a web search tool is declared —
//! priced at the model's dearest input rate, its output rate and its search rate ([`pricing`]).
//! [`admit`] reserves that amount in the ledger entry of every budget that applies to the caller
//! (per role, subject, group or job), all or nothing: if one budget cannot fit the reservation,
//! those already made are withdrawn and the request is refused ([`Refusal`]) — or, for budgets
//! with `on_exhausted: clamp`, `max_tokens` is first lowered to what every such budget still
//! allows. When the exchange ends, [`settle`] replaces each reservation by the real cost, read
//! from the answer's usage ([`usage`]).
//!
//! Guarantee (one gateway instance, any number of workers): each ledger entry keeps
//! `spent + reserved ≤ limit` at every admission (the check and the reservation are one
//! compare-and-swap), so concurrent admissions cannot overshoot; settling replaces a reservation
//! by the actual amount, so spend exceeds the limit by at most the sum, over exchanges in flight,
//! of what they use beyond their reservation (docs/budgets.md states the terms).
//!
//! Many gateway instances share a budget through leases from `warden serve` ([`lease`]): each
//! entry's windowed limits are lowered to the instance's grant ([`lease::effective_limits`])
//! inside the same compare-and-swap, so the guarantee above holds per instance, and the
//! service's rule bounds the sum (the bound is in [`lease`]'s header).

pub mod grant;
pub mod lease;
pub mod ledger;
pub mod pricing;
pub mod renewal;
pub mod usage;
pub mod window;

use ledger::{Amount, Entry, LedgerError, Store};
use pricing::{format_money, Prices};
use window::{bounds, iso, Period, Zone};

/// Whom a budget is counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everyone in the role together.
    Role,
    /// Each member of the role (token subject) separately.
    Subject,
    /// Each group that grants the role (a binding's group the caller has) separately.
    Group,
    /// Each job (job claims, else `x-warden-job-id`) separately; requests without a job are not
    /// counted by a job budget.
    Job,
}

impl Scope {
    /// The scope's name in the policy and in ledger keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Role => "role",
            Self::Subject => "subject",
            Self::Group => "group",
            Self::Job => "job",
        }
    }
}

/// What happens when a reservation does not fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnExhausted {
    /// Refuse the request (429).
    #[default]
    Refuse,
    /// Lower `max_tokens` to what the budget still allows; refuse below `clamp_min_tokens`.
    Clamp,
}

/// The limits of a budget (from the policy today; from a lease later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Tokens per window.
    pub tokens: Option<u64>,
    /// Cost per window, in nanos.
    pub cost_nanos: Option<u64>,
    /// Requests per window.
    pub requests: Option<u64>,
    /// Exchanges in flight at once.
    pub concurrent: Option<u64>,
}

/// A budget, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Name used in messages, metrics and ledger keys.
    pub name: String,
    /// Whom it counts for.
    pub per: Scope,
    /// The window `tokens`, `cost` and `requests` count in.
    pub period: Period,
    /// The zone windows are cut in.
    pub zone: Zone,
    /// The limits.
    pub limits: Limits,
    /// Refuse or clamp.
    pub on_exhausted: OnExhausted,
    /// Smallest `max_tokens` a clamp may leave.
    pub clamp_min_tokens: u64,
}

/// How estimates are made and the ledger bounded (the policy's `accounting` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Request body bytes per estimated input token (smaller is more conservative).
    pub input_bytes_per_token: u64,
    /// Output tokens reserved when below `max_tokens` (`None`: reserve `max_tokens`).
    pub expected_output_tokens: Option<u64>,
    /// Web searches reserved for a request that declares a web search tool.
    pub web_searches_reserved: u64,
    /// Most ledger keys.
    pub max_keys: u64,
    /// Ledger entries a subject's jobs share, per job budget.
    pub jobs_per_subject: u64,
    /// With leases from `warden serve` (`accounting.leases`): the share of each windowed limit,
    /// in percent, in one slice ([`lease`]). `None`: this instance enforces the limits alone.
    pub lease_slice_percent: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            input_bytes_per_token: 2,
            expected_output_tokens: None,
            web_searches_reserved: 10,
            max_keys: 100_000,
            jobs_per_subject: 64,
            lease_slice_percent: None,
        }
    }
}

/// What a request asks for, before pricing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ask {
    /// Estimated input tokens.
    pub input_tokens: u64,
    /// Output tokens to reserve.
    pub output_tokens: u64,
    /// Web searches to reserve.
    pub web_searches: u64,
}

impl Ask {
    /// The estimate for a body of `body_bytes` with `max_tokens`, declaring web search or not.
    pub fn estimate(settings: &Settings, body_bytes: u64, max_tokens: u64, web_search: bool) -> Ask {
        Ask {
            input_tokens: body_bytes.div_ceil(settings.input_bytes_per_token.max(1)),
            output_tokens: settings.expected_output_tokens.map_or(max_tokens, |expected| expected.min(max_tokens)),
            web_searches: if web_search { settings.web_searches_reserved } else { 0 },
        }
    }

    /// The amount reserved for this ask at `prices` (`None`: no price table, cost 0).
    pub fn amount(&self, prices: Option<&Prices>) -> Amount {
        let nanos = prices.map_or(0, |p| {
            self.input_tokens
                .saturating_mul(p.input_ceiling())
                .saturating_add(self.output_tokens.saturating_mul(p.output))
                .saturating_add(self.web_searches.saturating_mul(p.web_search))
        });
        Amount { tokens: self.input_tokens.saturating_add(self.output_tokens), nanos }
    }
}

/// One budget the request counts against: the budget and its ledger key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicable<'a> {
    /// The budget.
    pub budget: &'a Budget,
    /// Its ledger key for this caller.
    pub key: String,
    /// Whom it counts for, in words (`role analyst`, `subject alice`).
    pub label: String,
}

/// A reservation made in one ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The budget's name.
    pub budget: String,
    /// Ledger key.
    pub key: String,
    /// What was reserved.
    pub amount: Amount,
    /// The window the request was counted in.
    pub window_start: i64,
    /// The budget's window (to roll the entry when settling).
    pub period: Period,
    /// The budget's zone.
    pub zone: Zone,
}

/// An admitted request's reservations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admitted {
    /// One per applicable budget.
    pub reservations: Vec<Reservation>,
    /// Output tokens reserved (lower than asked when clamped).
    pub output_tokens: u64,
    /// `Some(n)`: `max_tokens` must be lowered to `n`.
    pub clamp_to: Option<u64>,
    /// How many output tokens a streamed answer may produce before the tightest budget runs
    /// out (`None` when no budget limits tokens or cost): what the stream cut is given.
    pub output_allowance: Option<OutputAllowance>,
}

/// The output a streamed answer may produce: the output it reserved plus what is still left,
/// after its reservation, in the tightest of its token and cost budgets (cost converted to
/// output tokens at the model's output price).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputAllowance {
    /// Output tokens allowed.
    pub tokens: u64,
    /// The budget that sets it (the tightest).
    pub budget: String,
}

/// What is still free in `entry` (after its reservations), in output tokens at `prices`;
/// `None` when `limits` bound neither tokens nor cost.
fn output_left(entry: &Entry, limits: &Limits, prices: Option<&Prices>) -> Option<u64> {
    let committed = entry.committed();
    let by_tokens = limits.tokens.map(|limit| limit.saturating_sub(committed.tokens));
    let by_cost = match (limits.cost_nanos, prices) {
        (Some(limit), Some(prices)) => {
            Some(limit.saturating_sub(committed.nanos).checked_div(prices.output).unwrap_or(u64::MAX))
        }
        _ => None,
    };
    match (by_tokens, by_cost) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The tightest of `rooms` (a budget's name and the output tokens still free in it), added to
/// the `reserved_output`; `None` without a room.
fn tightest_allowance<'a>(
    reserved_output: u64,
    rooms: impl IntoIterator<Item = (&'a str, u64)>,
) -> Option<OutputAllowance> {
    let (budget, left) = rooms.into_iter().min_by_key(|(_, left)| *left)?;
    Some(OutputAllowance { tokens: reserved_output.saturating_add(left), budget: budget.to_string() })
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A budget cannot fit the reservation (429).
    Exhausted {
        /// The budget's name.
        budget: String,
        /// What is left, when it resets, and what the request needed.
        message: String,
        /// Seconds until the window resets (or a concurrent slot may free).
        retry_after: u64,
        /// Whether waiting can help (false when the request alone exceeds the limit).
        retryable: bool,
        /// When the budget has room but this instance's lease does not: the ledger key and what
        /// the request needs there — what the instance's next ask to `warden serve` must cover
        /// ([`renewal::KeysInUse::want`]).
        short_of_lease: Option<(String, Amount)>,
    },
    /// The ledger could not be used (503).
    Ledger(LedgerError),
}

/// The ledger key of `budget` for whom it counts (`who` is hashed: keys are bounded in length
/// and carry nothing the client chose).
pub fn ledger_key(budget: &Budget, who: &str) -> String {
    let digest = hmac_sha256::Hash::hash(who.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{}{}.{}.{hex}", ledger::KEY_PREFIX, budget.name, budget.per.name())
}

/// Whom a request is counted for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who<'a> {
    /// The role's name.
    pub role: &'a str,
    /// The caller's issuer.
    pub issuer: &'a str,
    /// The caller's subject.
    pub subject: &'a str,
    /// The caller's groups that are bound to the role.
    pub groups: Vec<&'a str>,
    /// The job (claims, else the declared header), if any.
    pub job: Option<&'a str>,
}

/// The budgets of a role that apply to `who`, each with its ledger key: one per budget, except
/// `group` budgets (one per bound group of the caller) and `job` budgets (none without a job).
/// A subject's jobs map to at most [`Settings::jobs_per_subject`] keys per budget (jobs that
/// land on the same key share it — never more room, only less), so a client declaring job ids
/// cannot grow the ledger.
pub fn applicable<'a>(budgets: &'a [Budget], who: &Who, settings: &Settings) -> Vec<Applicable<'a>> {
    let subject = format!("{}\n{}", who.issuer, who.subject);
    let mut out = Vec::with_capacity(budgets.len());
    for budget in budgets {
        match budget.per {
            Scope::Role => {
                out.push(Applicable { budget, key: ledger_key(budget, who.role), label: format!("role {}", who.role) })
            }
            Scope::Subject => out.push(Applicable {
                budget,
                key: ledger_key(budget, &subject),
                label: format!("subject {}", who.subject),
            }),
            Scope::Group => out.extend(who.groups.iter().map(|group| Applicable {
                budget,
                key: ledger_key(budget, group),
                label: format!("group {group}"),
            })),
            Scope::Job => {
                let Some(job) = who.job else { continue };
                let digest = hmac_sha256::Hash::hash(job.as_bytes());
                let slot =
                    u64::from_le_bytes(<[u8; 8]>::try_from(digest.get(..8).unwrap_or_default()).unwrap_or_default())
                        % settings.jobs_per_subject.max(1);
                let shown: String = job.chars().take(64).collect();
                out.push(Applicable {
                    budget,
                    key: ledger_key(budget, &format!("{subject}\n{slot}")),
                    label: format!("job {shown:?}"),
                });
            }
        }
    }
    out
}

/// Why an entry cannot take the reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shortfall {
    Concurrent(u64),
    Requests(u64),
    Tokens {
        limit: u64,
        left: u64,
    },
    Cost {
        limit: u64,
        left: u64,
    },
    /// Within the budget as this instance sees it, but beyond the lease `warden serve` granted it
    /// (more is being asked for).
    Lease,
    /// The service has granted every instance all of the window's budget.
    SpentEverywhere,
}

impl Shortfall {
    /// The leased dimension it is short in ([`lease::TOKENS`] …; 0 for the others).
    fn dimension(self) -> u8 {
        match self {
            Self::Tokens { .. } => lease::TOKENS,
            Self::Cost { .. } => lease::NANOS,
            Self::Requests(_) => lease::REQUESTS,
            Self::Concurrent(_) | Self::Lease | Self::SpentEverywhere => 0,
        }
    }
}

fn check(entry: &Entry, limits: &Limits, amount: Amount) -> Result<(), Shortfall> {
    if let Some(limit) = limits.concurrent {
        if entry.in_flight.saturating_add(1) > limit {
            return Err(Shortfall::Concurrent(limit));
        }
    }
    if let Some(limit) = limits.requests {
        if entry.requests.saturating_add(1) > limit {
            return Err(Shortfall::Requests(limit));
        }
    }
    let committed = entry.committed();
    if let Some(limit) = limits.tokens {
        if committed.tokens.saturating_add(amount.tokens) > limit {
            return Err(Shortfall::Tokens { limit, left: limit.saturating_sub(committed.tokens) });
        }
    }
    if let Some(limit) = limits.cost_nanos {
        if committed.nanos.saturating_add(amount.nanos) > limit {
            return Err(Shortfall::Cost { limit, left: limit.saturating_sub(committed.nanos) });
        }
    }
    Ok(())
}

/// Output tokens `entry` still allows after the input part of `ask`, for a clamping budget
/// (`u64::MAX` when neither tokens nor cost is limited).
fn output_room(entry: &Entry, limits: &Limits, ask: &Ask, prices: Option<&Prices>) -> u64 {
    let base = Ask { output_tokens: 0, ..*ask }.amount(prices);
    let committed = entry.committed();
    let mut room = u64::MAX;
    if let Some(limit) = limits.tokens {
        room = room.min(limit.saturating_sub(committed.tokens).saturating_sub(base.tokens));
    }
    if let (Some(limit), Some(prices)) = (limits.cost_nanos, prices) {
        let left = limit.saturating_sub(committed.nanos).saturating_sub(base.nanos);
        room = room.min(left.checked_div(prices.output).unwrap_or(u64::MAX));
    }
    room
}

/// A model's prices and the currency they are in.
#[derive(Debug, Clone, Copy)]
pub struct Priced<'a> {
    /// The model's prices.
    pub prices: &'a Prices,
    /// The currency label.
    pub currency: &'a str,
}

/// Reserves `ask` (priced at `priced`; without a price table, cost is 0) in the entry of every applicable budget, all or nothing,
/// clamping the output for `clamp` budgets when `may_clamp` (see the module header). `now_ms`:
/// the clock.
pub fn admit(
    store: &dyn Store,
    budgets: &[Applicable],
    ask: Ask,
    priced: Option<Priced>,
    settings: &Settings,
    now_ms: u64,
    may_clamp: bool,
) -> Result<Admitted, Refusal> {
    let prices = priced.map(|p| p.prices);
    let currency = priced.map_or("", |p| p.currency);
    let now = (now_ms / 1000) as i64;
    let mut ask = ask;
    let mut clamp_to = None;
    let clamping = budgets.iter().filter(|a| may_clamp && a.budget.on_exhausted == OnExhausted::Clamp);
    for applicable in clamping {
        let (start, _) = bounds(applicable.budget.period, applicable.budget.zone, now);
        let entry = match store.get(&applicable.key).map_err(|e| Refusal::Ledger(e.into()))? {
            Some((bytes, _)) => Entry::decode(&bytes).ok_or(Refusal::Ledger(LedgerError::Corrupt))?.in_window(start),
            None => Entry::default(),
        };
        let limits = lease::effective_limits(&applicable.budget.limits, &entry, settings.lease_slice_percent);
        let room = output_room(&entry, &limits, &ask, prices);
        if room < ask.output_tokens && room >= applicable.budget.clamp_min_tokens {
            ask.output_tokens = room;
            clamp_to = Some(room);
        }
    }
    let amount = ask.amount(prices);
    let mut reservations: Vec<Reservation> = Vec::with_capacity(budgets.len());
    let mut rooms: Vec<(&str, u64)> = Vec::new();
    for applicable in budgets {
        let budget = applicable.budget;
        let (start, end) = bounds(budget.period, budget.zone, now);
        let outcome = ledger::update(store, &applicable.key, now_ms, settings.max_keys, |entry| {
            let entry = entry.in_window(start);
            let limits = lease::effective_limits(&budget.limits, &entry, settings.lease_slice_percent);
            check(&entry, &limits, amount).map(|()| entry.reserve(amount)).map_err(|short_of_lease| {
                // Short of this instance's lease: say whether the budget itself is.
                match check(&entry, &budget.limits, amount) {
                    Err(short_of_budget) => short_of_budget,
                    Ok(()) if lease::spent_everywhere(&entry) & short_of_lease.dimension() != 0 => {
                        Shortfall::SpentEverywhere
                    }
                    Ok(()) => Shortfall::Lease,
                }
            })
        });
        let refusal = match outcome {
            Ok(Ok(written)) => {
                let limits = lease::effective_limits(&budget.limits, &written, settings.lease_slice_percent);
                if let Some(left) = output_left(&written, &limits, prices) {
                    rooms.push((&budget.name, left));
                }
                reservations.push(Reservation {
                    budget: budget.name.clone(),
                    key: applicable.key.clone(),
                    amount,
                    window_start: start,
                    period: budget.period,
                    zone: budget.zone,
                });
                continue;
            }
            Ok(Err(shortfall)) => exhausted(applicable, shortfall, amount, currency, now, end),
            Err(error) => Refusal::Ledger(error),
        };
        withdraw(store, &reservations, now_ms, settings.max_keys);
        return Err(refusal);
    }
    let output_allowance = tightest_allowance(ask.output_tokens, rooms);
    Ok(Admitted { reservations, output_tokens: ask.output_tokens, clamp_to, output_allowance })
}

/// The refusal for a shortfall, with the budget's name, what is left and when it resets.
fn exhausted(
    applicable: &Applicable,
    shortfall: Shortfall,
    amount: Amount,
    currency: &str,
    now: i64,
    end: i64,
) -> Refusal {
    let budget = applicable.budget;
    let resets = iso(end, budget.zone);
    let until_reset = end.saturating_sub(now).max(1) as u64;
    let head = format!("budget {:?} ({})", budget.name, applicable.label);
    let (message, retry_after, retryable) = match shortfall {
        Shortfall::Concurrent(limit) => (
            format!("{head} allows {limit} concurrent requests and all are in use; retry when one ends"),
            1,
            true,
        ),
        Shortfall::Requests(limit) => (
            format!("{head} allows {limit} requests per {}; none is left until it resets at {resets}", budget.period.name()),
            until_reset,
            true,
        ),
        Shortfall::Tokens { limit, .. } if amount.tokens > limit => (
            format!("{head}: this request alone needs an estimated {} tokens, more than the whole limit of {limit} per {}; lower max_tokens or shorten the request", amount.tokens, budget.period.name()),
            until_reset,
            false,
        ),
        Shortfall::Tokens { limit, left } => (
            format!("{head}: {left} of {limit} tokens per {} left, this request needs an estimated {}; it resets at {resets}", budget.period.name(), amount.tokens),
            until_reset,
            true,
        ),
        Shortfall::Cost { limit, .. } if amount.nanos > limit => (
            format!("{head}: this request alone may cost {}, more than the whole limit of {} per {}; lower max_tokens or shorten the request", format_money(amount.nanos, currency), format_money(limit, currency), budget.period.name()),
            until_reset,
            false,
        ),
        Shortfall::Cost { limit, left } => (
            format!("{head}: {} of {} per {} left, this request may cost {}; it resets at {resets}", format_money(left, currency), format_money(limit, currency), budget.period.name(), format_money(amount.nanos, currency)),
            until_reset,
            true,
        ),
        Shortfall::Lease => (
            format!("{head}: this gateway's share of the budget is in use and more is being leased from warden serve; retry in a second"),
            1,
            true,
        ),
        Shortfall::SpentEverywhere => (
            format!("{head} is used up across the gateways; it resets at {resets}"),
            until_reset,
            true,
        ),
    };
    let short_of_lease = matches!(shortfall, Shortfall::Lease).then(|| (applicable.key.clone(), amount));
    Refusal::Exhausted { budget: budget.name.clone(), message, retry_after, retryable, short_of_lease }
}

/// Gives back reservations of an admission that did not complete (nothing is charged).
fn withdraw(store: &dyn Store, reservations: &[Reservation], now_ms: u64, max_keys: u64) {
    for reservation in reservations {
        if let Err(error) = release(store, reservation, Amount::default(), true, now_ms, max_keys) {
            log::error!("budget {}: withdrawing a reservation failed: {}", reservation.budget, error.describe());
        }
    }
}

/// A settlement the ledger refused (contention beyond [`ledger::MAX_CAS_RETRIES`], a host
/// error): kept to be tried again ([`retry`]), so a reservation is not held until the Envoy
/// process ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    /// The reservation still in the ledger.
    pub reservation: Reservation,
    /// What the exchange cost.
    pub actual: Amount,
    /// Why it failed last.
    pub error: LedgerError,
}

/// Replaces each reservation by `actual` (the exchange's real cost), in the window current at
/// `now_ms`. Returns the settlements the ledger refused (their reservations stay for now:
/// conservative), to be tried again with [`retry`].
pub fn settle(
    store: &dyn Store,
    reservations: &[Reservation],
    actual: Amount,
    now_ms: u64,
    max_keys: u64,
) -> Vec<Unsettled> {
    reservations
        .iter()
        .filter_map(|reservation| {
            release(store, reservation, actual, false, now_ms, max_keys).err().map(|error| Unsettled {
                reservation: reservation.clone(),
                actual,
                error,
            })
        })
        .collect()
}

/// Tries the `unsettled` settlements again (in the window current at `now_ms`), keeping those
/// the ledger refuses once more.
pub fn retry(store: &dyn Store, unsettled: &mut Vec<Unsettled>, now_ms: u64, max_keys: u64) {
    unsettled.retain_mut(|pending| {
        match release(store, &pending.reservation, pending.actual, false, now_ms, max_keys) {
            Ok(()) => false,
            Err(error) => {
                pending.error = error;
                true
            }
        }
    });
}

/// Replaces `reservation` by `actual` in the window current at `now_ms`; a `withdrawn` one (an
/// admission rolled back) also gives its request back when still in the window it counted in.
fn release(
    store: &dyn Store,
    reservation: &Reservation,
    actual: Amount,
    withdrawn: bool,
    now_ms: u64,
    max_keys: u64,
) -> Result<(), LedgerError> {
    let (start, _) = bounds(reservation.period, reservation.zone, (now_ms / 1000) as i64);
    let same_window = start == reservation.window_start;
    ledger::update(store, &reservation.key, now_ms, max_keys, |entry| {
        Ok::<_, ()>(entry.in_window(start).settle(reservation.amount, actual, withdrawn, same_window))
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::MemoryStore;
    use std::collections::BTreeSet;

    const NOW_MS: u64 = 1_796_686_200_000; // 2026-12-07T23:30:00Z

    fn budget(name: &str, limits: Limits) -> Budget {
        Budget {
            name: name.into(),
            per: Scope::Role,
            period: Period::Day,
            zone: Zone::default(),
            limits,
            on_exhausted: OnExhausted::Refuse,
            clamp_min_tokens: 100,
        }
    }

    fn for_role(budget: &Budget) -> Applicable<'_> {
        Applicable { budget, key: ledger_key(budget, "analyst"), label: "role analyst".into() }
    }

    fn tokens(limit: u64) -> Limits {
        Limits { tokens: Some(limit), ..Limits::default() }
    }

    fn ask(input: u64, output: u64) -> Ask {
        Ask { input_tokens: input, output_tokens: output, web_searches: 0 }
    }

    fn admit_one(store: &MemoryStore, budgets: &[Applicable], a: Ask, now_ms: u64) -> Result<Admitted, Refusal> {
        admit(store, budgets, a, None, &Settings::default(), now_ms, true)
    }

    fn entry(store: &MemoryStore, b: &Applicable) -> Entry {
        Entry::decode(&store.get(&b.key).unwrap().unwrap().0).unwrap()
    }

    #[test]
    fn the_output_allowance_is_the_reserved_output_plus_what_the_tightest_budget_has_left() {
        let store = MemoryStore::default();
        let wide = budget("monthly", tokens(100_000));
        let narrow = budget("daily", tokens(1_000));
        let counted = budget("requests", Limits { requests: Some(10), ..Limits::default() });
        let budgets = [for_role(&wide), for_role(&narrow), for_role(&counted)];
        let admitted = admit_one(&store, &budgets, ask(100, 200), NOW_MS).unwrap();
        // 1000 − (100 + 200) left in "daily" after the reservation, on top of the 200 reserved.
        assert_eq!(admitted.output_allowance, Some(OutputAllowance { tokens: 900, budget: "daily".into() }));
        // A second exchange in flight sees the first one's reservation.
        let second = admit_one(&store, &budgets, ask(100, 200), NOW_MS).unwrap();
        assert_eq!(second.output_allowance.map(|a| a.tokens), Some(200 + 400));
    }

    #[test]
    fn a_cost_budget_gives_its_allowance_in_output_tokens_at_the_output_price() {
        let store = MemoryStore::default();
        let prices = Prices { output: 1_000, ..Prices::default() };
        let b = budget("spend", Limits { cost_nanos: Some(1_000_000), ..Limits::default() });
        let budgets = [for_role(&b)];
        let priced = Priced { prices: &prices, currency: "USD" };
        let admitted = admit(&store, &budgets, ask(0, 100), Some(priced), &Settings::default(), NOW_MS, false).unwrap();
        // 1_000_000 nanos − 100 tokens × 1_000 reserved = 900 more output tokens.
        assert_eq!(admitted.output_allowance.map(|a| a.tokens), Some(100 + 900));
    }

    #[test]
    fn budgets_without_token_or_cost_limits_give_no_allowance() {
        let store = MemoryStore::default();
        let b = budget("slots", Limits { concurrent: Some(2), ..Limits::default() });
        let admitted = admit_one(&store, &[for_role(&b)], ask(10, 20), NOW_MS).unwrap();
        assert_eq!(admitted.output_allowance, None);
        assert_eq!(tightest_allowance(u64::MAX, [("x", u64::MAX)]).map(|a| a.tokens), Some(u64::MAX));
    }

    #[test]
    fn a_reservation_exactly_at_the_limit_fits_and_one_token_over_does_not() {
        let store = MemoryStore::default();
        let b = budget("daily", tokens(1_000));
        let budgets = [for_role(&b)];
        admit_one(&store, &budgets, ask(400, 600), NOW_MS).unwrap();
        let Err(Refusal::Exhausted { budget, message, retry_after, retryable, .. }) =
            admit_one(&store, &budgets, ask(0, 1), NOW_MS)
        else {
            panic!("one token over must be refused");
        };
        assert_eq!(budget, "daily");
        assert!(
            message.contains("0 of 1000 tokens per day left") && message.contains("2026-12-08T00:00:00Z"),
            "{message}"
        );
        assert_eq!((retry_after, retryable), (1800, true));
    }

    #[test]
    fn settling_replaces_the_reservation_by_the_real_use() {
        let store = MemoryStore::default();
        let b = budget("daily", tokens(1_000));
        let budgets = [for_role(&b)];
        let admitted = admit_one(&store, &budgets, ask(400, 600), NOW_MS).unwrap();
        assert!(settle(&store, &admitted.reservations, Amount { tokens: 300, nanos: 0 }, NOW_MS, 10).is_empty());
        let e = entry(&store, &budgets[0]);
        assert_eq!((e.spent.tokens, e.reserved.tokens, e.in_flight), (300, 0, 0));
        // 700 left now.
        assert!(admit_one(&store, &budgets, ask(100, 600), NOW_MS).is_ok());
    }

    #[test]
    fn a_new_window_starts_empty_but_charges_what_ends_in_it() {
        let store = MemoryStore::default();
        let b = budget("daily", tokens(1_000));
        let budgets = [for_role(&b)];
        let admitted = admit_one(&store, &budgets, ask(400, 600), NOW_MS).unwrap();
        let tomorrow = NOW_MS + 3_600_000;
        // The reservation still in flight counts in the new day.
        assert!(admit_one(&store, &budgets, ask(1, 0), tomorrow).is_err());
        settle(&store, &admitted.reservations, Amount { tokens: 50, nanos: 0 }, tomorrow, 10);
        let e = entry(&store, &budgets[0]);
        assert_eq!((e.spent.tokens, e.reserved.tokens), (50, 0));
        assert!(admit_one(&store, &budgets, ask(450, 500), tomorrow).is_ok());
    }

    #[test]
    fn all_or_nothing_a_refusal_withdraws_earlier_reservations() {
        let store = MemoryStore::default();
        let roomy = budget("roomy", tokens(1_000_000));
        let tight = budget("tight", Limits { requests: Some(1), ..Limits::default() });
        let budgets = [for_role(&roomy), Applicable { key: ledger_key(&tight, "x"), ..for_role(&tight) }];
        admit_one(&store, &budgets, ask(10, 10), NOW_MS).unwrap();
        assert!(
            matches!(admit_one(&store, &budgets, ask(10, 10), NOW_MS), Err(Refusal::Exhausted { ref budget, .. }) if budget == "tight")
        );
        let e = entry(&store, &budgets[0]);
        assert_eq!((e.reserved.tokens, e.requests, e.in_flight), (20, 1, 1));
    }

    #[test]
    fn concurrency_frees_when_an_exchange_settles() {
        let store = MemoryStore::default();
        let b = budget("two-at-once", Limits { concurrent: Some(2), ..Limits::default() });
        let budgets = [for_role(&b)];
        let first = admit_one(&store, &budgets, ask(1, 1), NOW_MS).unwrap();
        admit_one(&store, &budgets, ask(1, 1), NOW_MS).unwrap();
        let Err(Refusal::Exhausted { retry_after, message, .. }) = admit_one(&store, &budgets, ask(1, 1), NOW_MS)
        else {
            panic!()
        };
        assert_eq!(retry_after, 1);
        assert!(message.contains("2 concurrent"), "{message}");
        settle(&store, &first.reservations, Amount::default(), NOW_MS, 10);
        assert!(admit_one(&store, &budgets, ask(1, 1), NOW_MS).is_ok());
    }

    #[test]
    fn a_request_larger_than_the_whole_limit_is_not_worth_retrying() {
        let store = MemoryStore::default();
        let b = budget("small", tokens(100));
        let Err(Refusal::Exhausted { retryable, message, .. }) =
            admit_one(&store, &[for_role(&b)], ask(50, 4096), NOW_MS)
        else {
            panic!()
        };
        assert!(!retryable);
        assert!(message.contains("lower max_tokens"), "{message}");
    }

    #[test]
    fn clamp_lowers_the_output_to_what_is_left_and_refuses_below_the_minimum() {
        let store = MemoryStore::default();
        let b = Budget { on_exhausted: OnExhausted::Clamp, ..budget("clamped", tokens(1_000)) };
        let budgets = [for_role(&b)];
        let admitted = admit_one(&store, &budgets, ask(200, 4_000), NOW_MS).unwrap();
        assert_eq!((admitted.clamp_to, admitted.output_tokens), (Some(800), 800));
        assert_eq!(entry(&store, &budgets[0]).reserved.tokens, 1_000);
        settle(&store, &admitted.reservations, Amount { tokens: 950, nanos: 0 }, NOW_MS, 10);
        // 50 left: below clamp_min_tokens (100) → refused.
        assert!(admit_one(&store, &budgets, ask(10, 4_000), NOW_MS).is_err());
    }

    #[test]
    fn cost_limits_price_the_estimate_at_the_dearest_input_rate() {
        let store = MemoryStore::default();
        let prices = Prices {
            input: 3_000,
            output: 15_000,
            cache_write_5m: 3_750,
            cache_write_1h: 6_000,
            cache_read: 300,
            web_search: 10_000_000,
        };
        let b = budget("dollar", Limits { cost_nanos: Some(1_000_000_000), ..Limits::default() });
        let budgets = [for_role(&b)];
        let a = Ask { input_tokens: 10_000, output_tokens: 1_000, web_searches: 10 };
        assert_eq!(a.amount(Some(&prices)).nanos, 10_000 * 6_000 + 1_000 * 15_000 + 10 * 10_000_000);
        let admitted = admit(
            &store,
            &budgets,
            a,
            Some(Priced { prices: &prices, currency: "USD" }),
            &Settings::default(),
            NOW_MS,
            true,
        )
        .unwrap();
        assert_eq!(admitted.reservations[0].amount.nanos, 175_000_000);
        let big = Ask { input_tokens: 130_000, ..a };
        let Err(Refusal::Exhausted { message, .. }) = admit(
            &store,
            &budgets,
            big,
            Some(Priced { prices: &prices, currency: "USD" }),
            &Settings::default(),
            NOW_MS,
            true,
        ) else {
            panic!()
        };
        assert!(message.contains("0.825000 USD of 1.000000 USD per day left"), "{message}");
    }

    #[test]
    fn estimates_round_input_up_and_respect_an_expected_output() {
        let settings = Settings { expected_output_tokens: Some(1_000), ..Settings::default() };
        assert_eq!(
            Ask::estimate(&settings, 5, 64_000, true),
            Ask { input_tokens: 3, output_tokens: 1_000, web_searches: 10 }
        );
        assert_eq!(Ask::estimate(&Settings::default(), 0, 10, false), ask(0, 10));
    }

    #[test]
    fn each_scope_gets_its_keys_and_jobs_are_bounded_per_subject() {
        let scoped = |per| Budget { per, ..budget(&format!("{per:?}"), tokens(1)) };
        let budgets = [scoped(Scope::Role), scoped(Scope::Subject), scoped(Scope::Group), scoped(Scope::Job)];
        let settings = Settings { jobs_per_subject: 4, ..Settings::default() };
        let who = Who { role: "analyst", issuer: "i", subject: "alice", groups: vec!["eng", "ops"], job: Some("ci-1") };
        let found = applicable(&budgets, &who, &settings);
        let labels: Vec<&str> = found.iter().map(|a| a.label.as_str()).collect();
        assert_eq!(labels, ["role analyst", "subject alice", "group eng", "group ops", "job \"ci-1\""]);
        assert_eq!(applicable(&budgets, &Who { job: None, groups: vec![], ..who.clone() }, &settings).len(), 2);
        let job_keys: BTreeSet<String> = (0..1_000)
            .map(|i| format!("job-{i}"))
            .map(|job| applicable(&budgets[3..], &Who { job: Some(&job), ..who.clone() }, &settings).remove(0).key)
            .collect();
        assert_eq!(job_keys.len(), 4, "a thousand declared jobs share four entries");
        let bob = applicable(&budgets[1..2], &Who { subject: "bob", ..who.clone() }, &settings);
        assert_ne!(bob[0].key, found[1].key);
    }

    #[test]
    fn a_settlement_the_ledger_refuses_is_kept_and_succeeds_when_tried_again() {
        let store = MemoryStore::default();
        let b = budget("daily", tokens(1_000));
        let budgets = [for_role(&b)];
        let admitted = admit_one(&store, &budgets, ask(100, 100), NOW_MS).unwrap();
        let actual = Amount { tokens: 150, nanos: 0 };
        // A store that refuses every write stands in for a ledger contended past the retry bound.
        #[derive(Debug)]
        struct Refusing<'a>(&'a MemoryStore);
        impl Store for Refusing<'_> {
            fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, ledger::StoreError> {
                self.0.get(key)
            }
            fn set(&self, _: &str, _: &[u8], _: u32) -> Result<(), ledger::StoreError> {
                Err(ledger::StoreError::CasMismatch)
            }
        }
        let mut unsettled = settle(&Refusing(&store), &admitted.reservations, actual, NOW_MS, 10);
        assert_eq!(unsettled.len(), 1);
        assert_eq!(unsettled[0].error, LedgerError::Contended);
        assert_eq!(entry(&store, &budgets[0]).reserved.tokens, 200, "the reservation stays meanwhile");
        retry(&Refusing(&store), &mut unsettled, NOW_MS, 10);
        assert_eq!(unsettled.len(), 1, "still refused: still kept");
        retry(&store, &mut unsettled, NOW_MS, 10);
        assert!(unsettled.is_empty());
        let settled = entry(&store, &budgets[0]);
        assert_eq!((settled.reserved.tokens, settled.spent.tokens, settled.in_flight), (0, 150, 0));
    }

    proptest::proptest! {
        /// Any interleaving of admissions, settlements (at most the reservation) and clock
        /// steps keeps `spent + reserved ≤ limit` in every window: no overshoot.
        #[test]
        fn interleaved_admissions_and_settlements_never_overshoot(
            steps in proptest::collection::vec((0u8..3, 0u64..3_000, 0u64..4_000, 0u64..100), 1..120)
        ) {
            let store = MemoryStore::default();
            let b = budget("prop", Limits { tokens: Some(10_000), concurrent: Some(6), ..Limits::default() });
            let budgets = [for_role(&b)];
            let mut now_ms = NOW_MS;
            let mut in_flight: Vec<Admitted> = Vec::new();
            let mut spent_in_window = 0u64;
            let mut window = bounds(b.period, b.zone, (now_ms / 1000) as i64).0;
            for (op, input, output, percent) in steps {
                match op {
                    0 => {
                        if let Ok(admitted) = admit_one(&store, &budgets, ask(input, output), now_ms) {
                            in_flight.push(admitted);
                        }
                    }
                    1 if !in_flight.is_empty() => {
                        let admitted = in_flight.remove((input as usize) % in_flight.len());
                        let reserved = admitted.reservations[0].amount.tokens;
                        let actual = Amount { tokens: reserved * percent / 100, nanos: 0 };
                        settle(&store, &admitted.reservations, actual, now_ms, 10);
                        spent_in_window += actual.tokens;
                    }
                    _ => now_ms += output * 60_000,
                }
                let current = bounds(b.period, b.zone, (now_ms / 1000) as i64).0;
                if current != window {
                    window = current;
                    spent_in_window = 0;
                }
                let stored = store.get(&budgets[0].key).unwrap();
                let e = stored.map(|(bytes, _)| Entry::decode(&bytes).unwrap()).unwrap_or_default().in_window(current);
                proptest::prop_assert!(e.committed().tokens <= 10_000, "{e:?}");
                proptest::prop_assert!(e.in_flight <= 6 && e.in_flight == in_flight.len() as u64);
                proptest::prop_assert_eq!(e.spent.tokens, spent_in_window);
            }
        }
    }

    #[test]
    fn ledger_keys_are_bounded_and_hide_who() {
        let b = budget("daily", tokens(1));
        let key = ledger_key(&b, &"x".repeat(10_000));
        assert_eq!(key, format!("warden.budget.daily.role.{}", &key[key.len() - 16..]));
        assert_ne!(ledger_key(&b, "alice"), ledger_key(&b, "bob"));
    }
}
