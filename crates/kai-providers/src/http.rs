//! What every adapter needs of HTTP: one client per provider, JSON requests with timeouts,
//! error answers turned into classified [`ProviderError`]s, bodies read with a size limit, and
//! streams (server-sent events, JSON lines) that notice stalls and broken connections.

use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kai_models::{ErrorKind, ProviderError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::spec::ProviderSpec;
use crate::sse::{SseError, SseEvent, sse_events};

/// The largest answer read from a provider: far above any real completion or embedding batch,
/// low enough that a broken upstream cannot exhaust memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The most of an error answer kept for its message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How long an idle connection to a provider is kept for the next request.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Why a provider's answer could not be read to its end.
type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A provider's answer, whichever way it came; read its body with [`Http::json`],
/// [`Http::events`] or [`Http::lines`].
pub(crate) type Response = http::Response<UnsyncBoxBody<Bytes, BodyError>>;

/// How requests reach a provider.
#[derive(Debug, Clone)]
enum Transport {
    /// Straight to the provider, over hyper's pooled client. This is the gateway's hot path:
    /// a general-purpose client's layers (redirects, retries, URLs parsed back and forth) cost
    /// more there than the rest of kai's work on a request.
    Direct(Box<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>),
    /// Through the proxy that the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, less
    /// `NO_PROXY`) names for the provider's address, with reqwest, which speaks to proxies.
    Proxied(reqwest::Client),
}

/// A provider's HTTP connection: base URL, client, timeouts and credential.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    transport: Transport,
    /// Sent with every request: the credential, the user agent, configured extras.
    headers: HeaderMap,
    base: Url,
    timeout: Duration,
    stream_idle: Duration,
    /// The credential, kept to scrub it out of any error text a provider echoes.
    secret: Option<String>,
}

