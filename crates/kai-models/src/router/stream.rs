//! A routed stream: the events of the deployment that answered, which tells the deployment's
//! state how the stream ended once it has.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;

use super::state::{BreakerPolicy, Ticket};
use crate::chat::{ChatEvent, Usage};
use crate::error::ProviderError;
use crate::provider::ChatStream;

/// The events of a routed answer. The first has already arrived when the router hands it over.
/// When the stream ends, the deployment learns of its success (with the tokens it used) or
/// failure; dropped early, it counts as neither.
pub struct RoutedStream {
    first: Option<ChatEvent>,
    rest: ChatStream,
    ticket: Option<Ticket>,
    ttft: Duration,
    breaker: BreakerPolicy,
    usage: Option<Usage>,
}

impl std::fmt::Debug for RoutedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedStream")
            .field("ttft", &self.ttft)
            .finish_non_exhaustive()
    }
}

impl RoutedStream {
    pub(super) fn new(
        first: Option<ChatEvent>,
        rest: ChatStream,
        ticket: Ticket,
        started: Instant,
        breaker: BreakerPolicy,
    ) -> RoutedStream {
        RoutedStream {
            first,
            rest,
            ticket: Some(ticket),
            ttft: started.elapsed(),
            breaker,
            usage: None,
        }
    }

    /// From the start of routing to the first event.
    #[must_use]
    pub fn time_to_first_token(&self) -> Duration {
        self.ttft
    }

    fn observe(&mut self, item: &Result<ChatEvent, ProviderError>) {
        match item {
            Ok(ChatEvent::Usage(usage)) => self.usage = Some(*usage),
            Ok(_) => {}
            Err(err) => {
                if let Some(ticket) = self.ticket.take() {
                    if err.kind.counts_against_health() {
                        ticket.failed(self.breaker, Instant::now());
                    } else {
                        ticket.released(self.usage.map(|u| u.total()));
                    }
                }
            }
        }
    }
}

impl Stream for RoutedStream {
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            let item = Ok(first);
            self.observe(&item);
            return Poll::Ready(Some(item));
        }
        match self.rest.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                self.observe(&item);
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                if let Some(ticket) = self.ticket.take() {
                    let ttft = self.ttft;
                    ticket.succeeded(ttft, self.usage.map(|u| u.total()));
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
