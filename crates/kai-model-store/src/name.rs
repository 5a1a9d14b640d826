//! Model names: directories of the store, and the `NAME` in `local/NAME`.

use crate::StoreError;

/// The longest model name.
const MAX_LEN: usize = 64;

/// Checks that `name` can be a model's directory and name: 1 to 64 ASCII letters, digits, `.`,
/// `_` or `-`, starting with a letter or digit (so never `.`, `..` or a hidden directory).
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let invalid = |why: &str| StoreError::InvalidName {
        name: name.to_owned(),
        why: why.to_owned(),
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > MAX_LEN {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid("it must start with a letter or digit"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(&format!("it contains `{bad}`")));
    }
    Ok(())
}

/// A valid name made from `text` (a file stem, a package or repository name): lower case,
/// other characters turned into `-`, cut to length. `None` when nothing usable is left.
pub(crate) fn name_from(text: &str) -> Option<String> {
    let mapped: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let name: String = trimmed.chars().take(MAX_LEN).collect();
    let name = name.trim_end_matches(['-', '.', '_']).to_owned();
    validate_name(&name).ok().map(|()| name)
}

/// `text` without `suffix`, compared without regard to ASCII case (`Model.GGUF`, `X.WHL`),
/// if it ends with it.
pub(crate) fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(suffix.len())?;
    (text.is_char_boundary(cut) && text[cut..].eq_ignore_ascii_case(suffix)).then(|| &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_directory_names() {
        for good in [
            "smollm2",
            "SmolLM2-135M.Q8_0",
            "a",
            "minilm_v2",
            &"x".repeat(64),
        ] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            (".partial", "start with"),
            ("..", "start with"),
            ("-x", "start with"),
            ("a/b", "`/`"),
            ("a b", "` `"),
            ("é", "start with"),
            (&"x".repeat(65)[..], "longer"),
        ] {
            let err = validate_name(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn names_are_derived_from_file_and_repository_names() {
        assert_eq!(
            name_from("SmolLM2-135M-Instruct.Q4_1").as_deref(),
            Some("smollm2-135m-instruct.q4_1")
        );
        assert_eq!(
            name_from("all MiniLM (v2)").as_deref(),
            Some("all-minilm--v2")
        );
        assert_eq!(name_from("__init__").as_deref(), Some("init"));
        assert_eq!(name_from("..."), None);
    }
}
