//! Retry timing: exponential backoff with jitter, attempt and age limits, and
//! parsing of `Retry-After` and HTTP dates.
//!
//! In scope: pure arithmetic on milliseconds. The caller passes in the current
//! time and a random number; nothing here reads a clock, sleeps or schedules.
//!
//! Out of scope: deciding *whether* an attempt should be retried (see
//! [`super::outcome`]) and arming timers or `sync` registrations (the worker).

/// Milliseconds in one day.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// How long to wait between attempts, and when to give up.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry, in ms.
    pub base_delay_ms: u64,
    /// Multiplier applied per further retry; values below 1 (or NaN) count as 1.
    pub factor: f64,
    /// Upper bound for any delay, in ms.
    pub max_delay_ms: u64,
    /// Attempts after which an entry fails with `max_attempts`.
    pub max_attempts: u32,
    /// Age (since created-at) after which an entry fails with `expired`.
    pub retention_ms: u64,
}

impl Default for RetryPolicy {
    /// 2 s base, doubling, capped at 10 min, 12 attempts, kept 14 days.
    fn default() -> Self {
        RetryPolicy {
            base_delay_ms: 2_000,
            factor: 2.0,
            max_delay_ms: 10 * 60 * 1000,
            max_attempts: 12,
            retention_ms: 14 * DAY_MS,
        }
    }
}

impl RetryPolicy {
    /// Delay before the next retry when `attempt` attempts have been made
    /// (counting from 1): `min(max_delay, base * factor^(attempt - 1))`.
    /// Attempt 0 is treated as 1. Saturates instead of overflowing.
    pub fn nominal_delay_ms(&self, attempt: u32) -> u64 {
        let base = self.base_delay_ms;
        let cap = self.max_delay_ms;
        let exponent = attempt.saturating_sub(1);
        if exponent == 0 || base == 0 {
            return base.min(cap);
        }
        // NaN fails the comparison and counts as 1; a shrinking delay makes no sense.
        let factor = if self.factor >= 1.0 { self.factor } else { 1.0 };
        let delay = base as f64 * factor.powf(f64::from(exponent));
        if delay.is_nan() || delay >= cap as f64 {
            return cap;
        }
        // `max(base)` keeps the sequence non-decreasing when `base` is too
        // large to be exact in an f64.
        (delay as u64).max(base).min(cap)
    }

    /// The nominal delay with "equal jitter": a value in
    /// `[nominal / 2, nominal]`, chosen by `random` (expected in `[0, 1)`;
    /// other values are clamped, NaN counts as 0).
    pub fn backoff_ms(&self, attempt: u32, random: f64) -> u64 {
        let nominal = self.nominal_delay_ms(attempt);
        let random = if random.is_nan() {
            0.0
        } else {
            random.clamp(0.0, 1.0)
        };
        let floor = nominal / 2;
        let span = nominal - floor;
        let extra = (span as f64 * random) as u64;
        floor.saturating_add(extra).min(nominal)
    }

    /// True when `attempts` attempts use up the allowed maximum.
    pub fn attempts_exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }

    /// True when an entry created at `created_at_ms` is older than the
    /// retention time at `now_ms`. A created-at in the future is not expired.
    pub fn expired(&self, created_at_ms: u64, now_ms: u64) -> bool {
        now_ms.saturating_sub(created_at_ms) > self.retention_ms
    }
}

/// Parses a `Retry-After` value, either delta-seconds (`"120"`) or an HTTP
/// date (see [`parse_http_date`]). Returns the delay in ms from `now_ms`
/// (0 when the date is already past), or `None` when unparseable.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // All digits, so parsing can only fail by overflow: treat as "very long".
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(seconds.saturating_mul(1000));
    }
    parse_http_date(value).map(|at_ms| at_ms.saturating_sub(now_ms))
}

/// Parses an HTTP date (RFC 9110 §5.6.7) into ms since the Unix epoch.
///
/// Accepts the three forms recipients must accept:
/// - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// - RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` (two-digit years below 70 are
///   20xx, the rest 19xx: without a clock, the usual fixed pivot)
/// - asctime: `Sun Nov  6 08:49:37 1994`
///
/// Weekday names are checked to be weekday names but not against the date.
/// Dates before 1970 and invalid calendar dates give `None`.
pub fn parse_http_date(value: &str) -> Option<u64> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let date = match fields.as_slice() {
        [weekday, day, month, year, time, zone] => {
            weekday_name(weekday.strip_suffix(',')?)?;
            gmt(zone)?;
            CivilTime {
                year: number(year, 4, 4)?,
                month: month_number(month)?,
                day: number(day, 1, 2)?,
                clock: clock(time)?,
            }
        }
        [weekday, day_month_year, time, zone] => {
            weekday_name(weekday.strip_suffix(',')?)?;
            gmt(zone)?;
            let mut parts = day_month_year.split('-');
            let day = number(parts.next()?, 1, 2)?;
            let month = month_number(parts.next()?)?;
            let short_year = number(parts.next()?, 2, 2)?;
            if parts.next().is_some() {
                return None;
            }
            let century = if short_year < 70 { 2000 } else { 1900 };
            CivilTime {
                year: century + short_year,
                month,
                day,
                clock: clock(time)?,
            }
        }
        [weekday, month, day, time, year] => {
            weekday_name(weekday)?;
            CivilTime {
                year: number(year, 4, 4)?,
                month: month_number(month)?,
                day: number(day, 1, 2)?,
                clock: clock(time)?,
            }
        }
        _ => return None,
    };
    date.epoch_ms()
}

