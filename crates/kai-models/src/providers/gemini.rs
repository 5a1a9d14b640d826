//! Google's Gemini API. Not written yet: every call answers that the kind is unavailable.

use futures_util::future::BoxFuture;

use crate::chat::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse};
use crate::error::ProviderError;
use crate::provider::{ChatStream, Provider, ProviderSpec};

/// The adapter.
#[derive(Debug)]
pub(crate) struct Gemini;

impl Gemini {
    pub(crate) fn new(_spec: &ProviderSpec) -> Result<Gemini, ProviderError> {
        Ok(Gemini)
    }
}

fn unavailable() -> ProviderError {
    ProviderError::unsupported("provider kind `gemini` is not available in this build")
}

impl Provider for Gemini {
    fn chat<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async { Err(unavailable()) })
    }
    fn chat_stream<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ProviderError>> {
        Box::pin(async { Err(unavailable()) })
    }
    fn embed<'a>(
        &'a self,
        _: &'a EmbedRequest,
    ) -> BoxFuture<'a, Result<EmbedResponse, ProviderError>> {
        Box::pin(async { Err(unavailable()) })
    }
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async { Err(unavailable()) })
    }
}
