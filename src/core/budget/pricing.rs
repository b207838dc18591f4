//! The price table: what a model's tokens cost, as integer nanos (billionths of the currency).
//!
//! The policy writes prices per million tokens (input, output, cache writes for 5 minutes and for
//! one hour, cache reads) and per thousand web searches, as decimal numbers in one currency.
//! Compiling turns each into nanos per token (or per search): `price × 1000` for a per-million
//! price, `price × 1 000 000` for a per-thousand price. The product is rounded to the nearest nano
//! when it is within 10⁻⁶ of it (so `0.3` is 300, not 300.00000000000006 rounded up), else
//! rounded **up**: a price is never made cheaper by its representation.
//!
//! A model is priced by the first row whose globs match it. A model no row matches costs the
//! component-wise maximum of every row — never free, so an unknown or newly released model cannot
//! slip past a cost budget.
//!
//! Arithmetic saturates at `u64::MAX` (about 18 billion currency units): hostile token counts
//! cannot wrap a cost around to a small number.

use super::usage::Usage;
use crate::core::policy::glob::GlobSet;

/// Largest accepted price per million tokens or per thousand searches (currency units).
pub const MAX_PRICE: f64 = 1_000_000.0;

/// Nanos per token (or per web search) of one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prices {
    /// Input tokens billed at the normal rate.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens written to the 5-minute prompt cache.
    pub cache_write_5m: u64,
    /// Input tokens written to the 1-hour prompt cache.
    pub cache_write_1h: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read: u64,
    /// One web search request.
    pub web_search: u64,
}

impl Prices {
    /// The component-wise maximum of two price sets.
    fn max(self, other: Prices) -> Prices {
        Prices {
            input: self.input.max(other.input),
            output: self.output.max(other.output),
            cache_write_5m: self.cache_write_5m.max(other.cache_write_5m),
            cache_write_1h: self.cache_write_1h.max(other.cache_write_1h),
            cache_read: self.cache_read.max(other.cache_read),
            web_search: self.web_search.max(other.web_search),
        }
    }

    /// The highest price of an input token, whichever way it is billed (normal, cache write or
    /// read): what an estimate of input tokens is priced at.
    pub fn input_ceiling(&self) -> u64 {
        self.input.max(self.cache_write_5m).max(self.cache_write_1h).max(self.cache_read)
    }

    /// The cost of `usage` in nanos, saturating.
    ///
    /// Cache writes without the 5 m / 1 h split (`cache_creation_input_tokens` alone) are priced
    /// at the dearer 1-hour rate for the part the split does not explain.
    pub fn cost(&self, usage: &Usage) -> u64 {
        let n = |v: Option<u64>| v.unwrap_or(0);
        let split_5m = n(usage.ephemeral_5m_input_tokens);
        let split_1h = n(usage.ephemeral_1h_input_tokens);
        let unexplained = n(usage.cache_creation_input_tokens).saturating_sub(split_5m.saturating_add(split_1h));
        [
            (n(usage.input_tokens), self.input),
            (n(usage.output_tokens), self.output),
            (split_5m, self.cache_write_5m),
            (split_1h.saturating_add(unexplained), self.cache_write_1h),
            (n(usage.cache_read_input_tokens), self.cache_read),
            (n(usage.web_search_requests), self.web_search),
        ]
        .iter()
        .fold(0u64, |total, (count, price)| total.saturating_add(count.saturating_mul(*price)))
    }
}

/// One row of the table: the models it prices.
#[derive(Debug)]
pub struct PriceRow {
    /// Model globs (`claude-sonnet-4*`).
    pub models: GlobSet,
    /// Their prices.
    pub prices: Prices,
}

/// The compiled price table.
#[derive(Debug)]
pub struct PriceTable {
    /// Currency label (`USD`), shown in messages.
    pub currency: String,
    /// Rows in policy order; the first match prices a model.
    pub rows: Vec<PriceRow>,
    /// The component-wise maximum of every row: the price of a model no row matches.
    unmatched: Prices,
}

