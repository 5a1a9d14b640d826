//! Checks that staged files are a model the runtime can load, before anything is installed
//! (and again by `kai models verify`): a GGUF file's header, its `general.architecture`, and
//! that every tensor it names has a type the runtime reads and lies whole within the file; a
//! sentence-transformer's configuration, tokenizer and safetensors header.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use crate::{ModelFormat, StoreError};

/// The GGUF versions whose header this reads (1 used 32-bit lengths and is long gone).
const GGUF_VERSIONS: [u32; 2] = [2, 3];

/// Limits that a real header stays far below; a file past them is not GGUF.
const MAX_KEY_LEN: u64 = 64 * 1024;
const MAX_STRING_LEN: u64 = 256 * 1024 * 1024;
const MAX_ENTRIES: u64 = 1 << 20;
const MAX_ARRAY_LEN: u64 = 1 << 32;
const MAX_TENSORS: u64 = 1 << 20;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Where tensor data starts and how its offsets are aligned when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;

/// The largest safetensors header read (its JSON index of tensors).
const MAX_SAFETENSORS_HEADER: u64 = 100 * 1024 * 1024;

/// The ggml tensor types kai-local reads (candle's `GgmlDType`): (type id, name, values per
/// block, bytes per block).
const TENSOR_TYPES: [(u32, &str, u64, u64); 15] = [
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (30, "BF16", 1, 2),
];

/// One entry of a GGUF file's tensor table.
struct TensorInfo {
    name: String,
    /// Its data's offset from the start of the data section.
    offset: u64,
    /// Its data's length in bytes.
    len: u64,
}

/// Checks the model files in `dir` as [`check_gguf`] or [`check_embedding`] does, by format;
/// `weights` is the GGUF file's path within `dir`.
pub(crate) fn check_model(
    dir: &Path,
    format: ModelFormat,
    weights: &str,
    what: &str,
) -> Result<(), StoreError> {
    match format {
        ModelFormat::Gguf => check_gguf(&dir.join(weights), what).map(drop),
        ModelFormat::BertSafetensors => check_embedding(dir, what),
    }
}

