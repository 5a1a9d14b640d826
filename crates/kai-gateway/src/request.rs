//! The request path: a chat (whole or streamed) or embedding request is checked against its
//! key's budgets, routed over the model's deployments, and accounted for (metrics, a usage
//! record, the key's spend) whether it succeeds or fails.

use std::future::Future;
use std::time::{Duration, Instant};

use kai_models::chat::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Usage};
use kai_models::router::{RouteError, RouteErrorKind, Routed, RoutedStream, Router};

use crate::accounting::{Caller, Outcome};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::stream::GatewayStream;

/// A request waiting for the router; accounted as cancelled if dropped before an answer.
struct Pending<'a> {
    gateway: &'a Gateway,
    caller: &'a Caller,
    endpoint: &'static str,
    model: &'a str,
    started: Instant,
    stream: bool,
    answered: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.gateway.inner.accounting.record(Outcome {
                caller: self.caller,
                endpoint: self.endpoint,
                model: self.model,
                provider: None,
                usage: Usage::default(),
                latency: self.started.elapsed(),
                ttft: None,
                status: "cancelled",
                stream: self.stream,
            });
        }
    }
}

/// The outcome of a whole (not streamed) request.
#[derive(Debug)]
pub struct Completed<T> {
    /// The answer.
    pub value: T,
    /// The model name that answered (the requested one, or a fallback).
    pub model: String,
    /// The provider that answered.
    pub provider: String,
    /// Tokens used.
    pub usage: Usage,
    /// What it cost by the configured prices, in millionths of a dollar (0 for a model
    /// without a price, local models among them).
    pub cost_micros: u64,
}

/// One kind of routed request: what it asks the router, and what it is accounted as.
trait Call: Sync {
    /// What the router answers with.
    type Answer;
    /// The usage record's `endpoint`.
    const ENDPOINT: &'static str;
    /// Whether it is streamed.
    const STREAM: bool;

    /// Asks the router for `model`.
    fn route<'a>(
        &'a self,
        router: &'a Router,
        model: &'a str,
    ) -> impl Future<Output = Result<Routed<Self::Answer>, RouteError>> + Send + 'a;
}

/// A whole chat answer.
struct Chat<'a>(&'a ChatRequest);

impl Call for Chat<'_> {
    type Answer = ChatResponse;
    const ENDPOINT: &'static str = "chat";
    const STREAM: bool = false;

    fn route<'a>(
        &'a self,
        router: &'a Router,
        model: &'a str,
    ) -> impl Future<Output = Result<Routed<ChatResponse>, RouteError>> + Send + 'a {
        router.chat(model, self.0)
    }
}

/// A streamed chat answer.
struct ChatStream<'a>(&'a ChatRequest);

impl Call for ChatStream<'_> {
    type Answer = RoutedStream;
    const ENDPOINT: &'static str = "chat";
    const STREAM: bool = true;

    fn route<'a>(
        &'a self,
        router: &'a Router,
        model: &'a str,
    ) -> impl Future<Output = Result<Routed<RoutedStream>, RouteError>> + Send + 'a {
        router.chat_stream(model, self.0)
    }
}

/// Embeddings.
struct Embed<'a>(&'a EmbedRequest);

impl Call for Embed<'_> {
    type Answer = EmbedResponse;
    const ENDPOINT: &'static str = "embeddings";
    const STREAM: bool = false;

    fn route<'a>(
        &'a self,
        router: &'a Router,
        model: &'a str,
    ) -> impl Future<Output = Result<Routed<EmbedResponse>, RouteError>> + Send + 'a {
        router.embed(model, self.0)
    }
}

