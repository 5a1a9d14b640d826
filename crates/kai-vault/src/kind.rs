//! The kinds of unlocker: as stored, and as messages name them.

/// An unlocker derived from a passphrase (Argon2id).
pub(crate) const PASSPHRASE: &str = "passphrase";
/// An unlocker derived from a key file (HKDF).
pub(crate) const KEY_FILE: &str = "key_file";

/// What an unlocker kind is called in messages.
pub(crate) fn kind_name(kind: &str) -> &'static str {
    if kind == KEY_FILE {
        "key file"
    } else {
        "passphrase"
    }
}

/// The kind to suggest instead, in messages.
pub(crate) fn other_kind(kind: &str) -> &'static str {
    if kind == KEY_FILE {
        "passphrase"
    } else {
        "key file"
    }
}
