//! What an audit entry says, and its canonical form.

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::action::{Action, Actor};
use crate::canonical::{NotCanonical, push_string, write_object};
use crate::merkle::Hash;

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was tried and failed (a wrong password, an upstream error).
    Failure,
    /// It was refused: not allowed, or the vault was locked.
    Denied,
}

impl Outcome {
    /// The outcome as entries write it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

/// Something to record: who did what to what, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Who acted: `user:<id>`, `node`, `cli` (the local command line), `agent:<id>`, or
    /// `anonymous` (a failed login names the account tried in `details`).
    pub(crate) actor: String,
    /// What was done, dotted: `auth.login`, `secret.read`, `vault.unlock`, `config.provider.create`.
    pub(crate) action: String,
    /// What it was done to: `secret:node/openai`, `user:<id>`; empty when nothing in particular.
    pub(crate) target: String,
    /// How it ended.
    pub(crate) outcome: Outcome,
    /// Anything else worth keeping, as a JSON object of text, integers, booleans, arrays and
    /// objects. Never secrets.
    pub(crate) details: Map<String, Value>,
}

impl Event {
    /// An event with no details.
    pub fn new(actor: Actor, action: Action, target: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            actor: actor.to_string(),
            action: action.as_str().to_owned(),
            target: target.into(),
            outcome,
            details: Map::new(),
        }
    }

    /// Adds a detail.
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.details.insert(name.to_owned(), value.into());
        self
    }

    /// Checks the event can be recorded: short, printable fields and canonical details.
    pub fn check(&self) -> Result<(), NotCanonical> {
        for (field, text, max) in [
            ("actor", &self.actor, 256),
            ("action", &self.action, 128),
            ("target", &self.target, 512),
        ] {
            if text.len() > max || text.chars().any(char::is_control) {
                return Err(NotCanonical(format!(
                    "audit {field} must be at most {max} bytes with no control characters"
                )));
            }
        }
        if self.actor.is_empty() || self.action.is_empty() {
            return Err(NotCanonical(
                "audit entries need an actor and an action".into(),
            ));
        }
        write_object(&self.details, &mut String::new())
    }
}

/// An entry as it is hashed and signed: the event, its place in the log, its time, and the hash
/// of the entry before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its place in the log, from 0.
    pub seq: u64,
    /// When it was recorded, to the millisecond, UTC.
    pub time: OffsetDateTime,
    /// What happened.
    pub event: Event,
    /// The previous entry's leaf hash (all zeros for the first).
    pub prev: Hash,
}

/// Bytes as lower-case hex: how entries, checkpoints and proofs write hashes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

pub(crate) fn from_hex32(text: &str) -> Option<Hash> {
    // Lower case only: the canonical form has one spelling.
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

pub(crate) fn format_time(time: OffsetDateTime) -> String {
    let time = time.to_offset(time::UtcOffset::UTC);
    let millis = time.millisecond();
    let whole = time.replace_nanosecond(0).unwrap_or(time);
    let text = whole.format(&Rfc3339).unwrap_or_default();
    // `…:SSZ` → `…:SS.mmmZ`: a fixed width, so that the canonical form is unique.
    format!("{}.{millis:03}Z", text.trim_end_matches('Z'))
}

pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    (format_time(time) == text).then_some(time)
}

/// An entry as it is parsed: every field required, none other allowed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    details: Map<String, Value>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow)]
    prev: Cow<'a, str>,
    seq: u64,
    #[serde(borrow)]
    target: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

