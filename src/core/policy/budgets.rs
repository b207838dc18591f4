//! The `pricing` and `accounting` sections and each role's `budgets`, compiled.
//!
//! Checks: prices are finite, non-negative and at most
//! [`MAX_PRICE`](crate::core::budget::pricing::MAX_PRICE); a row has models with
//! valid globs; the currency is 1-8 letters; budget names are tokens unique in the policy (they
//! name metrics and ledger keys); a budget has at least one limit, every limit is above 0, a
//! window is given exactly when `tokens`, `cost` or `requests` is; `cost` needs `pricing`;
//! `clamp` needs `tokens` or `cost`; estimates and ledger bounds are above 0.

use super::config::{
    AccountingConfig, BudgetConfig, OnExhaustedConfig, PeriodConfig, PriceRowConfig, PricingConfig, ScopeConfig,
};
use super::{is_token, Checker};
use crate::core::budget::pricing::{
    scaled_up, to_nanos, PriceRow, PriceTable, Prices, PER_MILLION_TOKENS, PER_THOUSAND_SEARCHES,
};
use crate::core::budget::window::{Period, Zone};
use crate::core::budget::{Budget, Limits, OnExhausted, Scope, Settings};
use std::collections::BTreeSet;

/// Largest `cost` limit, in currency units.
const MAX_COST: f64 = 1e9;

pub(super) fn compile_pricing(check: &mut Checker, config: &PricingConfig) -> PriceTable {
    if config.currency.is_empty()
        || config.currency.len() > 8
        || !config.currency.chars().all(|c| c.is_ascii_alphabetic())
    {
        check.error("pricing.currency", "must be 1-8 letters (USD, EUR)");
    }
    if config.models.is_empty() {
        check.error("pricing.models", "at least one row is required");
    }
    let rows = config
        .models
        .iter()
        .enumerate()
        .map(|(i, row)| compile_row(check, &format!("pricing.models[{i}]"), row))
        .collect();
    PriceTable::new(config.currency.clone(), rows)
}

fn compile_row(check: &mut Checker, path: &str, row: &PriceRowConfig) -> PriceRow {
    if row.models.is_empty() {
        check.error(format!("{path}.models"), "at least one model glob is required");
    }
    let models = check.globs(&format!("{path}.models"), &row.models);
    let mut price = |field: &str, value: f64, scale: f64| match to_nanos(value, scale) {
        Ok(nanos) => nanos,
        Err(message) => {
            check.error(format!("{path}.{field}"), message.to_string());
            0
        }
    };
    let input = price("input", row.input, PER_MILLION_TOKENS);
    let prices = Prices {
        input,
        output: price("output", row.output, PER_MILLION_TOKENS),
        cache_write_5m: price("cache_write_5m", row.cache_write_5m.unwrap_or(row.input * 1.25), PER_MILLION_TOKENS),
        cache_write_1h: price("cache_write_1h", row.cache_write_1h.unwrap_or(row.input * 2.0), PER_MILLION_TOKENS),
        cache_read: price("cache_read", row.cache_read.unwrap_or(row.input / 10.0), PER_MILLION_TOKENS),
        web_search: price("web_search", row.web_search, PER_THOUSAND_SEARCHES),
    };
    PriceRow { models, prices }
}

pub(super) fn compile_accounting(check: &mut Checker, config: &AccountingConfig) -> Settings {
    for (field, value) in [
        ("input_bytes_per_token", config.input_bytes_per_token),
        ("max_keys", config.max_keys),
        ("jobs_per_subject", config.jobs_per_subject),
    ] {
        if value == 0 {
            check.error(format!("accounting.{field}"), "must be greater than 0");
        }
    }
    if config.expected_output_tokens == Some(0) {
        check.error("accounting.expected_output_tokens", "must be greater than 0");
    }
    Settings {
        input_bytes_per_token: config.input_bytes_per_token,
        expected_output_tokens: config.expected_output_tokens,
        web_searches_reserved: config.web_searches_reserved,
        max_keys: config.max_keys,
        jobs_per_subject: config.jobs_per_subject,
        lease_slice_percent: None,
    }
}

