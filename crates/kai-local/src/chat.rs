//! Chat models: a GGUF model loaded with its tokenizer and chat template, and one generation
//! (a request turned into tokens, fed and answered step by step).

use std::path::Path;
use std::sync::Arc;

use kai_models::chat::{
    ChatEvent, ChatRequest, FinishReason, ResponseFormat, ToolChoice, ToolDefinition, Usage,
};
use kai_models::{ErrorKind, ProviderError};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::{ComputeError, LoadError};
use crate::gguf::GgufFile;
use crate::llama::{KvCache, Llama};
use crate::sampler::{Sampler, SamplingParams};
use crate::stop::{Scan, StopMatcher};
use crate::template::ChatTemplate;
use crate::tokenizer::{TextTokenizer, TokenStream};

/// Prompt tokens fed in one turn. Larger chunks feed a little faster; smaller ones let the
/// other sessions' answers move sooner.
const PROMPT_CHUNK: usize = 32;

/// Tokens that end an answer wherever a model has them, besides the ids its metadata names.
const END_TOKENS: [&str; 8] = [
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "</s>",
    "<|end_of_text|>",
];

/// Sampling when the request does not say (llama.cpp's defaults).
const DEFAULT_TEMPERATURE: f32 = 0.8;
const DEFAULT_TOP_K: u32 = 40;
const DEFAULT_TOP_P: f32 = 0.95;

/// A llama-family chat model, ready to answer: weights, tokenizer, chat template. It is
/// immutable and shared; each answer keeps its own [`Sequence`].
pub struct ChatModel {
    llama: Llama,
    tokenizer: TextTokenizer,
    template: ChatTemplate,
    end_tokens: Vec<u32>,
    bos_text: String,
    eos_text: String,
}

impl std::fmt::Debug for ChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatModel")
            .field("config", self.llama.config())
            .field("context_length", &self.context_length())
            .finish_non_exhaustive()
    }
}

/// The keys and values of one token sequence fed to a [`ChatModel`].
pub struct Sequence {
    cache: KvCache,
}

impl Sequence {
    /// Tokens fed so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether nothing was fed yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ChatModel {
    /// Loads a GGUF model from `weights`, with the tokenizer in `tokenizer_json` when given
    /// (else the one its metadata describes). `context_size` caps prompt plus answer below
    /// the model's own context length; 0 keeps the model's.
    pub fn load(
        weights: &Path,
        tokenizer_json: Option<&Path>,
        context_size: usize,
    ) -> Result<ChatModel, LoadError> {
        let mut file = GgufFile::open(weights)?;
        let meta = file.metadata();
        let model_context = meta.usize("llama.context_length")?;
        let positions = if context_size > 0 {
            context_size.min(model_context)
        } else {
            model_context
        };
        let tokenizer = TextTokenizer::load(meta, tokenizer_json)?;
        let template =
            ChatTemplate::new(meta.opt_str("tokenizer.chat_template")?).map_err(|why| {
                LoadError::Unsupported {
                    path: weights.to_owned(),
                    why: format!("its chat template does not compile: {why}"),
                }
            })?;
        let mut end_tokens = Vec::new();
        for key in [
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.eot_token_id",
            "tokenizer.ggml.eom_token_id",
        ] {
            end_tokens.extend(meta.opt_u32(key)?);
        }
        end_tokens.extend(
            END_TOKENS
                .iter()
                .filter_map(|text| tokenizer.token_id(text)),
        );
        end_tokens.sort_unstable();
        end_tokens.dedup();
        let special_text = |key: &str| -> Result<String, LoadError> {
            Ok(meta
                .opt_u32(key)?
                .and_then(|id| tokenizer.token_text(id))
                .unwrap_or_default())
        };
        let bos_text = special_text("tokenizer.ggml.bos_token_id")?;
        let eos_text = special_text("tokenizer.ggml.eos_token_id")?;
        let llama = Llama::load(&mut file, positions)?;
        if let Some(outside) = end_tokens.iter().find(|id| **id as usize >= llama.vocab()) {
            return Err(LoadError::Corrupt {
                path: weights.to_owned(),
                why: format!(
                    "its end-of-answer token {outside} lies outside its {}-token embedding table",
                    llama.vocab()
                ),
            });
        }
        Ok(ChatModel {
            llama,
            tokenizer,
            template,
            end_tokens,
            bos_text,
            eos_text,
        })
    }

    /// The most tokens a prompt and its answer may hold together.
    #[must_use]
    pub fn context_length(&self) -> usize {
        self.llama.positions()
    }

    /// Bytes its weights take in memory (4-bit and 8-bit blocks, norms aside).
    #[must_use]
    pub fn weight_bytes(&self) -> usize {
        self.llama.weight_bytes()
    }

