//! Text out of stored files: what a file is ([`sniff`]) and the text to index in it
//! ([`extract`]).
//!
//! The type comes from the bytes, never from a client's `Content-Type`: magic numbers first (a
//! PDF, an image, an archive), then whether the bytes are text at all (valid UTF-8 with no NUL
//! byte), and only then the file name's extension, which picks among text formats (Markdown,
//! HTML, a programming language) but never makes binary bytes into text.
//!
//! Extraction is synchronous CPU work (a large PDF takes seconds); callers run it on a blocking
//! thread. Line endings of the extracted text are normalised to `\n`, so that chunk offsets,
//! keyword tokens and shown snippets do not depend on the platform a file was written on.

use std::borrow::Cow;
use std::panic::{self, AssertUnwindSafe};

/// A UTF-8 byte order mark, which some editors put at the start of text files.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The width HTML is rendered at: wide enough that html2text does not wrap paragraphs into
/// short lines, which would cut sentences apart for the chunker.
const HTML_WIDTH: usize = 1 << 20;

/// The MIME type of bytes that are neither text nor anything `infer` recognises.
const OCTET_STREAM: &str = "application/octet-stream";

/// How a file's text is read, as [`sniff`] decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown: the text itself, chunked along its headings.
    Markdown,
    /// HTML: the readable text of the page, without markup, scripts or styles.
    Html,
    /// PDF: the text of its pages.
    Pdf,
    /// Source code or a structured text file (JSON, TOML, YAML…): the text itself.
    Code {
        /// The language, lowercase (`rust`, `python`, `json`…).
        language: &'static str,
    },
    /// Any other text: the text itself.
    PlainText,
    /// An opaque blob (an image, an archive, an executable, bytes that are not UTF-8 text):
    /// stored, but not indexed.
    Binary,
}

impl Format {
    /// Whether files of this format have text to index; only [`Format::Binary`] has none.
    pub fn is_text(self) -> bool {
        self != Self::Binary
    }
}

/// What [`sniff`] found a file to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    /// The MIME type to store and serve the file with (`text/markdown`, `image/png`…).
    pub mime: &'static str,
    /// How its text is read.
    pub format: Format,
}

/// Why a file's text could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// Text formats must be UTF-8.
    #[error("the file is not valid UTF-8 at byte {at}; text files must be UTF-8")]
    NotUtf8 {
        /// Offset of the first byte that is not valid UTF-8.
        at: usize,
    },
    /// A NUL byte does not occur in text; the file is binary whatever its name says.
    #[error("the file is not text: it holds a NUL byte at byte {at}")]
    NulByte {
        /// Offset of the first NUL byte.
        at: usize,
    },
    /// The bytes are not a PDF that the parser can read (damaged, truncated, or using
    /// features it does not support).
    #[error("the PDF could not be parsed: {reason}")]
    Pdf {
        /// What the parser reported.
        reason: String,
    },
    /// The HTML renderer failed.
    #[error("the HTML could not be read: {reason}")]
    Html {
        /// What the renderer reported.
        reason: String,
    },
    /// [`Format::Binary`] has no text.
    #[error("the file is binary and has no text to extract")]
    Binary,
}

