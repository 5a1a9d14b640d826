//! When a schedule fires: its spec (a cron expression or an interval) read in an IANA time
//! zone, and the fire times that follow from it.
//!
//! # Spec syntax
//!
//! - `cron: EXPRESSION`: five fields (minute, hour, day of month, month, day of week), or six
//!   with seconds first, as Vixie cron reads them: `*`, lists (`1,15`), ranges (`9-17`), steps
//!   (`*/15`, `0-30/10`), month and day names (`JAN`, `MON-FRI`); day 0 and 7 are Sunday, and
//!   when both day fields are restricted a day matching either fires. croner's extensions are
//!   accepted too (`L` for the last day, `5#2` for the second Friday, `15W` for the weekday
//!   nearest the 15th). Shortcuts: `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
//!   (`@midnight`), `@hourly`. Examples: `cron: 30 9 * * MON-FRI`, `cron: @daily`,
//!   `cron: */10 * * * * *` (every ten seconds).
//! - `every DURATION`: a fixed interval of elapsed time, from when the schedule was made or
//!   enabled: whole numbers with `d`, `h`, `m` or `s`, in that order, at least one second and at
//!   most 366 days. Examples: `every 30s`, `every 15m`, `every 1h30m`, `every 1d`.
//!
//! # Time zones and daylight saving
//!
//! A cron expression is read on the wall clock of its time zone (an IANA name such as
//! `Europe/Berlin`, or `UTC`), so `cron: 0 9 * * *` fires at nine local time in winter and in
//! summer. Where daylight saving moves the clock, kai follows Vixie cron (and croner):
//!
//! - a time that fixes its second, minute and hour to one value each (`30 2 * * *`) and falls
//!   in the hour the clock skips fires at the first instant after the gap (03:00 on the night
//!   the clock goes from 02:00 to 03:00), and when the clock goes back and repeats it, it fires
//!   once, at its first occurrence;
//! - an expression that repeats within the day (`*/15 * * * *`, `0 * * * *`) follows elapsed
//!   time instead: the times the gap skips do not exist and do not fire, and the repeated times
//!   fire on both passes, so that "every quarter of an hour" stays every quarter of an hour.
//!
//! Intervals ignore the zone: `every 1h` is an hour of elapsed time, whatever the clock does.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use kai_store::StoreError;
use time::OffsetDateTime;

/// Why a schedule could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Input that kai does not accept: the message names the field, says what is wrong and
    /// shows a valid value.
    #[error("{message}")]
    Invalid {
        /// What was wrong: `name`, `spec`, `time_zone`, `missed` or `job`.
        field: &'static str,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The database failed, or (as [`StoreError::Conflict`]) the owner already has a schedule
    /// of that name.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A valid spec, to show in messages.
const SPEC_EXAMPLES: &str = "`cron: 30 9 * * MON-FRI`, `cron: @daily` or `every 15m`";

/// The longest interval: longer ones are better said with a cron expression, and bounding it
/// keeps the date arithmetic far from overflow.
const LONGEST_INTERVAL: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// A parsed spec: when a schedule fires, before a time zone gives it instants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec(Form);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    /// A cron expression as written (blanks collapsed), read on a time zone's wall clock.
    Cron { expression: String, cron: Box<Cron> },
    /// A fixed interval of elapsed time (whole seconds).
    Every(Duration),
}

impl Spec {
    /// The cron expression, if it is one, as written (blanks collapsed).
    #[must_use]
    pub fn cron_expression(&self) -> Option<&str> {
        match &self.0 {
            Form::Cron { expression, .. } => Some(expression),
            Form::Every(_) => None,
        }
    }

    /// The interval, if it is one.
    #[must_use]
    pub fn interval(&self) -> Option<Duration> {
        match self.0 {
            Form::Cron { .. } => None,
            Form::Every(every) => Some(every),
        }
    }
}

impl FromStr for Spec {
    type Err = ScheduleError;

    /// Reads `cron: EXPRESSION` or `every DURATION` (see the [module](self) documentation).
    fn from_str(text: &str) -> Result<Spec, ScheduleError> {
        let text = text.trim();
        if let Some(expression) = text.strip_prefix("cron:") {
            return parse_cron(expression.trim());
        }
        if let Some(duration) = text.strip_prefix("every ") {
            return parse_every(duration.trim()).map(|every| Spec(Form::Every(every)));
        }
        Err(invalid_spec(format!(
            "`{text}` is not a schedule: write `cron: ` and a cron expression, or `every ` and \
             an interval, for example {SPEC_EXAMPLES}"
        )))
    }
}

