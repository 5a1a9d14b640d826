//! Whether a tool call may go ahead: the owner's standing answer for the agent and tool, else
//! the agent's policy for the tool, else the default for what the tool does.

use serde::{Deserialize, Serialize};

use crate::tools::Effect;

/// What happens when an agent calls a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The call goes ahead.
    Allow,
    /// The run pauses until the owner approves or denies the call.
    Ask,
    /// The call is refused; the model is told so.
    Deny,
}

impl Policy {
    /// The default for a tool that does `effect`: reading and writing inside the run's own
    /// workspace go ahead; reaching outside (a shell, the network) and destroying things ask.
    #[must_use]
    pub fn default_for(effect: Effect) -> Policy {
        match effect {
            Effect::ReadOnly | Effect::Workspace => Policy::Allow,
            Effect::External | Effect::Destructive => Policy::Ask,
        }
    }

    /// Its name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Allow => "allow",
            Policy::Ask => "ask",
            Policy::Deny => "deny",
        }
    }
}

/// Decides a call: an explicit `deny` in the agent's policy always holds; otherwise the owner's
/// standing answer ("always" for this agent and tool) wins over the agent's policy, which wins
/// over the default for the call's effect.
#[must_use]
pub fn decide(configured: Option<Policy>, granted: Option<bool>, effect: Effect) -> Policy {
    match (configured, granted) {
        (Some(Policy::Deny), _) => Policy::Deny,
        (_, Some(true)) => Policy::Allow,
        (_, Some(false)) => Policy::Deny,
        (Some(policy), None) => policy,
        (None, None) => Policy::default_for(effect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_risk_and_answers_override_them() {
        assert_eq!(decide(None, None, Effect::ReadOnly), Policy::Allow);
        assert_eq!(decide(None, None, Effect::Workspace), Policy::Allow);
        assert_eq!(decide(None, None, Effect::External), Policy::Ask);
        assert_eq!(decide(None, None, Effect::Destructive), Policy::Ask);
        assert_eq!(
            decide(Some(Policy::Ask), None, Effect::ReadOnly),
            Policy::Ask
        );
        assert_eq!(
            decide(Some(Policy::Ask), Some(true), Effect::External),
            Policy::Allow
        );
        assert_eq!(decide(None, Some(false), Effect::ReadOnly), Policy::Deny);
        assert_eq!(
            decide(Some(Policy::Deny), Some(true), Effect::ReadOnly),
            Policy::Deny
        );
    }
}
