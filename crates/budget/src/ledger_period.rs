//! Budget periods: `budget_duration` strings (`30s`, `5m`, `2h`, `1d`, `1w`, `1mo`) and the end
//! of the period a budget is in now.
//!
//! Every replica must agree on the period without talking to the others, so the end is a pure
//! function of the stored `budget_reset_at`, the duration and the clock: a stored reset time
//! still ahead is the end; one that passed is stepped forward by whole durations; with none
//! stored, periods are aligned on the Unix epoch (calendar months for `mo`).

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};

/// A parsed `budget_duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetDuration {
    /// A fixed number of seconds (`s`, `m`, `h`, `d`, `w`).
    Seconds(u64),
    /// Calendar months (`mo`).
    Months(u32),
}

impl BudgetDuration {
    /// Parses LiteLLM's duration strings; `None` for anything else (the budget then never
    /// resets, as LiteLLM does with a value it cannot read).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "mo" => return u32::try_from(n).ok().map(BudgetDuration::Months),
            _ => return None,
        };
        n.checked_mul(seconds).map(BudgetDuration::Seconds)
    }

    fn after(self, from: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            BudgetDuration::Seconds(secs) => {
                from + Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2_000))
            }
            BudgetDuration::Months(months) => add_months(from, months),
        }
    }
}

fn add_months(from: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    from.checked_add_months(chrono::Months::new(months))
        .unwrap_or(from)
}

/// The end of the period `now` is in (the next reset).
pub fn current_period_end(
    duration: BudgetDuration,
    stored_reset_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match stored_reset_at {
        Some(reset_at) if reset_at > now => reset_at,
        Some(reset_at) => step_past(duration, reset_at, now),
        None => epoch_aligned_end(duration, now),
    }
}

/// The first `start + k * duration` (k ≥ 1) after `now`.
fn step_past(duration: BudgetDuration, start: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    match duration {
        BudgetDuration::Seconds(secs) => {
            let secs = i64::try_from(secs.max(1)).unwrap_or(i64::MAX / 2_000);
            let behind = (now - start).num_seconds().max(0);
            let steps = behind / secs + 1;
            start + Duration::seconds(steps.saturating_mul(secs))
        }
        BudgetDuration::Months(_) => {
            let mut end = duration.after(start);
            // Bounded: a month-long step reaches any realistic `now` in a few hundred steps.
            for _ in 0..100_000 {
                if end > now {
                    break;
                }
                end = duration.after(end);
            }
            end
        }
    }
}

fn epoch_aligned_end(duration: BudgetDuration, now: DateTime<Utc>) -> DateTime<Utc> {
    match duration {
        BudgetDuration::Seconds(secs) => {
            let secs = i64::try_from(secs.max(1)).unwrap_or(i64::MAX / 2_000);
            let next = (now.timestamp().div_euclid(secs) + 1).saturating_mul(secs);
            Utc.timestamp_opt(next, 0).single().unwrap_or(now)
        }
        BudgetDuration::Months(months) => {
            let months = i64::from(months.max(1));
            let index = i64::from(now.year()) * 12 + i64::from(now.month0());
            let next = (index.div_euclid(months) + 1) * months;
            let year = i32::try_from(next.div_euclid(12)).unwrap_or(now.year());
            let month = u32::try_from(next.rem_euclid(12)).unwrap_or(0) + 1;
            Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
                .single()
                .unwrap_or(now)
        }
    }
}

/// The spend that counts in the current period: the stored spend while its period lasts,
/// zero once the stored `budget_reset_at` has passed (the reset is due).
pub fn spend_in_current_period(
    stored_spend: f64,
    stored_reset_at: Option<DateTime<Utc>>,
    has_duration: bool,
    now: DateTime<Utc>,
) -> f64 {
    match stored_reset_at {
        Some(reset_at) if has_duration && reset_at <= now => 0.0,
        _ => stored_spend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_litellm_durations() {
        assert_eq!(
            BudgetDuration::parse("30s"),
            Some(BudgetDuration::Seconds(30))
        );
        assert_eq!(
            BudgetDuration::parse("5m"),
            Some(BudgetDuration::Seconds(300))
        );
        assert_eq!(
            BudgetDuration::parse("2h"),
            Some(BudgetDuration::Seconds(7_200))
        );
        assert_eq!(
            BudgetDuration::parse("1d"),
            Some(BudgetDuration::Seconds(86_400))
        );
        assert_eq!(
            BudgetDuration::parse("1w"),
            Some(BudgetDuration::Seconds(604_800))
        );
        assert_eq!(
            BudgetDuration::parse("1mo"),
            Some(BudgetDuration::Months(1))
        );
        for bad in ["", "d", "0d", "5x", "1.5d", "-1d", "99999999999999999999s"] {
            assert_eq!(BudgetDuration::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_stored_reset_ahead_is_the_end_and_a_passed_one_steps_forward() {
        let day = BudgetDuration::Seconds(86_400);
        let now = at("2026-03-10T12:00:00Z");
        assert_eq!(
            current_period_end(day, Some(at("2026-03-11T00:00:00Z")), now),
            at("2026-03-11T00:00:00Z")
        );
        // Passed three and a half days ago: four steps.
        assert_eq!(
            current_period_end(day, Some(at("2026-03-07T00:00:00Z")), now),
            at("2026-03-11T00:00:00Z")
        );
        // Exactly now counts as passed.
        assert_eq!(
            current_period_end(day, Some(now), now),
            at("2026-03-11T12:00:00Z")
        );
        let month = BudgetDuration::Months(1);
        // Jan 31 + 1 month clamps to Feb 28, then Mar 28.
        assert_eq!(
            current_period_end(month, Some(at("2026-01-31T00:00:00Z")), now),
            at("2026-03-28T00:00:00Z")
        );
        assert!(current_period_end(month, Some(at("2026-01-31T00:00:00Z")), now) > now);
    }

    #[test]
    fn without_a_stored_reset_periods_align_on_the_epoch() {
        let now = at("2026-03-10T12:00:07Z");
        assert_eq!(
            current_period_end(BudgetDuration::Seconds(30), None, now),
            at("2026-03-10T12:00:30Z")
        );
        assert_eq!(
            current_period_end(BudgetDuration::Seconds(86_400), None, now),
            at("2026-03-11T00:00:00Z")
        );
        assert_eq!(
            current_period_end(BudgetDuration::Months(1), None, now),
            at("2026-04-01T00:00:00Z")
        );
        assert_eq!(
            current_period_end(BudgetDuration::Months(12), None, now),
            at("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn spend_counts_only_while_its_period_lasts() {
        let now = at("2026-03-10T12:00:00Z");
        assert_eq!(
            spend_in_current_period(5.0, Some(at("2026-03-11T00:00:00Z")), true, now),
            5.0
        );
        assert_eq!(
            spend_in_current_period(5.0, Some(at("2026-03-09T00:00:00Z")), true, now),
            0.0
        );
        // No duration: the stored reset time means nothing.
        assert_eq!(
            spend_in_current_period(5.0, Some(at("2026-03-09T00:00:00Z")), false, now),
            5.0
        );
        assert_eq!(spend_in_current_period(5.0, None, true, now), 5.0);
    }
}