impl fmt::Display for Spec {
    /// The spec as kai stores it: `cron: ` and the expression as given, or `every ` and the
    /// interval in its largest units (`every 90m` shows as `every 1h30m`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Form::Cron { expression, .. } => write!(f, "cron: {expression}"),
            Form::Every(every) => {
                f.write_str("every ")?;
                let mut left = every.as_secs();
                for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
                    if left >= secs {
                        write!(f, "{}{unit}", left / secs)?;
                        left %= secs;
                    }
                }
                Ok(())
            }
        }
    }
}

fn invalid_spec(message: String) -> ScheduleError {
    ScheduleError::Invalid {
        field: "spec",
        message,
    }
}

fn parse_cron(expression: &str) -> Result<Spec, ScheduleError> {
    let expression = expression.split_whitespace().collect::<Vec<_>>().join(" ");
    let explain = |why: String| {
        invalid_spec(format!(
            "`cron: {expression}` is not a cron expression kai reads ({why}): write five \
             fields (minute hour day-of-month month day-of-week), six with seconds first, or a \
             shortcut such as @daily; for example `cron: 30 9 * * MON-FRI`"
        ))
    };
    if expression.is_empty() {
        return Err(explain("it is empty".into()));
    }
    let fields = expression.split(' ').count();
    if !expression.starts_with('@') && !(5..=6).contains(&fields) {
        return Err(explain(format!("it has {fields} fields")));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(&expression)
        .map_err(|err| explain(err.to_string()))?;
    Ok(Spec(Form::Cron {
        expression,
        cron: Box::new(cron),
    }))
}

fn parse_every(text: &str) -> Result<Duration, ScheduleError> {
    let explain = |why: &str| {
        invalid_spec(format!(
            "`every {text}` is not an interval kai reads ({why}): write whole numbers with d, \
             h, m or s, largest first, from 1s to 366d; for example `every 15m` or \
             `every 1h30m`"
        ))
    };
    let compact: String = text.split_whitespace().collect();
    if compact.is_empty() {
        return Err(explain("it is empty"));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut last_unit = u64::MAX;
    for c in compact.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(explain(&format!("`{c}` is not a unit"))),
        };
        if number.is_empty() {
            return Err(explain(&format!("no number before `{c}`")));
        }
        if unit >= last_unit {
            return Err(explain("each unit once, largest first"));
        }
        last_unit = unit;
        let value: u64 = number
            .parse()
            .map_err(|_| explain("a number is too large"))?;
        number.clear();
        total = value
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| explain("it is too long"))?;
    }
    if !number.is_empty() {
        return Err(explain(&format!("`{number}` has no unit")));
    }
    if total == 0 {
        return Err(explain("it is zero"));
    }
    let every = Duration::from_secs(total);
    if every > LONGEST_INTERVAL {
        return Err(explain("it is longer than 366d; use a cron expression"));
    }
    Ok(every)
}

/// An IANA time zone by name, case-insensitively (`UTC` always exists).
fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("utc") {
        return Ok(TimeZone::UTC);
    }
    let database = jiff::tz::db();
    database.get(name).map_err(|_| {
        let message = if database.is_definitively_empty() {
            format!(
                "time zone `{name}` cannot be looked up: this machine has no time zone database \
                 (/usr/share/zoneinfo); install the `tzdata` package, or use `UTC`"
            )
        } else {
            format!(
                "`{name}` is not a time zone kai knows: use an IANA name such as \
                 `Europe/Berlin` or `America/New_York`, or `UTC`"
            )
        };
        ScheduleError::Invalid {
            field: "time_zone",
            message,
        }
    })
}

/// A spec in a time zone: the fire times of a schedule.
#[derive(Debug, Clone)]
pub struct Recurrence {
    spec: Spec,
    zone: TimeZone,
    zone_name: String,
}

impl Recurrence {
    /// Reads `spec` (see the [module](self) documentation) in the IANA time zone `time_zone`.
    /// Errors say what is wrong and show a valid example.
    pub fn new(spec: &str, time_zone: &str) -> Result<Recurrence, ScheduleError> {
        let spec: Spec = spec.parse()?;
        let zone = self::time_zone(time_zone)?;
        let zone_name = zone.iana_name().unwrap_or("UTC").to_owned();
        Ok(Recurrence {
            spec,
            zone,
            zone_name,
        })
    }

    /// The spec.
    #[must_use]
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The time zone's IANA name, as the database spells it (`america/new_york` reads as
    /// `America/New_York`).
    #[must_use]
    pub fn time_zone(&self) -> &str {
        &self.zone_name
    }

