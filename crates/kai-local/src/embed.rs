//! Sentence embeddings from a BERT-family sentence-transformer (all-MiniLM-L6-v2 by
//! default): kai's BERT encoder ([`crate::bert`]) over `model.safetensors`, the model's
//! `tokenizer.json`, pooling as `1_Pooling/config.json` says (mean over the tokens unless it
//! says otherwise), and vectors scaled to unit length.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::bert::{Bert, Config};
use crate::error::{ComputeError, LoadError, Plain};
use crate::vector::{dot, with_simd};

/// The most tokens one forward pass takes (texts are packed, not padded): enough for the
/// matrix products to run at full speed, few enough that a pass's activations stay small
/// (about 30 MiB for all-MiniLM-L6-v2).
const TOKENS_PER_PASS: usize = 2048;

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    Mean,
    Cls,
    Max,
}

/// A loaded sentence-embedding model.
pub struct EmbeddingModel {
    bert: Bert,
    tokenizer: Tokenizer,
    pooling: Pooling,
    dimensions: usize,
    max_tokens: usize,
}

impl std::fmt::Debug for EmbeddingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingModel")
            .field("dimensions", &self.dimensions)
            .field("max_tokens", &self.max_tokens)
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

/// Vectors for a list of texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One unit-length vector per text, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read, after truncation.
    pub tokens: u64,
    /// The positions of texts cut to the model's input limit.
    pub truncated: Vec<usize>,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

impl EmbeddingModel {
    /// Loads the model in `dir`: `config.json`, `model.safetensors`, `tokenizer.json`, and
    /// where present `sentence_bert_config.json` and `1_Pooling/config.json`.
    pub fn load(dir: &Path) -> Result<EmbeddingModel, LoadError> {
        let config_path = dir.join("config.json");
        let config: Config = read_json(&config_path)?;
        let limit =
            match read_optional_json::<SentenceBertConfig>(&dir.join("sentence_bert_config.json"))?
            {
                Some(SentenceBertConfig {
                    max_seq_length: Some(max),
                }) => max.min(config.max_position_embeddings),
                _ => config.max_position_embeddings,
            };
        let pooling_path = dir.join("1_Pooling").join("config.json");
        let pooling = match read_optional_json::<PoolingConfig>(&pooling_path)? {
            None => Pooling::Mean,
            Some(pooling) => {
                if pooling.pooling_mode_mean_sqrt_len_tokens {
                    return Err(LoadError::Unsupported {
                        path: pooling_path,
                        why: "square-root-length pooling is not supported; kai pools by mean, \
                              by the CLS token or by maximum"
                            .to_owned(),
                    });
                }
                match (
                    pooling.pooling_mode_cls_token,
                    pooling.pooling_mode_max_tokens,
                    pooling.pooling_mode_mean_tokens,
                ) {
                    (true, _, _) => Pooling::Cls,
                    (false, true, _) => Pooling::Max,
                    _ => Pooling::Mean,
                }
            }
        };
        let weights_path = dir.join("model.safetensors");
        let tensors = read_safetensors(&weights_path)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let bert = Bert::load(vb, &config).map_err(|err| LoadError::Corrupt {
            path: weights_path.clone(),
            why: format!(
                "it does not hold the BERT model config.json describes: {}",
                Plain(&err)
            ),
        })?;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|err| LoadError::Corrupt {
                path: tokenizer_path.clone(),
                why: format!("it is not a tokenizer.json kai can read: {err}"),
            })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: limit,
                ..TruncationParams::default()
            }))
            .map_err(|err| LoadError::Corrupt {
                path: tokenizer_path,
                why: err.to_string(),
            })?;
        Ok(EmbeddingModel {
            bert,
            tokenizer,
            pooling,
            dimensions: config.hidden_size,
            max_tokens: limit,
        })
    }

    /// The length of its vectors.
    #[must_use]
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The most tokens of one text it reads; longer texts are cut.
    #[must_use]
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Embeds `texts`. Runs on the calling thread (and the current rayon pool).
    pub fn embed(&self, texts: &[String]) -> Result<Embeddings, ComputeError> {
        let mut encoded = Vec::with_capacity(texts.len());
        let mut truncated = Vec::new();
        let mut tokens = 0u64;
        for (index, text) in texts.iter().enumerate() {
            let encoding = self
                .tokenizer
                .encode(text.as_str(), true)
                .map_err(|err| ComputeError::Tokenizer(err.to_string()))?;
            if !encoding.get_overflowing().is_empty() {
                truncated.push(index);
            }
            tokens += encoding.get_ids().len() as u64;
            encoded.push(encoding.get_ids().to_vec());
        }
        let mut vectors = Vec::with_capacity(texts.len());
        let mut first = 0;
        while first < encoded.len() {
            // At least one text per pass, however long; then as many as fit.
            let mut end = first + 1;
            let mut tokens = encoded[first].len();
            while end < encoded.len() && tokens + encoded[end].len() <= TOKENS_PER_PASS {
                tokens += encoded[end].len();
                end += 1;
            }
            let pass: Vec<&[u32]> = encoded[first..end].iter().map(Vec::as_slice).collect();
            self.embed_pass(&pass, &mut vectors)?;
            first = end;
        }
        Ok(Embeddings {
            vectors,
            tokens,
            truncated,
        })
    }

    /// Embeds `texts` in one forward pass, appending their vectors to `vectors`.
    fn embed_pass(
        &self,
        texts: &[&[u32]],
        vectors: &mut Vec<Vec<f32>>,
    ) -> Result<(), ComputeError> {
        let hidden = self.bert.forward(texts)?;
        let width = self.dimensions;
        let mut first = 0;
        for ids in texts {
            let rows = &hidden[first * width..(first + ids.len()) * width];
            first += ids.len();
            // Mean pooling sums: the divisor would cancel in the unit-length scaling below.
            let mut vector = match self.pooling {
                Pooling::Mean => rows
                    .chunks_exact(width)
                    .fold(vec![0f32; width], |mut v, row| {
                        v.iter_mut().zip(row).for_each(|(v, x)| *v += x);
                        v
                    }),
                Pooling::Cls => rows
                    .get(..width)
                    .map_or_else(|| vec![0f32; width], <[f32]>::to_vec),
                Pooling::Max => {
                    rows.chunks_exact(width)
                        .fold(vec![f32::NEG_INFINITY; width], |mut v, row| {
                            v.iter_mut().zip(row).for_each(|(v, x)| *v = v.max(*x));
                            v
                        })
                }
            };
            let norm = with_simd(
                #[inline(always)]
                || dot(&vector, &vector).sqrt(),
            )
            .max(1e-12);
            vector.iter_mut().for_each(|v| *v /= norm);
            vectors.push(vector);
        }
        Ok(())
    }
}

