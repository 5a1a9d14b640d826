//! One adapter per wire format, and what they share: turning a provider's stream into
//! [`ChatEvent`]s.

mod anthropic;
mod cohere;
mod gemini;
mod ollama;
mod openai;

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use kai_config::ProviderKind;

use crate::chat::ChatEvent;
use crate::error::ProviderError;
use crate::provider::{ChatStream, Provider, ProviderSpec};
use crate::wire::Dialect;

pub(crate) fn connect(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(match spec.kind {
        ProviderKind::Openai => Arc::new(openai::OpenAi::new(spec, Dialect::OpenAi)?),
        ProviderKind::OpenaiCompatible => Arc::new(openai::OpenAi::new(spec, Dialect::Compatible)?),
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic::new(spec)?),
        ProviderKind::Gemini => Arc::new(gemini::Gemini::new(spec)?),
        ProviderKind::Cohere => Arc::new(cohere::Cohere::new(spec)?),
        ProviderKind::Ollama => Arc::new(ollama::Ollama::new(spec)?),
        ProviderKind::Local => {
            return Err(ProviderError::unsupported(
                "the `local` provider is kai's embedded runtime, which the server supplies; \
                 there is nothing to connect to",
            ));
        }
    })
}

/// Reads one provider's stream items (server-sent events, JSON lines) into events.
pub(crate) trait Decode<T>: Send + 'static {
    /// Adds the events of one item to `out`; returns `true` when the item ended the answer.
    fn item(&mut self, item: T, out: &mut Vec<ChatEvent>) -> Result<bool, ProviderError>;

    /// Called once when the answer is over: `complete` when an item ended it, not when the
    /// stream simply stopped. Adds the last events (usage, typically), or says why an answer
    /// that stopped short is an error.
    fn end(&mut self, out: &mut Vec<ChatEvent>, complete: bool) -> Result<(), ProviderError>;
}

struct Decoding<T, D> {
    source: BoxStream<'static, Result<T, ProviderError>>,
    decoder: D,
    pending: VecDeque<ChatEvent>,
    error: Option<ProviderError>,
    done: bool,
}

/// The events of `source`, read by `decoder`. Reading stops (and the connection is dropped) as
/// soon as the decoder sees the end of the answer.
pub(crate) fn decode_stream<T: Send + 'static, D: Decode<T>>(
    source: BoxStream<'static, Result<T, ProviderError>>,
    decoder: D,
) -> ChatStream {
    let state = Decoding {
        source,
        decoder,
        pending: VecDeque::new(),
        error: None,
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok(event), state));
            }
            if let Some(err) = state.error.take() {
                return Some((Err(err), state));
            }
            if state.done {
                return None;
            }
            let mut out = Vec::new();
            let ended = match state.source.next().await {
                Some(Ok(item)) => match state.decoder.item(item, &mut out) {
                    Ok(ended) => ended.then_some(true),
                    Err(err) => {
                        state.error = Some(err);
                        state.done = true;
                        None
                    }
                },
                Some(Err(err)) => {
                    state.error = Some(err);
                    state.done = true;
                    None
                }
                None => Some(false),
            };
            if let Some(complete) = ended {
                state.done = true;
                if let Err(err) = state.decoder.end(&mut out, complete) {
                    state.error = Some(err);
                }
            }
            state.pending.extend(out);
        }
    })
    .boxed()
}

/// Parses one JSON item of a stream, quoting it when it is not what was expected.
pub(crate) fn parse_item<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ProviderError> {
    serde_json::from_str(text).map_err(|err| {
        let mut quote: String = text.chars().take(200).collect();
        if quote.len() < text.len() {
            quote.push('…');
        }
        ProviderError::malformed(format!(
            "a stream item is not the JSON expected ({err}): {quote}"
        ))
    })
}
