//! Typed identifiers. Every id is a UUIDv7: unique without coordination between processes, and
//! ordered by creation time, which keeps database indexes compact and listings stable.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered identifier.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The identifier as a UUID.
            #[must_use]
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }
    };
}

id_type!(
    /// Identifies a user account.
    UserId
);
id_type!(
    /// Identifies a login session: one chain of rotated refresh tokens (a "token family").
    SessionId
);
id_type!(
    /// Identifies an API key (never the key itself).
    ApiKeyId
);

id_type!(
    /// Identifies a stored conversation.
    ConversationId
);
id_type!(
    /// Identifies one recorded model request.
    UsageId
);
id_type!(
    /// Identifies a job in the durable queue.
    JobId
);
id_type!(
    /// Identifies a schedule: a recurring job the scheduler enqueues.
    ScheduleId
);
id_type!(
    /// Identifies a collection of knowledge (artifacts and notes).
    CollectionId
);
id_type!(
    /// Identifies a stored artifact (all its versions).
    ArtifactId
);
id_type!(
    /// Identifies a note (all its versions).
    NoteId
);
id_type!(
    /// Identifies an entry of a user's memory.
    MemoryId
);

id_type!(
    /// Identifies a stored prompt template.
    PromptId
);
id_type!(
    /// Identifies an agent definition.
    AgentId
);
id_type!(
    /// Identifies one run of an agent towards a goal.
    RunId
);
id_type!(
    /// Identifies something a run asked its owner: consent, an answer, a decision.
    RunRequestId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = UserId::new();
        let parsed: UserId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn ids_are_time_ordered() {
        let first = SessionId::new();
        let second = SessionId::new();
        assert!(first < second);
    }

    #[test]
    fn garbage_is_not_an_id() {
        assert!("not-a-uuid".parse::<ApiKeyId>().is_err());
    }
}
