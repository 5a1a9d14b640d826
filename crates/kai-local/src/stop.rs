//! Stop sequences over streamed text. Text that could be the start of a stop sequence is held
//! back until the next piece shows whether it is, so nothing is ever sent and then retracted.

/// Watches an answer's text for the request's stop sequences.
#[derive(Debug)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What a piece of text comes to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Send this (possibly empty) text and go on.
    Continue(String),
    /// A stop sequence appeared: send this text, which ends before it, and stop.
    Stopped(String),
}

impl StopMatcher {
    /// A matcher for these sequences (empty ones are ignored).
    pub(crate) fn new(stops: &[String]) -> StopMatcher {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds the next piece of the answer.
    pub(crate) fn push(&mut self, piece: &str) -> Scan {
        self.held.push_str(piece);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(at) = first_stop {
            let mut text = std::mem::take(&mut self.held);
            text.truncate(at);
            return Scan::Stopped(text);
        }
        // Hold back the longest tail that some stop sequence starts with.
        let hold_from = self
            .held
            .char_indices()
            .map(|(at, _)| at)
            .find(|&at| {
                let tail = &self.held[at..];
                self.stops.iter().any(|stop| stop.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let kept = self.held.split_off(hold_from);
        Scan::Continue(std::mem::replace(&mut self.held, kept))
    }

    /// The answer ended without a stop sequence: what was held back is text after all.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(stops: &[&str]) -> StopMatcher {
        StopMatcher::new(&stops.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn text_without_stops_passes_straight_through() {
        let mut m = matcher(&[]);
        assert_eq!(m.push("Hello"), Scan::Continue("Hello".into()));
        assert_eq!(m.finish(), "");
    }

    #[test]
    fn a_possible_start_is_held_until_decided() {
        let mut m = matcher(&["END"]);
        assert_eq!(m.push("The E"), Scan::Continue("The ".into()));
        assert_eq!(m.push("N"), Scan::Continue(String::new()));
        assert_eq!(m.push("D and more"), Scan::Stopped(String::new()));

        let mut m = matcher(&["END"]);
        assert_eq!(m.push("The E"), Scan::Continue("The ".into()));
        assert_eq!(m.push("Nd"), Scan::Continue("ENd".into()));
        assert_eq!(m.push(" E"), Scan::Continue(" ".into()));
        assert_eq!(m.finish(), "E");
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        let mut m = matcher(&["world", "lo"]);
        assert_eq!(m.push("Hello world"), Scan::Stopped("Hel".into()));
    }

    #[test]
    fn multibyte_text_is_split_on_character_boundaries() {
        let mut m = matcher(&["é!"]);
        assert_eq!(m.push("café"), Scan::Continue("caf".into()));
        assert_eq!(m.push("?"), Scan::Continue("é?".into()));
        assert_eq!(m.push("é!"), Scan::Stopped(String::new()));
    }
}