/// Reads a GGUF file's header and tensor table, checks that every tensor has a type the
/// runtime reads, is aligned, and ends within the file, and returns `general.architecture`.
/// A file cut short (an interrupted copy, a full disk) is refused here, naming the first
/// tensor that does not fit, rather than at the first request.
fn check_gguf(path: &Path, what: &str) -> Result<String, StoreError> {
    let file = File::open(path).map_err(StoreError::io(path))?;
    let file_len = file.metadata().map_err(StoreError::io(path))?.len();
    let mut reader = Counting {
        inner: BufReader::new(file),
        position: 0,
    };
    let invalid = |why: String| StoreError::not_a_model(what, why);
    let read_err = |err: std::io::Error| match err.kind() {
        ErrorKind::UnexpectedEof => invalid(format!(
            "the GGUF header is cut short (the file has only {file_len} bytes)"
        )),
        ErrorKind::InvalidData => invalid(err.to_string()),
        _ => StoreError::io(path)(err),
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
    let tensor_count = read_u64(&mut reader).map_err(read_err)?;
    if tensor_count > MAX_TENSORS {
        return Err(invalid(format!("its header claims {tensor_count} tensors")));
    }
    let entries = read_u64(&mut reader).map_err(read_err)?;
    if entries > MAX_ENTRIES {
        return Err(invalid(format!(
            "its header claims {entries} metadata entries"
        )));
    }

    let mut architecture = None;
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..entries {
        let key = read_string(&mut reader, MAX_KEY_LEN).map_err(read_err)?;
        let value_type = read_u32(&mut reader).map_err(read_err)?;
        match key.as_str() {
            "general.architecture" => {
                if value_type != STRING {
                    return Err(invalid("general.architecture is not a string".into()));
                }
                let name = read_string(&mut reader, MAX_KEY_LEN).map_err(read_err)?;
                if name.is_empty() {
                    return Err(invalid("general.architecture is empty".into()));
                }
                architecture = Some(name);
            }
            "general.alignment" => {
                if value_type != U32 {
                    return Err(invalid(
                        "general.alignment is not a 32-bit unsigned integer".into(),
                    ));
                }
                alignment = u64::from(read_u32(&mut reader).map_err(read_err)?);
                if !alignment.is_power_of_two() {
                    return Err(invalid(format!(
                        "general.alignment is {alignment}, not a power of two"
                    )));
                }
            }
            _ => skip_value(&mut reader, value_type, true)
                .map_err(read_err)?
                .map_err(|why| invalid(format!("metadata `{key}`: {why}")))?,
        }
    }
    let Some(architecture) = architecture else {
        return Err(invalid(
            "its metadata has no general.architecture, so the runtime cannot tell what it is"
                .into(),
        ));
    };
    if tensor_count == 0 {
        return Err(invalid("it holds no tensors".into()));
    }

    let mut tensors = Vec::new();
    for _ in 0..tensor_count {
        let tensor = read_tensor_info(&mut reader, alignment)
            .map_err(read_err)?
            .map_err(invalid)?;
        tensors.push(tensor);
    }
    let data_start = reader.position.div_ceil(alignment) * alignment;
    for tensor in &tensors {
        let end = data_start
            .checked_add(tensor.offset)
            .and_then(|start| start.checked_add(tensor.len));
        match end {
            Some(end) if end <= file_len => {}
            Some(end) => {
                return Err(invalid(format!(
                    "tensor `{}` ends at byte {end} but the file has only {file_len} bytes: \
                     the file is cut short",
                    tensor.name
                )));
            }
            None => {
                return Err(invalid(format!(
                    "tensor `{}` claims an offset past any file",
                    tensor.name
                )));
            }
        }
    }
    Ok(architecture)
}

/// Reads one tensor-table entry. The outer result is I/O; the inner one a malformed entry.
fn read_tensor_info(
    reader: &mut impl Read,
    alignment: u64,
) -> std::io::Result<Result<TensorInfo, String>> {
    let name = read_string(reader, MAX_KEY_LEN)?;
    let dims = read_u32(reader)?;
    if dims > MAX_DIMS {
        return Ok(Err(format!("tensor `{name}` claims {dims} dimensions")));
    }
    let mut values: u64 = 1;
    for _ in 0..dims {
        let dim = read_u64(reader)?;
        let Some(product) = values.checked_mul(dim) else {
            return Ok(Err(format!("tensor `{name}` claims an impossible shape")));
        };
        values = product;
    }
    let type_id = read_u32(reader)?;
    let offset = read_u64(reader)?;
    let Some(&(_, type_name, block, block_bytes)) =
        TENSOR_TYPES.iter().find(|(id, ..)| *id == type_id)
    else {
        let known: Vec<&str> = TENSOR_TYPES.iter().map(|(_, name, ..)| *name).collect();
        return Ok(Err(format!(
            "tensor `{name}` has ggml type {type_id}, which kai's runtime does not read (it \
             reads {})",
            known.join(", ")
        )));
    };
    if !values.is_multiple_of(block) {
        return Ok(Err(format!(
            "tensor `{name}` has {values} values, not a whole number of {type_name} blocks of \
             {block}"
        )));
    }
    if !offset.is_multiple_of(alignment) {
        return Ok(Err(format!(
            "tensor `{name}` starts at offset {offset}, which is not a multiple of the file's \
             alignment ({alignment})"
        )));
    }
    Ok(Ok(TensorInfo {
        name,
        offset,
        len: values / block * block_bytes,
    }))
}

/// A reader that knows how far it has read: the tensor data starts at the first aligned
/// offset after the header.
struct Counting<R> {
    inner: R,
    position: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.position += read as u64;
        Ok(read)
    }
}

