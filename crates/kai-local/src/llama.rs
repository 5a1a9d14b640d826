//! The llama-family transformer over GGUF weights: the forward pass, written here rather than
//! taken from `candle_transformers::models::quantized_llama` because the runtime needs what
//! that model does not give: one KV cache per sequence (the weights are shared by every
//! session), prompts fed in chunks at any position, tied output embeddings, and weights
//! re-quantised at load time to types candle has fast CPU kernels for.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use crate::error::LoadError;
use crate::gguf::GgufFile;
use crate::qmatmul::Q8Matrix;

/// The shape of a llama-family model, from its GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LlamaConfig {
    pub(crate) layers: usize,
    pub(crate) embedding: usize,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) rms_eps: f64,
    pub(crate) rope_base: f32,
    pub(crate) context_length: usize,
}

impl LlamaConfig {
    fn read(file: &GgufFile) -> Result<LlamaConfig, LoadError> {
        let meta = file.metadata();
        let architecture = meta.str("general.architecture")?;
        if architecture != "llama" {
            return Err(LoadError::Unsupported {
                path: file.path().to_owned(),
                why: format!(
                    "its architecture is `{architecture}`; kai's local runtime runs llama-family \
                     models (Llama, Mistral, SmolLM) only"
                ),
            });
        }
        let heads = meta.usize("llama.attention.head_count")?;
        let kv_heads = meta
            .opt_usize("llama.attention.head_count_kv")?
            .unwrap_or(heads);
        let embedding = meta.usize("llama.embedding_length")?;
        let corrupt = |why: String| LoadError::Corrupt {
            path: file.path().to_owned(),
            why,
        };
        if heads == 0 || kv_heads == 0 || embedding % heads != 0 || heads % kv_heads != 0 {
            return Err(corrupt(format!(
                "its attention shape is inconsistent ({embedding} wide, {heads} heads, {kv_heads} \
                 key/value heads)"
            )));
        }
        let head_dim = embedding / heads;
        let rope_dim = meta
            .opt_usize("llama.rope.dimension_count")?
            .unwrap_or(head_dim);
        if rope_dim != head_dim {
            return Err(LoadError::Unsupported {
                path: file.path().to_owned(),
                why: format!(
                    "it rotates {rope_dim} of each head's {head_dim} dimensions; kai's local \
                     runtime supports rotary embeddings over whole heads only"
                ),
            });
        }
        let context_length = meta.usize("llama.context_length")?;
        if context_length == 0 {
            return Err(corrupt("its context length is 0".to_owned()));
        }
        Ok(LlamaConfig {
            layers: meta.usize("llama.block_count")?,
            embedding,
            heads,
            kv_heads,
            head_dim,
            rms_eps: f64::from(
                meta.opt_f32("llama.attention.layer_norm_rms_epsilon")?
                    .unwrap_or(1e-5),
            ),
            rope_base: meta.opt_f32("llama.rope.freq_base")?.unwrap_or(10_000.0),
            context_length,
        })
    }
}

struct Layer {
    attn_norm: Tensor,
    q: Projection,
    k: Projection,
    v: Projection,
    o: Projection,
    ffn_norm: Tensor,
    gate: Projection,
    up: Projection,
    down: Projection,
}

/// A loaded llama-family model: weights only, shared by every sequence.
pub(crate) struct Llama {
    config: LlamaConfig,
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    output: Projection,
    cos: Tensor,
    sin: Tensor,
    vocab: usize,
}