/// Compiles a role's budgets; `names` collects every budget name seen so far (unique in the
/// policy).
pub(super) fn compile_budgets(
    check: &mut Checker,
    role_path: &str,
    budgets: &[BudgetConfig],
    pricing: bool,
    names: &mut BTreeSet<String>,
) -> Vec<Budget> {
    let mut compiled = Vec::with_capacity(budgets.len());
    for (i, config) in budgets.iter().enumerate() {
        let path = format!("{role_path}.budgets[{i}]");
        if !is_token(&config.name) || config.name.len() > 64 {
            check.error(format!("{path}.name"), "must be 1-64 letters, digits, '-', '_' or '.'");
        } else if !names.insert(config.name.clone()) {
            check.error(format!("{path}.name"), format!("{:?} is already the name of another budget", config.name));
        }
        let zone = Zone::parse(&config.time_zone).unwrap_or_else(|message| {
            check.error(format!("{path}.time_zone"), message.to_string());
            Zone::default()
        });
        let cost_nanos = config.cost.map(|cost| {
            if !pricing {
                check.error(format!("{path}.cost"), "a cost limit needs the top-level `pricing` table");
            }
            if !cost.is_finite() || cost <= 0.0 || cost > MAX_COST {
                check.error(format!("{path}.cost"), format!("must be a number above 0 and at most {MAX_COST}"));
                return 0;
            }
            scaled_up(cost, 1e9)
        });
        let limits =
            Limits { tokens: config.tokens, cost_nanos, requests: config.requests, concurrent: config.concurrent };
        for (field, value) in
            [("tokens", config.tokens), ("requests", config.requests), ("concurrent", config.concurrent)]
        {
            if value == Some(0) {
                check.error(format!("{path}.{field}"), "must be greater than 0");
            }
        }
        let windowed = limits.tokens.is_some() || limits.cost_nanos.is_some() || limits.requests.is_some();
        if limits == Limits::default() {
            check.error(path.clone(), "set at least one of tokens, cost, requests or concurrent");
        }
        match (config.window, windowed) {
            (None, true) => check
                .error(format!("{path}.window"), "required with tokens, cost or requests (minute, hour, day or month)"),
            (Some(_), false) => {
                check.error(format!("{path}.window"), "only tokens, cost and requests count in a window")
            }
            _ => {}
        }
        let on_exhausted = match config.on_exhausted {
            OnExhaustedConfig::Refuse => OnExhausted::Refuse,
            OnExhaustedConfig::Clamp => {
                if limits.tokens.is_none() && limits.cost_nanos.is_none() {
                    check.error(format!("{path}.on_exhausted"), "clamp needs a tokens or cost limit");
                }
                OnExhausted::Clamp
            }
        };
        if config.clamp_min_tokens == 0 {
            check.error(format!("{path}.clamp_min_tokens"), "must be greater than 0");
        }
        compiled.push(Budget {
            name: config.name.clone(),
            per: match config.per {
                ScopeConfig::Role => Scope::Role,
                ScopeConfig::Subject => Scope::Subject,
                ScopeConfig::Group => Scope::Group,
                ScopeConfig::Job => Scope::Job,
            },
            period: match config.window {
                Some(PeriodConfig::Minute) => Period::Minute,
                Some(PeriodConfig::Hour) => Period::Hour,
                Some(PeriodConfig::Day) | None => Period::Day,
                Some(PeriodConfig::Month) => Period::Month,
            },
            zone,
            limits,
            on_exhausted,
            clamp_min_tokens: config.clamp_min_tokens,
        });
    }
    compiled
}

#[cfg(test)]
mod tests {
    use crate::core::budget::window::Period;
    use crate::core::budget::{OnExhausted, Scope};
    use crate::core::policy::tests::errors_of;
    use crate::core::policy::Policy;

    const POLICY: &str = r#"
version: 1
identity: {}
credentials:
  main: { env: K }
pricing:
  currency: USD
  models:
    - { models: ["claude-haiku-*"], input: 1, output: 5 }
    - { models: ["claude-sonnet-*"], input: 3, output: 15, cache_read: 0.3 }
roles:
  analyst:
    credential: main
    models: ["claude-*"]
    budgets:
      - { name: analyst-daily, per: subject, window: day, time_zone: "+02:00", tokens: 100000, cost: 1.5, on_exhausted: clamp }
      - { name: analyst-rpm, window: minute, requests: 60, concurrent: 4 }
"#;

