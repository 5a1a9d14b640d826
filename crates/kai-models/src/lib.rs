//! kai's model gateway core.
//!
//! - [`chat`]: the one model of requests, answers and streams that every adapter maps to and
//!   from.
//! - [`Provider`]: the seam each model source implements; [`connect`] builds the adapter for a
//!   provider's wire format (OpenAI and OpenAI-compatible, Anthropic, Gemini, Cohere, Ollama).
//! - [`router`]: spreads a model's requests over its deployments, retries, fails over, cools
//!   down failing deployments, keeps to per-minute limits and falls back to other models.
//! - [`store`]: models pulled onto this machine for the embedded runtime, with their manifests.
//! - [`sse`]: server-sent events, as every provider streams them.
//! - [`wire`]: OpenAI's format to and from the internal model, for the public `/v1` API and
//!   the OpenAI adapters.
//!
//! This crate speaks HTTP as a client only; it knows nothing of kai's server or database.

pub mod chat;
mod error;
mod http;
mod provider;
mod providers;
pub mod router;
pub mod sse;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use error::{ErrorKind, ProviderError};
pub use http::install_tls_provider;
pub use provider::{ChatStream, Provider, ProviderSpec, Proxies, connect};
