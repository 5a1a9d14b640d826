//! A streamed answer that accounts for itself: when it ends, or when its reader drops it (the
//! client went away, which also drops the upstream request), its usage is recorded with the
//! status it ended in.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use kai_models::ProviderError;
use kai_models::chat::{ChatEvent, ChatResponse, ResponseBuilder, Usage};
use kai_models::router::{Routed, RoutedStream};

use crate::accounting::{Caller, Outcome};
use crate::gateway::Gateway;

/// The events of a routed, accounted answer.
pub struct GatewayStream {
    gateway: Gateway,
    caller: Caller,
    requested_model: String,
    /// The model name that answered (the requested one, or a fallback).
    model: String,
    provider: String,
    upstream_model: String,
    inner: RoutedStream,
    builder: ResponseBuilder,
    prompt_estimate: u64,
    started: Instant,
    ttft: Duration,
    /// How the stream ended, once it has; `None` while it runs.
    ended: Option<&'static str>,
    /// What it cost, in millionths of a dollar, once it has ended.
    cost_micros: u64,
}

impl std::fmt::Debug for GatewayStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayStream")
            .field("model", &self.model)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl GatewayStream {
    pub(crate) fn new(
        gateway: Gateway,
        caller: Caller,
        requested_model: String,
        routed: Routed<RoutedStream>,
        prompt_estimate: u64,
        started: Instant,
    ) -> GatewayStream {
        let ttft = routed.value.time_to_first_token();
        GatewayStream {
            gateway,
            caller,
            requested_model,
            model: routed.model,
            provider: routed.provider,
            upstream_model: routed.upstream_model,
            inner: routed.value,
            builder: ResponseBuilder::default(),
            prompt_estimate,
            started,
            ttft,
            ended: None,
            cost_micros: 0,
        }
    }

    /// The model name that answered.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The provider that answered.
    #[must_use]
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's name for the model that answered.
    #[must_use]
    pub fn upstream_model(&self) -> &str {
        &self.upstream_model
    }

    /// The answer so far (all of it, once the stream has ended).
    #[must_use]
    pub fn response(&self) -> ChatResponse {
        self.builder.clone().finish()
    }

    /// Tokens used: the provider's count, or an estimate where it gave none.
    #[must_use]
    pub fn usage(&self) -> Usage {
        self.builder.clone().finish().usage.unwrap_or(Usage {
            input_tokens: self.prompt_estimate,
            output_tokens: (self.builder.text().len() as u64).div_ceil(4),
        })
    }

    /// What the answer cost, in millionths of a dollar, by the configured prices: known once
    /// the stream has ended, 0 before.
    #[must_use]
    pub fn cost_micros(&self) -> u64 {
        self.cost_micros
    }

    fn end(&mut self, status: &'static str) {
        if self.ended.is_some() {
            return;
        }
        self.ended = Some(status);
        let usage = self.usage();
        self.cost_micros = self.gateway.inner.accounting.record(Outcome {
            caller: &self.caller,
            endpoint: "chat",
            model: &self.requested_model,
            provider: Some((&self.provider, &self.upstream_model)),
            usage,
            latency: self.started.elapsed(),
            ttft: Some(self.ttft),
            status,
            stream: true,
        });
    }
}

impl Stream for GatewayStream {
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended.is_some() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(event))) => {
                self.builder.push(&event);
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(Some(Err(err))) => {
                self.end(err.kind.as_str());
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                self.end("ok");
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for GatewayStream {
    fn drop(&mut self) {
        self.end("cancelled");
    }
}
