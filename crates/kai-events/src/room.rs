//! Rooms: which events a socket is sent.

use kai_core::{ConversationId, RunId};

/// The room an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Room {
    /// Everything about the user as a whole: every socket of theirs is in it.
    User,
    /// The answers being written in one conversation.
    Conversation(ConversationId),
    /// One run's timeline.
    Run(RunId),
}

impl std::fmt::Display for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Room::User => f.write_str("user"),
            Room::Conversation(id) => write!(f, "conversation:{id}"),
            Room::Run(id) => write!(f, "run:{id}"),
        }
    }
}

impl std::str::FromStr for Room {
    type Err = String;

    fn from_str(text: &str) -> Result<Room, String> {
        let bad =
            || format!("`{text}` is not a room: use `user`, `conversation:<id>` or `run:<id>`");
        if text == "user" {
            return Ok(Room::User);
        }
        match text.split_once(':') {
            Some(("conversation", id)) => id.parse().map(Room::Conversation).map_err(|_| bad()),
            Some(("run", id)) => id.parse().map(Room::Run).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_read_back_as_written() {
        let run = Room::Run(RunId::new());
        assert_eq!(run.to_string().parse::<Room>(), Ok(run));
        let conversation = Room::Conversation(ConversationId::new());
        assert_eq!(conversation.to_string().parse::<Room>(), Ok(conversation));
        assert_eq!("user".parse::<Room>(), Ok(Room::User));
        assert!("run:nope".parse::<Room>().is_err());
        assert!("lobby".parse::<Room>().is_err());
    }
}
