//! A client of a kai server's HTTP API, for the commands that talk to one (`login`, `logout`,
//! `chat`). Every failure becomes one line that says what went wrong and what to do: a server
//! that cannot be reached is named, a refused key points at `kai login`, and anything else
//! carries the server's own `detail`.

use std::time::Duration;

use anyhow::{Context, anyhow};
use futures_util::{Stream, StreamExt};
use kai_proto::openai::{ErrorResponse, ModelList};
use kai_proto::{
    ConversationDetail, ConversationPage, ConversationReply, ConversationSummary,
    CreateApiKeyRequest, CreateConversationRequest, CreatedApiKey, LoginRequest, LogoutRequest, Me,
    Problem, SendMessageRequest, TokenResponse, UpdateConversationRequest,
};
use kai_providers::sse::{SseError, sse_events};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

/// How long to wait for a connection: a server on the same network answers in milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server may send nothing at all, but for a whole answer: it answers API calls
/// within its `http.request_timeout` (30 s by default), and sends a keep-alive every 15 s in a
/// streamed answer, so a minute of silence means the connection is dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a whole answer that is not streamed may take. Nothing comes until the model is
/// done, which can be minutes for a slow one; the server's provider timeouts end it sooner,
/// so this only guards against a connection that died without a word.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3600);

/// Conversations asked for per page when listing them all (the server's maximum).
const PAGE_SIZE: u32 = 200;

/// A server, and the credential sent to it.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// For everything but whole answers.
    http: reqwest::Client,
    /// For whole answers, which come in one piece after a long silence.
    patient: reqwest::Client,
    url: Url,
    credential: Option<Credential>,
}

/// A bearer credential, and what to tell the person when the server refuses it.
#[derive(Clone)]
pub(crate) struct Credential {
    token: String,
    /// What to do about a 401, as the end of a sentence: "run `kai login` again".
    remedy: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("token", &kai_config::REDACTED)
            .field("remedy", &self.remedy)
            .finish()
    }
}

impl Credential {
    /// `token`, and `remedy` for when the server refuses it.
    pub(crate) fn new(token: impl Into<String>, remedy: impl Into<String>) -> Credential {
        Credential {
            token: token.into(),
            remedy: remedy.into(),
        }
    }
}

/// One piece of a streamed answer, as the server sends it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    /// More of the answer's text.
    Text(String),
    /// The passages the answer was given (kai's extension: an event of its own, first).
    Sources(Vec<kai_proto::KnowledgeSource>),
    /// The answer is complete (and stored).
    Done,
}

