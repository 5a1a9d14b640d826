//! A BERT encoder over plain slices, for sentence embeddings. It takes the texts of a request
//! packed one after another rather than padded to the longest: the linear layers see one tall
//! matrix of real tokens (multiplied by weights packed once at load, [`Packed`], on kai's
//! pool), and attention runs per text, so no work is spent on padding. Layer norms, GELU and attention are written here
//! to vectorize in place, where candle's BERT would hand each to its own spinning thread pool.

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use serde::Deserialize;

use crate::vector::{Packed, dot, exp, softmax, sum, with_simd};

/// What kai reads of a BERT model's `config.json`; Hugging Face's other fields (dropout,
/// initialisation) only matter for training.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Config {
    pub(crate) vocab_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) num_hidden_layers: usize,
    pub(crate) num_attention_heads: usize,
    pub(crate) intermediate_size: usize,
    pub(crate) hidden_act: HiddenAct,
    pub(crate) max_position_embeddings: usize,
    pub(crate) type_vocab_size: usize,
    pub(crate) layer_norm_eps: f64,
    /// Only `absolute` position embeddings are implemented.
    #[serde(default = "absolute")]
    pub(crate) position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".to_owned()
}

/// The feed-forward activation, by its name in `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum HiddenAct {
    /// GELU with the exact error function.
    #[serde(rename = "gelu")]
    Gelu,
    /// GELU by its tanh approximation (`gelu_new` in Hugging Face's names).
    #[serde(
        alias = "gelu_new",
        alias = "gelu_pytorch_tanh",
        rename = "geluapproximate"
    )]
    GeluApproximate,
    /// max(0, x).
    #[serde(rename = "relu")]
    Relu,
}

/// `x · Wᵀ + b`.
struct Linear {
    weight: Packed,
    bias: Vec<f32>,
}

impl Linear {
    fn load(vb: &VarBuilder<'_>, inputs: usize, outputs: usize) -> candle_core::Result<Linear> {
        Linear::stack(&[vb], inputs, outputs)
    }

    /// Several layers of the same input width as one, their outputs side by side.
    fn stack(
        parts: &[&VarBuilder<'_>],
        inputs: usize,
        outputs: usize,
    ) -> candle_core::Result<Linear> {
        let mut weight = Vec::with_capacity(parts.len() * outputs * inputs);
        let mut bias = Vec::with_capacity(parts.len() * outputs);
        for vb in parts {
            weight.extend(
                vb.get((outputs, inputs), "weight")?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            bias.extend(vb.get(outputs, "bias")?.to_vec1::<f32>()?);
        }
        Ok(Linear {
            weight: Packed::new(&weight, bias.len(), inputs),
            bias,
        })
    }

    /// `x` is `rows × inputs`.
    fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        self.weight.multiply(x, rows, &self.bias)
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn load(vb: &VarBuilder<'_>, size: usize, eps: f64) -> candle_core::Result<LayerNorm> {
        // Checkpoints converted from TensorFlow name them gamma and beta.
        let (weight, bias) = if vb.contains_tensor("weight") {
            (vb.get(size, "weight")?, vb.get(size, "bias")?)
        } else {
            (vb.get(size, "gamma")?, vb.get(size, "beta")?)
        };
        Ok(LayerNorm {
            weight: weight.to_vec1()?,
            bias: bias.to_vec1()?,
            eps: eps as f32,
        })
    }

    /// Normalizes each row of `x` in place, after adding `residual` to it.
    fn forward(&self, x: &mut [f32], residual: &[f32]) {
        let width = self.weight.len();
        with_simd(
            #[inline(always)]
            || {
                for (row, residual) in x.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
                    for (v, r) in row.iter_mut().zip(residual) {
                        *v += r;
                    }
                    let mean = sum(row) / width as f32;
                    for v in row.iter_mut() {
                        *v -= mean;
                    }
                    let variance = dot(row, row) / width as f32;
                    let scale = 1.0 / (variance + self.eps).sqrt();
                    for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                        *v = *v * scale * w + b;
                    }
                }
            },
        );
    }
}