    /// The ids that end an answer.
    #[must_use]
    pub fn end_tokens(&self) -> &[u32] {
        &self.end_tokens
    }

    /// The ids of `text`; special tokens' text (`<|im_start|>`) becomes their single ids.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, ComputeError> {
        self.tokenizer.encode(text).map_err(ComputeError::Tokenizer)
    }

    /// The prompt the chat template makes of a conversation, ready for the answer.
    pub fn render_prompt(
        &self,
        messages: &[kai_models::chat::Message],
        tools: &[ToolDefinition],
    ) -> Result<String, String> {
        self.template
            .render(messages, tools, &self.bos_text, &self.eos_text)
    }

    /// An empty sequence.
    #[must_use]
    pub fn new_sequence(&self) -> Sequence {
        Sequence {
            cache: self.llama.new_cache(),
        }
    }

    /// Feeds `tokens` after the sequence so far and returns the logits of the token that
    /// would follow.
    pub fn feed(&self, sequence: &mut Sequence, tokens: &[u32]) -> Result<Vec<f32>, ComputeError> {
        Ok(self.llama.forward(tokens, &mut sequence.cache)?)
    }
}

/// The events of one answer, as the stream's receiver takes them.
pub(crate) type EventSender = UnboundedSender<Result<ChatEvent, ProviderError>>;

/// One answer in progress: the prompt still to feed, then a token per step.
pub(crate) struct Generation {
    model: Arc<ChatModel>,
    sequence: Sequence,
    prompt: Vec<u32>,
    fed: usize,
    logits: Vec<f32>,
    sampler: Sampler,
    text: TokenStream,
    stop: StopMatcher,
    generated: usize,
    max_new: usize,
    events: EventSender,
}

impl Generation {
    /// Checks `request` against the model and turns it into a generation whose events go to
    /// `events`. Errors are the request's fault (`BadRequest`, `ContextLengthExceeded`) or
    /// something this model cannot do (`Unsupported`).
    pub(crate) fn prepare(
        name: &str,
        model: Arc<ChatModel>,
        request: &ChatRequest,
        events: EventSender,
    ) -> Result<Generation, ProviderError> {
        match &request.response_format {
            None | Some(ResponseFormat::Text) => {}
            Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }) => {
                return Err(ProviderError::unsupported(format!(
                    "local model `{name}` cannot promise JSON output (it has no constrained \
                     decoding); send structured-output requests to another provider"
                )));
            }
        }
        if request.messages.iter().any(|message| message.has_images()) {
            return Err(ProviderError::unsupported(format!(
                "local model `{name}` reads text only; send requests with images to a vision \
                 model"
            )));
        }
        let params = sampling_params(request)?;
        let tools: Vec<ToolDefinition> = match &request.tool_choice {
            Some(ToolChoice::None) => Vec::new(),
            Some(ToolChoice::Tool(only)) => request
                .tools
                .iter()
                .filter(|tool| &tool.name == only)
                .cloned()
                .collect(),
            _ => request.tools.clone(),
        };
        let prompt = model
            .render_prompt(&request.messages, &tools)
            .map_err(|why| {
                ProviderError::new(
                    ErrorKind::BadRequest,
                    format!("local model `{name}`'s chat template refused the conversation: {why}"),
                )
            })?;
        let prompt = model.tokenizer.encode_prompt(&prompt).map_err(|why| {
            ProviderError::new(
                ErrorKind::BadRequest,
                format!("the prompt could not be tokenized: {why}"),
            )
        })?;
        let context = model.context_length();
        let max_tokens = request.sampling.max_tokens.map(|n| n as usize);
        if max_tokens == Some(0) {
            return Err(ProviderError::new(
                ErrorKind::BadRequest,
                "max_tokens must be at least 1",
            ));
        }
        let asked = prompt.len() + max_tokens.unwrap_or(1);
        if asked > context {
            let message = match max_tokens {
                Some(max) => format!(
                    "the prompt is {} tokens and max_tokens asks for up to {max} more ({asked} \
                     in all), but local model `{name}` takes at most {context} tokens; shorten \
                     the conversation or lower max_tokens",
                    prompt.len()
                ),
                None => format!(
                    "the prompt is {} tokens, but local model `{name}` takes at most {context} \
                     tokens, prompt and answer together; shorten the conversation",
                    prompt.len()
                ),
            };
            return Err(ProviderError::new(
                ErrorKind::ContextLengthExceeded,
                message,
            ));
        }
        let max_new = max_tokens.unwrap_or(context - prompt.len());
        Ok(Generation {
            sequence: model.new_sequence(),
            sampler: Sampler::new(params, &prompt),
            text: TokenStream::default(),
            stop: StopMatcher::new(&request.sampling.stop),
            model,
            prompt,
            fed: 0,
            logits: Vec::new(),
            generated: 0,
            max_new,
            events,
        })
    }

    /// Prompt tokens.
    pub(crate) fn prompt_tokens(&self) -> usize {
        self.prompt.len()
    }

    /// Whether the receiver of its events is gone (the client disconnected).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.events.is_closed()
    }

    /// Does one turn of work: a chunk of the prompt, or one token of the answer. Returns
    /// whether there is more to do. A failure is sent as the stream's last event.
    pub(crate) fn step(&mut self) -> bool {
        match self.advance() {
            Ok(more) => more,
            Err(err) => {
                self.fail(&err.to_string());
                false
            }
        }
    }

    /// Ends the stream with a server error.
    pub(crate) fn fail(&self, why: &str) {
        tracing::error!("local generation failed: {why}");
        self.send(Err(ProviderError::new(ErrorKind::Server, why)));
    }

    fn advance(&mut self) -> Result<bool, ComputeError> {
        if self.fed < self.prompt.len() {
            let end = (self.fed + PROMPT_CHUNK).min(self.prompt.len());
            self.logits = self
                .model
                .feed(&mut self.sequence, &self.prompt[self.fed..end])?;
            self.fed = end;
            return Ok(true);
        }
        let token = self.sampler.sample(&mut self.logits);
        if self.model.end_tokens.contains(&token) {
            self.finish(FinishReason::Stop);
            return Ok(false);
        }
        self.sampler.accept(token);
        self.generated += 1;
        let piece = self.text.push(&self.model.tokenizer, token);
        match self.stop.push(&piece) {
            Scan::Stopped(text) => {
                self.send_text(text);
                self.end(FinishReason::Stop);
                return Ok(false);
            }
            Scan::Continue(text) => self.send_text(text),
        }
        if self.generated >= self.max_new {
            self.finish(FinishReason::Length);
            return Ok(false);
        }
        self.logits = self.model.feed(&mut self.sequence, &[token])?;
        Ok(true)
    }

    /// Sends what was held back, then the end.
    fn finish(&mut self, reason: FinishReason) {
        let tail = self.text.finish();
        let reason = match self.stop.push(&tail) {
            Scan::Stopped(text) => {
                self.send_text(text);
                FinishReason::Stop
            }
            Scan::Continue(text) => {
                self.send_text(text);
                let held = self.stop.finish();
                self.send_text(held);
                reason
            }
        };
        self.end(reason);
    }

    fn end(&mut self, reason: FinishReason) {
        self.send(Ok(ChatEvent::Finish(reason)));
        self.send(Ok(ChatEvent::Usage(Usage {
            input_tokens: self.prompt.len() as u64,
            output_tokens: self.generated as u64,
        })));
    }

    fn send_text(&self, text: String) {
        if !text.is_empty() {
            self.send(Ok(ChatEvent::Text(text)));
        }
    }

    fn send(&self, event: Result<ChatEvent, ProviderError>) {
        // A closed receiver is noticed at the next turn, which then drops the generation.
        let _ = self.events.send(event);
    }
}

