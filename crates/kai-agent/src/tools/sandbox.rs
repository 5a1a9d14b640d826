//! The sandbox behind `shell`, found once per process.

use kai_sandbox::Sandbox;
use tokio::sync::OnceCell;

/// The sandbox, found at the first `shell` call of the process (bubblewrap's trial run costs
/// tens of milliseconds, and most processes never run a shell), or why there is none.
#[derive(Debug, Default)]
pub struct Shell {
    sandbox: OnceCell<Result<Sandbox, String>>,
}

impl Shell {
    pub(super) async fn sandbox(&self) -> Result<&Sandbox, String> {
        let found = self
            .sandbox
            .get_or_init(|| async { Sandbox::detect().await.map_err(|err| err.to_string()) })
            .await;
        found
            .as_ref()
            .map_err(|why| format!("the shell is unavailable: {why}"))
    }
}