/// Decides what `bytes` are: their MIME type and how to read their text. `file_name` (a name or
/// a path; only its last component counts) chooses among text formats by its extension; it
/// never makes bytes that are not text into text, nor text into something else.
///
/// `bytes` may be the whole file or its first few kilobytes; a character cut off at their end
/// does not make them binary. Empty bytes are text (an empty file of the format its name says,
/// else plain text).
pub fn sniff(bytes: &[u8], file_name: Option<&str>) -> Sniffed {
    let by_name = file_name.and_then(text_format_by_name);
    if bytes.is_empty() {
        return by_name.unwrap_or(PLAIN_TEXT);
    }
    let recognised = infer::get(bytes);
    if let Some(kind) = recognised
        && kind.mime_type() == "application/pdf"
    {
        return Sniffed {
            mime: "application/pdf",
            format: Format::Pdf,
        };
    }
    // Whether the bytes are text decides before `infer`: a few binary signatures are plain
    // ASCII (`ID3`, `{\rtf`…), and a text file that happens to start with one is still text.
    if !looks_like_text(bytes) {
        return Sniffed {
            mime: recognised.map_or(OCTET_STREAM, |kind| kind.mime_type()),
            format: Format::Binary,
        };
    }
    if let Some(sniffed) = by_name {
        return sniffed;
    }
    match recognised.map(|kind| kind.mime_type()) {
        Some("text/html") => Sniffed {
            mime: "text/html",
            format: Format::Html,
        },
        Some("text/xml") => Sniffed {
            mime: "application/xml",
            format: Format::Code { language: "xml" },
        },
        Some("text/x-shellscript") => Sniffed {
            mime: "text/x-shellscript",
            format: Format::Code { language: "shell" },
        },
        _ => PLAIN_TEXT,
    }
}

/// The text to index in `bytes` read as `format`, with line endings normalised to `\n` and a
/// UTF-8 byte order mark dropped. Empty bytes give empty text (except for a PDF, which cannot
/// be empty).
///
/// A malformed PDF gives an error, not a panic: the PDF parser panics on some damaged files,
/// and that panic is caught here. The default panic hook still prints its message to stderr;
/// replacing the process-wide hook is left to the binary, which owns process-wide state.
///
/// # Errors
///
/// [`ExtractError`] says why: text that is not UTF-8 or holds a NUL byte, a PDF that cannot be
/// parsed, or a binary format.
pub fn extract(bytes: &[u8], format: Format) -> Result<String, ExtractError> {
    match format {
        Format::Markdown | Format::Code { .. } | Format::PlainText => {
            check_text(bytes).map(|text| normalise_newlines(text).into_owned())
        }
        Format::Html => extract_html(bytes),
        Format::Pdf => extract_pdf(bytes),
        Format::Binary => Err(ExtractError::Binary),
    }
}

/// Plain text: what text without a more specific format is.
const PLAIN_TEXT: Sniffed = Sniffed {
    mime: "text/plain",
    format: Format::PlainText,
};

/// Whether `bytes`, which may end in the middle of a character, are UTF-8 text with no NUL.
fn looks_like_text(bytes: &[u8]) -> bool {
    let body = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    // An error without a length is a character cut off at the end, as a file's head may be.
    !body.contains(&0)
        && std::str::from_utf8(body).map_or_else(|err| err.error_len().is_none(), |_| true)
}

/// The bytes as text, without a leading byte order mark, if they are valid UTF-8 with no NUL;
/// offsets in the errors count the byte order mark.
fn check_text(bytes: &[u8]) -> Result<&str, ExtractError> {
    let bom = if bytes.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    let body = &bytes[bom..];
    if let Some(at) = body.iter().position(|&byte| byte == 0) {
        return Err(ExtractError::NulByte { at: bom + at });
    }
    std::str::from_utf8(body).map_err(|err| ExtractError::NotUtf8 {
        at: bom + err.valid_up_to(),
    })
}