impl Llama {
    /// Loads the weights of `file`. Rotary tables are built for `positions` positions.
    pub(crate) fn load(file: &mut GgufFile, positions: usize) -> Result<Llama, LoadError> {
        let config = LlamaConfig::read(file)?;
        let path = file.path().to_owned();
        let compute = |err: candle_core::Error| LoadError::Corrupt {
            path: path.clone(),
            why: err.to_string(),
        };
        let embedding_weights = file.tensor("token_embd.weight")?;
        let (vocab, width) = embedding_weights.shape().dims2().map_err(compute)?;
        if width != config.embedding {
            return Err(LoadError::Corrupt {
                path: path.clone(),
                why: format!(
                    "token_embd.weight is {width} wide but the model is {} wide",
                    config.embedding
                ),
            });
        }
        let embeddings = embedding_weights
            .dequantize(&Device::Cpu)
            .map_err(compute)?;
        // Models with tied embeddings (SmolLM2 among them) have no output matrix: the
        // embedding table projects back onto the vocabulary.
        let output = if file.has_tensor("output.weight") {
            file.tensor("output.weight")?
        } else {
            embedding_weights
        };
        let output = Projection::new(output).map_err(compute)?;
        let norm = vector(file.tensor("output_norm.weight")?).map_err(compute)?;
        let mut layers = Vec::with_capacity(config.layers);
        for index in 0..config.layers {
            let mut weights = |name: &str| file.tensor(&format!("blk.{index}.{name}.weight"));
            layers.push(Layer {
                attn_norm: vector(weights("attn_norm")?).map_err(compute)?,
                q: Projection::new(weights("attn_q")?).map_err(compute)?,
                k: Projection::new(weights("attn_k")?).map_err(compute)?,
                v: Projection::new(weights("attn_v")?).map_err(compute)?,
                o: Projection::new(weights("attn_output")?).map_err(compute)?,
                ffn_norm: vector(weights("ffn_norm")?).map_err(compute)?,
                gate: Projection::new(weights("ffn_gate")?).map_err(compute)?,
                up: Projection::new(weights("ffn_up")?).map_err(compute)?,
                down: Projection::new(weights("ffn_down")?).map_err(compute)?,
            });
        }
        // Llama 3.1 and later stretch long wavelengths by per-dimension factors.
        let frequency_factors = if file.has_tensor("rope_freqs.weight") {
            let factors = file.tensor("rope_freqs.weight")?;
            let factors = factors
                .dequantize(&Device::Cpu)
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(compute)?;
            Some(factors)
        } else {
            None
        };
        let (cos, sin) =
            rotary_tables(&config, frequency_factors.as_deref(), positions).map_err(compute)?;
        Ok(Llama {
            config,
            embeddings,
            layers,
            norm,
            output,
            cos,
            sin,
            vocab,
        })
    }

    /// The model's shape.
    pub(crate) fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// How many tokens it knows.
    pub(crate) fn vocab(&self) -> usize {
        self.vocab
    }

