//! The model gateway as a service: one front for every configured model.
//!
//! [`Gateway`] holds the catalog (providers and models from the configuration file, from the
//! admin API, and from the local model store), routes requests through
//! [`kai_models::router`], accounts for each one (cost, usage records, Prometheus metrics),
//! enforces per-key budgets, and keeps conversations. It knows nothing of HTTP: `kai-server`
//! turns its results into responses.
//!
//! - `request`: the request path, one routed call for whole answers, streams and
//!   embeddings; `stream` the streamed answer that accounts for itself.
//! - `table`: the catalog's entries and the routing table built from them; `reload` rebuilds
//!   it; `catalog` is the admin API's changes to it; `local` the local model store's part.
//! - `accounting`: prices, budgets, usage records and metrics; `usage` reads them back.
//! - `conversations`: users' stored chats.

mod accounting;
mod catalog;
mod conversations;
mod error;
mod gateway;
mod local;
mod reload;
mod request;
mod stream;
mod table;
mod usage;

pub use crate::accounting::{Caller, GatewayMetrics, OverBudget};
pub use crate::conversations::{
    Conversation, ConversationHistory, ConversationMessage, ConversationTurn,
};
pub use crate::error::GatewayError;
pub use crate::gateway::{DeploymentStatus, Gateway};
pub use crate::local::{LOCAL_MODEL_PREFIX, LocalModels};
pub use crate::request::Completed;
pub use crate::stream::GatewayStream;
pub use crate::table::{ModelEntry, ProviderEntry, Source, Table};