/// `text` with `\r\n` and lone `\r` line endings made `\n`, borrowed when it has none.
fn normalise_newlines(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\r') {
        out.push_str(&rest[..at]);
        out.push('\n');
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('\n') {
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The readable text of an HTML page. The plain renderer without decorations keeps headings
/// as `# ` lines (so the Markdown chunker finds sections), drops scripts, styles and the head,
/// writes links as their text with no list of URLs, and, in raw mode, puts each table cell on
/// its own line instead of drawing a table of padded columns.
fn extract_html(bytes: &[u8]) -> Result<String, ExtractError> {
    let text = check_text(bytes)?;
    let rendered = html2text::config::plain_no_decorate()
        .raw_mode(true)
        .allow_width_overflow()
        .string_from_read(text.as_bytes(), HTML_WIDTH)
        .map_err(|err| ExtractError::Html {
            reason: err.to_string(),
        })?;
    Ok(normalise_newlines(&rendered).into_owned())
}

/// The text of a PDF's pages. The parser panics on some malformed files; the panic is caught
/// and reported as a parse error, so one bad upload cannot take down the thread indexing it.
fn extract_pdf(bytes: &[u8]) -> Result<String, ExtractError> {
    // The parser only reads `bytes` and builds its own state, which is dropped with the
    // unwinding, so nothing observable is left half-updated.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem(bytes)
    }));
    match outcome {
        // Some fonts map glyphs to NUL, which a PostgreSQL text column cannot hold and text
        // never needs.
        Ok(Ok(text)) => Ok(normalise_newlines(&text).replace('\0', "")),
        Ok(Err(err)) => Err(ExtractError::Pdf {
            reason: err.to_string(),
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|message| (*message).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            let reason = match message {
                Some(message) => format!("the parser failed on a malformed file ({message})"),
                None => "the parser failed on a malformed file".to_owned(),
            };
            Err(ExtractError::Pdf { reason })
        }
    }
}

/// The text format and MIME type a file name's extension (or whole name) says, for the names
/// kai knows; `None` for others.
fn text_format_by_name(file_name: &str) -> Option<Sniffed> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    match base {
        "Makefile" | "makefile" | "GNUmakefile" => return Some(code("make", "text/x-makefile")),
        "Dockerfile" | "Containerfile" => return Some(code("dockerfile", "text/x-dockerfile")),
        _ => {}
    }
    // A leading dot marks a hidden file (`.bashrc`), not an extension.
    let (stem, extension) = base.rsplit_once('.')?;
    if stem.is_empty() {
        return None;
    }
    let sniffed = match extension.to_ascii_lowercase().as_str() {
        "md" | "markdown" | "mdown" | "mkd" | "mkdn" => Sniffed {
            mime: "text/markdown",
            format: Format::Markdown,
        },
        "html" | "htm" | "xhtml" => Sniffed {
            mime: "text/html",
            format: Format::Html,
        },
        "txt" | "text" | "log" => PLAIN_TEXT,
        "csv" => Sniffed {
            mime: "text/csv",
            format: Format::PlainText,
        },
        "tsv" => Sniffed {
            mime: "text/tab-separated-values",
            format: Format::PlainText,
        },
        "rs" => code("rust", "text/x-rust"),
        "py" | "pyi" => code("python", "text/x-python"),
        "js" | "mjs" | "cjs" | "jsx" => code("javascript", "text/javascript"),
        "ts" | "mts" | "cts" | "tsx" => code("typescript", "text/x-typescript"),
        "go" => code("go", "text/x-go"),
        "c" | "h" => code("c", "text/x-c"),
        "cc" | "cpp" | "cxx" | "hh" | "hpp" | "hxx" => code("cpp", "text/x-c++"),
        "java" => code("java", "text/x-java"),
        "kt" | "kts" => code("kotlin", "text/x-kotlin"),
        "swift" => code("swift", "text/x-swift"),
        "rb" => code("ruby", "text/x-ruby"),
        "php" => code("php", "text/x-php"),
        "cs" => code("csharp", "text/x-csharp"),
        "lua" => code("lua", "text/x-lua"),
        "sh" | "bash" | "zsh" => code("shell", "text/x-shellscript"),
        "css" => code("css", "text/css"),
        "toml" => code("toml", "application/toml"),
        "yaml" | "yml" => code("yaml", "application/yaml"),
        "json" => code("json", "application/json"),
        "xml" => code("xml", "application/xml"),
        "sql" => code("sql", "application/sql"),
        _ => return None,
    };
    Some(sniffed)
}

/// Source code in `language`, served as `mime`.
fn code(language: &'static str, mime: &'static str) -> Sniffed {
    Sniffed {
        mime,
        format: Format::Code { language },
    }
}