impl Http {
    /// A client for `spec`, sending `headers` (the credential among them) on every request.
    pub(crate) fn new(spec: &ProviderSpec, mut headers: HeaderMap) -> Result<Http, ProviderError> {
        install_tls_provider();
        for (name, value) in &spec.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ProviderError::unsupported(format!("`{name}` is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                ProviderError::unsupported(format!("the value of header `{name}` is not valid"))
            })?;
            headers.insert(name, value);
        }
        for value in headers.values_mut() {
            value.set_sensitive(true);
        }
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("kai/", env!("CARGO_PKG_VERSION"))),
        );
        headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("*/*"));
        // `Url::join` treats a base without a trailing slash as a file: keep the last segment.
        let mut base = spec.base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let cannot = |err: &dyn std::fmt::Display| {
            ProviderError::unsupported(format!("cannot build HTTP client: {err}"))
        };
        let base_uri: http::Uri = base.as_str().parse().map_err(|err| cannot(&err))?;
        let transport = if let Some(proxy) = spec.proxies.intercept(&base_uri) {
            let mut through = reqwest::Proxy::all(proxy.uri().to_string()).map_err(|err| {
                ProviderError::unsupported(format!("the proxy for {base} is not usable: {err}"))
            })?;
            if let Some((user, password)) = proxy.raw_auth() {
                through = through.basic_auth(user, password);
            }
            let client = reqwest::Client::builder()
                .proxy(through)
                .connect_timeout(spec.connect_timeout)
                .pool_idle_timeout(POOL_IDLE)
                .tcp_nodelay(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|err| cannot(&err))?;
            Transport::Proxied(client)
        } else {
            let mut connector = HttpConnector::new();
            connector.set_connect_timeout(Some(spec.connect_timeout));
            connector.set_nodelay(true);
            connector.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .try_with_platform_verifier()
                .map_err(|err| cannot(&err))?
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(connector);
            let client = Client::builder(TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE)
                .pool_timer(TokioTimer::new())
                .build(connector);
            Transport::Direct(Box::new(client))
        };
        Ok(Http {
            transport,
            headers,
            base,
            timeout: spec.timeout,
            stream_idle: spec.stream_idle_timeout,
            secret: spec
                .api_key
                .as_ref()
                .map(|key| key.expose().to_owned())
                .filter(|key| !key.is_empty()),
        })
    }

    /// `path` (relative, no leading slash) under the base URL.
    pub(crate) fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    /// POSTs `body` as JSON and returns the answer if its status is a success, else the
    /// classified error. The timeout covers the wait for the answer's head.
    pub(crate) async fn post_json(
        &self,
        url: Url,
        body: &impl Serialize,
    ) -> Result<Response, ProviderError> {
        let body = serde_json::to_vec(body).map_err(|err| {
            ProviderError::unsupported(format!("cannot write the request as JSON: {err}"))
        })?;
        self.post(url, Bytes::from(body)).await
    }

    /// POSTs a JSON body already written; like [`Http::post_json`].
    pub(crate) async fn post(&self, url: Url, body: Bytes) -> Result<Response, ProviderError> {
        let mut request = self.request(Method::POST, &url, body)?;
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.send(request).await
    }

    /// GETs `url`; like [`Http::post_json`].
    pub(crate) async fn get(&self, url: Url) -> Result<Response, ProviderError> {
        let request = self.request(Method::GET, &url, Bytes::new())?;
        self.send(request).await
    }

    fn request(
        &self,
        method: Method,
        url: &Url,
        body: Bytes,
    ) -> Result<Request<Bytes>, ProviderError> {
        let uri: http::Uri = url.as_str().parse().map_err(|_| {
            ProviderError::unsupported(format!(
                "`{}` is not a URL a request can go to",
                self.scrubbed(url)
            ))
        })?;
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        Ok(request)
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response, ProviderError> {
        let response = match &self.transport {
            Transport::Direct(client) => {
                let response =
                    tokio::time::timeout(self.timeout, client.request(request.map(Full::new)))
                        .await
                        .map_err(|_| self.timed_out())?
                        .map_err(|err| self.transport_error(ErrorKind::Connect, &err))?;
                response.map(|body| body.map_err(BodyError::from).boxed_unsync())
            }
            Transport::Proxied(client) => {
                let request = reqwest::Request::try_from(request).map_err(|err| {
                    ProviderError::unsupported(format!("cannot build the request: {err}"))
                })?;
                let response = tokio::time::timeout(self.timeout, client.execute(request))
                    .await
                    .map_err(|_| self.timed_out())?
                    .map_err(|err| {
                        let kind = if err.is_timeout() {
                            ErrorKind::Timeout
                        } else {
                            ErrorKind::Connect
                        };
                        self.transport_error(kind, &err.without_url())
                    })?;
                http::Response::from(response)
                    .map(|body| body.map_err(BodyError::from).boxed_unsync())
            }
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.error_response(response).await)
    }

    /// Reads a successful answer's JSON body, within the timeout and the size limit.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        response: Response,
    ) -> Result<T, ProviderError> {
        let body = tokio::time::timeout(self.timeout, read_limited(response, MAX_BODY))
            .await
            .map_err(|_| self.timed_out())?
            .map_err(|err| self.scrub(err))?;
        serde_json::from_slice(&body).map_err(|err| {
            ProviderError::malformed(format!(
                "the provider's answer is not the JSON expected: {err}{}",
                excerpt(&body)
            ))
        })
    }

    /// A successful answer's body as server-sent events. A gap longer than the idle timeout
    /// ends the stream with [`ErrorKind::Stalled`], a broken connection with
    /// [`ErrorKind::Interrupted`].
    pub(crate) fn events(
        &self,
        response: Response,
    ) -> BoxStream<'static, Result<SseEvent, ProviderError>> {
        sse_events(Box::pin(self.body(response)))
            .map(|item| {
                item.map_err(|err| match err {
                    SseError::Transport(err) => err,
                    SseError::Utf8(err) => ProviderError::malformed(err.to_string()),
                })
            })
            .boxed()
    }

    /// A successful answer's body as lines of text (newline-delimited JSON), with the same
    /// stall and interruption handling as [`Http::events`].
    pub(crate) fn lines(
        &self,
        response: Response,
    ) -> BoxStream<'static, Result<String, ProviderError>> {
        split_lines(self.body(response)).boxed()
    }

    /// The body's bytes as they arrive. The idle timeout is on bytes, not on whole events: a
    /// slow but steady stream is not stalled.
    fn body(
        &self,
        response: Response,
    ) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static {
        let secret = self.secret.clone();
        let chunks = BodyDataStream::new(response.into_body())
            .map(move |item| item.map_err(|err| scrub_with(&secret, interrupted(&*err))));
        with_idle_timeout(chunks, self.stream_idle)
    }

    fn timed_out(&self) -> ProviderError {
        ProviderError::new(
            ErrorKind::Timeout,
            format!("no answer within {} s", self.timeout.as_secs_f32()),
        )
    }

    fn transport_error(
        &self,
        kind: ErrorKind,
        err: &(dyn std::error::Error + 'static),
    ) -> ProviderError {
        self.scrub(ProviderError::new(kind, describe(err)))
    }

    /// Turns an error answer into a classified error, with the provider's own message where its
    /// body has one. A redirect is an error too: kai does not follow one, so that a provider's
    /// credential never goes anywhere but the configured address.
    async fn error_response(&self, response: Response) -> ProviderError {
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            let to = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("nowhere");
            return self.scrub(ProviderError::from_status(
                status,
                format!(
                    "the provider redirects to {to}; kai does not follow redirects, so set the \
                     provider's base_url to the address it redirects to"
                ),
                None,
            ));
        }
        let retry_after = retry_after(response.headers());
        let body = tokio::time::timeout(self.timeout, read_limited(response, MAX_ERROR_BODY))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let message = error_message(&body).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() {
                "no error message".to_owned()
            } else {
                truncate(text, 500)
            }
        });
        self.scrub(ProviderError::from_status(status, message, retry_after))
    }

    fn scrub(&self, err: ProviderError) -> ProviderError {
        scrub_with(&self.secret, err)
    }

    /// A URL for a message: without its query, which may carry a key (Gemini's `key=`).
    fn scrubbed(&self, url: &Url) -> String {
        let mut bare = url.clone();
        bare.set_query(None);
        bare.to_string()
    }
}

