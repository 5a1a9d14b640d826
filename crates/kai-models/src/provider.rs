//! The seam every model source implements.

use std::fmt;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use crate::chat::{ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse};
use crate::error::ProviderError;

/// A streamed answer: events until the stream ends, or an error that ends it.
pub type ChatStream = BoxStream<'static, Result<ChatEvent, ProviderError>>;

/// A source of chat answers and embeddings: a provider's HTTP API (`kai-providers`), or a model
/// running inside kai (`kai-local`). The router calls these; each call is one attempt at one deployment.
pub trait Provider: Send + Sync + fmt::Debug {
    /// A whole answer.
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>>;

    /// An answer as a stream of events. Errors before the first event (a refused request, an
    /// unreachable server) come from the future; errors after it end the stream.
    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ProviderError>>;

    /// Embeddings of the request's texts, in order.
    fn embed<'a>(
        &'a self,
        request: &'a EmbedRequest,
    ) -> BoxFuture<'a, Result<EmbedResponse, ProviderError>>;

    /// The models the provider offers, by its names for them.
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>>;
}
