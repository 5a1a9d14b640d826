//! The chat answers this process is writing over the real-time channel, so that their user can
//! stop them.

use std::collections::HashMap;

use kai_core::UserId;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The answers this process is writing, so that their user can stop them.
#[derive(Debug, Default)]
pub(crate) struct Answers(std::sync::Mutex<HashMap<Uuid, (UserId, CancellationToken)>>);

impl Answers {
    /// Registers an answer being written; the token fires when its user stops it.
    pub(crate) fn start(&self, user: UserId, client_id: Uuid) -> CancellationToken {
        let token = CancellationToken::new();
        self.lock().insert(client_id, (user, token.clone()));
        token
    }

    /// Stops `user`'s answer to `client_id`, if this process is writing it.
    pub(crate) fn stop(&self, user: UserId, client_id: Uuid) {
        if let Some((owner, token)) = self.lock().get(&client_id)
            && *owner == user
        {
            token.cancel();
        }
    }

    pub(crate) fn end(&self, client_id: Uuid) {
        self.lock().remove(&client_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (UserId, CancellationToken)>> {
        // A panic while holding it leaves the map as it was: still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