impl Entry {
    /// The canonical JSON that is hashed and signed. Written directly, members already in
    /// canonical order, since every append and every verification computes it.
    pub fn to_canonical(&self) -> Result<String, NotCanonical> {
        let mut out = String::with_capacity(256);
        out.push_str("{\"action\":");
        push_string(&self.event.action, &mut out);
        out.push_str(",\"actor\":");
        push_string(&self.event.actor, &mut out);
        out.push_str(",\"details\":");
        write_object(&self.event.details, &mut out)?;
        out.push_str(",\"outcome\":\"");
        out.push_str(self.event.outcome.as_str());
        out.push_str("\",\"prev\":\"");
        out.push_str(&hex(&self.prev));
        out.push_str("\",\"seq\":");
        out.push_str(&self.seq.to_string());
        out.push_str(",\"target\":");
        push_string(&self.event.target, &mut out);
        out.push_str(",\"time\":\"");
        out.push_str(&format_time(self.time));
        out.push_str("\"}");
        Ok(out)
    }

    /// Reads an entry back from its canonical JSON, refusing anything that is not exactly what
    /// [`to_canonical`](Self::to_canonical) writes.
    pub fn parse(text: &str) -> Result<Self, NotCanonical> {
        // Straight into the fields (strings borrowed where they need no unescaping): a
        // verifier parses every entry of the log.
        let raw: RawEntry<'_> = serde_json::from_str(text)
            .map_err(|err| NotCanonical(format!("not an entry as kai writes them: {err}")))?;
        let bad = |what: &str| NotCanonical(format!("entry field {what} is malformed"));
        let time = parse_time(&raw.time).ok_or_else(|| bad("time"))?;
        let outcome = Outcome::parse(&raw.outcome).ok_or_else(|| bad("outcome"))?;
        let prev = from_hex32(&raw.prev).ok_or_else(|| bad("prev"))?;
        let (seq, details) = (raw.seq, raw.details);
        let (actor, action, target) = (
            raw.actor.into_owned(),
            raw.action.into_owned(),
            raw.target.into_owned(),
        );
        let entry = Entry {
            seq,
            time,
            event: Event {
                actor,
                action,
                target,
                outcome,
                details,
            },
            prev,
        };
        // Written back, it must be the very text given: nothing reordered, spaced or escaped
        // otherwise.
        if entry.to_canonical()? != text {
            return Err(NotCanonical("entry is not in canonical form".into()));
        }
        Ok(entry)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An event with any fields, as an attacker or a bug might write them.
    fn raw(actor: &str, action: &str, target: &str, outcome: Outcome) -> Event {
        Event {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            outcome,
            details: Map::new(),
        }
    }

    #[test]
    fn entries_round_trip_through_their_canonical_form() {
        let entry = Entry {
            seq: 7,
            time: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).unwrap(),
            event: raw(
                "user:1",
                "secret.read",
                "secret:node/openai",
                Outcome::Success,
            )
            .with("request_id", "r1")
            .with("bytes", 12),
            prev: [0xab; 32],
        };
        let text = entry.to_canonical().unwrap();
        assert!(
            text.starts_with("{\"action\":\"secret.read\",\"actor\":\"user:1\""),
            "{text}"
        );
        assert!(
            text.contains("\"time\":\"2025-11-24T16:00:00.123Z\""),
            "{text}"
        );
        let back = Entry::parse(&text).unwrap();
        assert_eq!(back.seq, 7);
        assert_eq!(back.to_canonical().unwrap(), text);
        // Anything but the exact form is refused.
        assert!(
            Entry::parse(&text.replace("2025-11-24T16:00:00.123Z", "2025-11-24T16:00:00.1Z"))
                .is_err()
        );
        assert!(Entry::parse(&text.replace("\"success\"", "\"maybe\"")).is_err());
        assert!(Entry::parse(&text.replacen('{', "{\"extra\":1,", 1)).is_err());
    }

    #[test]
    fn events_are_checked() {
        assert!(raw("", "x", "", Outcome::Success).check().is_err());
        assert!(raw("a\nb", "x", "", Outcome::Success).check().is_err());
        assert!(
            raw("a", "x", "", Outcome::Success)
                .with("f", 0.5)
                .check()
                .is_err()
        );
        raw("a", "x", "", Outcome::Success)
            .with("n", -3)
            .check()
            .unwrap();
    }
}
