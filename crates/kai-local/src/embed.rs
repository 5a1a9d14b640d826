//! Sentence embeddings from a BERT-family sentence-transformer (all-MiniLM-L6-v2 by
//! default): kai's BERT encoder ([`crate::bert`]) over `model.safetensors`, the model's
//! `tokenizer.json`, pooling as `1_Pooling/config.json` says (mean over the tokens unless it
//! says otherwise), and vectors scaled to unit length.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::bert::Bert;
use crate::error::{ComputeError, LoadError};
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
        let tensors =
            candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|err| {
                LoadError::Corrupt {
                    path: weights_path.clone(),
                    why: format!("its tensors do not read: {err}"),
                }
            })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let bert = Bert::load(vb, &config).map_err(|err| LoadError::Corrupt {
            path: weights_path.clone(),
            why: format!("it does not hold the BERT model config.json describes: {err}"),
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