impl PriceTable {
    /// A table from its rows.
    pub fn new(currency: String, rows: Vec<PriceRow>) -> Self {
        let unmatched = rows.iter().fold(Prices::default(), |max, row| max.max(row.prices));
        Self { currency, rows, unmatched }
    }

    /// The prices of `model`: its first matching row's, else the dearest of every row.
    pub fn prices_for(&self, model: &str) -> &Prices {
        self.rows.iter().find(|row| row.models.matches(model)).map_or(&self.unmatched, |row| &row.prices)
    }

    /// The cost of `usage` on `model`, in nanos.
    pub fn cost(&self, model: &str, usage: &Usage) -> u64 {
        self.prices_for(model).cost(usage)
    }

    /// `nanos` as a decimal amount with the currency (`1.234500 USD`), for messages.
    pub fn format(&self, nanos: u64) -> String {
        format_money(nanos, &self.currency)
    }
}

/// `nanos` as a decimal amount with six decimals and the currency label.
pub fn format_money(nanos: u64, currency: &str) -> String {
    let units = nanos / 1_000_000_000;
    let micros = (nanos % 1_000_000_000) / 1_000;
    format!("{units}.{micros:06} {currency}")
}

/// Why a price is refused (the message names no field: the policy error adds its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceError {
    /// NaN or infinite.
    NotFinite,
    /// Below zero.
    Negative,
    /// Above [`MAX_PRICE`].
    TooHigh,
}

impl std::fmt::Display for PriceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFinite => f.write_str("must be a finite number"),
            Self::Negative => f.write_str("must not be negative"),
            Self::TooHigh => write!(f, "must be at most {MAX_PRICE}"),
        }
    }
}

impl std::error::Error for PriceError {}

/// A decimal price (`per` currency units per `unit_size` items) as nanos per item: an error
/// when it is not finite, negative or above [`MAX_PRICE`]. `nanos_per_price_unit` is nanos per
/// item for a price of 1 (1 000 per million tokens, 1 000 000 per thousand searches).
pub fn to_nanos(price: f64, nanos_per_price_unit: f64) -> Result<u64, PriceError> {
    if !price.is_finite() {
        return Err(PriceError::NotFinite);
    }
    if price < 0.0 {
        return Err(PriceError::Negative);
    }
    if price > MAX_PRICE {
        return Err(PriceError::TooHigh);
    }
    Ok(scaled_up(price, nanos_per_price_unit))
}

/// `value × scale` as a whole number: the nearest one when within a millionth of it (`0.3` ×
/// 1000 is 300), else rounded up; saturating at `u64::MAX` (a value the caller checked is
/// finite and not negative).
pub fn scaled_up(value: f64, scale: f64) -> u64 {
    let scaled = value * scale;
    let nearest = scaled.round();
    let whole = if (scaled - nearest).abs() < 1e-6 { nearest } else { scaled.ceil() };
    // `as` saturates: NaN → 0, beyond u64 → u64::MAX.
    whole as u64
}