fn sampling_params(request: &ChatRequest) -> Result<SamplingParams, ProviderError> {
    let bad = |message: String| ProviderError::new(ErrorKind::BadRequest, message);
    let sampling = &request.sampling;
    let temperature = sampling.temperature.unwrap_or(DEFAULT_TEMPERATURE);
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(bad(format!(
            "temperature must be 0 or more, not {temperature}"
        )));
    }
    let top_p = sampling.top_p.unwrap_or(DEFAULT_TOP_P);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(bad(format!(
            "top_p must be above 0 and at most 1, not {top_p}"
        )));
    }
    let penalty = |name: &str, value: Option<f32>| match value {
        Some(value) if !(value.is_finite() && (-2.0..=2.0).contains(&value)) => {
            Err(bad(format!("{name} must be between -2 and 2, not {value}")))
        }
        value => Ok(value.unwrap_or(0.0)),
    };
    let repetition_penalty = match request.extra.get("repetition_penalty") {
        None | Some(serde_json::Value::Null) => 1.0,
        Some(value) => match value.as_f64() {
            Some(penalty) if penalty.is_finite() && penalty > 0.0 => penalty as f32,
            _ => {
                return Err(bad(format!(
                    "repetition_penalty must be a number above 0 (1 is off), not {value}"
                )));
            }
        },
    };
    Ok(SamplingParams {
        temperature,
        top_k: sampling.top_k.unwrap_or(DEFAULT_TOP_K) as usize,
        top_p,
        repetition_penalty,
        frequency_penalty: penalty("frequency_penalty", sampling.frequency_penalty)?,
        presence_penalty: penalty("presence_penalty", sampling.presence_penalty)?,
        // The seed's bits, whatever its sign: any i64 is a valid seed.
        seed: sampling.seed.map_or_else(rand::random, |seed| seed as u64),
    })
}
