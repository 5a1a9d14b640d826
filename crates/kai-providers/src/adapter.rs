//! What every adapter shares: one path for a chat call (write the request, post it, read a
//! whole answer or decode a stream into [`ChatEvent`]s), so each adapter says only what is
//! particular to its wire format.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use kai_models::chat::{ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse};
use kai_models::{ChatStream, Provider, ProviderError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::http::{Http, Response};
use crate::sse::SseEvent;

/// A chat request written for one provider: where it goes, its JSON body, and what reading
/// its answer needs to know of the request.
pub(crate) struct ChatCall<C> {
    url: Url,
    body: Bytes,
    context: C,
}

impl<C> ChatCall<C> {
    /// `body` as JSON to `url`.
    pub(crate) fn new(url: Url, body: &impl Serialize, context: C) -> Result<Self, ProviderError> {
        let body = serde_json::to_vec(body).map_err(|err| {
            ProviderError::unsupported(format!("cannot write the request as JSON: {err}"))
        })?;
        Ok(ChatCall {
            url,
            body: Bytes::from(body),
            context,
        })
    }
}

/// One provider's wire format: what differs between adapters. [`Adapter`] turns it into a
/// [`Provider`].
pub(crate) trait ApiFormat: Send + Sync + fmt::Debug + 'static {
    /// What a chat request leaves for reading its answer (Anthropic: the tool that carries a
    /// structured answer); `()` for most.
    type Context: Send + Sync + 'static;
    /// A whole answer, as the provider sends it.
    type Answer: DeserializeOwned + Send;
    /// One item of a streamed answer: a server-sent event, or a line of JSON.
    type Item: StreamItem;
    /// Reads a streamed answer's items into events.
    type Decoder: Decode<Self::Item>;

    /// The provider's connection.
    fn http(&self) -> &Http;

    /// Writes a chat request, whole (`stream` false) or streamed.
    fn chat_call(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<ChatCall<Self::Context>, ProviderError>;

    /// Reads a whole answer.
    fn answer(
        &self,
        answer: Self::Answer,
        context: Self::Context,
    ) -> Result<ChatResponse, ProviderError>;

    /// The decoder for a streamed answer.
    fn decoder(&self, context: Self::Context) -> Self::Decoder;

    /// Reclassifies an error answer to a chat call, where the provider's says more than its
    /// status does.
    fn chat_error(&self, err: ProviderError) -> ProviderError {
        err
    }

    /// Embeddings of the request's texts, in order.
    fn embed<'a>(
        &'a self,
        request: &'a EmbedRequest,
    ) -> impl Future<Output = Result<EmbedResponse, ProviderError>> + Send + 'a;

    /// The models the provider offers.
    fn list_models(&self) -> impl Future<Output = Result<Vec<String>, ProviderError>> + Send + '_;
}

/// The items a streamed answer's body is read as.
pub(crate) trait StreamItem: Send + Sized + 'static {
    /// The body of `response`, item by item.
    fn read(http: &Http, response: Response) -> BoxStream<'static, Result<Self, ProviderError>>;
}

impl StreamItem for SseEvent {
    fn read(http: &Http, response: Response) -> BoxStream<'static, Result<Self, ProviderError>> {
        http.events(response)
    }
}

/// Lines of newline-delimited JSON.
impl StreamItem for String {
    fn read(http: &Http, response: Response) -> BoxStream<'static, Result<Self, ProviderError>> {
        http.lines(response)
    }
}

/// A provider over its wire format.
#[derive(Debug)]
pub(crate) struct Adapter<W>(pub(crate) W);

impl<W: ApiFormat> Adapter<W> {
    async fn post(&self, call: &ChatCall<W::Context>) -> Result<Response, ProviderError> {
        let http = self.0.http();
        http.post(call.url.clone(), call.body.clone())
            .await
            .map_err(|err| self.0.chat_error(err))
    }
}

impl<W: ApiFormat> Provider for Adapter<W> {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let call = self.0.chat_call(request, false)?;
            let response = self.post(&call).await?;
            let answer = self.0.http().json(response).await?;
            self.0.answer(answer, call.context)
        })
    }

    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ProviderError>> {
        Box::pin(async move {
            let call = self.0.chat_call(request, true)?;
            let response = self.post(&call).await?;
            let items = W::Item::read(self.0.http(), response);
            Ok(decode_stream(items, self.0.decoder(call.context)))
        })
    }

    fn embed<'a>(
        &'a self,
        request: &'a EmbedRequest,
    ) -> BoxFuture<'a, Result<EmbedResponse, ProviderError>> {
        Box::pin(self.0.embed(request))
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(self.0.list_models())
    }
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
fn decode_stream<T: Send + 'static, D: Decode<T>>(
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
