//! The model gateway's vocabulary and its router, with no I/O of its own.
//!
//! - [`chat`]: the one model of requests, answers and streams that every model source maps to
//!   and from.
//! - [`Provider`]: the seam each model source implements: the adapters in `kai-providers` (a
//!   provider's HTTP API) and the embedded runtime in `kai-local`.
//! - [`ProviderError`]: what a model source's failure is, classified so the router can tell
//!   a retry from a fail-over from a client's mistake.
//! - [`router`]: spreads a model's requests over its deployments, retries, fails over, cools
//!   down failing deployments, keeps to per-minute limits and falls back to other models.
//!
//! This crate knows no wire format, no HTTP and no database.

pub mod chat;
mod error;
mod provider;
pub mod router;

pub use error::{ErrorKind, ProviderError};
pub use provider::{ChatStream, Provider};
