//! Server-sent events as a response body that writes as few times as it can.
//!
//! axum's `Sse` hands hyper one frame per event, and hyper writes each frame that is not
//! followed at once by another: a streamed answer whose events arrive together from upstream
//! (in one read, but handed over one at a time by the client's body channel) goes out as one
//! system call per event. [`EventStream`] gathers every event that is ready before writing:
//! when its source has nothing more for the moment, it first lets the tasks that feed it run
//! (a couple of scheduler turns), then hands hyper everything gathered as one frame. An event
//! that arrives alone goes out those turns later, which is microseconds. Its keep-alive comment is driven by one
//! timer that is looked at only when it fires, not re-armed on every event.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use futures_util::stream::BoxStream;
use http::{HeaderValue, header};
use http_body::Frame;
use tokio::time::{Instant, Sleep};

/// How long a stream may stay silent before a keep-alive comment goes out: proxies and clients
/// drop connections that carry nothing for long.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The comment line sent to keep a silent stream open; clients ignore it.
const KEEP_ALIVE_COMMENT: &[u8] = b":\n\n";

/// The most bytes gathered into one frame: a fast source is written in pieces this large.
const MAX_FRAME: usize = 64 * 1024;

/// How many scheduler turns in a row the source may stay silent before what was gathered goes
/// out. Measured with kai's upstream client: its connection task needs two turns to hand over
/// the next chunk it has already read, so one turn gathered nothing.
const IDLE_TURNS: u32 = 2;

/// A `text/event-stream` body over already encoded events (each `data: …\n\n`, or several of
/// them in one piece).
pub(crate) struct EventStream {
    events: BoxStream<'static, Bytes>,
    gathered: BytesMut,
    /// Scheduler turns given to other tasks since the last event was gathered.
    idle_turns: u32,
    ended: bool,
    last_sent: Instant,
    keep_alive: Pin<Box<Sleep>>,
}

impl EventStream {
    pub(crate) fn new(events: impl Stream<Item = Bytes> + Send + 'static) -> EventStream {
        let now = Instant::now();
        EventStream {
            events: Box::pin(events),
            gathered: BytesMut::new(),
            idle_turns: 0,
            ended: false,
            last_sent: now,
            keep_alive: Box::pin(tokio::time::sleep_until(now + KEEP_ALIVE)),
        }
    }

    fn frame(&mut self) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.idle_turns = 0;
        self.last_sent = Instant::now();
        Poll::Ready(Some(Ok(Frame::data(self.gathered.split().freeze()))))
    }

    /// A keep-alive comment if the stream has been silent for [`KEEP_ALIVE`]; otherwise
    /// re-arms the timer for the silence's end.
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        loop {
            if self.keep_alive.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last_sent + KEEP_ALIVE;
            if due <= Instant::now() {
                self.last_sent = Instant::now();
                let next = self.last_sent + KEEP_ALIVE;
                self.keep_alive.as_mut().reset(next);
                return Poll::Ready(Bytes::from_static(KEEP_ALIVE_COMMENT));
            }
            self.keep_alive.as_mut().reset(due);
        }
    }
}

impl http_body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            match self.events.as_mut().poll_next(cx) {
                Poll::Ready(Some(event)) => {
                    self.gathered.extend_from_slice(&event);
                    self.idle_turns = 0;
                    if self.gathered.len() >= MAX_FRAME {
                        return self.frame();
                    }
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    if self.gathered.is_empty() {
                        return Poll::Ready(None);
                    }
                    return self.frame();
                }
                Poll::Pending if self.gathered.is_empty() => {
                    return match self.poll_keep_alive(cx) {
                        Poll::Ready(comment) => Poll::Ready(Some(Ok(Frame::data(comment)))),
                        Poll::Pending => Poll::Pending,
                    };
                }
                Poll::Pending if self.idle_turns < IDLE_TURNS => {
                    // Let the tasks feeding the source (the upstream connection) run first:
                    // a wake from inside a poll puts this task behind them.
                    self.idle_turns += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => return self.frame(),
            }
        }
    }
}

impl IntoResponse for EventStream {
    fn into_response(self) -> Response {
        let mut response = Body::new(self).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;

    use super::*;

    /// The body's next frame's data, or `None` at its end.
    async fn next(body: &mut EventStream) -> Option<Bytes> {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        Some(frame.unwrap().into_data().unwrap())
    }

    #[tokio::test]
    async fn events_ready_together_leave_in_one_frame() {
        let events = futures_util::stream::iter(
            [&b"data: 1\n\n"[..], b"data: 2\n\n", b"data: 3\n\n"].map(Bytes::from_static),
        );
        let mut body = EventStream::new(events);
        let frame = next(&mut body).await.unwrap();
        assert_eq!(&frame[..], b"data: 1\n\ndata: 2\n\ndata: 3\n\n");
        assert!(next(&mut body).await.is_none());
    }

    #[tokio::test]
    async fn events_fed_by_another_task_are_gathered() {
        // A channel with room for one event, as hyper's body channel has: the feeding task
        // must run between events.
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(1);
        tokio::spawn(async move {
            for n in 0..5 {
                let _ = sender.send(Bytes::from(format!("data: {n}\n\n"))).await;
            }
        });
        let mut body = EventStream::new(tokio_stream_from(receiver));
        let frame = next(&mut body).await.unwrap();
        assert_eq!(
            &frame[..],
            b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n"
        );
        assert!(next(&mut body).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_gets_keep_alive_comments() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(1);
        let mut body = EventStream::new(tokio_stream_from(receiver));
        let comment = next(&mut body).await.unwrap();
        assert_eq!(&comment[..], KEEP_ALIVE_COMMENT);
        sender
            .send(Bytes::from_static(b"data: x\n\n"))
            .await
            .unwrap();
        let event = next(&mut body).await.unwrap();
        assert_eq!(&event[..], b"data: x\n\n");
        // The silence is counted from the last event, not from the last comment.
        let before = Instant::now();
        let comment = next(&mut body).await.unwrap();
        assert_eq!(&comment[..], KEEP_ALIVE_COMMENT);
        assert_eq!(Instant::now() - before, KEEP_ALIVE);
        drop(sender);
        assert!(next(&mut body).await.is_none());
    }

    fn tokio_stream_from(
        mut receiver: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> impl Stream<Item = Bytes> + Send + 'static {
        futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