/// The headers that carry `spec`'s key as `name: {prefix}{key}` (`Authorization: Bearer …`,
/// `x-api-key: …`), or none when there is no key. An empty key sends nothing: a keyless local
/// server ignores it, and a proxy in front of one would refuse an empty credential.
pub(crate) fn key_headers(
    spec: &ProviderSpec,
    name: HeaderName,
    prefix: &str,
) -> Result<HeaderMap, ProviderError> {
    let mut headers = HeaderMap::new();
    if let Some(key) = spec.api_key.as_ref().filter(|key| !key.expose().is_empty()) {
        let value = HeaderValue::from_str(&format!("{prefix}{}", key.expose())).map_err(|_| {
            ProviderError::unsupported("the API key has characters a header cannot carry")
        })?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Installs rustls's ring crypto provider for the process, once. kai builds reqwest without
/// its default provider (aws-lc, a large C library), so every HTTP client in the process,
/// kai's own and any other, needs this called before it is built.
pub fn install_tls_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Fails only if another part of the process installed one first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Replaces the credential wherever a provider echoed it.
fn scrub_with(secret: &Option<String>, mut err: ProviderError) -> ProviderError {
    if let Some(secret) = secret
        && err.message.contains(secret.as_str())
    {
        err.message = err.message.replace(secret.as_str(), "<redacted>");
    }
    err
}

fn interrupted(err: &(dyn std::error::Error + 'static)) -> ProviderError {
    ProviderError::new(
        ErrorKind::Interrupted,
        format!("the connection broke mid-answer: {}", describe(err)),
    )
}

/// An error with its causes, one line. No URL (whose query may carry a key) is in it: hyper
/// names none, and reqwest's is dropped.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Reads a body, refusing one larger than `limit`.
async fn read_limited(response: Response, limit: usize) -> Result<Bytes, ProviderError> {
    let mut body = response.into_body();
    let mut read: Option<Bytes> = None;
    let mut joined = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| interrupted(&*err))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let length = read.as_ref().map_or(0, Bytes::len) + joined.len() + chunk.len();
        if length > limit {
            return Err(ProviderError::malformed(format!(
                "the provider's answer is larger than {} MiB",
                limit / (1024 * 1024)
            )));
        }
        // Most answers come in one piece: keep it as it is, and copy only from a second on.
        match read.take() {
            None if joined.is_empty() => read = Some(chunk),
            first => {
                if let Some(first) = first {
                    joined.extend_from_slice(&first);
                }
                joined.extend_from_slice(&chunk);
            }
        }
    }
    Ok(read.unwrap_or_else(|| Bytes::from(joined)))
}

/// The message in an error body, in whichever provider's shape it comes: OpenAI's and Gemini's
/// `{"error": {"message"}}`, Anthropic's `{"type": "error", "error": {"message"}}`, Ollama's
/// `{"error": "…"}`, Cohere's `{"message"}`, FastAPI's `{"detail"}`.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    // Some servers answer with a list holding one error object.
    let value = match value {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let message = value
        .pointer("/error/message")
        .or_else(|| value.get("error").filter(|e| e.is_string()))
        .or_else(|| value.get("message"))
        .or_else(|| value.get("detail"))?;
    let text = match message {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    Some(truncate(text.trim(), 1000))
}

/// `Retry-After` in seconds or as an HTTP date, or `retry-after-ms`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A short quote of a bad body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        " (the body was empty)".to_owned()
    } else {
        format!(" (the body began: {})", truncate(text, 200))
    }
}

/// Ends `stream` with [`ErrorKind::Stalled`] when no item arrives within `idle`.
fn with_idle_timeout<T: Send + 'static>(
    stream: impl Stream<Item = Result<T, ProviderError>> + Send + 'static,
    idle: Duration,
) -> impl Stream<Item = Result<T, ProviderError>> + Send + 'static {
    IdleTimeout {
        inner: Box::pin(stream),
        idle,
        last_item: tokio::time::Instant::now(),
        deadline: Box::pin(tokio::time::sleep(idle)),
        ended: false,
    }
}