    /// The first fire of a schedule made, or enabled, at `now`: the cron expression's first
    /// time after `now`, or one interval after it. `None` if it never fires (`cron: 0 0 30 2 *`).
    #[must_use]
    pub fn first_fire(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match &self.spec.0 {
            Form::Cron { cron, .. } => self.cron_after(cron, now),
            Form::Every(every) => add(now, *every),
        }
    }

    /// The fire that follows the one at `fire`: the cron expression's next time, or one
    /// interval later. `None` if there is none.
    #[must_use]
    pub fn next_fire(&self, fire: OffsetDateTime) -> Option<OffsetDateTime> {
        match &self.spec.0 {
            Form::Cron { cron, .. } => self.cron_after(cron, fire),
            Form::Every(every) => add(fire, *every),
        }
    }

    /// The next `count` fires of a schedule made at `now`, to show before it is.
    #[must_use]
    pub fn upcoming(&self, now: OffsetDateTime, count: usize) -> Vec<OffsetDateTime> {
        let mut fires = Vec::with_capacity(count);
        let mut next = self.first_fire(now);
        while let Some(fire) = next.filter(|_| fires.len() < count) {
            fires.push(fire);
            next = self.next_fire(fire);
        }
        fires
    }

    /// For a schedule whose fire at `due` is older than `cutoff`: its last fire before
    /// `cutoff` and its first fire at or after it (`None` if there is none). The fires from
    /// `due` to that last one are the missed ones.
    #[must_use]
    pub fn catch_up(
        &self,
        due: OffsetDateTime,
        cutoff: OffsetDateTime,
    ) -> (OffsetDateTime, Option<OffsetDateTime>) {
        if cutoff <= due {
            return (due, Some(due));
        }
        match &self.spec.0 {
            Form::Every(every) => {
                let every_ms = i128::from(u64::try_from(every.as_millis()).unwrap_or(u64::MAX));
                let behind = (cutoff - due).whole_milliseconds();
                // Whole intervals from `due` to the first fire at or past the cutoff.
                let steps = (behind + every_ms - 1) / every_ms;
                let resume = add_millis(due, steps * every_ms);
                let last = add_millis(due, (steps - 1) * every_ms).unwrap_or(due);
                (last, resume)
            }
            Form::Cron { cron, .. } => {
                // Fires fall on whole seconds and times are kept to the millisecond, so the
                // first fire after one millisecond before the cutoff is the first at or past it.
                let resume = self.cron_after(cron, cutoff - time::Duration::MILLISECOND);
                let before = resume.unwrap_or(cutoff);
                let last = self
                    .zoned(before)
                    .and_then(|at| cron.find_previous_occurrence(&at, false).ok())
                    .and_then(|at| from_timestamp(at.timestamp()))
                    .filter(|last| *last >= due && *last < cutoff)
                    .unwrap_or(due);
                (last, resume)
            }
        }
    }

    fn zoned(&self, at: OffsetDateTime) -> Option<Zoned> {
        let millis = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?;
        Timestamp::from_millisecond(millis)
            .ok()
            .map(|timestamp| timestamp.to_zoned(self.zone.clone()))
    }

    /// The cron expression's first time strictly after `after`.
    fn cron_after(&self, cron: &Cron, after: OffsetDateTime) -> Option<OffsetDateTime> {
        // croner searches from the wall-clock second of `after`, excluding it: a fire on that
        // second is at or before `after` (fires fall on whole seconds), so none is skipped.
        let next = cron.find_next_occurrence(&self.zoned(after)?, false).ok()?;
        from_timestamp(next.timestamp())
    }
}

impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.spec, self.zone_name)
    }
}

fn from_timestamp(at: Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.as_millisecond()) * 1_000_000).ok()
}

/// `at + every`, to the millisecond, as the database keeps times.
fn add(at: OffsetDateTime, every: Duration) -> Option<OffsetDateTime> {
    add_millis(at, i128::try_from(every.as_millis()).ok()?)
}