/// GGUF metadata value types.
const U32: u32 = 4;
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
fn check_embedding(dir: &Path, what: &str) -> Result<(), StoreError> {
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

    /// A tensor-table entry: (name, dimensions, ggml type, offset).
    type Tensor<'a> = (&'a str, &'a [u64], u32, u64);

    /// A GGUF file with `entries` (key, type, raw value bytes), `tensors`, and `data` after the
    /// header, aligned to 32 bytes.
    fn gguf_with(
        version: u32,
        entries: &[(&str, u32, Vec<u8>)],
        tensors: &[Tensor<'_>],
        data: usize,
    ) -> Vec<u8> {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(version.to_le_bytes());
        bytes.extend((tensors.len() as u64).to_le_bytes());
        bytes.extend((entries.len() as u64).to_le_bytes());
        for (key, value_type, value) in entries {
            bytes.extend(string(key));
            bytes.extend(value_type.to_le_bytes());
            bytes.extend(value);
        }
        for (name, dims, type_id, offset) in tensors {
            bytes.extend(string(name));
            bytes.extend((dims.len() as u32).to_le_bytes());
            for dim in *dims {
                bytes.extend(dim.to_le_bytes());
            }
            bytes.extend(type_id.to_le_bytes());
            bytes.extend(offset.to_le_bytes());
        }
        bytes.resize(bytes.len().div_ceil(32) * 32 + data, 7);
        bytes
    }

    /// A GGUF file with `entries` and one F32 tensor of 8 values.
    fn gguf(version: u32, entries: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        gguf_with(version, entries, &[("w", &[8], 0, 0)], 32)
    }

    fn llama() -> Vec<(&'static str, u32, Vec<u8>)> {
        vec![("general.architecture", STRING, string("llama"))]
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
        let err = check(&gguf_with(3, &llama(), &[], 0)).unwrap_err();
        assert!(err.contains("holds no tensors"), "{err}");
    }

    #[test]
    fn every_tensor_must_lie_whole_within_the_file() {
        // Two Q4_0 tensors of 64 values (two blocks, 36 bytes each), the second at offset 64.
        let tensors: [Tensor<'_>; 2] = [("a", &[64], 2, 0), ("b", &[2, 32], 2, 64)];
        let whole = gguf_with(3, &llama(), &tensors, 100);
        assert_eq!(check(&whole).unwrap(), "llama");
        let short = &whole[..whole.len() - 1];
        let err = check(short).unwrap_err();
        let end = whole.len();
        assert!(
            err.contains(&format!(
                "tensor `b` ends at byte {end} but the file has only {}",
                end - 1
            )),
            "{err}"
        );
        assert!(err.contains("cut short"), "{err}");
        // Cut inside the tensor table, or to a hundred bytes: the header itself is short.
        for len in [whole.len() - 120, 100] {
            let err = check(&whole[..len]).unwrap_err();
            assert!(err.contains("the GGUF header is cut short"), "{len}: {err}");
        }
        let far = gguf_with(3, &llama(), &[("a", &[8], 0, u64::MAX - 31)], 32);
        assert!(check(&far).unwrap_err().contains("offset past any file"));
    }

    #[test]
    fn tensors_must_have_a_known_type_a_whole_number_of_blocks_and_aligned_offsets() {
        let err = check(&gguf_with(3, &llama(), &[("iq", &[256], 16, 0)], 256)).unwrap_err();
        assert!(
            err.contains("tensor `iq` has ggml type 16, which kai's runtime does not read"),
            "{err}"
        );
        assert!(err.contains("Q4_0, Q4_1"), "{err}");
        let err = check(&gguf_with(3, &llama(), &[("q", &[40], 2, 0)], 64)).unwrap_err();
        assert!(
            err.contains("40 values, not a whole number of Q4_0 blocks of 32"),
            "{err}"
        );
        let err = check(&gguf_with(3, &llama(), &[("f", &[4], 0, 8)], 64)).unwrap_err();
        assert!(err.contains("offset 8, which is not a multiple"), "{err}");
        let err = check(&gguf_with(
            3,
            &llama(),
            &[("f", &[1, 2, 3, 4, 5], 0, 0)],
            512,
        ));
        assert!(err.unwrap_err().contains("claims 5 dimensions"));
        let err = check(&gguf_with(3, &llama(), &[("f", &[u64::MAX, 2], 0, 0)], 0));
        assert!(err.unwrap_err().contains("impossible shape"));
    }

    #[test]
    fn general_alignment_moves_where_the_data_starts() {
        let mut entries = llama();
        entries.push(("general.alignment", U32, 64u32.to_le_bytes().to_vec()));
        // Offset 64 is aligned to 64; the header is padded only to 32 by the helper, so the
        // data must be read from the next multiple of 64.
        let file = gguf_with(3, &entries, &[("f", &[4], 0, 64)], 200);
        assert_eq!(check(&file).unwrap(), "llama");
        let err = check(&gguf_with(3, &entries, &[("f", &[4], 0, 32)], 200)).unwrap_err();
        assert!(
            err.contains("not a multiple of the file's alignment (64)"),
            "{err}"
        );
        entries[1].2 = 48u32.to_le_bytes().to_vec();
        let err = check(&gguf_with(3, &entries, &[("f", &[4], 0, 0)], 64)).unwrap_err();
        assert!(
            err.contains("general.alignment is 48, not a power of two"),
            "{err}"
        );
    }
}