    /// How many positions its rotary tables cover: the most a sequence can hold.
    pub(crate) fn positions(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Feeds `tokens` after what `cache` holds and returns the logits that follow the last of
    /// them. The caller keeps the sequence within [`Llama::positions`].
    pub(crate) fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
    ) -> candle_core::Result<Vec<f32>> {
        let count = tokens.len();
        let start = cache.len;
        if count == 0 {
            candle_core::bail!("no tokens to feed");
        }
        if start + count > self.positions() {
            candle_core::bail!(
                "sequence of {} tokens exceeds the {} positions prepared",
                start + count,
                self.positions()
            );
        }
        cache.reserve(start + count, self.positions())?;
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embeddings.index_select(&ids, 0)?.unsqueeze(0)?;
        let cos = self.cos.narrow(0, start, count)?;
        let sin = self.sin.narrow(0, start, count)?;
        let mask = (count > 1).then(|| causal_mask(count, start)).transpose()?;
        let eps = self.config.rms_eps as f32;
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, eps)?;
            let attention =
                self.attention(layer, &h, &cos, &sin, mask.as_ref(), layer_cache, start)?;
            x = (x + attention)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, eps)?;
            let gate = candle_nn::ops::silu(&layer.gate.forward(&h)?)?;
            let feed_forward = layer.down.forward(&(gate * layer.up.forward(&h)?)?)?;
            x = (x + feed_forward)?;
        }
        cache.len = start + count;
        let last = x.narrow(1, count - 1, 1)?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, eps)?;
        self.output.forward(&last)?.flatten_all()?.to_vec1::<f32>()
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        h: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        cache: &mut LayerCache,
        start: usize,
    ) -> candle_core::Result<Tensor> {
        let LlamaConfig {
            heads,
            kv_heads,
            head_dim,
            ..
        } = self.config;
        let count = h.dim(1)?;
        let split = |projection: Tensor, heads: usize| {
            projection
                .reshape((1, count, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(layer.q.forward(h)?, heads)?;
        let k = split(layer.k.forward(h)?, kv_heads)?;
        let v = split(layer.v.forward(h)?, kv_heads)?;
        let q = candle_nn::rotary_emb::rope_i(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope_i(&k, cos, sin)?;
        cache.keys.slice_set(&k, 2, start)?;
        cache.values.slice_set(&v, 2, start)?;
        let len = start + count;
        let keys = cache.keys.narrow(2, 0, len)?;
        let values = cache.values.narrow(2, 0, len)?;
        // Grouped-query attention without copying keys and values per query head: the query
        // heads that share a key/value head become extra rows of one matrix product.
        let group = heads / kv_heads;
        let q = q.reshape((1, kv_heads, group * count, head_dim))?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut scores = (q.matmul(&keys.t()?)? * scale)?;
        if let Some(mask) = mask {
            scores = scores
                .reshape((1, kv_heads, group, count, len))?
                .broadcast_add(mask)?
                .reshape((1, kv_heads, group * count, len))?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = weights.matmul(&values)?;
        let y = y
            .reshape((1, heads, count, head_dim))?
            .transpose(1, 2)?
            .reshape((1, count, heads * head_dim))?;
        layer.o.forward(&y)
    }

    /// An empty cache for one sequence of this model.
    pub(crate) fn new_cache(&self) -> KvCache {
        KvCache {
            kv_heads: self.config.kv_heads,
            head_dim: self.config.head_dim,
            len: 0,
            layer_count: self.config.layers,
            capacity: 0,
            layers: Vec::new(),
        }
    }
}

struct LayerCache {
    /// `(1, kv_heads, capacity, head_dim)`; positions `0..len` hold the sequence so far.
    keys: Tensor,
    values: Tensor,
}

/// The keys and values of one sequence's tokens so far, per layer. It grows by doubling, so a
/// short answer does not hold memory for the whole context window.
pub(crate) struct KvCache {
    layer_count: usize,
    kv_heads: usize,
    head_dim: usize,
    len: usize,
    capacity: usize,
    layers: Vec<LayerCache>,
}

impl KvCache {
    /// Tokens held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn reserve(&mut self, needed: usize, limit: usize) -> candle_core::Result<()> {
        if needed <= self.capacity {
            return Ok(());
        }
        let capacity = needed.max(self.capacity * 2).max(64).min(limit);
        let shape = (1, self.kv_heads, capacity, self.head_dim);
        let empty = || Tensor::zeros(shape, DType::F32, &Device::Cpu);
        if self.layers.is_empty() {
            for _ in 0..self.layer_count {
                self.layers.push(LayerCache {
                    keys: empty()?,
                    values: empty()?,
                });
            }
        } else {
            for layer in &mut self.layers {
                for buffer in [&mut layer.keys, &mut layer.values] {
                    let grown = empty()?;
                    if self.len > 0 {
                        grown.slice_set(&buffer.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                    }
                    *buffer = grown;
                }
            }
        }
        self.capacity = capacity;
        Ok(())
    }
}

/// Weights for a matrix product. Q8_0 weights, and Q4_1, Q5_0 and Q5_1 re-quantised to Q8_0
/// (candle has no SIMD dot product for those three; Q8_0 represents their values almost
/// exactly), run on kai's pool ([`Q8Matrix`]); other types (Q4_0, the K-quants, F16, F32) run
/// through candle's `QMatMul`, on candle's own pool.
enum Projection {
    Q8(Q8Matrix),
    Candle(QMatMul),
}

impl Projection {
    fn new(weights: QTensor) -> candle_core::Result<Projection> {
        match weights.dtype() {
            GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_0 => Ok(
                Projection::Q8(Q8Matrix::quantize(&weights.dequantize(&Device::Cpu)?)?),
            ),
            _ => QMatMul::from_qtensor(weights).map(Projection::Candle),
        }
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Projection::Q8(matrix) => matrix.forward(x),
            Projection::Candle(matmul) => matmul.forward(x),
        }
    }
}

fn vector(weights: QTensor) -> candle_core::Result<Tensor> {
    weights.dequantize(&Device::Cpu)
}

/// Cosine and sine of each position's rotation angles, `(positions, head_dim / 2)`.
fn rotary_tables(
    config: &LlamaConfig,
    frequency_factors: Option<&[f32]>,
    positions: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let half = config.head_dim / 2;
    let inverse_frequencies: Vec<f32> = (0..half)
        .map(|i| {
            let frequency = 1.0
                / config
                    .rope_base
                    .powf(2.0 * i as f32 / config.head_dim as f32);
            match frequency_factors.and_then(|factors| factors.get(i)) {
                Some(factor) => frequency / factor,
                None => frequency,
            }
        })
        .collect();
    let inverse_frequencies = Tensor::from_vec(inverse_frequencies, (1, half), &Device::Cpu)?;
    let positions = Tensor::arange(0, positions as u32, &Device::Cpu)?
        .to_dtype(DType::F32)?
        .reshape((positions, 1))?;
    let angles = positions.broadcast_mul(&inverse_frequencies)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// `(count, start + count)`: 0 where query `i` (at position `start + i`) may see key `j`,
/// minus infinity where `j` lies in its future.
fn causal_mask(count: usize, start: usize) -> candle_core::Result<Tensor> {
    let len = start + count;
    let mask: Vec<f32> = (0..count)
        .flat_map(|i| {
            (0..len).map(move |j| {
                if j > start + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (count, len), &Device::Cpu)
}