fn add_millis(at: OffsetDateTime, millis: i128) -> Option<OffsetDateTime> {
    let start = at.unix_timestamp_nanos() / 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(start.checked_add(millis)? * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn recurrence(spec: &str, zone: &str) -> Recurrence {
        Recurrence::new(spec, zone).unwrap()
    }

    fn error(spec: &str, zone: &str) -> String {
        Recurrence::new(spec, zone).unwrap_err().to_string()
    }

    #[test]
    fn specs_read_and_show_in_their_stored_form() {
        for (text, shown) in [
            ("cron: 30 9 * * MON-FRI", "cron: 30 9 * * MON-FRI"),
            ("  cron:   0  */2 * * *  ", "cron: 0 */2 * * *"),
            ("cron: @daily", "cron: @daily"),
            ("cron: */10 * * * * *", "cron: */10 * * * * *"),
            ("cron: 0 18 * * 5#2", "cron: 0 18 * * 5#2"),
            ("cron: 0 0 L * *", "cron: 0 0 L * *"),
            ("every 15m", "every 15m"),
            ("every 90m", "every 1h30m"),
            ("every 1h 30m", "every 1h30m"),
            ("every 1d", "every 1d"),
            ("every 3600s", "every 1h"),
        ] {
            assert_eq!(text.parse::<Spec>().unwrap().to_string(), shown, "{text}");
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong_and_show_a_valid_one() {
        for (spec, says) in [
            ("0 9 * * *", "write `cron: `"),
            ("cron: 61 * * * *", "not a cron expression"),
            ("cron: * * *", "it has 3 fields"),
            ("cron: 0 0 0 1 1 * 2030", "it has 7 fields"),
            ("cron: ", "it is empty"),
            ("cron: @sometimes", "not a cron expression"),
            ("every 0m", "it is zero"),
            ("every 0s", "it is zero"),
            ("every 15", "has no unit"),
            ("every 15x", "not a unit"),
            ("every m", "no number"),
            ("every 30m1h", "largest first"),
            ("every 400d", "longer than 366d"),
            ("every 99999999999999999999d", "too large"),
        ] {
            let message = error(spec, "UTC");
            assert!(message.contains(says), "{spec}: {message}");
            assert!(
                message.contains("for example"),
                "{spec}: no example in {message}"
            );
        }
    }

    #[test]
    fn unknown_zones_are_refused_with_an_example() {
        let message = error("every 1h", "Europe/Atlantis");
        assert!(message.contains("Europe/Atlantis"), "{message}");
        assert!(message.contains("Europe/Berlin"), "{message}");
        assert_eq!(
            recurrence("every 1h", "america/new_york").time_zone(),
            "America/New_York"
        );
        assert_eq!(recurrence("every 1h", "utc").time_zone(), "UTC");
    }

    #[test]
    fn cron_fires_on_the_zones_wall_clock() {
        let weekdays = recurrence("cron: 30 9 * * MON-FRI", "Europe/Berlin");
        // Friday 2026-12-04 10:00 in Berlin (CET, UTC+1): next is Monday 09:30 CET.
        let fires = weekdays.upcoming(datetime!(2026-12-04 09:00 UTC), 3);
        assert_eq!(
            fires,
            [
                datetime!(2026-12-07 08:30 UTC),
                datetime!(2026-12-08 08:30 UTC),
                datetime!(2026-12-09 08:30 UTC),
            ]
        );
        // In summer (CEST, UTC+2) the same wall-clock time is an hour earlier in UTC.
        assert_eq!(
            weekdays.first_fire(datetime!(2026-07-01 00:00 UTC)),
            Some(datetime!(2026-07-01 07:30 UTC))
        );
        let seconds = recurrence("cron: */10 * * * * *", "UTC");
        assert_eq!(
            seconds.next_fire(datetime!(2026-12-07 12:00:00 UTC)),
            Some(datetime!(2026-12-07 12:00:10 UTC))
        );
        // A time between whole seconds: the fire on the next second is not skipped.
        assert_eq!(
            seconds.next_fire(datetime!(2026-12-07 12:00:09.999 UTC)),
            Some(datetime!(2026-12-07 12:00:10 UTC))
        );
        assert_eq!(
            recurrence("cron: @daily", "UTC").first_fire(datetime!(2026-12-07 12:00 UTC)),
            Some(datetime!(2026-12-08 00:00 UTC))
        );
        assert_eq!(
            recurrence("cron: 0 0 30 2 *", "UTC").first_fire(datetime!(2026-12-07 12:00 UTC)),
            None,
            "the 30th of February never comes"
        );
    }

    #[test]
    fn a_time_in_the_spring_forward_gap_fires_at_the_first_instant_after_it() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
        let daily = recurrence("cron: 30 2 * * *", "America/New_York");
        let fires = daily.upcoming(datetime!(2026-03-07 12:00 UTC), 3);
        assert_eq!(
            fires[0],
            datetime!(2026-03-08 07:00 UTC),
            "03:00 EDT, the first instant after the gap"
        );
        assert_eq!(
            fires,
            [
                datetime!(2026-03-08 03:00 -4),
                datetime!(2026-03-09 02:30 -4),
                datetime!(2026-03-10 02:30 -4),
            ]
            .map(|at| at.to_offset(time::UtcOffset::UTC))
        );
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        let berlin = recurrence("cron: 30 2 * * *", "Europe/Berlin");
        assert_eq!(
            berlin.first_fire(datetime!(2026-03-28 12:00 UTC)),
            Some(datetime!(2026-03-29 03:00 +2).to_offset(time::UtcOffset::UTC))
        );
        // An expression that repeats within the day skips the times that do not exist.
        let quarterly = recurrence("cron: */15 * * * *", "America/New_York");
        assert_eq!(
            quarterly.upcoming(datetime!(2026-03-08 01:40 -5), 2),
            [
                datetime!(2026-03-08 01:45 -5),
                datetime!(2026-03-08 03:00 -4)
            ]
            .map(|at| at.to_offset(time::UtcOffset::UTC))
        );
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once_at_its_first_occurrence() {
        // New York, 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice.
        let daily = recurrence("cron: 30 1 * * *", "America/New_York");
        let fires = daily.upcoming(datetime!(2026-10-31 12:00 UTC), 3);
        assert_eq!(
            fires,
            [
                datetime!(2026-11-01 01:30 -4),
                datetime!(2026-11-02 01:30 -5),
                datetime!(2026-11-03 01:30 -5),
            ]
            .map(|at| at.to_offset(time::UtcOffset::UTC))
        );
        // Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET.
        let berlin = recurrence("cron: 30 2 * * *", "Europe/Berlin");
        assert_eq!(
            berlin.upcoming(datetime!(2026-10-24 12:00 UTC), 2),
            [
                datetime!(2026-10-25 02:30 +2),
                datetime!(2026-10-26 02:30 +1)
            ]
            .map(|at| at.to_offset(time::UtcOffset::UTC))
        );
        // An hourly expression fires on both passes: an hour of elapsed time apart.
        let hourly = recurrence("cron: 30 * * * *", "America/New_York");
        assert_eq!(
            hourly.upcoming(datetime!(2026-11-01 00:45 -4), 3),
            [
                datetime!(2026-11-01 01:30 -4),
                datetime!(2026-11-01 01:30 -5),
                datetime!(2026-11-01 02:30 -5),
            ]
            .map(|at| at.to_offset(time::UtcOffset::UTC))
        );
    }

    #[test]
    fn intervals_count_elapsed_time_whatever_the_clock_does() {
        let hourly = recurrence("every 1h", "America/New_York");
        let start = datetime!(2026-11-01 00:30 -4);
        assert_eq!(
            hourly.upcoming(start, 3),
            [
                start + time::Duration::hours(1),
                start + time::Duration::hours(2),
                start + time::Duration::hours(3),
            ]
        );
        assert_eq!(
            hourly.first_fire(datetime!(2026-12-07 12:00:00.123456 UTC)),
            Some(datetime!(2026-12-07 13:00:00.123 UTC)),
            "kept to the millisecond, as the database keeps it"
        );
    }

    #[test]
    fn catching_up_finds_the_last_missed_fire_and_the_next_one() {
        let every = recurrence("every 10m", "UTC");
        let due = datetime!(2026-12-07 10:00 UTC);
        assert_eq!(
            every.catch_up(due, datetime!(2026-12-07 11:55 UTC)),
            (
                datetime!(2026-12-07 11:50 UTC),
                Some(datetime!(2026-12-07 12:00 UTC))
            )
        );
        assert_eq!(
            every.catch_up(due, datetime!(2026-12-07 12:00 UTC)),
            (
                datetime!(2026-12-07 11:50 UTC),
                Some(datetime!(2026-12-07 12:00 UTC))
            ),
            "a fire exactly at the cutoff is not missed"
        );
        let daily = recurrence("cron: 0 9 * * *", "Europe/Berlin");
        let due = datetime!(2026-12-01 08:00 UTC);
        assert_eq!(
            daily.catch_up(due, datetime!(2026-12-07 12:00 UTC)),
            (
                datetime!(2026-12-07 08:00 UTC),
                Some(datetime!(2026-12-08 08:00 UTC))
            )
        );
        assert_eq!(
            daily.catch_up(due, datetime!(2026-12-01 08:00:00.001 UTC)),
            (due, Some(datetime!(2026-12-02 08:00 UTC))),
            "only the fire that was due was missed"
        );
    }
}