impl Gateway {
    /// A whole chat answer.
    pub async fn chat(
        &self,
        caller: &Caller,
        model: &str,
        request: &ChatRequest,
    ) -> Result<Completed<ChatResponse>, GatewayError> {
        let (routed, started) = self.routed(caller, model, &Chat(request)).await?;
        let usage = routed.value.usage.unwrap_or_else(|| Usage {
            input_tokens: request.estimated_prompt_tokens(),
            output_tokens: (routed.value.message.joined_text().len() as u64).div_ceil(4),
        });
        let ttft = Some(routed.latency);
        Ok(self.completed::<Chat<'_>, _>(caller, model, routed, usage, started, ttft))
    }

    /// A streamed chat answer, once its first event has arrived. The stream accounts for
    /// itself when it ends, or when it is dropped (the client went away).
    pub async fn chat_stream(
        &self,
        caller: &Caller,
        model: &str,
        request: &ChatRequest,
    ) -> Result<GatewayStream, GatewayError> {
        let (routed, started) = self.routed(caller, model, &ChatStream(request)).await?;
        Ok(GatewayStream::new(
            self.clone(),
            caller.clone(),
            model.to_owned(),
            routed,
            request.estimated_prompt_tokens(),
            started,
        ))
    }

    /// Embeddings.
    pub async fn embed(
        &self,
        caller: &Caller,
        model: &str,
        request: &EmbedRequest,
    ) -> Result<Completed<EmbedResponse>, GatewayError> {
        let (routed, started) = self.routed(caller, model, &Embed(request)).await?;
        let usage = routed.value.usage.unwrap_or_else(|| Usage {
            input_tokens: request
                .inputs
                .iter()
                .map(|t| (t.len() as u64).div_ceil(4))
                .sum(),
            output_tokens: 0,
        });
        Ok(self.completed::<Embed<'_>, _>(caller, model, routed, usage, started, None))
    }

    /// The path every request takes: the key's budgets, then the router over the current
    /// table. A failure is accounted here; a success is the caller's to account for, when its
    /// usage is known.
    async fn routed<C: Call>(
        &self,
        caller: &Caller,
        model: &str,
        call: &C,
    ) -> Result<(Routed<C::Answer>, Instant), GatewayError> {
        self.inner
            .accounting
            .check_budget(caller)
            .await
            .map_err(GatewayError::OverBudget)?;
        let started = Instant::now();
        let table = self.table();
        // Dropped at the await when the client goes away (hyper drops the request's future):
        // the request is then accounted as cancelled, as a stream's is.
        let mut pending = Pending {
            gateway: self,
            caller,
            endpoint: C::ENDPOINT,
            model,
            started,
            stream: C::STREAM,
            answered: false,
        };
        let result = call.route(&table.router, model).await;
        pending.answered = true;
        match result {
            Ok(routed) => Ok((routed, started)),
            Err(err) => {
                self.account_failure(caller, C::ENDPOINT, model, &err, started, C::STREAM);
                Err(GatewayError::Route(err))
            }
        }
    }

    /// Accounts for a whole answer and hands it over.
    fn completed<C: Call, T>(
        &self,
        caller: &Caller,
        model: &str,
        routed: Routed<T>,
        usage: Usage,
        started: Instant,
        ttft: Option<Duration>,
    ) -> Completed<T> {
        let cost_micros = self.inner.accounting.record(Outcome {
            caller,
            endpoint: C::ENDPOINT,
            model,
            provider: Some((&routed.provider, &routed.upstream_model)),
            usage,
            latency: started.elapsed(),
            ttft,
            status: "ok",
            stream: C::STREAM,
        });
        Completed {
            value: routed.value,
            model: routed.model,
            provider: routed.provider,
            usage,
            cost_micros,
        }
    }

    fn account_failure(
        &self,
        caller: &Caller,
        endpoint: &'static str,
        model: &str,
        err: &RouteError,
        started: Instant,
        stream: bool,
    ) {
        // A name nobody configured is a client mistake, not model usage.
        if err.kind == RouteErrorKind::UnknownModel {
            return;
        }
        let status = match &err.kind {
            RouteErrorKind::UnknownModel => "unknown_model",
            RouteErrorKind::RateLimited => "rate_limited",
            RouteErrorKind::Unavailable => "unavailable",
            RouteErrorKind::Rejected(kind) | RouteErrorKind::Failed(kind) => kind.as_str(),
        };
        let provider = err
            .attempts
            .last()
            .and_then(|a| a.deployment.split_once('/'));
        self.inner.accounting.record(Outcome {
            caller,
            endpoint,
            model,
            provider,
            usage: Usage::default(),
            latency: started.elapsed(),
            ttft: None,
            status,
            stream,
        });
    }
}