struct Layer {
    /// Query, key and value, stacked.
    qkv: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A loaded BERT encoder.
pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    activation: HiddenAct,
    max_positions: usize,
    /// Kept as loaded (not copied), rows gathered per pass.
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    /// The embedding of token type 0: sentence-transformers give every token that type.
    token_type: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Bert {
    /// Loads the weights `vb` holds (with or without a `bert.` prefix) for `config`.
    pub(crate) fn load(vb: VarBuilder<'_>, config: &Config) -> candle_core::Result<Bert> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        if config.position_embedding_type != "absolute" {
            candle_core::bail!(
                "position embeddings of type `{}` are not supported; only `absolute` ones are",
                config.position_embedding_type
            );
        }
        let hidden = config.hidden_size;
        if config.num_attention_heads == 0 || !hidden.is_multiple_of(config.num_attention_heads) {
            candle_core::bail!(
                "{hidden} dimensions do not split into {} attention heads",
                config.num_attention_heads
            );
        }
        let eps = config.layer_norm_eps;
        let embeddings = vb.pp("embeddings");
        let word_embeddings =
            embeddings.get((config.vocab_size, hidden), "word_embeddings.weight")?;
        let position_embeddings = embeddings.get(
            (config.max_position_embeddings, hidden),
            "position_embeddings.weight",
        )?;
        let token_type = embeddings
            .get(
                (config.type_vocab_size, hidden),
                "token_type_embeddings.weight",
            )?
            .get(0)?
            .to_vec1()?;
        let embedding_norm = LayerNorm::load(&embeddings.pp("LayerNorm"), hidden, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for index in 0..config.num_hidden_layers {
            let layer = vb.pp(format!("encoder.layer.{index}"));
            let attention = layer.pp("attention");
            let projection = |name: &str| attention.pp("self").pp(name);
            layers.push(Layer {
                qkv: Linear::stack(
                    &[
                        &projection("query"),
                        &projection("key"),
                        &projection("value"),
                    ],
                    hidden,
                    hidden,
                )?,
                attention_output: Linear::load(&attention.pp("output.dense"), hidden, hidden)?,
                attention_norm: LayerNorm::load(&attention.pp("output.LayerNorm"), hidden, eps)?,
                intermediate: Linear::load(
                    &layer.pp("intermediate.dense"),
                    hidden,
                    config.intermediate_size,
                )?,
                output: Linear::load(&layer.pp("output.dense"), config.intermediate_size, hidden)?,
                output_norm: LayerNorm::load(&layer.pp("output.LayerNorm"), hidden, eps)?,
            });
        }
        Ok(Bert {
            hidden,
            heads: config.num_attention_heads,
            activation: config.hidden_act,
            max_positions: config.max_position_embeddings,
            word_embeddings,
            position_embeddings,
            token_type,
            embedding_norm,
            layers,
        })
    }

    /// The final hidden states of every token of `texts` (token ids, each at most the
    /// model's positions long), the texts' rows one after another: `Σ len × hidden`.
    pub(crate) fn forward(&self, texts: &[&[u32]]) -> candle_core::Result<Vec<f32>> {
        let hidden = self.hidden;
        let vocab = self.word_embeddings.dim(0)?;
        let rows: usize = texts.iter().map(|ids| ids.len()).sum();
        if rows == 0 {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(rows);
        let mut positions = Vec::with_capacity(rows);
        for text in texts {
            if text.len() > self.max_positions {
                candle_core::bail!(
                    "{} tokens exceed the model's {} positions",
                    text.len(),
                    self.max_positions
                );
            }
            if let Some(id) = text.iter().find(|id| **id as usize >= vocab) {
                candle_core::bail!("token {id} is outside the {vocab}-token vocabulary");
            }
            ids.extend_from_slice(text);
            positions.extend(0..text.len() as u32);
        }
        let gather = |table: &Tensor, indices: Vec<u32>| -> candle_core::Result<Vec<f32>> {
            let indices = Tensor::from_vec(indices, rows, &Device::Cpu)?;
            table.index_select(&indices, 0)?.flatten_all()?.to_vec1()
        };
        let mut x = gather(&self.word_embeddings, ids)?;
        let place = gather(&self.position_embeddings, positions)?;
        for (row, place) in x.chunks_exact_mut(hidden).zip(place.chunks_exact(hidden)) {
            for ((v, p), t) in row.iter_mut().zip(place).zip(&self.token_type) {
                *v += p + t;
            }
        }
        let zeros = vec![0f32; x.len()];
        self.embedding_norm.forward(&mut x, &zeros);
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x, rows);
            let context = self.attend(&qkv, texts);
            let mut attended = layer.attention_output.forward(&context, rows);
            layer.attention_norm.forward(&mut attended, &x);
            let mut intermediate = layer.intermediate.forward(&attended, rows);
            self.activate(&mut intermediate);
            x = layer.output.forward(&intermediate, rows);
            layer.output_norm.forward(&mut x, &attended);
        }
        Ok(x)
    }

