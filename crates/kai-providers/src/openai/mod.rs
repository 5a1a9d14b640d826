//! OpenAI's API, and every server that copies it (vLLM, TGI, LM Studio, llama.cpp's server):
//! `POST chat/completions`, `POST embeddings`, `GET models` under the base URL, with
//! `Authorization: Bearer`.
//!
//! [`wire`] maps kai's model onto OpenAI's format; [`message_to_wire`] is shared with kai's own
//! `/v1` API, which answers in the format this adapter asks in.

mod wire;

use kai_models::chat::{ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse};
use kai_models::{ErrorKind, ProviderError};
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;

use self::wire::{ChunkDecoder, UpstreamChunk};
pub use self::wire::{Dialect, message_to_wire};
use crate::adapter::{ApiFormat, ChatCall, Decode, parse_item};
use crate::http::{Http, error_message, key_headers};
use crate::spec::ProviderSpec;
use crate::sse::SseEvent;

/// An OpenAI-family provider.
#[derive(Debug)]
pub(crate) struct OpenAi {
    http: Http,
    dialect: Dialect,
}

impl OpenAi {
    pub(crate) fn new(spec: &ProviderSpec, dialect: Dialect) -> Result<OpenAi, ProviderError> {
        let headers = key_headers(spec, AUTHORIZATION, "Bearer ")?;
        Ok(OpenAi {
            http: Http::new(spec, headers)?,
            dialect,
        })
    }
}

impl ApiFormat for OpenAi {
    type Context = ();
    type Answer = kai_proto::openai::ChatCompletion;
    type Item = SseEvent;
    type Decoder = Chunks;

    fn http(&self) -> &Http {
        &self.http
    }

    fn chat_call(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<ChatCall<()>, ProviderError> {
        let body = wire::upstream_chat_request(request, self.dialect, stream);
        ChatCall::new(self.http.url("chat/completions"), &body, ())
    }

    fn answer(
        &self,
        answer: kai_proto::openai::ChatCompletion,
        (): (),
    ) -> Result<ChatResponse, ProviderError> {
        wire::chat_response(answer)
    }

    fn decoder(&self, (): ()) -> Chunks {
        Chunks::default()
    }

    async fn embed(&self, request: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let body = wire::upstream_embed_request(request);
        let response = self
            .http
            .post_json(self.http.url("embeddings"), &body)
            .await?;
        let embeddings: kai_proto::openai::EmbeddingResponse = self.http.json(response).await?;
        wire::embed_response(embeddings, request.inputs.len())
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        #[derive(Deserialize)]
        struct Listed {
            id: String,
        }
        #[derive(Deserialize)]
        struct Models {
            data: Vec<Listed>,
        }
        let response = self.http.get(self.http.url("models")).await?;
        let models: Models = self.http.json(response).await?;
        Ok(models.data.into_iter().map(|model| model.id).collect())
    }
}

/// `data: {chunk}` events until `data: [DONE]`.
#[derive(Default)]
pub(crate) struct Chunks {
    chunks: ChunkDecoder,
}

impl Decode<SseEvent> for Chunks {
    fn item(&mut self, event: SseEvent, out: &mut Vec<ChatEvent>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        // An error in the middle of a stream comes as an event of its own.
        if event.event == "error" || data.starts_with("{\"error\"") {
            let message = error_message(data.as_bytes()).unwrap_or_else(|| data.to_owned());
            return Err(ProviderError::new(
                ErrorKind::Server,
                format!("the stream reported an error: {message}"),
            ));
        }
        let chunk: UpstreamChunk = parse_item(data)?;
        self.chunks.decode(chunk, out);
        Ok(false)
    }

    fn end(&mut self, out: &mut Vec<ChatEvent>, complete: bool) -> Result<(), ProviderError> {
        // Some servers end without `[DONE]`; an answer with its finish reason is still whole.
        if !complete && !self.chunks.finished() {
            return Err(ProviderError::new(
                ErrorKind::Interrupted,
                "the stream ended before the answer was complete",
            ));
        }
        out.extend(self.chunks.finish());
        Ok(())
    }
}