/// A calendar date and time of day in UTC.
struct CivilTime {
    year: u32,
    month: u32,
    day: u32,
    /// Hour, minute, second.
    clock: (u32, u32, u32),
}

impl CivilTime {
    fn epoch_ms(&self) -> Option<u64> {
        if self.year < 1970 || self.day == 0 || self.day > days_in_month(self.year, self.month)? {
            return None;
        }
        let (hour, minute, second) = self.clock;
        let days = days_since_epoch(
            u64::from(self.year),
            u64::from(self.month),
            u64::from(self.day),
        );
        let seconds =
            days * 86_400 + u64::from(hour) * 3_600 + u64::from(minute) * 60 + u64::from(second);
        Some(seconds * 1000)
    }
}

/// Days from 1970-01-01 to the given date (year >= 1970), after Howard
/// Hinnant's `days_from_civil` (<https://howardhinnant.github.io/date_algorithms.html>).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: u32, month: u32) -> Option<u32> {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    })
}

/// A run of `min..=max` ASCII digits as a number.
fn number(text: &str, min: usize, max: usize) -> Option<u32> {
    let fits = (min..=max).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_digit());
    if fits {
        text.parse().ok()
    } else {
        None
    }
}

/// `HH:MM:SS`; a leap second (`:60`) is accepted.
fn clock(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(':');
    let hour = number(parts.next()?, 2, 2)?;
    let minute = number(parts.next()?, 2, 2)?;
    let second = number(parts.next()?, 2, 2)?;
    let valid = parts.next().is_none() && hour < 24 && minute < 60 && second <= 60;
    valid.then_some((hour, minute, second))
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    (1..)
        .zip(MONTHS)
        .find(|(_, month)| month.eq_ignore_ascii_case(name))
        .map(|(number, _)| number)
}

/// Short (`Sun`) or long (`Sunday`) weekday name, any case.
fn weekday_name(name: &str) -> Option<()> {
    const WEEKDAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    WEEKDAYS
        .iter()
        .any(|day| {
            day.eq_ignore_ascii_case(name)
                || day
                    .get(..3)
                    .is_some_and(|short| short.eq_ignore_ascii_case(name))
        })
        .then_some(())
}

fn gmt(zone: &str) -> Option<()> {
    zone.eq_ignore_ascii_case("GMT").then_some(())
}

