//! Business days: when a trade counts as done (its trade date, after the cut-off) and when it
//! settles (T+N business days, weekends and configured holidays skipped). All UTC.

use std::collections::BTreeSet;

use time::{Date, OffsetDateTime, Time, Weekday};

/// Julian day number of 1970-01-01, to turn dates into day numbers and back.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// Most business days a settlement lag may span (T+N), so a walk over days is bounded.
pub const SETTLE_DAYS_MAX: u32 = 30;

/// Longest run of non-business days the calendar walks through before it calls the
/// configuration broken (a year of holidays back to back).
const NON_BUSINESS_RUN_MAX: u32 = 366;

/// Trading days and the daily cut-off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    holidays: BTreeSet<Date>,
    cutoff: Time,
}

impl Calendar {
    /// A calendar with these holidays and this cut-off (UTC time of day).
    pub fn new(holidays: impl IntoIterator<Item = Date>, cutoff: Time) -> Calendar {
        Calendar { holidays: holidays.into_iter().collect(), cutoff }
    }

    /// True on a weekday that is not a holiday.
    pub fn is_business_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && !self.holidays.contains(&date)
    }

    /// The next business day strictly after `date`.
    pub fn next_business_day(&self, date: Date) -> Date {
        let mut d = date;
        for _ in 0..=NON_BUSINESS_RUN_MAX {
            d = d.next_day().unwrap_or(d);
            if self.is_business_day(d) {
                return d;
            }
        }
        // Config validation refuses more holidays than that in a row; stop rather than spin.
        d
    }

    /// The trade date of a trade at `ts_ns` (ns since the Unix epoch): its UTC date, moved to
    /// the next business day when it falls at or after the cut-off or on a non-business day.
    pub fn trade_date(&self, ts_ns: u64) -> Date {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ns))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let date = at.date();
        if at.time() >= self.cutoff || !self.is_business_day(date) {
            self.next_business_day(date)
        } else {
            date
        }
    }

    /// The settlement date of a trade at `ts_ns` with a lag of `days` business days.
    pub fn settle_date(&self, ts_ns: u64, days: u32) -> Date {
        let mut d = self.trade_date(ts_ns);
        for _ in 0..days.min(SETTLE_DAYS_MAX) {
            d = self.next_business_day(d);
        }
        d
    }
}

/// Day number (days since 1970-01-01) of a date.
pub fn day_number(date: Date) -> u32 {
    (date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY).max(0) as u32
}

/// The date of a day number.
pub fn date_of_day(day: u32) -> Date {
    Date::from_julian_day(UNIX_EPOCH_JULIAN_DAY + day as i32).unwrap_or(Date::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime, time};

    fn ns(at: OffsetDateTime) -> u64 {
        at.unix_timestamp_nanos() as u64
    }

    #[test]
    fn t_plus_n_skips_weekends_holidays_and_respects_the_cutoff() {
        let cal = Calendar::new([date!(2026 - 12 - 25)], time!(16:00));
        // Thursday 2026-12-24 before the cut-off: T+1 skips the Friday holiday and the weekend.
        assert_eq!(cal.settle_date(ns(datetime!(2026-12-24 15:59 UTC)), 1), date!(2026 - 12 - 28));
        // At the cut-off the trade date is the next business day (Monday), settling Tuesday.
        assert_eq!(cal.trade_date(ns(datetime!(2026-12-24 16:00 UTC))), date!(2026 - 12 - 28));
        assert_eq!(cal.settle_date(ns(datetime!(2026-12-24 16:00 UTC)), 1), date!(2026 - 12 - 29));
        // A Saturday trade is a Monday trade; T+2 is Wednesday.
        assert_eq!(cal.settle_date(ns(datetime!(2026-12-05 10:00 UTC)), 2), date!(2026 - 12 - 09));
        // T+0 settles on the trade date.
        assert_eq!(cal.settle_date(ns(datetime!(2026-12-07 10:00 UTC)), 0), date!(2026 - 12 - 07));
    }

    #[test]
    fn day_numbers_round_trip() {
        assert_eq!(day_number(date!(1970 - 01 - 01)), 0);
        assert_eq!(date_of_day(day_number(date!(2026 - 12 - 28))), date!(2026 - 12 - 28));
    }
}
