//! The llama-family transformer over GGUF weights: the forward pass, written here over plain
//! `f32` slices rather than taken from `candle_transformers::models::quantized_llama`, because
//! the runtime needs what that model does not give: one KV cache per sequence (the weights are
//! shared by every session), prompts fed in chunks at any position, tied output embeddings,
//! 4-bit matrix products on kai's own thread pool ([`crate::quant`]), and no per-operation
//! tensor bookkeeping, which for a model this small cost a third of each token.

use candle_core::Device;
use rayon::prelude::*;

use crate::error::{LoadError, Plain};
use crate::gguf::GgufFile;
use crate::quant::{Activations, QMatrix, multiply_all};
use crate::vector::{dot, exp, softmax, with_simd};

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
    /// Values per token in each layer's key (and value) cache: every key/value head.
    fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Values per token of the stacked query, key and value projections.
    fn qkv_width(&self) -> usize {
        self.embedding + 2 * self.kv_width()
    }

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
    attn_norm: Vec<f32>,
    /// The query, key and value projections, multiplied as one job.
    qkv: [QMatrix; 3],
    output: QMatrix,
    ffn_norm: Vec<f32>,
    /// The feed-forward gate and up projections, multiplied as one job.
    gate_up: [QMatrix; 2],
    down: QMatrix,
}

/// A loaded llama-family model: weights only, shared by every sequence.
pub(crate) struct Llama {
    config: LlamaConfig,
    /// The token embedding table, kept quantized; rows are dequantized as tokens come.
    embeddings: QMatrix,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// The projection onto the vocabulary; `None` where it is the embedding table (tied).
    output: Option<QMatrix>,
    /// Cosines and sines of each position's rotation angles, `positions × head_dim / 2`.
    cos: Vec<f32>,
    sin: Vec<f32>,
    positions: usize,
    feed_forward: usize,
}

impl Llama {
    /// Loads the weights of `file`. Rotary tables are built for `positions` positions.
    pub(crate) fn load(file: &mut GgufFile, positions: usize) -> Result<Llama, LoadError> {
        let config = LlamaConfig::read(file)?;
        let width = config.embedding;
        let kv_width = config.kv_width();
        let embeddings = load_matrix(file, "token_embd.weight", None, width)?;
        let vocab = embeddings.rows();
        // Models with tied embeddings (SmolLM2 among them) have no output matrix: the
        // embedding table projects back onto the vocabulary.
        let output = if file.has_tensor("output.weight") {
            Some(load_matrix(file, "output.weight", Some(vocab), width)?)
        } else {
            None
        };
        let matrix = load_matrix;
        let vector = load_vector;
        let norm = vector(file, "output_norm.weight", width)?;
        let mut layers = Vec::with_capacity(config.layers);
        let mut feed_forward = 0;
        for index in 0..config.layers {
            let name = |part: &str| format!("blk.{index}.{part}.weight");
            let attn_norm = vector(file, &name("attn_norm"), width)?;
            let ffn_norm = vector(file, &name("ffn_norm"), width)?;
            let qkv = [
                matrix(file, &name("attn_q"), Some(width), width)?,
                matrix(file, &name("attn_k"), Some(kv_width), width)?,
                matrix(file, &name("attn_v"), Some(kv_width), width)?,
            ];
            let output = matrix(file, &name("attn_output"), Some(width), width)?;
            let gate = matrix(file, &name("ffn_gate"), None, width)?;
            feed_forward = gate.rows();
            let up = matrix(file, &name("ffn_up"), Some(feed_forward), width)?;
            let down = matrix(file, &name("ffn_down"), Some(width), feed_forward)?;
            layers.push(Layer {
                attn_norm,
                qkv,
                output,
                ffn_norm,
                gate_up: [gate, up],
                down,
            });
        }
        // Llama 3.1 and later stretch long wavelengths by per-dimension factors.
        let frequency_factors = if file.has_tensor("rope_freqs.weight") {
            Some(vector(file, "rope_freqs.weight", config.head_dim / 2)?)
        } else {
            None
        };
        let (cos, sin) = rotary_tables(&config, frequency_factors.as_deref(), positions);
        Ok(Llama {
            config,
            embeddings,
            layers,
            norm,
            output,
            cos,
            sin,
            positions,
            feed_forward,
        })
    }

    /// The model's shape.
    pub(crate) fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// How many tokens it knows.
    pub(crate) fn vocab(&self) -> usize {
        self.embeddings.rows()
    }