impl Client {
    /// A client of the server at `url`, sending no credential yet.
    pub(crate) fn new(url: Url) -> anyhow::Result<Client> {
        kai_providers::install_tls_provider();
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .user_agent(concat!("kai-cli/", env!("CARGO_PKG_VERSION")))
        };
        let http = builder().read_timeout(IDLE_TIMEOUT).build();
        let patient = builder().timeout(ANSWER_TIMEOUT).build();
        Ok(Client {
            http: http.context("cannot build an HTTP client")?,
            patient: patient.context("cannot build an HTTP client")?,
            url,
            credential: None,
        })
    }

    /// The same server, with `credential` sent on every request.
    #[must_use]
    pub(crate) fn with(&self, credential: Credential) -> Client {
        Client {
            credential: Some(credential),
            ..self.clone()
        }
    }

    /// The server's address, as people write it.
    pub(crate) fn url(&self) -> &str {
        shown(&self.url)
    }

    /// `POST /api/v1/auth/login`.
    pub(crate) async fn login(
        &self,
        username: &str,
        password: String,
    ) -> anyhow::Result<TokenResponse> {
        let body = LoginRequest {
            username: username.to_owned(),
            password: password.into(),
            cookie: false,
        };
        self.call(Method::POST, "/api/v1/auth/login", Some(&body))
            .await
    }

    /// `POST /api/v1/auth/logout`: ends the session a refresh token belongs to.
    pub(crate) async fn end_session(&self, refresh_token: String) -> anyhow::Result<()> {
        let body = LogoutRequest {
            refresh_token: Some(refresh_token.into()),
        };
        self.call_empty(Method::POST, "/api/v1/auth/logout", Some(&body))
            .await
    }

    /// `POST /api/v1/keys`.
    pub(crate) async fn create_key(
        &self,
        request: &CreateApiKeyRequest,
    ) -> anyhow::Result<CreatedApiKey> {
        self.call(Method::POST, "/api/v1/keys", Some(request)).await
    }

    /// `DELETE /api/v1/keys/{id}`.
    pub(crate) async fn revoke_key(&self, id: Uuid) -> anyhow::Result<()> {
        self.call_empty(Method::DELETE, &format!("/api/v1/keys/{id}"), None::<&()>)
            .await
    }

    /// `GET /api/v1/vault`.
    pub(crate) async fn vault_status(&self) -> anyhow::Result<kai_proto::VaultStatus> {
        self.call(Method::GET, "/api/v1/vault", None::<&()>).await
    }

    /// `POST /api/v1/vault/unlock`.
    pub(crate) async fn vault_unlock(
        &self,
        passphrase: &kai_vault::Passphrase,
    ) -> anyhow::Result<()> {
        let body = kai_proto::VaultPassphraseRequest {
            passphrase: passphrase.expose().to_owned().into(),
        };
        self.call_empty(Method::POST, "/api/v1/vault/unlock", Some(&body))
            .await
    }

    /// `POST /api/v1/vault/lock`.
    pub(crate) async fn vault_lock(&self) -> anyhow::Result<()> {
        self.call_empty(Method::POST, "/api/v1/vault/lock", None::<&()>)
            .await
    }

    /// `GET /api/v1/secrets?scope=…`.
    pub(crate) async fn list_secrets(
        &self,
        scope: &str,
    ) -> anyhow::Result<Vec<kai_proto::SecretInfo>> {
        self.call(
            Method::GET,
            &format!("/api/v1/secrets?scope={scope}"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/secrets/{name}?scope=…`.
    pub(crate) async fn get_secret(
        &self,
        scope: &str,
        name: &str,
    ) -> anyhow::Result<kai_proto::SecretWithValue> {
        self.call(
            Method::GET,
            &format!("/api/v1/secrets/{name}?scope={scope}"),
            None::<&()>,
        )
        .await
    }

    /// `PUT /api/v1/secrets/{name}?scope=…`.
    pub(crate) async fn put_secret(
        &self,
        scope: &str,
        name: &str,
        value: &kai_vault::SecretValue,
        description: Option<String>,
    ) -> anyhow::Result<()> {
        let body = kai_proto::PutSecretRequest {
            value: value.expose().to_owned().into(),
            description,
        };
        let _: kai_proto::SecretInfo = self
            .call(
                Method::PUT,
                &format!("/api/v1/secrets/{name}?scope={scope}"),
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// `DELETE /api/v1/secrets/{name}?scope=…`.
    pub(crate) async fn delete_secret(&self, scope: &str, name: &str) -> anyhow::Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/secrets/{name}?scope={scope}"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/me`.
    pub(crate) async fn me(&self) -> anyhow::Result<Me> {
        self.call(Method::GET, "/api/v1/me", None::<&()>).await
    }

    /// `GET /v1/models`: the names `--model` takes, in the server's order.
    pub(crate) async fn models(&self) -> anyhow::Result<Vec<String>> {
        let list: ModelList = self.call(Method::GET, "/v1/models", None::<&()>).await?;
        Ok(list.data.into_iter().map(|model| model.id).collect())
    }

    /// The most recently active conversation, if there is one.
    pub(crate) async fn latest_conversation(&self) -> anyhow::Result<Option<ConversationSummary>> {
        let page: ConversationPage = self
            .call(Method::GET, "/api/v1/conversations?limit=1", None::<&()>)
            .await?;
        Ok(page.conversations.into_iter().next())
    }

    /// Every conversation, most recently active first, a page at a time.
    pub(crate) async fn all_conversations(&self) -> anyhow::Result<Vec<ConversationSummary>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/conversations?limit={PAGE_SIZE}");
            if let Some(cursor) = &after {
                path.push_str("&after=");
                path.push_str(cursor);
            }
            let page: ConversationPage = self.call(Method::GET, &path, None::<&()>).await?;
            all.extend(page.conversations);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// `GET /api/v1/conversations/{id}`.
    pub(crate) async fn conversation(&self, id: Uuid) -> anyhow::Result<ConversationDetail> {
        self.call(
            Method::GET,
            &format!("/api/v1/conversations/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/conversations`.
    pub(crate) async fn create_conversation(
        &self,
        request: &CreateConversationRequest,
    ) -> anyhow::Result<ConversationDetail> {
        self.call(Method::POST, "/api/v1/conversations", Some(request))
            .await
    }

    /// `PATCH /api/v1/conversations/{id}`.
    pub(crate) async fn rename_conversation(&self, id: Uuid, title: &str) -> anyhow::Result<()> {
        let body = UpdateConversationRequest {
            title: title.to_owned(),
        };
        let _: ConversationSummary = self
            .call(
                Method::PATCH,
                &format!("/api/v1/conversations/{id}"),
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// `POST /api/v1/conversations/{id}/messages`, answered whole.
    pub(crate) async fn send(
        &self,
        id: Uuid,
        request: &SendMessageRequest,
    ) -> anyhow::Result<ConversationReply> {
        self.call_on(
            &self.patient,
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            Some(request),
        )
        .await
    }

    /// `POST /api/v1/conversations/{id}/messages` with `stream`: the answer as it comes, up to
    /// [`Piece::Done`]; a stream that ends before it, or with an error, broke off. Dropping it
    /// closes the connection, which cancels the answer on the server.
    pub(crate) async fn send_streaming(
        &self,
        id: Uuid,
        request: &SendMessageRequest,
    ) -> anyhow::Result<impl Stream<Item = anyhow::Result<Piece>> + use<>> {
        let request = SendMessageRequest {
            stream: true,
            ..request.clone()
        };
        let response = self
            .send_request(
                &self.http,
                Method::POST,
                &format!("/api/v1/conversations/{id}/messages"),
                Some(&request),
            )
            .await?;
        let pieces = sse_events(Box::pin(response.bytes_stream())).filter_map(|event| async move {
            match event {
                Ok(event) => read_event(&event.data).transpose(),
                Err(SseError::Transport(err)) => {
                    Some(Err(anyhow!("the answer broke off: {}", innermost(&err))))
                }
                Err(err) => Some(Err(anyhow!(
                    "the server's event stream is malformed: {err}"
                ))),
            }
        });
        Ok(pieces)
    }

    /// A request whose answer is JSON.
    pub(crate) async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<T> {
        self.call_on(&self.http, method, path, body).await
    }

    async fn call_on<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<T> {
        let response = self.send_request(http, method, path, body).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} answered {path} with something that is not kai's API; is it a kai server?",
                self.url()
            )
        })
    }

    /// A request whose answer has no body to read.
    pub(crate) async fn call_empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<()> {
        self.send_request(&self.http, method, path, body)
            .await
            .map(drop)
    }

    /// `POST`s `body` as it is (not JSON) and reads the JSON answer: uploads, which may take
    /// long.
    pub(crate) async fn upload<T: DeserializeOwned>(
        &self,
        path: &str,
        body: reqwest::Body,
    ) -> anyhow::Result<T> {
        let mut request = self
            .patient
            .post(self.endpoint(path))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        if let Some(credential) = &self.credential {
            request = request.bearer_auth(&credential.token);
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes));
        }
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} answered {path} with something that is not kai's API; is it a kai server?",
                self.url()
            )
        })
    }

    /// `POST`s one JSON-RPC message of MCP to `/mcp` and returns the answer's text, or `None`
    /// for a notification the server accepted without one. A refusal (a bad key, a missing
    /// scope) is an error that says why.
    pub(crate) async fn mcp(&self, message: String) -> anyhow::Result<Option<String>> {
        let mut request = self
            .patient
            .post(self.endpoint("/mcp"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/event-stream",
            )
            .body(message);
        if let Some(credential) = &self.credential {
            request = request.bearer_auth(&credential.token);
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes));
        }
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        Ok((!text.is_empty()).then_some(text))
    }

    /// `GET`s `path` and hands over the response, to read its body as it comes.
    pub(crate) async fn fetch(&self, path: &str) -> anyhow::Result<Response> {
        self.send_request(&self.patient, Method::GET, path, None::<&()>)
            .await
    }

    /// Sends a request; an error status becomes the error it describes.
    async fn send_request<B: Serialize + ?Sized>(
        &self,
        http: &reqwest::Client,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<Response> {
        let mut request: RequestBuilder = http.request(method, self.endpoint(path));
        if let Some(credential) = &self.credential {
            request = request.bearer_auth(&credential.token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        Err(self.refusal(status, &body))
    }

    /// `path` under the server's URL, which may itself have a path (behind a reverse proxy).
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.as_str().trim_end_matches('/'))
    }

    fn transport_error(&self, err: &reqwest::Error) -> anyhow::Error {
        if err.is_connect() {
            anyhow!(
                "cannot reach the kai server at {} ({}); start it with `kai serve`, or name \
                 another with --url or KAI_CLIENT_URL",
                self.url(),
                innermost(err)
            )
        } else if err.is_timeout() {
            anyhow!(
                "the kai server at {} stopped answering: {}",
                self.url(),
                innermost(err)
            )
        } else {
            anyhow!(
                "the request to the kai server at {} failed: {}",
                self.url(),
                innermost(err)
            )
        }
    }

    /// The error an error answer describes: the problem's `detail` (or OpenAI's `message`, on
    /// `/v1`), with what to do about a refused credential.
    fn refusal(&self, status: StatusCode, body: &[u8]) -> anyhow::Error {
        let detail = serde_json::from_slice::<Problem>(body)
            .map(|problem| problem.detail)
            .or_else(|_| {
                serde_json::from_slice::<ErrorResponse>(body).map(|error| error.error.message)
            })
            .unwrap_or_else(|_| {
                format!("{} answered HTTP {status}; is it a kai server?", self.url())
            });
        match (&self.credential, status) {
            (Some(credential), StatusCode::UNAUTHORIZED) => anyhow!(
                "the kai server at {} refused the API key ({detail}); {}",
                self.url(),
                credential.remedy
            ),
            _ => anyhow!(detail),
        }
    }
}