/// Nanos per token for a price per million tokens.
pub const PER_MILLION_TOKENS: f64 = 1_000.0;
/// Nanos per search for a price per thousand searches.
pub const PER_THOUSAND_SEARCHES: f64 = 1_000_000.0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::glob::Glob;

    fn row(glob: &str, input: u64, output: u64) -> PriceRow {
        PriceRow {
            models: GlobSet::new(vec![Glob::parse(glob).unwrap()]),
            prices: Prices {
                input,
                output,
                cache_write_5m: input * 5 / 4,
                cache_write_1h: input * 2,
                cache_read: input / 10,
                web_search: 10_000_000,
            },
        }
    }

    fn usage(input: u64, output: u64) -> Usage {
        Usage { input_tokens: Some(input), output_tokens: Some(output), ..Usage::default() }
    }

    #[test]
    fn per_million_prices_become_exact_nanos_per_token() {
        assert_eq!(to_nanos(3.0, PER_MILLION_TOKENS), Ok(3_000));
        assert_eq!(to_nanos(0.3, PER_MILLION_TOKENS), Ok(300));
        assert_eq!(to_nanos(0.08, PER_MILLION_TOKENS), Ok(80));
        assert_eq!(to_nanos(3.75, PER_MILLION_TOKENS), Ok(3_750));
        assert_eq!(to_nanos(10.0, PER_THOUSAND_SEARCHES), Ok(10_000_000));
        assert_eq!(to_nanos(0.0, PER_MILLION_TOKENS), Ok(0));
    }

    #[test]
    fn sub_nano_prices_round_up_never_down_to_free() {
        assert_eq!(to_nanos(0.0001, PER_MILLION_TOKENS), Ok(1));
        assert_eq!(to_nanos(0.0015, PER_MILLION_TOKENS), Ok(2));
    }

    #[test]
    fn invalid_prices_are_refused_with_a_reason() {
        assert_eq!(to_nanos(-1.0, PER_MILLION_TOKENS), Err(PriceError::Negative));
        assert_eq!(PriceError::Negative.to_string(), "must not be negative");
        assert!(to_nanos(f64::NAN, PER_MILLION_TOKENS).is_err());
        assert!(to_nanos(f64::INFINITY, PER_MILLION_TOKENS).is_err());
        assert!(to_nanos(MAX_PRICE * 2.0, PER_MILLION_TOKENS).is_err());
        assert_eq!(to_nanos(MAX_PRICE, PER_MILLION_TOKENS), Ok(1_000_000_000));
    }

    #[test]
    fn first_matching_row_prices_a_model() {
        let table =
            PriceTable::new("USD".into(), vec![row("claude-opus-*", 15_000, 75_000), row("claude-*", 3_000, 15_000)]);
        assert_eq!(table.cost("claude-opus-4-1", &usage(1_000, 100)), 15_000_000 + 7_500_000);
        assert_eq!(table.cost("claude-sonnet-4-5", &usage(1_000, 100)), 3_000_000 + 1_500_000);
    }

    #[test]
    fn a_model_without_a_row_costs_the_dearest_of_every_row() {
        let table = PriceTable::new(
            "USD".into(),
            vec![row("claude-haiku-*", 1_000, 5_000), row("claude-opus-*", 15_000, 75_000)],
        );
        assert_eq!(table.prices_for("gpt-9").input, 15_000);
        assert_eq!(table.prices_for("gpt-9").output, 75_000);
        assert!(table.cost("gpt-9", &usage(1, 1)) > 0);
    }

    #[test]
    fn every_usage_component_is_priced_and_cache_writes_without_a_split_cost_the_1h_rate() {
        let prices = row("*", 1_000, 5_000).prices;
        let usage = Usage {
            input_tokens: Some(10),
            output_tokens: Some(20),
            cache_creation_input_tokens: Some(100),
            ephemeral_5m_input_tokens: Some(30),
            ephemeral_1h_input_tokens: Some(50),
            cache_read_input_tokens: Some(1_000),
            web_search_requests: Some(2),
        };
        // 30 at 5m, 50 + 20 unexplained at 1h.
        let expected = 10 * 1_000 + 20 * 5_000 + 30 * 1_250 + 70 * 2_000 + 1_000 * 100 + 2 * 10_000_000;
        assert_eq!(prices.cost(&usage), expected);
    }

    #[test]
    fn huge_counts_saturate_instead_of_wrapping() {
        let prices = row("*", 1_000, 5_000).prices;
        assert_eq!(prices.cost(&usage(u64::MAX, u64::MAX)), u64::MAX);
        assert_eq!(prices.cost(&usage(u64::MAX / 1_000 + 1, 0)), u64::MAX);
    }

    #[test]
    fn money_is_shown_with_six_decimals() {
        assert_eq!(format_money(1_234_567_890, "USD"), "1.234567 USD");
        assert_eq!(format_money(0, "EUR"), "0.000000 EUR");
    }
}