/// Reads a safetensors file tensor by tensor, each straight into the buffer its f32 tensor
/// keeps, so loading takes the model's size in memory rather than twice it (candle's loader
/// reads the whole file before copying each tensor out of it).
fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>, LoadError> {
    #[derive(Deserialize)]
    struct Entry {
        dtype: String,
        shape: Vec<usize>,
        data_offsets: [u64; 2],
    }
    let corrupt = |why: String| LoadError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(io)?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > file_len.saturating_sub(8) || header_len > 100 << 20 {
        return Err(corrupt(format!(
            "its header claims {header_len} bytes; it is not a safetensors file, or is truncated"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let mut entries: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|err| corrupt(format!("its header does not read: {err}")))?;
    entries.remove("__metadata__");
    let data_start = 8 + header_len;
    let mut tensors = HashMap::with_capacity(entries.len());
    for (name, entry) in entries {
        let entry: Entry = serde_json::from_value(entry)
            .map_err(|err| corrupt(format!("tensor {name}'s entry does not read: {err}")))?;
        let count: usize = entry.shape.iter().product();
        let width = match entry.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            // Integer tensors are buffers saved with the weights (BERT's `position_ids`),
            // which the encoder does not read.
            "I64" | "I32" | "I16" | "I8" | "U64" | "U32" | "U16" | "U8" | "BOOL" => continue,
            other => {
                return Err(LoadError::Unsupported {
                    path: path.to_owned(),
                    why: format!("tensor {name} is {other}; kai reads F32, F16 and BF16 weights"),
                });
            }
        };
        let [start, end] = entry.data_offsets;
        if end.checked_sub(start) != Some((count * width) as u64) || data_start + end > file_len {
            return Err(corrupt(format!(
                "tensor {name} ({:?}, {}) does not fit bytes {start}..{end} of the data; the \
                 file may be truncated",
                entry.shape, entry.dtype
            )));
        }
        file.seek(SeekFrom::Start(data_start + start)).map_err(io)?;
        let values = if width == 4 {
            let mut values = vec![0f32; count];
            file.read_exact(bytemuck::cast_slice_mut(&mut values))
                .map_err(io)?;
            // The file is little-endian, as is every CPU kai builds for but a few.
            values
                .iter_mut()
                .for_each(|v| *v = f32::from_bits(u32::from_le(v.to_bits())));
            values
        } else {
            let mut bytes = vec![0u8; count * 2];
            file.read_exact(&mut bytes).map_err(io)?;
            let halves = bytes.chunks_exact(2).map(|b| [b[0], b[1]]);
            if entry.dtype == "F16" {
                halves
                    .map(|b| half::f16::from_le_bytes(b).to_f32())
                    .collect()
            } else {
                halves
                    .map(|b| half::bf16::from_le_bytes(b).to_f32())
                    .collect()
            }
        };
        let tensor = Tensor::from_vec(values, entry.shape, &Device::Cpu)
            .map_err(|err| corrupt(format!("tensor {name}: {}", Plain(&err))))?;
        tensors.insert(name, tensor);
    }
    Ok(tensors)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, LoadError> {
    read_optional_json(path)?.ok_or_else(|| LoadError::Corrupt {
        path: path.to_owned(),
        why: "it is missing".to_owned(),
    })
}

fn read_optional_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, LoadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LoadError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|err| LoadError::Corrupt {
            path: PathBuf::from(path),
            why: format!("it does not read: {err}"),
        })
}
