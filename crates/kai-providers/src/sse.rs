//! Server-sent events, read as the WHATWG HTML standard says
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>):
//! lines end in CRLF, LF or CR; `data` lines accumulate, joined by newlines; a blank line
//! dispatches; comments (`:`), `id`, `retry` and unknown fields are skipped; a leading BOM is
//! dropped; an event not closed by a blank line when the stream ends is discarded.
//!
//! kai reads every provider's stream through this, so it works on bytes in place: a general
//! parser (the `eventsource-stream` crate's) cost several times the JSON decoding of each
//! event.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its type: the last `event` field, or `message`.
    pub event: String,
    /// Its `data` lines, joined by `\n`.
    pub data: String,
}

/// Why an event stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SseError<E> {
    /// The bytes did not arrive.
    #[error(transparent)]
    Transport(E),
    /// A line is not UTF-8.
    #[error("the event stream is not UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
}

/// Turns bytes, as they arrive, into events.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes not yet read, from `start` on.
    buffer: Vec<u8>,
    start: usize,
    /// Past the optional byte-order mark at the very beginning.
    begun: bool,
    event: String,
    data: String,
    /// Whether a `data` field was seen since the last dispatch (data may be empty).
    has_data: bool,
}

impl SseParser {
    /// Adds bytes read from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole event in what has been fed, if there is one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, std::str::Utf8Error> {
        if !self.begun {
            let pending = &self.buffer[self.start..];
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if pending.len() < BOM.len() && BOM.starts_with(pending) {
                return Ok(None);
            }
            if pending.starts_with(BOM) {
                self.start += BOM.len();
            }
            self.begun = true;
        }
        while let Some((line_end, next)) = self.line_end() {
            let line = std::str::from_utf8(&self.buffer[self.start..line_end]);
            let line = match line {
                Ok(line) => line,
                Err(err) => {
                    self.start = next;
                    return Err(err);
                }
            };
            let event = if line.is_empty() {
                self.dispatch()
            } else {
                let (field, value) = match memchr::memchr(b':', line.as_bytes()) {
                    Some(colon) => {
                        let value = &line[colon + 1..];
                        (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
                    }
                    None => (line, ""),
                };
                match field {
                    "" => {}
                    "event" => {
                        self.event.clear();
                        self.event.push_str(value);
                    }
                    "data" => {
                        if self.has_data {
                            self.data.push('\n');
                        }
                        self.data.push_str(value);
                        self.has_data = true;
                    }
                    // `id` and `retry` matter to a browser reconnecting, never to kai.
                    _ => {}
                }
                None
            };
            self.start = next;
            if event.is_some() {
                return Ok(event);
            }
        }
        Ok(None)
    }

    /// Where the first whole line of the buffer ends, and where the one after it starts.
    fn line_end(&self) -> Option<(usize, usize)> {
        let pending = &self.buffer[self.start..];
        let at = memchr::memchr2(b'\n', b'\r', pending)?;
        let end = self.start + at;
        if pending[at] == b'\n' {
            return Some((end, end + 1));
        }
        // A CR may be half of a CRLF whose LF has not arrived yet.
        match pending.get(at + 1) {
            Some(b'\n') => Some((end, end + 2)),
            Some(_) => Some((end, end + 1)),
            None => None,
        }
    }

    /// At the stream's end, a CR that ends the buffer ends its line.
    fn finish(&mut self) {
        if self.buffer[self.start..].ends_with(b"\r") {
            self.buffer.push(b'\n');
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
        })
    }
}

/// The events of a byte stream.
pub fn sse_events<S, E>(bytes: S) -> SseStream<S>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    SseStream {
        bytes,
        parser: SseParser::default(),
        ended: false,
    }
}

/// The stream [`sse_events`] returns.
#[derive(Debug)]
pub struct SseStream<S> {
    bytes: S,
    parser: SseParser,
    ended: bool,
}

impl<S, E> Stream for SseStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<SseEvent, SseError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.parser.next_event() {
                Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Ok(None) => {}
                Err(err) => return Poll::Ready(Some(Err(SseError::Utf8(err)))),
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.bytes).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => this.parser.feed(&bytes),
                Poll::Ready(Some(Err(err))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(SseError::Transport(err))));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    this.parser.finish();
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    /// Every event of `input` fed in pieces of `piece` bytes.
    fn parse(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let chunks: Vec<Result<Bytes, ()>> = input
            .chunks(piece)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut events = sse_events(futures_util::stream::iter(chunks));
        let mut parsed = Vec::new();
        // The source is never pending: polling with a no-op waker reads it all.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while let Poll::Ready(Some(item)) = Pin::new(&mut events).poll_next(&mut cx) {
            parsed.push(item.unwrap());
        }
        parsed
    }

    #[test]
    fn the_standards_examples() {
        // From the standard's section on interpreting an event stream.
        let input = b"data: YHOO\ndata: +2\ndata: 10\n\n";
        assert_eq!(parse(input, 100), [event("message", "YHOO\n+2\n10")]);
        let input = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
        assert_eq!(
            parse(input, 100),
            [
                event("message", "first event"),
                event("message", "second event"),
                event("message", " third event"),
            ]
        );
        // A lone `data` dispatches an empty event; a trailing unterminated event is dropped.
        let input = b"data\n\ndata\ndata\n\ndata:";
        assert_eq!(
            parse(input, 100),
            [event("message", ""), event("message", "\n")]
        );
    }

    #[test]
    fn every_line_ending_and_split_works() {
        let text = "event: add\ndata: one\r\n\r\ndata: two\r\rdata: {\"é\": 1}\n\n";
        let want = [
            event("add", "one"),
            event("message", "two"),
            event("message", "{\"é\": 1}"),
        ];
        for piece in 1..=text.len() {
            assert_eq!(parse(text.as_bytes(), piece), want, "pieces of {piece}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_dropped_and_a_last_cr_ends_its_line() {
        let input = b"\xEF\xBB\xBFdata: x\n\r";
        for piece in 1..=input.len() {
            assert_eq!(parse(input, piece), [event("message", "x")]);
        }
    }

    #[test]
    fn bad_utf8_is_an_error_and_transport_errors_pass_through() {
        let chunks: Vec<Result<Bytes, &str>> =
            vec![Ok(Bytes::from_static(b"data: \xff\n\n")), Err("reset")];
        let mut events = sse_events(futures_util::stream::iter(chunks));
        let mut items = Vec::new();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while let Poll::Ready(Some(item)) = Pin::new(&mut events).poll_next(&mut cx) {
            items.push(item);
        }
        assert!(matches!(items[0], Err(SseError::Utf8(_))));
        assert!(matches!(items[1], Err(SseError::Transport("reset"))));
        assert_eq!(items.len(), 2);
    }
}