    /// How many positions its rotary tables cover: the most a sequence can hold.
    pub(crate) fn positions(&self) -> usize {
        self.positions
    }

    /// Bytes the weights take in memory.
    pub(crate) fn weight_bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|layer| {
                layer.qkv.iter().map(QMatrix::bytes).sum::<usize>()
                    + layer.output.bytes()
                    + layer.gate_up.iter().map(QMatrix::bytes).sum::<usize>()
                    + layer.down.bytes()
            })
            .sum();
        layers + self.embeddings.bytes() + self.output.as_ref().map_or(0, QMatrix::bytes)
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
        if start + count > self.positions {
            candle_core::bail!(
                "sequence of {} tokens exceeds the {} positions prepared",
                start + count,
                self.positions
            );
        }
        if let Some(token) = tokens.iter().find(|t| **t as usize >= self.vocab()) {
            candle_core::bail!(
                "token {token} is outside the {}-token vocabulary",
                self.vocab()
            );
        }
        let width = self.config.embedding;
        let kv_width = self.config.kv_width();
        let qkv_width = self.config.qkv_width();
        let eps = self.config.rms_eps as f32;
        cache.reserve(start + count, self.positions);

        let mut x = vec![0f32; count * width];
        for (token, row) in tokens.iter().zip(x.chunks_exact_mut(width)) {
            self.embeddings.dequantize_row(*token as usize, row);
        }
        let mut normed = vec![0f32; count * width];
        let mut qkv = vec![0f32; count * qkv_width];
        let mut attended = vec![0f32; count * width];
        let mut projected = vec![0f32; count * width];
        let mut gate_up = vec![0f32; count * 2 * self.feed_forward];
        let mut activated = vec![0f32; count * self.feed_forward];
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            rms_norm(&x, &layer.attn_norm, eps, &mut normed);
            let [q, k, v] = &layer.qkv;
            multiply_all(&[q, k, v], &Activations::quantize(&normed, width), &mut qkv);
            for (i, row) in qkv.chunks_exact_mut(qkv_width).enumerate() {
                let (q, kv) = row.split_at_mut(width);
                let (k, v) = kv.split_at_mut(kv_width);
                self.rotate(q, start + i);
                self.rotate(k, start + i);
                layer_cache.keys.extend_from_slice(k);
                layer_cache.values.extend_from_slice(v);
            }
            self.attend(&qkv, layer_cache, start, &mut attended);
            layer
                .output
                .multiply(&Activations::quantize(&attended, width), &mut projected);
            add(&mut x, &projected);

            rms_norm(&x, &layer.ffn_norm, eps, &mut normed);
            let [gate, up] = &layer.gate_up;
            multiply_all(
                &[gate, up],
                &Activations::quantize(&normed, width),
                &mut gate_up,
            );
            with_simd(
                #[inline(always)]
                || {
                    for (out, row) in activated
                        .chunks_exact_mut(self.feed_forward)
                        .zip(gate_up.chunks_exact(2 * self.feed_forward))
                    {
                        let (gate, up) = row.split_at(self.feed_forward);
                        for ((out, g), u) in out.iter_mut().zip(gate).zip(up) {
                            *out = g / (1.0 + exp(-g)) * u;
                        }
                    }
                },
            );
            layer.down.multiply(
                &Activations::quantize(&activated, self.feed_forward),
                &mut projected,
            );
            add(&mut x, &projected);
        }
        cache.len = start + count;
        let mut last = vec![0f32; width];
        rms_norm(&x[(count - 1) * width..], &self.norm, eps, &mut last);
        let output = self.output.as_ref().unwrap_or(&self.embeddings);
        let mut logits = vec![0f32; output.rows()];
        output.multiply(&Activations::quantize(&last, width), &mut logits);
        Ok(logits)
    }

    /// Rotates each head of `values` (one token's queries or keys) by its position's angles:
    /// llama.cpp's rotation of adjacent pairs, which GGUF's weight order expects.
    fn rotate(&self, values: &mut [f32], position: usize) {
        let half = self.config.head_dim / 2;
        let cos = &self.cos[position * half..(position + 1) * half];
        let sin = &self.sin[position * half..(position + 1) * half];
        for head in values.chunks_exact_mut(self.config.head_dim) {
            for ((pair, c), s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * c - b * s;
                pair[1] = a * s + b * c;
            }
        }
    }

    /// Causal attention of the rows of `qkv` (queries at positions `start..`) over the cached
    /// keys and values, written to `out` (`count × width`). Each query head is a task; query
    /// heads that share a key/value head (grouped-query attention) read the same cache rows.
    fn attend(&self, qkv: &[f32], cache: &LayerCache, start: usize, out: &mut [f32]) {
        let LlamaConfig {
            embedding: width,
            heads,
            kv_heads,
            head_dim,
            ..
        } = self.config;
        let kv_width = self.config.kv_width();
        let qkv_width = self.config.qkv_width();
        let count = qkv.len() / qkv_width;
        let group = heads / kv_heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mut by_head = vec![0f32; heads * count * head_dim];
        by_head
            .par_chunks_mut(count * head_dim)
            .enumerate()
            .for_each(|(head, out)| {
                let kv_offset = (head / group) * head_dim;
                let heads = Heads {
                    keys: &cache.keys,
                    values: &cache.values,
                    kv_width,
                    kv_offset,
                    head_dim,
                    scale,
                };
                let query = |i: usize| &qkv[i * qkv_width + head * head_dim..][..head_dim];
                let mut scores = vec![0f32; QUERY_TILE * (start + count)];
                with_simd(
                    #[inline(always)]
                    || {
                        let mut first = 0;
                        for outs in out.chunks_mut(QUERY_TILE * head_dim) {
                            let n = outs.len() / head_dim;
                            // Query `first + j` sees positions up to its own.
                            let len = start + first + 1;
                            match n {
                                4 => heads.attend::<4>(
                                    [
                                        query(first),
                                        query(first + 1),
                                        query(first + 2),
                                        query(first + 3),
                                    ],
                                    len,
                                    &mut scores,
                                    outs,
                                ),
                                3 => heads.attend::<3>(
                                    [query(first), query(first + 1), query(first + 2)],
                                    len,
                                    &mut scores,
                                    outs,
                                ),
                                2 => heads.attend::<2>(
                                    [query(first), query(first + 1)],
                                    len,
                                    &mut scores,
                                    outs,
                                ),
                                _ => heads.attend::<1>([query(first)], len, &mut scores, outs),
                            }
                            first += n;
                        }
                    },
                );
            });
        for (head, values) in by_head.chunks_exact(count * head_dim).enumerate() {
            for (i, values) in values.chunks_exact(head_dim).enumerate() {
                out[i * width + head * head_dim..][..head_dim].copy_from_slice(values);
            }
        }
    }

    /// An empty cache for one sequence of this model.
    pub(crate) fn new_cache(&self) -> KvCache {
        KvCache {
            kv_width: self.config.kv_width(),
            len: 0,
            layers: (0..self.config.layers)
                .map(|_| LayerCache {
                    keys: Vec::new(),
                    values: Vec::new(),
                })
                .collect(),
        }
    }
}

