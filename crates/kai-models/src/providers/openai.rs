//! OpenAI's API, and every server that copies it (vLLM, TGI, LM Studio, llama.cpp's server):
//! `POST chat/completions`, `POST embeddings`, `GET models` under the base URL, with
//! `Authorization: Bearer`.

use crate::sse::SseEvent;
use futures_util::future::BoxFuture;
use kai_proto::openai as wire;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;

use super::{Decode, decode_stream, parse_item};
use crate::chat::{ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse};
use crate::error::{ErrorKind, ProviderError};
use crate::http::{Http, error_message, key_headers};
use crate::provider::{ChatStream, Provider, ProviderSpec};
use crate::wire::{self as convert, ChunkDecoder, Dialect};

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

impl Provider for OpenAi {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let body = convert::upstream_chat_request(request, self.dialect, false);
            let response = self
                .http
                .post_json(self.http.url("chat/completions"), &body)
                .await?;
            let completion: wire::ChatCompletion = self.http.json(response).await?;
            convert::chat_response(completion)
        })
    }

    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ProviderError>> {
        Box::pin(async move {
            let body = convert::upstream_chat_request(request, self.dialect, true);
            let response = self
                .http
                .post_json(self.http.url("chat/completions"), &body)
                .await?;
            Ok(decode_stream(self.http.events(response), Chunks::default()))
        })
    }

    fn embed<'a>(
        &'a self,
        request: &'a EmbedRequest,
    ) -> BoxFuture<'a, Result<EmbedResponse, ProviderError>> {
        Box::pin(async move {
            let body = convert::upstream_embed_request(request);
            let response = self
                .http
                .post_json(self.http.url("embeddings"), &body)
                .await?;
            let embeddings: wire::EmbeddingResponse = self.http.json(response).await?;
            convert::embed_response(embeddings, request.inputs.len())
        })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async move {
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
        })
    }
}

/// `data: {chunk}` events until `data: [DONE]`.
#[derive(Default)]
struct Chunks {
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
        let chunk: convert::UpstreamChunk = parse_item(data)?;
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
