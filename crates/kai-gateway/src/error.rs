//! What the gateway's callers are told when it refuses or fails.

use kai_models::router::RouteError;
use kai_store::StoreError;

use crate::accounting::OverBudget;

/// Why the gateway refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Routing failed: unknown model, every deployment failed, limits, cool-downs.
    #[error("{0}")]
    Route(RouteError),
    /// The caller's key has spent a budget.
    #[error("{}", .0.message)]
    OverBudget(OverBudget),
    /// A catalog change or request is not valid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such provider, model or conversation.
    #[error("{0} not found")]
    NotFound(String),
    /// The name is taken, or the entry is still in use.
    #[error("{0}")]
    Conflict(String),
    /// The entry is defined in the configuration file.
    #[error("{0} is defined in the configuration file; change it there")]
    ReadOnly(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
