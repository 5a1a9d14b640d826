//! Spending limits on API keys: so many tokens, or so many dollars, per day or per month.

use std::fmt;

/// The period a budget counts over. Periods follow the UTC calendar: a day starts at 00:00
/// UTC, a month on its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BudgetPeriod {
    /// A UTC calendar day.
    Day,
    /// A UTC calendar month.
    Month,
}

impl BudgetPeriod {
    /// Its name: `day` or `month`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
        }
    }

    /// Reads `day` or `month`.
    pub fn parse(text: &str) -> Result<BudgetPeriod, String> {
        match text {
            "day" => Ok(BudgetPeriod::Day),
            "month" => Ok(BudgetPeriod::Month),
            other => Err(format!(
                "`{other}` is not a budget period; use day or month"
            )),
        }
    }
}

impl fmt::Display for BudgetPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetLimit {
    /// Input and output tokens together.
    Tokens(u64),
    /// Cost, in millionths of a US dollar (priced from the configured price table).
    UsdMicros(u64),
}

/// One limit on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Budget {
    /// Over what period.
    pub period: BudgetPeriod,
    /// How much.
    pub limit: BudgetLimit,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            BudgetLimit::Tokens(tokens) => write!(f, "{tokens} tokens per {}", self.period),
            BudgetLimit::UsdMicros(micros) => {
                write!(f, "${} per {}", format_usd(micros), self.period)
            }
        }
    }
}

/// Millionths of a dollar as dollars, with as many decimals as needed (at least two).
#[must_use]
pub fn format_usd(micros: u64) -> String {
    let whole = micros / 1_000_000;
    let fraction = micros % 1_000_000;
    let mut digits = format!("{fraction:06}");
    while digits.len() > 2 && digits.ends_with('0') {
        digits.pop();
    }
    format!("{whole}.{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_read_well() {
        let tokens = Budget {
            period: BudgetPeriod::Day,
            limit: BudgetLimit::Tokens(5000),
        };
        assert_eq!(tokens.to_string(), "5000 tokens per day");
        let dollars = Budget {
            period: BudgetPeriod::Month,
            limit: BudgetLimit::UsdMicros(12_500_000),
        };
        assert_eq!(dollars.to_string(), "$12.50 per month");
        assert_eq!(format_usd(1), "0.000001");
        assert_eq!(
            BudgetPeriod::parse("week").unwrap_err(),
            "`week` is not a budget period; use day or month"
        );
    }
}