    #[test]
    fn budgets_and_prices_compile() {
        let policy = Policy::parse(POLICY).unwrap();
        let pricing = policy.pricing.as_ref().unwrap();
        let sonnet = pricing.prices_for("claude-sonnet-4-5");
        assert_eq!(
            (sonnet.input, sonnet.output, sonnet.cache_read, sonnet.cache_write_5m, sonnet.cache_write_1h),
            (3_000, 15_000, 300, 3_750, 6_000)
        );
        assert_eq!(sonnet.web_search, 10_000_000);
        let budgets = &policy.roles[0].budgets;
        assert_eq!(budgets.len(), 2);
        assert_eq!(
            (budgets[0].per, budgets[0].period, budgets[0].zone.offset_seconds),
            (Scope::Subject, Period::Day, 7200)
        );
        assert_eq!((budgets[0].limits.cost_nanos, budgets[0].on_exhausted), (Some(1_500_000_000), OnExhausted::Clamp));
        assert_eq!((budgets[1].limits.requests, budgets[1].limits.concurrent), (Some(60), Some(4)));
    }

    #[test]
    fn a_cost_limit_up_to_the_largest_allowed_compiles_to_its_nanos() {
        for (cost, nanos) in [("2000000", 2_000_000_000_000_000u64), ("1e9", 1_000_000_000_000_000_000)] {
            let policy = Policy::parse(&POLICY.replace("cost: 1.5", &format!("cost: {cost}"))).unwrap();
            assert_eq!(policy.roles[0].budgets[0].limits.cost_nanos, Some(nanos), "cost {cost}");
        }
    }

    #[test]
    fn price_errors_name_their_field() {
        let text = POLICY.replace("input: 1, output: 5", "input: -1, output: .nan");
        let errors = errors_of(&text);
        assert!(errors.contains(&"pricing.models[0].input: must not be negative".to_string()), "{errors:?}");
        assert!(errors.contains(&"pricing.models[0].output: must be a finite number".to_string()), "{errors:?}");
        let text = POLICY.replace("input: 3,", "input: 3e9,");
        assert!(errors_of(&text).iter().any(|e| e.starts_with("pricing.models[1].input: must be at most")));
    }

    #[test]
    fn budget_errors_name_their_field() {
        let cases = [
            (
                "window: day, time_zone: \"+02:00\"",
                "window: day, time_zone: Europe/Paris",
                "roles.analyst.budgets[0].time_zone",
            ),
            ("window: minute, requests: 60,", "requests: 60,", "roles.analyst.budgets[1].window: required"),
            ("name: analyst-rpm", "name: analyst-daily", "roles.analyst.budgets[1].name: \"analyst-daily\" is already"),
            ("tokens: 100000", "tokens: 0", "roles.analyst.budgets[0].tokens: must be greater than 0"),
            (
                "window: minute, requests: 60, concurrent: 4",
                "concurrent: 4, on_exhausted: clamp",
                "roles.analyst.budgets[1].on_exhausted: clamp needs",
            ),
            (
                "window: minute, requests: 60, concurrent: 4",
                "window: minute",
                "roles.analyst.budgets[1]: set at least one",
            ),
            ("cost: 1.5", "cost: -2", "roles.analyst.budgets[0].cost: must be a number above 0"),
            ("window: day, time_zone", "window: fortnight, time_zone", "roles.analyst.budgets[0].window"),
        ];
        for (from, to, expected) in cases {
            let errors = errors_of(&POLICY.replace(from, to));
            assert!(errors.iter().any(|e| e.starts_with(expected)), "{to}: {errors:?}");
        }
    }

    #[test]
    fn a_cost_budget_needs_a_price_table() {
        let start = POLICY.find("pricing:").unwrap();
        let end = POLICY.find("roles:").unwrap();
        let text = format!("{}{}", &POLICY[..start], &POLICY[end..]);
        assert_eq!(
            errors_of(&text),
            vec!["roles.analyst.budgets[0].cost: a cost limit needs the top-level `pricing` table"]
        );
    }
}
