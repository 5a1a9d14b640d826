//! kai's embedded model runtime: chat with llama-family GGUF models and sentence embeddings
//! with BERT models, on the CPU, with no server and no API key.
//!
//! [`LocalProvider`] serves the models of a [`kai_model_store::ModelStore`] through the
//! gateway's [`kai_models::Provider`] seam; model names are store names (`smollm2`,
//! `minilm`). A model loads on its first request and stays loaded; a model pulled again is
//! reloaded, a removed one forgotten.
//!
//! What it owns:
//!
//! - [`ChatModel`]: a GGUF file's weights (llama family: Llama, Mistral, SmolLM; Q4_0, Q4_1,
//!   Q5_x, Q8_0, K-quants, F16, F32), its tokenizer (the model's `tokenizer.json`, else built
//!   from the GGUF vocabulary) and its chat template (Jinja, run by minijinja; ChatML when the
//!   model has none). The forward pass is written here over plain slices (`llama`), with
//!   quantized matrix products of kai's own (`quant`): Q4_0 and Q4_1 weights stay 4-bit,
//!   other types are re-quantised to 8 bits at load, and activations are quantized to 8 bits
//!   so the inner loops are integer multiply-adds (AVX2 where the CPU has it).
//! - [`EmbeddingModel`]: a BERT encoder of kai's own (`bert`: texts packed, not padded; float
//!   matrix products over weights laid out once at load) with the sentence-transformer's
//!   pooling, unit-length vectors and truncation to the model's input limit (reported).
//! - Sampling (temperature, top-k, top-p, repetition, frequency and presence penalties,
//!   seeds), stop sequences, and the scheduler that shares the CPU between answers.
//!
//! # Threading
//!
//! Arithmetic runs on one rayon pool of [`LocalOptions::threads`] threads: every product,
//! attention head and element-wise loop of both models. candle 0.11 would send element-wise
//! work on large tensors to a process-wide pool of its own, whose workers spin while they
//! wait (costly on a busy machine), so kai writes those loops itself, BERT's float matrix
//! products included, and uses candle for reading weights.
//!
//! Chat generations are driven by one scheduler thread: up to
//! [`LocalOptions::max_concurrent`] take turns (a chunk of prompt, or one token, per turn), the
//! rest wait in order of arrival. Embeddings, loading, prompt rendering and tokenizing run on
//! tokio's blocking pool. Nothing here blocks an async worker.
//!
//! # Invariants
//!
//! - A request is checked before any work is queued: a prompt that does not fit the context
//!   (with its `max_tokens`) is refused whole with `ContextLengthExceeded`, never cut.
//! - Streamed text is final: text that could begin a stop sequence is held back until it is
//!   known not to, and a character split across tokens is sent when it is whole.
//! - A dropped stream stops its generation at its next turn; a waiting one never starts.
//! - A model file is checked against its manifest and, for GGUF, against the tensor sizes in
//!   its own header before loading: a truncated file is refused with its path, never read past.
//! - The same seed (or temperature 0) gives the same answer for the same request.
//!
//! This crate is the only one in kai that depends on candle and tokenizers.

mod bert;
mod chat;
mod embed;
mod error;
mod gguf;
mod llama;
mod provider;
mod quant;
mod sampler;
mod scheduler;
mod stop;
mod template;
mod tokenizer;
mod vector;

pub use chat::{ChatModel, Sequence};
pub use embed::{EmbeddingModel, Embeddings};
pub use error::{ComputeError, LoadError};
pub use provider::{LocalOptions, LocalProvider};
pub use scheduler::RuntimeLoad;
