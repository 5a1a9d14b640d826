//! The vocabulary of entries: who acts ([`Actor`]) and what they do ([`Action`]). Every action
//! kai records is a variant here, so the names an entry can carry are listed in one place and
//! no caller can record one by a misspelt string.

use std::fmt;

use kai_core::{AgentId, UserId};

/// Who performed an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A signed-in user (over HTTP), as `user:<id>`.
    User(UserId),
    /// The node itself, on its own account (unlocking the vault at start), as `node`.
    Node,
    /// Someone at this machine's command line, working on the database directly, as `cli`.
    Cli,
    /// Someone not signed in (a failed login, which names the account tried in its details),
    /// as `anonymous`.
    Anonymous,
    /// An agent, acting for its owner in a run (which its entries name), as `agent:<id>`.
    Agent(AgentId),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::Node => f.write_str("node"),
            Actor::Cli => f.write_str("cli"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::Agent(id) => write!(f, "agent:{id}"),
        }
    }
}

/// Everything kai records in the audit log. The names entries carry ([`Action::as_str`]) are
/// part of the log's format: a released one is never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A login, successful or not.
    AuthLogin,
    /// A user changed their own password.
    AuthPassword,
    /// An account was created.
    UserCreate,
    /// An account's role, state or password was changed by an admin.
    UserUpdate,
    /// An account was deleted.
    UserDelete,
    /// An API key was created.
    ApiKeyCreate,
    /// An API key was revoked.
    ApiKeyRevoke,
    /// A secret's value was read.
    SecretRead,
    /// A secret was stored or replaced.
    SecretWrite,
    /// A secret was deleted.
    SecretDelete,
    /// The vault was created, with the node's identity.
    VaultInit,
    /// The vault was unlocked (or an unlock failed).
    VaultUnlock,
    /// The vault was locked.
    VaultLock,
    /// An unlocker's passphrase or key file was changed.
    VaultPasswd,
    /// The master key was rotated.
    VaultRotate,
    /// A provider was added to the model catalog.
    ProviderCreate,
    /// A provider of the model catalog was replaced.
    ProviderUpdate,
    /// A provider was removed from the model catalog.
    ProviderDelete,
    /// A model was added to the model catalog.
    ModelCreate,
    /// A model of the model catalog was replaced.
    ModelUpdate,
    /// A model was removed from the model catalog.
    ModelDelete,
    /// An agent was defined.
    AgentCreate,
    /// An agent's definition was replaced.
    AgentUpdate,
    /// An agent was deleted, with its runs.
    AgentDelete,
    /// A run started (or resumed after a stop).
    AgentRunStart,
    /// A run ended: succeeded, failed or cancelled.
    AgentRunEnd,
    /// An agent is about to call a tool: recorded before the call, with its arguments.
    AgentToolCall,
    /// A tool call's outcome, with a hash of its result.
    AgentToolResult,
    /// A run asked its owner for consent, an answer, or what to do about a call whose outcome
    /// is unknown.
    AgentConsentRequest,
    /// The owner answered a run's request, or it expired.
    AgentConsentDecision,
    /// A hook vetoed a step or a tool call.
    AgentHookVeto,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 31] = [
        Action::AuthLogin,
        Action::AuthPassword,
        Action::UserCreate,
        Action::UserUpdate,
        Action::UserDelete,
        Action::ApiKeyCreate,
        Action::ApiKeyRevoke,
        Action::SecretRead,
        Action::SecretWrite,
        Action::SecretDelete,
        Action::VaultInit,
        Action::VaultUnlock,
        Action::VaultLock,
        Action::VaultPasswd,
        Action::VaultRotate,
        Action::ProviderCreate,
        Action::ProviderUpdate,
        Action::ProviderDelete,
        Action::ModelCreate,
        Action::ModelUpdate,
        Action::ModelDelete,
        Action::AgentCreate,
        Action::AgentUpdate,
        Action::AgentDelete,
        Action::AgentRunStart,
        Action::AgentRunEnd,
        Action::AgentToolCall,
        Action::AgentToolResult,
        Action::AgentConsentRequest,
        Action::AgentConsentDecision,
        Action::AgentHookVeto,
    ];

    /// The dotted name entries carry.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::AuthLogin => "auth.login",
            Action::AuthPassword => "auth.password",
            Action::UserCreate => "user.create",
            Action::UserUpdate => "user.update",
            Action::UserDelete => "user.delete",
            Action::ApiKeyCreate => "api_key.create",
            Action::ApiKeyRevoke => "api_key.revoke",
            Action::SecretRead => "secret.read",
            Action::SecretWrite => "secret.write",
            Action::SecretDelete => "secret.delete",
            Action::VaultInit => "vault.init",
            Action::VaultUnlock => "vault.unlock",
            Action::VaultLock => "vault.lock",
            Action::VaultPasswd => "vault.passwd",
            Action::VaultRotate => "vault.rotate",
            Action::ProviderCreate => "config.provider.create",
            Action::ProviderUpdate => "config.provider.update",
            Action::ProviderDelete => "config.provider.delete",
            Action::ModelCreate => "config.model.create",
            Action::ModelUpdate => "config.model.update",
            Action::ModelDelete => "config.model.delete",
            Action::AgentCreate => "agent.create",
            Action::AgentUpdate => "agent.update",
            Action::AgentDelete => "agent.delete",
            Action::AgentRunStart => "agent.run.start",
            Action::AgentRunEnd => "agent.run.end",
            Action::AgentToolCall => "agent.tool.call",
            Action::AgentToolResult => "agent.tool.result",
            Action::AgentConsentRequest => "agent.consent.request",
            Action::AgentConsentDecision => "agent.consent.decision",
            Action::AgentHookVeto => "agent.hook.veto",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_action_has_its_own_dotted_name() {
        let names: HashSet<&str> = Action::ALL.iter().map(|action| action.as_str()).collect();
        assert_eq!(names.len(), Action::ALL.len());
        for name in names {
            assert!(
                name.split('.').count() >= 2
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn actors_are_written_as_entries_name_them() {
        let id = UserId::new();
        assert_eq!(Actor::User(id).to_string(), format!("user:{id}"));
        assert_eq!(Actor::Node.to_string(), "node");
        assert_eq!(Actor::Cli.to_string(), "cli");
        assert_eq!(Actor::Anonymous.to_string(), "anonymous");
        let agent = AgentId::new();
        assert_eq!(Actor::Agent(agent).to_string(), format!("agent:{agent}"));
    }
}