struct LayerCache {
    /// One row of `kv_heads × head_dim` per position so far.
    keys: Vec<f32>,
    values: Vec<f32>,
}

/// The keys and values of one sequence's tokens so far, per layer. It grows by doubling, so a
/// short answer does not hold memory for the whole context window.
pub(crate) struct KvCache {
    kv_width: usize,
    len: usize,
    layers: Vec<LayerCache>,
}

impl KvCache {
    /// Tokens held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn reserve(&mut self, needed: usize, limit: usize) {
        for layer in &mut self.layers {
            for buffer in [&mut layer.keys, &mut layer.values] {
                let capacity = buffer.capacity() / self.kv_width;
                if needed > capacity {
                    let grown = needed.max(capacity * 2).max(64).min(limit);
                    buffer.reserve_exact(grown * self.kv_width - buffer.len());
                }
            }
        }
    }
}

/// A weight matrix of the file, checked against the shape the model needs (`rows` where the
/// metadata fixes it).
fn load_matrix(
    file: &mut GgufFile,
    name: &str,
    rows: Option<usize>,
    cols: usize,
) -> Result<QMatrix, LoadError> {
    let tensor = file.tensor(name)?;
    let matrix = QMatrix::from_qtensor(&tensor).map_err(|err| LoadError::Corrupt {
        path: file.path().to_owned(),
        why: format!("{name}: {}", Plain(&err)),
    })?;
    if matrix.cols() != cols || rows.is_some_and(|rows| rows != matrix.rows()) {
        return Err(LoadError::Corrupt {
            path: file.path().to_owned(),
            why: format!(
                "{name} is {}×{} where the model's shape needs {}×{cols}",
                matrix.rows(),
                matrix.cols(),
                rows.map_or_else(|| "n".to_owned(), |rows| rows.to_string()),
            ),
        });
    }
    Ok(matrix)
}