/// What one server-sent event of a streamed answer says: text, the end, or nothing of
/// interest (a role, a usage report, a finish reason). An error event is an error.
pub(crate) fn read_event(data: &str) -> anyhow::Result<Option<Piece>> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(Some(Piece::Done));
    }
    let value: serde_json::Value =
        serde_json::from_str(data).context("the server sent an event that is not JSON")?;
    if let Some(error) = value.get("error") {
        let message = error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("the server reported an error without a message");
        return Err(anyhow!("{message}"));
    }
    if let Some(sources) = value.get("sources") {
        let sources = serde_json::from_value(sources.clone())
            .context("the server sent sources that are not a list of passages")?;
        return Ok(Some(Piece::Sources(sources)));
    }
    let chunk: kai_proto::openai::ChatCompletionChunk =
        serde_json::from_value(value).context("the server sent an event that is not a chunk")?;
    let text: String = chunk
        .choices
        .into_iter()
        .filter_map(|choice| choice.delta.content.or(choice.delta.refusal))
        .collect();
    Ok((!text.is_empty()).then_some(Piece::Text(text)))
}

/// A URL as people write it: without the trailing slash `Url` adds to a bare host.
pub(crate) fn shown(url: &Url) -> &str {
    url.as_str().trim_end_matches('/')
}