// proptest is a host-only dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Sun, 06 Nov 1994 08:49:37 GMT`, the RFC's example.
    const RFC_EXAMPLE_MS: u64 = 784_111_777_000;

    #[test]
    fn default_policy_doubles_from_two_seconds_up_to_ten_minutes() {
        let policy = RetryPolicy::default();
        let delays: Vec<u64> = (1..=11).map(|n| policy.nominal_delay_ms(n)).collect();
        assert_eq!(
            delays,
            [
                2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000, 600_000,
                600_000
            ]
        );
        assert_eq!(policy.max_attempts, 12);
        assert_eq!(policy.retention_ms, 1_209_600_000);
    }

    #[test]
    fn attempt_zero_counts_as_the_first_retry() {
        assert_eq!(RetryPolicy::default().nominal_delay_ms(0), 2_000);
    }

    #[test]
    fn huge_attempt_counts_and_odd_factors_stay_at_the_cap() {
        let mut policy = RetryPolicy::default();
        assert_eq!(policy.nominal_delay_ms(u32::MAX), 600_000);
        policy.factor = f64::INFINITY;
        assert_eq!(policy.nominal_delay_ms(2), 600_000);
        policy.factor = f64::NAN;
        assert_eq!(policy.nominal_delay_ms(5), 2_000);
        policy.factor = 0.5;
        assert_eq!(policy.nominal_delay_ms(5), 2_000);
    }

    #[test]
    fn a_base_above_the_cap_is_capped() {
        let policy = RetryPolicy {
            base_delay_ms: u64::MAX,
            max_delay_ms: 1_000,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.nominal_delay_ms(1), 1_000);
        assert_eq!(policy.nominal_delay_ms(3), 1_000);
    }

    #[test]
    fn jitter_spans_half_to_full_nominal() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff_ms(3, 0.0), 4_000);
        assert_eq!(policy.backoff_ms(3, 0.5), 6_000);
        assert_eq!(policy.backoff_ms(3, 0.999_999), 7_999);
    }

    #[test]
    fn jitter_clamps_out_of_range_randomness() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff_ms(3, -4.0), 4_000);
        assert_eq!(policy.backoff_ms(3, f64::NAN), 4_000);
        assert_eq!(policy.backoff_ms(3, 7.0), 8_000);
        assert_eq!(policy.backoff_ms(3, f64::INFINITY), 8_000);
    }

    #[test]
    fn the_twelfth_attempt_exhausts_the_default_policy() {
        let policy = RetryPolicy::default();
        assert!(!policy.attempts_exhausted(11));
        assert!(policy.attempts_exhausted(12));
        assert!(policy.attempts_exhausted(13));
    }

    #[test]
    fn entries_expire_after_fourteen_days() {
        let policy = RetryPolicy::default();
        let created = 1_000;
        assert!(!policy.expired(created, created + 14 * DAY_MS));
        assert!(policy.expired(created, created + 14 * DAY_MS + 1));
        assert!(!policy.expired(created + 5, created), "future created-at");
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after("120", 5), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", 5), Some(0));
        assert_eq!(
            parse_retry_after("99999999999999999999999", 0),
            Some(u64::MAX)
        );
    }

    #[test]
    fn retry_after_as_a_date() {
        let value = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            parse_retry_after(value, RFC_EXAMPLE_MS - 30_000),
            Some(30_000)
        );
        assert_eq!(
            parse_retry_after(value, RFC_EXAMPLE_MS + 1),
            Some(0),
            "past date"
        );
    }

    #[test]
    fn retry_after_garbage_is_none() {
        for value in ["", "-5", "1.5", "+3", "soon", "120s", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(value, 0), None, "{value:?}");
        }
    }

    #[test]
    fn the_three_http_date_forms_agree() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RFC_EXAMPLE_MS)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(RFC_EXAMPLE_MS)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(RFC_EXAMPLE_MS)
        );
    }

    #[test]
    fn http_date_edges() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT"),
            Some(946_684_800_000)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400_000)
        );
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799_000)
        );
    }

    #[test]
    fn invalid_http_dates_are_none() {
        for value in [
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Thu, 29 Feb 2001 00:00:00 GMT",
            "Thu, 31 Apr 2001 00:00:00 GMT",
            "Thu, 00 Apr 2001 00:00:00 GMT",
            "Thu, 01 Foo 2001 00:00:00 GMT",
            "Thu, 01 Apr 2001 24:00:00 GMT",
            "Thu, 01 Apr 2001 12:00:00 PST",
            "Thu 01 Apr 2001 12:00:00 GMT",
            "Xyz, 01 Apr 2001 12:00:00 GMT",
            "Thu, 01 Apr 2001 12:00 GMT",
            "Sunday, 06-Nov-94-1 08:49:37 GMT",
            "Sun Nov 6 08:49:37 94",
        ] {
            assert_eq!(parse_http_date(value), None, "{value:?}");
        }
    }

    fn policy_strategy() -> impl Strategy<Value = RetryPolicy> {
        let factor = prop_oneof![
            0.0..10.0f64,
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-1.0),
            Just(1.0),
            any::<f64>(),
        ];
        let base = prop_oneof![0..100_000u64, any::<u64>()];
        let cap = prop_oneof![0..10_000_000u64, any::<u64>()];
        (base, factor, cap, any::<u32>(), any::<u64>()).prop_map(
            |(base_delay_ms, factor, max_delay_ms, max_attempts, retention_ms)| RetryPolicy {
                base_delay_ms,
                factor,
                max_delay_ms,
                max_attempts,
                retention_ms,
            },
        )
    }

    proptest! {
        #[test]
        fn backoff_stays_within_half_to_full_nominal_and_the_cap(
            policy in policy_strategy(),
            attempt in prop_oneof![0..40u32, any::<u32>()],
            random in prop_oneof![0.0..1.0f64, any::<f64>()],
        ) {
            let nominal = policy.nominal_delay_ms(attempt);
            let backoff = policy.backoff_ms(attempt, random);
            prop_assert!(backoff >= nominal / 2);
            prop_assert!(backoff <= nominal);
            prop_assert!(backoff <= policy.max_delay_ms);
        }

        #[test]
        fn nominal_delay_never_decreases(
            policy in policy_strategy(),
            attempt in prop_oneof![0..40u32, 0..u32::MAX],
        ) {
            prop_assert!(policy.nominal_delay_ms(attempt) <= policy.nominal_delay_ms(attempt + 1));
        }

        #[test]
        fn parsers_never_panic(value in ".*", now in any::<u64>()) {
            let _ = parse_retry_after(&value, now);
            let _ = parse_http_date(&value);
        }

        #[test]
        fn parsers_never_panic_on_near_dates(
            value in "[A-Za-z]{0,9},? [0-9]{0,3}[ -][A-Za-z]{0,4}[ -][0-9]{0,5} [0-9:]{0,9} [A-Z]{0,3}",
            now in any::<u64>(),
        ) {
            let _ = parse_retry_after(&value, now);
            let _ = parse_http_date(&value);
        }
    }
}