/// A vector of the file (a norm's weights), checked against the length the model needs.
fn load_vector(file: &mut GgufFile, name: &str, len: usize) -> Result<Vec<f32>, LoadError> {
    let values = file
        .tensor(name)?
        .dequantize(&Device::Cpu)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .map_err(|err| LoadError::Corrupt {
            path: file.path().to_owned(),
            why: format!("{name}: {}", Plain(&err)),
        })?;
    if values.len() != len {
        return Err(LoadError::Corrupt {
            path: file.path().to_owned(),
            why: format!(
                "{name} holds {} values where the model needs {len}",
                values.len()
            ),
        });
    }
    Ok(values)
}

/// Queries attended together: each key and value row is read once for all of them.
const QUERY_TILE: usize = 4;

/// One key/value head of a layer's cache, as the query heads that share it read it.
struct Heads<'a> {
    keys: &'a [f32],
    values: &'a [f32],
    kv_width: usize,
    kv_offset: usize,
    head_dim: usize,
    scale: f32,
}

impl Heads<'_> {
    /// Attention of `N` consecutive queries, the first of which sees `first_len` positions
    /// (the next one more); their outputs go to `out`, one `head_dim` row each. `scores` has
    /// room for `N` rows of `first_len + N - 1`.
    #[inline(always)]
    fn attend<const N: usize>(
        &self,
        queries: [&[f32]; N],
        first_len: usize,
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        let len = first_len + N - 1;
        let head_dim = self.head_dim;
        let row = |at: usize| self.kv_offset + at * self.kv_width;
        let scores = &mut scores[..N * len];
        // Scores: a key row is loaded once and multiplied with every query, in 8 lanes each.
        for position in 0..len {
            let key = &self.keys[row(position)..][..head_dim];
            let (key8, key_rest) = key.as_chunks::<8>();
            let mut lanes = [[0f32; 8]; N];
            let mut rest = [0f32; N];
            for j in 0..N {
                let (query8, query_rest) = queries[j].as_chunks::<8>();
                for (q, k) in query8.iter().zip(key8) {
                    for lane in 0..8 {
                        lanes[j][lane] += q[lane] * k[lane];
                    }
                }
                rest[j] = query_rest.iter().zip(key_rest).map(|(q, k)| q * k).sum();
            }
            for j in 0..N {
                scores[j * len + position] = (lanes[j].iter().sum::<f32>() + rest[j]) * self.scale;
            }
        }
        for (j, scores) in scores.chunks_exact_mut(len).enumerate() {
            let (seen, unseen) = scores.split_at_mut(first_len + j);
            softmax(seen);
            unseen.fill(0.0);
        }
        // Weighted values, 16 dimensions at a time so that every query's sums stay in registers.
        let mut dim = 0;
        while dim < head_dim {
            let width = (head_dim - dim).min(16);
            let mut sums = [[0f32; 16]; N];
            for position in 0..len {
                let value = &self.values[row(position) + dim..][..width];
                for j in 0..N {
                    let weight = scores[j * len + position];
                    for (sum, v) in sums[j].iter_mut().zip(value) {
                        *sum += weight * v;
                    }
                }
            }
            for (j, out) in out.chunks_exact_mut(head_dim).enumerate() {
                out[dim..dim + width].copy_from_slice(&sums[j][..width]);
            }
            dim += width;
        }
    }
}

/// `out = x / rms(x) * weight`, row by row.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    with_simd(
        #[inline(always)]
        || {
            for (row, out) in x
                .chunks_exact(weight.len())
                .zip(out.chunks_exact_mut(weight.len()))
            {
                let mean_square = dot(row, row) / row.len() as f32;
                let scale = 1.0 / (mean_square + eps).sqrt();
                for ((o, v), w) in out.iter_mut().zip(row).zip(weight) {
                    *o = v * scale * w;
                }
            }
        },
    );
}

fn add(x: &mut [f32], y: &[f32]) {
    with_simd(
        #[inline(always)]
        || {
            for (x, y) in x.iter_mut().zip(y) {
                *x += y;
            }
        },
    );
}

/// Cosine and sine of each position's rotation angles, `positions × head_dim / 2` each.
fn rotary_tables(
    config: &LlamaConfig,
    frequency_factors: Option<&[f32]>,
    positions: usize,
) -> (Vec<f32>, Vec<f32>) {
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
    let mut cos = Vec::with_capacity(positions * half);
    let mut sin = Vec::with_capacity(positions * half);
    for position in 0..positions {
        for frequency in &inverse_frequencies {
            let angle = position as f32 * frequency;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}
