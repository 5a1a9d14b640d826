//! Checks that staged files are a model the runtime can load, before anything is installed:
//! a GGUF file's header and `general.architecture`; a sentence-transformer's configuration,
//! tokenizer and safetensors header.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use crate::StoreError;

/// The GGUF versions whose header this reads (1 used 32-bit lengths and is long gone).
const GGUF_VERSIONS: [u32; 2] = [2, 3];

/// Limits that a real header stays far below; a file past them is not GGUF.
const MAX_KEY_LEN: u64 = 64 * 1024;
const MAX_STRING_LEN: u64 = 256 * 1024 * 1024;
const MAX_ENTRIES: u64 = 1 << 20;
const MAX_ARRAY_LEN: u64 = 1 << 32;

/// The largest safetensors header read (its JSON index of tensors).
const MAX_SAFETENSORS_HEADER: u64 = 100 * 1024 * 1024;

/// Reads a GGUF file's header and returns its `general.architecture`.
pub(crate) fn check_gguf(path: &Path, what: &str) -> Result<String, StoreError> {
    let file = File::open(path).map_err(StoreError::io(path))?;
    let mut reader = BufReader::new(file);
    let invalid = |why: String| StoreError::not_a_model(what, why);
    let read_err = |err: std::io::Error| {
        if err.kind() == ErrorKind::UnexpectedEof {
            invalid("the GGUF header is cut short".into())
        } else {
            StoreError::io(path)(err)
        }
    };
    let mut magic = [0; 4];
    reader.read_exact(&mut magic).map_err(read_err)?;
    if &magic != b"GGUF" {
        return Err(invalid("it does not start with the GGUF magic".into()));
    }
    let version = read_u32(&mut reader).map_err(read_err)?;
    if !GGUF_VERSIONS.contains(&version) {
        return Err(invalid(format!(
            "GGUF version {version} is not supported (versions 2 and 3 are)"
        )));
    }
    let _tensors = read_u64(&mut reader).map_err(read_err)?;
    let entries = read_u64(&mut reader).map_err(read_err)?;
    if entries > MAX_ENTRIES {
        return Err(invalid(format!(
            "its header claims {entries} metadata entries"
        )));
    }
    for _ in 0..entries {
        let key = read_string(&mut reader, MAX_KEY_LEN).map_err(read_err)?;
        let value_type = read_u32(&mut reader).map_err(read_err)?;
        if key == "general.architecture" {
            if value_type != STRING {
                return Err(invalid("general.architecture is not a string".into()));
            }
            let architecture = read_string(&mut reader, MAX_KEY_LEN).map_err(read_err)?;
            if architecture.is_empty() {
                return Err(invalid("general.architecture is empty".into()));
            }
            return Ok(architecture);
        }
        skip_value(&mut reader, value_type, true)
            .map_err(read_err)?
            .map_err(|why| invalid(format!("metadata `{key}`: {why}")))?;
    }
    Err(invalid(
        "its metadata has no general.architecture, so the runtime cannot tell what it is".into(),
    ))
}

/// GGUF metadata value types.
const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// The size of a fixed-size value type, or `None` for strings, arrays and unknown types.
fn fixed_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Skips one value. The outer result is I/O; the inner one a malformed value.
fn skip_value(
    reader: &mut impl Read,
    value_type: u32,
    arrays_allowed: bool,
) -> std::io::Result<Result<(), String>> {
    if let Some(size) = fixed_size(value_type) {
        skip(reader, size)?;
        return Ok(Ok(()));
    }
    match value_type {
        STRING => {
            let len = read_u64(reader)?;
            if len > MAX_STRING_LEN {
                return Ok(Err(format!("a string of {len} bytes")));
            }
            skip(reader, len)?;
            Ok(Ok(()))
        }
        ARRAY if arrays_allowed => {
            let item_type = read_u32(reader)?;
            let len = read_u64(reader)?;
            if len > MAX_ARRAY_LEN {
                return Ok(Err(format!("an array of {len} items")));
            }
            if let Some(size) = fixed_size(item_type) {
                skip(reader, size * len)?;
                return Ok(Ok(()));
            }
            for _ in 0..len {
                if let Err(why) = skip_value(reader, item_type, false)? {
                    return Ok(Err(why));
                }
            }
            Ok(Ok(()))
        }
        other => Ok(Err(format!("unknown value type {other}"))),
    }
}

fn skip(reader: &mut impl Read, len: u64) -> std::io::Result<()> {
    let skipped = std::io::copy(&mut reader.take(len), &mut std::io::sink())?;
    if skipped == len {
        Ok(())
    } else {
        Err(ErrorKind::UnexpectedEof.into())
    }
}