    fn activate(&self, values: &mut [f32]) {
        let activation = self.activation;
        let chunk = values
            .len()
            .div_ceil(rayon::current_num_threads().max(1) * 4)
            .max(4096);
        values.par_chunks_mut(chunk).for_each(|values| {
            with_simd(
                #[inline(always)]
                || match activation {
                    HiddenAct::Gelu => {
                        for v in values.iter_mut() {
                            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
                        }
                    }
                    HiddenAct::GeluApproximate => {
                        for v in values.iter_mut() {
                            let x = *v;
                            let inner = 0.797_884_6 * (x + 0.044_715 * x * x * x);
                            *v = 0.5 * x * (1.0 + tanh(inner));
                        }
                    }
                    HiddenAct::Relu => {
                        for v in values.iter_mut() {
                            *v = v.max(0.0);
                        }
                    }
                },
            );
        });
    }

    /// Self-attention within each text (no text sees another's tokens), every head.
    fn attend(&self, qkv: &[f32], texts: &[&[u32]]) -> Vec<f32> {
        let hidden = self.hidden;
        let head_dim = hidden / self.heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let rows: usize = texts.iter().map(|ids| ids.len()).sum();
        let mut context = vec![0f32; rows * hidden];
        let mut parts = Vec::with_capacity(texts.len());
        let mut rest = context.as_mut_slice();
        let mut first = 0;
        for ids in texts {
            let (part, tail) = rest.split_at_mut(ids.len() * hidden);
            parts.push((first, part));
            first += ids.len();
            rest = tail;
        }
        parts.into_par_iter().for_each(|(first, out)| {
            let len = out.len() / hidden;
            let row = |i: usize| &qkv[(first + i) * 3 * hidden..][..3 * hidden];
            let mut scores = vec![0f32; len];
            with_simd(
                #[inline(always)]
                || {
                    for head in 0..self.heads {
                        let at = head * head_dim;
                        for i in 0..len {
                            let query = &row(i)[at..at + head_dim];
                            for (j, score) in scores.iter_mut().enumerate() {
                                let key = &row(j)[hidden + at..][..head_dim];
                                *score = dot(query, key) * scale;
                            }
                            softmax(&mut scores);
                            let out = &mut out[i * hidden + at..][..head_dim];
                            for (j, weight) in scores.iter().enumerate() {
                                let value = &row(j)[2 * hidden + at..][..head_dim];
                                for (o, v) in out.iter_mut().zip(value) {
                                    *o += weight * v;
                                }
                            }
                        }
                    }
                },
            );
        });
        context
    }
}

/// The error function to about 1.5e-7 (Abramowitz and Stegun 7.1.26), in plain arithmetic so
/// that loops of it vectorize.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let polynomial = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    sign * (1.0 - polynomial * exp(-x * x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    // tanh x = 1 - 2 / (e²ˣ + 1), which stays finite at both ends with the clamped exp.
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_tanh_match_their_definitions() {
        // erf against its Taylor series where that converges quickly, and its limits.
        for i in -40..=40 {
            let x = i as f64 * 0.05;
            let mut term = x;
            let mut series = x;
            for n in 1..60 {
                term *= -x * x / n as f64;
                series += term / (2 * n + 1) as f64;
            }
            let want = series * 2.0 / std::f64::consts::PI.sqrt();
            let got = f64::from(erf(x as f32));
            assert!((got - want).abs() < 5e-7, "erf({x}) = {got}, want {want}");
        }
        assert!((erf(6.0) - 1.0).abs() < 1e-6 && (erf(-6.0) + 1.0).abs() < 1e-6);
        for i in -100..=100 {
            let x = i as f32 * 0.1;
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "tanh({x})");
        }
    }
}
