//! Reading a GGUF file: its header, checked against the file's length before any tensor is
//! read, and typed access to its metadata.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{LoadError, Plain};

/// An open GGUF file whose tensors all lie within it.
pub(crate) struct GgufFile {
    path: PathBuf,
    content: Content,
    reader: BufReader<File>,
}

impl GgufFile {
    /// Opens `path` and reads its header. A file cut short (an interrupted copy, a full disk)
    /// is refused here, naming the first tensor that does not fit, rather than failing
    /// half-way through loading.
    pub(crate) fn open(path: &Path) -> Result<GgufFile, LoadError> {
        let io = |source| LoadError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|err| LoadError::Corrupt {
            path: path.to_owned(),
            why: format!("its GGUF header does not read: {}", Plain(&err)),
        })?;
        let mut infos: Vec<_> = content.tensor_infos.iter().collect();
        infos.sort_by_key(|(_, info)| info.offset);
        for (name, info) in infos {
            let dtype = info.ggml_dtype;
            let elements = info.shape.elem_count();
            if elements % dtype.block_size() != 0 {
                return Err(LoadError::Corrupt {
                    path: path.to_owned(),
                    why: format!(
                        "tensor `{name}` has {elements} values, not a whole number of {dtype:?} blocks"
                    ),
                });
            }
            let bytes = (elements / dtype.block_size() * dtype.type_size()) as u64;
            let end = content.tensor_data_offset + info.offset + bytes;
            if end > len {
                return Err(LoadError::Corrupt {
                    path: path.to_owned(),
                    why: format!(
                        "tensor `{name}` ends at byte {end} but the file has only {len} bytes"
                    ),
                });
            }
        }
        Ok(GgufFile {
            path: path.to_owned(),
            content,
            reader,
        })
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its metadata.
    pub(crate) fn metadata(&self) -> Metadata<'_> {
        Metadata {
            path: &self.path,
            values: &self.content.metadata,
        }
    }

    /// Whether it holds a tensor called `name`.
    pub(crate) fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// Reads the tensor called `name`.
    pub(crate) fn tensor(&mut self, name: &str) -> Result<QTensor, LoadError> {
        if !self.has_tensor(name) {
            return Err(LoadError::Corrupt {
                path: self.path.clone(),
                why: format!("it has no tensor `{name}`"),
            });
        }
        self.content
            .tensor(&mut self.reader, name, &Device::Cpu)
            .map_err(|err| LoadError::Corrupt {
                path: self.path.clone(),
                why: format!("tensor `{name}` does not read: {}", Plain(&err)),
            })
    }
}

/// Typed access to a GGUF file's metadata; a missing or mistyped required key is an error
/// naming the key.
#[derive(Clone, Copy)]
pub(crate) struct Metadata<'a> {
    path: &'a Path,
    values: &'a HashMap<String, Value>,
}

impl<'a> Metadata<'a> {
    fn missing(&self, key: &str) -> LoadError {
        LoadError::Corrupt {
            path: self.path.to_owned(),
            why: format!("its metadata lacks `{key}`"),
        }
    }

    fn mistyped(&self, key: &str, expected: &str) -> LoadError {
        LoadError::Corrupt {
            path: self.path.to_owned(),
            why: format!("its metadata `{key}` is not {expected}"),
        }
    }

    /// A non-negative integer, whatever integer type the file stored it as.
    pub(crate) fn opt_usize(&self, key: &str) -> Result<Option<usize>, LoadError> {
        let Some(value) = self.values.get(key) else {
            return Ok(None);
        };
        integer(value)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| self.mistyped(key, "a non-negative integer"))
    }

    /// A required non-negative integer.
    pub(crate) fn usize(&self, key: &str) -> Result<usize, LoadError> {
        self.opt_usize(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional token id.
    pub(crate) fn opt_u32(&self, key: &str) -> Result<Option<u32>, LoadError> {
        self.opt_usize(key)?
            .map(|n| u32::try_from(n).map_err(|_| self.mistyped(key, "a token id")))
            .transpose()
    }

    /// An optional number.
    pub(crate) fn opt_f32(&self, key: &str) -> Result<Option<f32>, LoadError> {
        let Some(value) = self.values.get(key) else {
            return Ok(None);
        };
        let number = match value {
            Value::F32(x) => Some(*x),
            Value::F64(x) => Some(*x as f32),
            other => integer(other).map(|n| n as f32),
        };
        number
            .map(Some)
            .ok_or_else(|| self.mistyped(key, "a number"))
    }

    /// An optional flag.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, LoadError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(self.mistyped(key, "a boolean")),
        }
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, LoadError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.mistyped(key, "a string")),
        }
    }

    /// A required string.
    pub(crate) fn str(&self, key: &str) -> Result<&'a str, LoadError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    fn array(&self, key: &str) -> Result<Option<&'a [Value]>, LoadError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(self.mistyped(key, "an array")),
        }
    }

    /// An optional array of strings.
    pub(crate) fn opt_strings(&self, key: &str) -> Result<Option<Vec<&'a str>>, LoadError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.as_str()),
                _ => Err(self.mistyped(key, "an array of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A required array of strings.
    pub(crate) fn strings(&self, key: &str) -> Result<Vec<&'a str>, LoadError> {
        self.opt_strings(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional array of integers.
    pub(crate) fn opt_integers(&self, key: &str) -> Result<Option<Vec<i64>>, LoadError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|item| integer(item).ok_or_else(|| self.mistyped(key, "an array of integers")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional array of numbers.
    pub(crate) fn opt_floats(&self, key: &str) -> Result<Option<Vec<f32>>, LoadError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|item| match item {
                Value::F32(x) => Ok(*x),
                _ => Err(self.mistyped(key, "an array of 32-bit floats")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The file, for errors raised by the caller.
    pub(crate) fn path(&self) -> &'a Path {
        self.path
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::U8(n) => Some(i64::from(*n)),
        Value::I8(n) => Some(i64::from(*n)),
        Value::U16(n) => Some(i64::from(*n)),
        Value::I16(n) => Some(i64::from(*n)),
        Value::U32(n) => Some(i64::from(*n)),
        Value::I32(n) => Some(i64::from(*n)),
        Value::U64(n) => i64::try_from(*n).ok(),
        Value::I64(n) => Some(*n),
        _ => None,
    }
}