/// The stream behind [`with_idle_timeout`]. Its one timer is looked at only when it fires
/// (and then moved to the silence's real end): re-arming a timer for every chunk would cost
/// more than the chunk.
struct IdleTimeout<S> {
    inner: std::pin::Pin<Box<S>>,
    idle: Duration,
    last_item: tokio::time::Instant,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    ended: bool,
}

impl<T, S> Stream for IdleTimeout<S>
where
    S: Stream<Item = Result<T, ProviderError>>,
{
    type Item = Result<T, ProviderError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.ended {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                self.last_item = tokio::time::Instant::now();
                self.ended = item.is_err();
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                self.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last_item + self.idle;
            if due <= tokio::time::Instant::now() {
                self.ended = true;
                return Poll::Ready(Some(Err(ProviderError::new(
                    ErrorKind::Stalled,
                    format!("the stream sent nothing for {} s", self.idle.as_secs_f32()),
                ))));
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

/// Splits a byte stream into lines (without their `\n` or `\r\n`), skipping blank ones; a
/// last line without a newline is kept.
fn split_lines(
    chunks: impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
) -> impl Stream<Item = Result<String, ProviderError>> + Send + 'static {
    futures_util::stream::unfold(
        (Box::pin(chunks), Vec::<u8>::new(), false),
        |(mut chunks, mut buffer, mut ended)| async move {
            loop {
                if let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
                    let mut line: Vec<u8> = buffer.drain(..=newline).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let item = String::from_utf8(line)
                        .map_err(|_| ProviderError::malformed("a line of the stream is not UTF-8"));
                    return Some((item, (chunks, buffer, ended)));
                }
                if ended {
                    if buffer.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    let line = std::mem::take(&mut buffer);
                    let item = String::from_utf8(line)
                        .map_err(|_| ProviderError::malformed("a line of the stream is not UTF-8"));
                    return Some((item, (chunks, buffer, ended)));
                }
                match chunks.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(err)) => return Some((Err(err), (chunks, Vec::new(), true))),
                    None => ended = true,
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_out_of_every_shape() {
        let cases: [(&str, &str); 6] = [
            (
                r#"{"error":{"message":"bad key","type":"invalid_request_error"}}"#,
                "bad key",
            ),
            (
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                "Overloaded",
            ),
            (r#"{"error":"model 'x' not found"}"#, "model 'x' not found"),
            (
                r#"{"message":"invalid request: field missing"}"#,
                "invalid request: field missing",
            ),
            (
                r#"[{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}]"#,
                "Resource exhausted",
            ),
            (r#"{"detail":"Not Found"}"#, "Not Found"),
        ];
        for (body, message) in cases {
            assert_eq!(
                error_message(body.as_bytes()).as_deref(),
                Some(message),
                "{body}"
            );
        }
        assert_eq!(error_message(b"<html>502</html>"), None);
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        let mut dated = HeaderMap::new();
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        dated.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let wait = retry_after(&dated).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        dated.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&dated), None);
    }

    #[tokio::test]
    async fn lines_split_across_chunks_come_out_whole() {
        let pieces = ["{\"a\":", "1}\r\n\n{\"b\"", ":2}\n{\"c\":3}"];
        let chunks = futures_util::stream::iter(
            pieces
                .into_iter()
                .map(|p| Ok::<_, ProviderError>(Bytes::from(p))),
        );
        let lines: Vec<_> = split_lines(chunks).map(Result::unwrap).collect().await;
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
    }

    #[tokio::test]
    async fn a_silent_stream_stalls() {
        let silent = futures_util::stream::pending::<Result<u8, ProviderError>>();
        let mut stream = Box::pin(with_idle_timeout(silent, Duration::from_millis(20)));
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Stalled);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_silence_is_counted_from_the_last_item() {
        // Items 15 ms apart for 60 ms, then silence: no stall until 20 ms after the last one.
        let steady = futures_util::stream::unfold(0u8, |n| async move {
            if n == 4 {
                futures_util::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
            Some((Ok::<u8, ProviderError>(n), n + 1))
        });
        let started = tokio::time::Instant::now();
        let mut stream = Box::pin(with_idle_timeout(steady, Duration::from_millis(20)));
        for n in 0..4 {
            assert_eq!(stream.next().await.unwrap().unwrap(), n);
        }
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Stalled);
        assert_eq!(started.elapsed(), Duration::from_millis(80));
    }
}