/// The root cause of a transport error ("Connection refused (os error 111)"): reqwest's own
/// message only says that sending failed.
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn chunk(delta: serde_json::Value) -> String {
        serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 1,
            "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        .to_string()
    }

    #[test]
    fn events_become_text_the_end_or_errors() {
        assert_eq!(
            read_event(&chunk(serde_json::json!({"content": "Grüß"}))).unwrap(),
            Some(Piece::Text("Grüß".into()))
        );
        assert_eq!(
            read_event(&chunk(serde_json::json!({"role": "assistant"}))).unwrap(),
            None
        );
        assert_eq!(
            read_event(&chunk(serde_json::json!({"refusal": "No."}))).unwrap(),
            Some(Piece::Text("No.".into()))
        );
        assert_eq!(read_event(" [DONE] ").unwrap(), Some(Piece::Done));
        let sources = r#"{"object":"chat.completion.chunk","choices":[],"sources":[{"number":1,"item_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","title":"bread.txt","version":2,"heading":null,"text":"Knead it.","score":0.5}]}"#;
        let Some(Piece::Sources(sources)) = read_event(sources).unwrap() else {
            panic!("sources expected");
        };
        assert_eq!(
            (sources[0].number, sources[0].title.as_str()),
            (1, "bread.txt")
        );
        assert!(read_event(r#"{"choices":[],"sources":"no"}"#).is_err());
        let usage = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        assert_eq!(read_event(usage).unwrap(), None);
        let err = read_event(
            r#"{"error":{"message":"the answer broke off: a/m failed: reset","type":"upstream_error","param":null,"code":"interrupted"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "the answer broke off: a/m failed: reset");
        assert!(read_event("not json").is_err());
    }

    #[test]
    fn urls_show_without_a_trailing_slash_and_keep_their_path() {
        let url: Url = "http://127.0.0.1:8420".parse().unwrap();
        assert_eq!(shown(&url), "http://127.0.0.1:8420");
        let client = Client::new("https://example.org/kai/".parse().unwrap()).unwrap();
        assert_eq!(
            client.endpoint("/api/v1/me"),
            "https://example.org/kai/api/v1/me"
        );
    }
}
