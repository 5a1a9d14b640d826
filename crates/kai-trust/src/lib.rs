//! The audited trust service: every action that the audit log records is performed here, and
//! only here.
//!
//! Changing the vault, reading or writing a secret, managing users and API keys, logging in and
//! changing the model catalog each follow one sequence: do it, bring the gateway up to date
//! where it depends on what changed (an unlock, a node secret, the catalog), and record it in
//! the signed audit log before answering. If the entry cannot be written, the caller gets an
//! error, even though the action was done: nothing reports success without its entry.
//! [`Trust`] is that sequence once, for every front end: the HTTP API, the command line, and
//! the agents to come. The audit vocabulary is [`kai_audit::Action`] and [`kai_audit::Actor`].
//!
//! Reads that are not recorded (the vault's state, secret names, users, the log itself) go to
//! the services directly, through [`Trust::vault`], [`Trust::accounts`] and [`Trust::audit`].

mod service;
mod view;

pub use service::{Trust, TrustError};
pub use view::{node_identity, secret_info, vault_status};
