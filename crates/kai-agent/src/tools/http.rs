//! `http_request`: a request through the guarded client (`web`), its answer read up to a
//! bound and given to the model as text.

use futures_util::StreamExt;
use serde_json::Value;

use super::env::{ToolEnv, ToolError, text};
use super::web::check_url;

/// The most of a response body read.
const MAX_BODY: usize = 256 * 1024;
/// The largest request body sent.
const MAX_REQUEST_BODY: usize = 1024 * 1024;

pub(super) async fn request(env: &ToolEnv, arguments: &Value) -> Result<String, ToolError> {
    let web = &env.web;
    let url = text(arguments, "url")?;
    let url = reqwest::Url::parse(url)
        .map_err(|err| ToolError::Invalid(format!("`{url}` is not a URL: {err}")))?;
    check_url(&url, &web.allowed).map_err(ToolError::Invalid)?;
    let method = arguments["method"]
        .as_str()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let method = match method.as_str() {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" => {
            reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|err| ToolError::Invalid(err.to_string()))?
        }
        other => {
            return Err(ToolError::Invalid(format!(
                "`{other}` is not a method this tool sends: use GET, HEAD, POST, PUT, PATCH or DELETE"
            )));
        }
    };
    let mut request = web.client.request(method, url.clone());
    if let Some(headers) = arguments["headers"].as_object() {
        for (name, value) in headers {
            let value = value
                .as_str()
                .ok_or_else(|| ToolError::Invalid(format!("header `{name}` must be a string")))?;
            request = request.header(name.as_str(), value);
        }
    }
    if let Some(body) = arguments["body"].as_str() {
        if body.len() > MAX_REQUEST_BODY {
            return Err(ToolError::Invalid(format!(
                "the body is {} bytes; at most {MAX_REQUEST_BODY} are sent",
                body.len()
            )));
        }
        request = request.body(body.to_owned());
    }
    let response = request.send().await.map_err(|err| {
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        ToolError::Failed(format!("the request to {url} failed: {reason}"))
    })?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let final_url = response.url().to_string();
    let mut body = Vec::new();
    let mut truncated = false;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|err| ToolError::Failed(format!("the response broke off: {err}")))?;
        let room = MAX_BODY - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let text = match std::str::from_utf8(&body) {
        Ok(text) => text.to_owned(),
        Err(_) if body.contains(&0) => format!("[binary content, {} bytes]", body.len()),
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    let mut answer = format!("HTTP {status}\n");
    if final_url != url.as_str() {
        answer.push_str(&format!("final URL: {final_url}\n"));
    }
    if !content_type.is_empty() {
        answer.push_str(&format!("content-type: {content_type}\n"));
    }
    answer.push('\n');
    answer.push_str(&text);
    if truncated {
        answer.push_str(&format!("\n[truncated at {MAX_BODY} bytes]"));
    }
    Ok(answer)
}