fn read_u32(reader: &mut impl Read) -> std::io::Result<u32> {
    let mut bytes = [0; 4];
    reader.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_u64(reader: &mut impl Read) -> std::io::Result<u64> {
    let mut bytes = [0; 8];
    reader.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

fn read_string(reader: &mut impl Read, max: u64) -> std::io::Result<String> {
    let len = read_u64(reader)?;
    if len > max {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("a metadata string of {len} bytes"),
        ));
    }
    let mut bytes = Vec::new();
    reader.take(len).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Checks a staged sentence-transformers model: `config.json` and `tokenizer.json` read as
/// JSON objects, the configuration is a BERT one, and `model.safetensors` has a readable
/// header.
pub(crate) fn check_embedding(dir: &Path, what: &str) -> Result<(), StoreError> {
    let invalid = |why: String| StoreError::not_a_model(what, why);
    let config = read_json_object(&dir.join("config.json"), what)?;
    if let Some(model_type) = config.get("model_type")
        && model_type.as_str() != Some("bert")
    {
        return Err(invalid(format!(
            "config.json gives model_type {model_type}; local embedding models must be \
             BERT-family (model_type \"bert\")"
        )));
    }
    read_json_object(&dir.join("tokenizer.json"), what)?;

    let path = dir.join("model.safetensors");
    let file = File::open(&path).map_err(StoreError::io(&path))?;
    let file_len = file.metadata().map_err(StoreError::io(&path))?.len();
    let mut reader = BufReader::new(file);
    let header_len = read_u64(&mut reader).map_err(|err| {
        if err.kind() == ErrorKind::UnexpectedEof {
            invalid("model.safetensors is shorter than its header".into())
        } else {
            StoreError::io(&path)(err)
        }
    })?;
    if header_len > MAX_SAFETENSORS_HEADER || header_len + 8 > file_len {
        return Err(invalid(format!(
            "model.safetensors claims a header of {header_len} bytes, which it cannot have"
        )));
    }
    let mut header = Vec::new();
    reader
        .take(header_len)
        .read_to_end(&mut header)
        .map_err(StoreError::io(&path))?;
    match serde_json::from_slice::<serde_json::Value>(&header) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(invalid(
            "model.safetensors' header is not the JSON index of tensors it should be".into(),
        )),
    }
}

fn read_json_object(
    path: &Path,
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = std::fs::read(path).map_err(StoreError::io(path))?;
    match serde_json::from_slice(&text) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err(StoreError::not_a_model(
            what,
            format!("{file_name} is not a JSON object"),
        )),
        Err(err) => Err(StoreError::not_a_model(
            what,
            format!("{file_name} does not read as JSON ({err})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF header with `entries` (key, type, raw value bytes).
    fn gguf(version: u32, entries: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(version.to_le_bytes());
        bytes.extend(0u64.to_le_bytes());
        bytes.extend((entries.len() as u64).to_le_bytes());
        for (key, value_type, value) in entries {
            bytes.extend((key.len() as u64).to_le_bytes());
            bytes.extend(key.as_bytes());
            bytes.extend(value_type.to_le_bytes());
            bytes.extend(value);
        }
        bytes
    }

    fn string(text: &str) -> Vec<u8> {
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend(text.as_bytes());
        bytes
    }

    fn check(bytes: &[u8]) -> Result<String, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, bytes).unwrap();
        check_gguf(&path, "m.gguf").map_err(|err| err.to_string())
    }

    #[test]
    fn the_architecture_is_found_past_other_metadata() {
        let mut tokens = STRING.to_le_bytes().to_vec();
        tokens.extend(2u64.to_le_bytes());
        tokens.extend(string("a"));
        tokens.extend(string("bc"));
        let file = gguf(
            3,
            &[
                ("general.name", STRING, string("tiny")),
                ("llama.context_length", 4, 2048u32.to_le_bytes().to_vec()),
                ("tokenizer.ggml.tokens", ARRAY, tokens),
                ("general.architecture", STRING, string("llama")),
            ],
        );
        assert_eq!(check(&file).unwrap(), "llama");
    }

    #[test]
    fn files_that_are_not_gguf_are_refused() {
        let err = check(b"<html>not found</html>").unwrap_err();
        assert!(err.contains("GGUF magic"), "{err}");
        let err = check(&gguf(1, &[])).unwrap_err();
        assert!(err.contains("version 1"), "{err}");
        let err = check(&gguf(3, &[("general.name", STRING, string("x"))])).unwrap_err();
        assert!(err.contains("no general.architecture"), "{err}");
        let whole = gguf(3, &[("general.architecture", STRING, string("llama"))]);
        let err = check(&whole[..whole.len() - 2]).unwrap_err();
        assert!(err.contains("cut short"), "{err}");
        let err = check(&gguf(3, &[("x", 99, vec![])])).unwrap_err();
        assert!(err.contains("unknown value type 99"), "{err}");
    }
}
