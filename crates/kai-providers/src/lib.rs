//! kai's adapters for model providers: one per wire format, each a [`Provider`].
//!
//! - [`connect`] builds the adapter for a [`ProviderSpec`] (a provider's settings with its
//!   credential resolved): OpenAI and OpenAI-compatible servers (vLLM, TGI, LM Studio,
//!   llama.cpp), Anthropic, Gemini, Cohere and Ollama.
//! - The adapters share one HTTP layer (a pooled client per provider, timeouts, error answers
//!   classified into [`ProviderError`]s, bodies read with a size limit, streams that notice
//!   stalls) and one path for a chat call; each says only what is particular to its format.
//! - [`sse`] reads server-sent events, as providers (and kai itself) stream them.
//! - [`openai`] holds the mapping of kai's messages onto OpenAI's, which kai's own `/v1` API
//!   shares with the OpenAI adapter.
//!
//! This crate is an HTTP client only; it knows nothing of kai's server or database.

mod adapter;
mod anthropic;
mod cohere;
mod gemini;
mod http;
mod ollama;
pub mod openai;
mod spec;
pub mod sse;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use kai_config::ProviderKind;
use kai_models::{Provider, ProviderError};

use crate::adapter::Adapter;
pub use crate::http::install_tls_provider;
use crate::openai::Dialect;
pub use crate::spec::{ProviderSpec, Proxies};

/// Builds the adapter for a spec's kind.
pub fn connect(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(match spec.kind {
        ProviderKind::Openai => Arc::new(Adapter(openai::OpenAi::new(spec, Dialect::OpenAi)?)),
        ProviderKind::OpenaiCompatible => {
            Arc::new(Adapter(openai::OpenAi::new(spec, Dialect::Compatible)?))
        }
        ProviderKind::Anthropic => Arc::new(Adapter(anthropic::Anthropic::new(spec)?)),
        ProviderKind::Gemini => Arc::new(Adapter(gemini::Gemini::new(spec)?)),
        ProviderKind::Cohere => Arc::new(Adapter(cohere::Cohere::new(spec)?)),
        ProviderKind::Ollama => Arc::new(Adapter(ollama::Ollama::new(spec)?)),
        ProviderKind::Local => {
            return Err(ProviderError::unsupported(
                "the `local` provider is kai's embedded runtime, which the server supplies; \
                 there is nothing to connect to",
            ));
        }
    })
}
