//! The trust core's state as the public API shows it: one conversion for the server's answers
//! and the command line's `--json` output alike.

use kai_vault::{PublicIdentity, SecretInfo, VaultStatus};

/// The vault's state.
#[must_use]
pub fn vault_status(status: VaultStatus) -> kai_proto::VaultStatus {
    kai_proto::VaultStatus {
        initialized: status.initialized,
        unlocked: status.unlocked,
        unlockers: status.unlockers,
        kdf: status.kdf.map(|kdf| kai_proto::KdfParams {
            memory_kib: kdf.memory_kib,
            iterations: kdf.iterations,
            parallelism: kdf.parallelism,
        }),
        created_at: status.created_at,
        rotated_at: status.rotated_at,
        failed_unlocks: status.failed_unlocks,
        unlock_retry_after_s: status
            .unlock_wait
            .map(|wait| wait.as_secs() + u64::from(wait.subsec_nanos() > 0)),
    }
}

/// A secret's name and metadata, never its value.
#[must_use]
pub fn secret_info(info: SecretInfo) -> kai_proto::SecretInfo {
    kai_proto::SecretInfo {
        name: info.name,
        description: info.description,
        created_at: info.created_at,
        updated_at: info.updated_at,
    }
}

/// The node's public keys.
#[must_use]
pub fn node_identity(public: &PublicIdentity) -> kai_proto::NodeIdentity {
    kai_proto::NodeIdentity {
        did: public.did(),
        kid: public.kid(),
        agreement: public.agreement.did_key(),
    }
}
