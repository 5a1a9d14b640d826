//! Ollama's native API. Not written yet: every call answers that the kind is unavailable.

use futures_util::future::BoxFuture;

use crate::chat::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse};
use crate::error::ProviderError;
use crate::provider::{ChatStream, Provider, ProviderSpec};

/// The adapter.
#[derive(Debug)]
pub(crate) struct Ollama;

impl Ollama {
    pub(crate) fn new(_spec: &ProviderSpec) -> Result<Ollama, ProviderError> {
        Ok(Ollama)
    }
}

fn unavailable() -> ProviderError {
    ProviderError::unsupported("provider kind `ollama` is not available in this build")
}

impl Provider for Ollama {
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
