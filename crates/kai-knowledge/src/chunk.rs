//! Text cut into chunks for indexing: pieces small enough for the embedding model, cut at the
//! largest semantic boundaries that fit (sections, paragraphs, sentences, words), with some
//! overlap between neighbours so that a passage cut in two is still found whole in one of them.
//!
//! Sizes are counted in the embedding model's tokens when its tokenizer is known
//! ([`TokenSizer::from_tokenizer`]), else estimated from the length ([`TokenSizer::estimate`]).
//! The splitter measures many candidate ranges for every chunk it cuts, so a text is not
//! tokenized per candidate: each window of it (below) is tokenized once, and a candidate's size
//! is the number of the window's tokens that overlap it, found by binary search.
//!
//! The splitter does work per chunk that grows with the text after it, which is quadratic on a
//! large document. So the text is split one window at a time, a window being a few of the
//! longest chunks long (a dozen or more ordinary ones); a window other than the last gives all
//! its chunks but the last, which may have been cut short by the window's end, and the next
//! window starts where that last chunk started, so chunks overlap across windows as they do
//! within one. A window of ASCII without whitespace (a 20 MB line of base64) is cut here at the
//! longest prefixes that fit, since the splitter would search all of it for a word end for
//! every chunk.
//!
//! Where a section does not fit in one chunk with its heading, the splitter makes the heading
//! a chunk of its own; the chunks after it carry it in their heading path.

use std::path::Path;
use std::sync::Arc;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

use crate::extract::Format;

/// Bytes per token of the estimate used when the tokenizer is unknown: about right for English
/// prose and code with BERT-like and GPT-like tokenizers.
const ESTIMATE_BYTES_PER_TOKEN: usize = 4;

/// The most bytes a chunk may hold per token of its limit, whatever the tokenizer says. A
/// tokenizer can make one token of a long run it does not know (BERT's `[UNK]` for a word of
/// over 100 characters, or for a 20 MB line); without this bound such a run would be one chunk
/// of any size.
const MAX_BYTES_PER_TOKEN: usize = 16;

/// Size of a window, in chunks of the most bytes a chunk may hold: room for the overlap to carry
/// across window ends, while the splitter's per-chunk work stays bounded by a few chunks. With
/// at least one token of at least four bytes, a window is at least 16 bytes, room for any
/// character.
const WINDOW_CHUNKS: usize = 4;

/// The longest heading kept in a chunk's heading path, in bytes; a heading is a title, and a
/// longer one is cut.
const MAX_HEADING_BYTES: usize = 200;

/// How large chunks are and how much neighbours overlap, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSettings {
    max_tokens: usize,
    overlap_tokens: usize,
}

impl ChunkSettings {
    /// The default chunk size: half of all-MiniLM-L6-v2's 512-token window, which keeps a chunk
    /// about one topic.
    pub const DEFAULT_MAX_TOKENS: usize = 256;
    /// The default overlap between neighbouring chunks: an eighth of a chunk.
    pub const DEFAULT_OVERLAP_TOKENS: usize = 32;

    /// Chunks of at most `max_tokens` tokens, neighbours sharing up to `overlap_tokens`.
    ///
    /// # Errors
    ///
    /// [`ChunkError::ZeroMaxTokens`] when `max_tokens` is 0, and
    /// [`ChunkError::OverlapTooLarge`] unless `overlap_tokens` is below `max_tokens`.
    pub fn new(max_tokens: usize, overlap_tokens: usize) -> Result<Self, ChunkError> {
        if max_tokens == 0 {
            return Err(ChunkError::ZeroMaxTokens);
        }
        if overlap_tokens >= max_tokens {
            return Err(ChunkError::OverlapTooLarge {
                max_tokens,
                overlap_tokens,
            });
        }
        Ok(Self {
            max_tokens,
            overlap_tokens,
        })
    }

    /// The most tokens a chunk holds.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The most tokens neighbouring chunks share.
    pub fn overlap_tokens(&self) -> usize {
        self.overlap_tokens
    }
}

impl Default for ChunkSettings {
    fn default() -> Self {
        Self {
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            overlap_tokens: Self::DEFAULT_OVERLAP_TOKENS,
        }
    }
}

/// How chunk sizes are counted: in an embedding model's tokens, or estimated from the length.
/// Cloning is cheap; the tokenizer is shared.
#[derive(Debug, Clone)]
pub struct TokenSizer {
    tokenizer: Option<Arc<Tokenizer>>,
}

impl TokenSizer {
    /// Sizes estimated at four bytes a token, for when the embedding model's tokenizer is
    /// unknown.
    pub fn estimate() -> Self {
        Self { tokenizer: None }
    }

    /// Sizes in `tokenizer`'s tokens, without special tokens (`[CLS]`, `[SEP]`), which the
    /// embedder adds and must leave room for. Truncation and padding set in the tokenizer are
    /// cleared: sizes count every token of the text.
    ///
    /// # Errors
    ///
    /// [`ChunkError::Tokenizer`] if the tokenizer refuses to drop its truncation.
    pub fn from_tokenizer(mut tokenizer: Tokenizer) -> Result<Self, ChunkError> {
        tokenizer
            .with_truncation(None)
            .map_err(|err| ChunkError::Tokenizer {
                reason: err.to_string(),
            })?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer: Some(Arc::new(tokenizer)),
        })
    }

    /// Sizes in the tokens of the tokenizer in `path`, a Hugging Face `tokenizer.json`.
    ///
    /// # Errors
    ///
    /// [`ChunkError::LoadTokenizer`] if the file cannot be read as a tokenizer.
    pub fn from_file(path: &Path) -> Result<Self, ChunkError> {
        let tokenizer = Tokenizer::from_file(path).map_err(|err| ChunkError::LoadTokenizer {
            path: path.display().to_string(),
            reason: err.to_string(),
        })?;
        Self::from_tokenizer(tokenizer)
    }

    /// The most bytes a chunk holds per token of its limit: the estimate's bytes a token, or
    /// with a tokenizer the bound on what it may count as one token.
    fn max_bytes_per_token(&self) -> usize {
        match self.tokenizer {
            Some(_) => MAX_BYTES_PER_TOKEN,
            None => ESTIMATE_BYTES_PER_TOKEN,
        }
    }

    /// The size of `text` alone: its tokens, or the estimate.
    ///
    /// # Errors
    ///
    /// [`ChunkError::Tokenizer`] if the tokenizer fails on the text.
    pub fn count(&self, text: &str) -> Result<usize, ChunkError> {
        match &self.tokenizer {
            Some(tokenizer) => Ok(encode(tokenizer, text)?.len()),
            None => Ok(text.len().div_ceil(ESTIMATE_BYTES_PER_TOKEN)),
        }
    }
}

/// A piece of a text to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position among the text's chunks, from 0.
    pub index: usize,
    /// The chunk's text, `text[start..end]` of the whole; never empty or only whitespace.
    pub text: String,
    /// Byte offset in the whole text where the chunk starts.
    pub start: usize,
    /// Byte offset in the whole text where the chunk ends (exclusive).
    pub end: usize,
    /// For Markdown (and HTML, whose extracted text keeps headings as `#` lines), the headings
    /// the chunk's start is under, outermost first, joined by ` > ` (`Install > From source`);
    /// a chunk that starts with a heading is under it. To be put before the chunk's text when
    /// embedding it, so that a chunk knows what section it is about.
    pub heading: Option<String>,
}

/// Why text could not be chunked, or settings or a tokenizer were refused.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// A chunk of zero tokens holds nothing.
    #[error("the chunk size must be at least one token")]
    ZeroMaxTokens,
    /// The overlap must leave each chunk something new.
    #[error(
        "the chunk overlap ({overlap_tokens} tokens) must be smaller than the chunk size \
         ({max_tokens} tokens)"
    )]
    OverlapTooLarge {
        /// The chunk size asked for.
        max_tokens: usize,
        /// The overlap asked for.
        overlap_tokens: usize,
    },
    /// A `tokenizer.json` that could not be read.
    #[error("the tokenizer {path} could not be read: {reason}")]
    LoadTokenizer {
        /// The file.
        path: String,
        /// What the tokenizer library reported.
        reason: String,
    },
    /// The tokenizer failed on a text (a model without an unknown token meeting a word it does
    /// not know, for one).
    #[error("the embedding model's tokenizer failed on the text: {reason}")]
    Tokenizer {
        /// What the tokenizer library reported.
        reason: String,
    },
}

/// Cuts `text`, read as `format`, into chunks of at most `settings.max_tokens()` as `sizer`
/// counts them. Markdown and HTML (whose extracted text keeps headings as `#` lines) are cut
/// along their structure and each chunk carries its heading path; other text is cut at blank
/// lines, lines, sentences and words. Binary has no chunks, nor has text of only whitespace.
///
/// A chunk measured with the text around it may count a token or two differently from the
/// chunk tokenized alone, where a cut falls inside a word.
///
/// # Errors
///
/// [`ChunkError::Tokenizer`] if the tokenizer fails on the text.
pub fn chunk(
    text: &str,
    format: Format,
    sizer: &TokenSizer,
    settings: &ChunkSettings,
) -> Result<Vec<Chunk>, ChunkError> {
    let markdown = match format {
        Format::Markdown | Format::Html => true,
        Format::Pdf | Format::Code { .. } | Format::PlainText => false,
        Format::Binary => return Ok(Vec::new()),
    };
    let mut headings = markdown.then(|| HeadingPath::new(text));
    let window_bytes = settings
        .max_tokens
        .saturating_mul(sizer.max_bytes_per_token())
        .saturating_mul(WINDOW_CHUNKS);
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = window_end(text, start, window_bytes);
        let is_last = end == text.len();
        // Blank text at a window's ends makes no chunk, and the splitter would step through it
        // one line at a time looking for overlap.
        let trimmed = text[start..end].trim_end();
        let window_start = start + trimmed.len() - trimmed.trim_start().len();
        let window = &text[window_start..start + trimmed.len()];
        let pieces = split_window(window, markdown, sizer, settings)?;
        // The last piece of a window may be cut short by the window's end: it is cut again,
        // whole, at the start of the next window. A window of one piece gives it, so that the
        // text always moves on.
        let keep = if is_last || pieces.len() <= 1 {
            pieces.len()
        } else {
            pieces.len() - 1
        };
        for &(offset, piece) in &pieces[..keep] {
            let chunk_start = window_start + offset;
            chunks.push(Chunk {
                index: chunks.len(),
                text: piece.to_owned(),
                start: chunk_start,
                end: chunk_start + piece.len(),
                heading: headings.as_mut().and_then(|path| path.at(chunk_start)),
            });
        }
        start = match pieces.get(keep) {
            Some(&(offset, _)) => window_start + offset,
            None => end,
        };
    }
    Ok(chunks)
}

/// The chunks of one window, with their offsets in it, none empty or only whitespace.
fn split_window<'w>(
    window: &'w str,
    markdown: bool,
    sizer: &TokenSizer,
    settings: &ChunkSettings,
) -> Result<Vec<(usize, &'w str)>, ChunkError> {
    let window_sizer = WindowSizer::new(window, sizer)?;
    if window.is_ascii() && !window.bytes().any(|byte| byte.is_ascii_whitespace()) {
        return Ok(cut_unbroken(window, &window_sizer, settings.max_tokens));
    }
    let config = ChunkConfig::new(settings.max_tokens)
        .with_sizer(&window_sizer)
        .with_overlap(settings.overlap_tokens)
        .map_err(|_| ChunkError::OverlapTooLarge {
            max_tokens: settings.max_tokens,
            overlap_tokens: settings.overlap_tokens,
        })?;
    let keep = |(_, piece): &(usize, &str)| !piece.trim().is_empty();
    let pieces = if markdown {
        MarkdownSplitter::new(config)
            .chunk_indices(window)
            .filter(keep)
            .collect()
    } else {
        TextSplitter::new(config)
            .chunk_indices(window)
            .filter(keep)
            .collect()
    };
    Ok(pieces)
}

/// Chunks of a window of ASCII without whitespace (base64, a hash, a minified line, a 20 MB run
/// of one letter), each the longest prefix of the rest that fits. The splitter would look for a
/// word or sentence end over the whole rest of the window for every chunk and find none (or only
/// punctuation), which makes such a run the slowest text there is to split.
fn cut_unbroken<'w>(
    window: &'w str,
    sizer: &WindowSizer,
    max_tokens: usize,
) -> Vec<(usize, &'w str)> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < window.len() {
        // Every byte of ASCII is a character boundary; a piece holds at least one.
        let (mut fits, mut too_long) = (start + 1, window.len() + 1);
        while too_long - fits > 1 {
            let end = fits + (too_long - fits) / 2;
            if sizer.size(&window[start..end]) <= max_tokens {
                fits = end;
            } else {
                too_long = end;
            }
        }
        pieces.push((start, &window[start..fits]));
        start = fits;
    }
    pieces
}

/// Where the window starting at `start` ends: `window_bytes` on, or just after the last line
/// break in its second half, so that a window ends with a whole line where it can.
fn window_end(text: &str, start: usize, window_bytes: usize) -> usize {
    let limit = start.saturating_add(window_bytes);
    if limit >= text.len() {
        return text.len();
    }
    let limit = text.floor_char_boundary(limit);
    let half = text.floor_char_boundary(start + window_bytes / 2);
    text[half..limit]
        .rfind('\n')
        .map_or(limit, |at| half + at + 1)
}

/// Token boundaries of one window, tokenized once, to size the splitter's candidate chunks,
/// which are slices of the window.
struct WindowSizer {
    /// Address of the window's first byte, to find where a candidate lies in it.
    base: usize,
    /// The window's length in bytes.
    len: usize,
    /// Start offset of every token, ascending.
    starts: Vec<usize>,
    /// End offset of every token, ascending.
    ends: Vec<usize>,
    /// A candidate counts at least its length over this many tokens.
    bytes_per_token: usize,
}

impl WindowSizer {
    fn new(window: &str, sizer: &TokenSizer) -> Result<Self, ChunkError> {
        let (starts, ends) = match &sizer.tokenizer {
            Some(tokenizer) => {
                let offsets = encode(tokenizer, window)?;
                let mut starts: Vec<usize> = offsets.iter().map(|&(start, _)| start).collect();
                let mut ends: Vec<usize> = offsets.iter().map(|&(_, end)| end).collect();
                // Tokens come in order, but several tokens of one character (byte-level BPE)
                // share its offsets; sorting both makes the counting below exact regardless.
                starts.sort_unstable();
                ends.sort_unstable();
                (starts, ends)
            }
            None => (Vec::new(), Vec::new()),
        };
        Ok(Self {
            base: window.as_ptr().addr(),
            len: window.len(),
            starts,
            ends,
            bytes_per_token: sizer.max_bytes_per_token(),
        })
    }
}

impl ChunkSizer for WindowSizer {
    /// The tokens that overlap the candidate (a token cut by its edge counts, so a chunk never
    /// undercounts), and at least its length over `bytes_per_token`.
    fn size(&self, chunk: &str) -> usize {
        let floor = chunk.len().div_ceil(self.bytes_per_token);
        let start = chunk.as_ptr().addr().wrapping_sub(self.base);
        let end = start.wrapping_add(chunk.len());
        let inside = start <= self.len && start <= end && end <= self.len;
        debug_assert!(inside, "the splitter sizes slices of the window it splits");
        if !inside || chunk.is_empty() {
            return floor;
        }
        let begun = self.starts.partition_point(|&token| token < end);
        let ended = self.ends.partition_point(|&token| token <= start);
        begun.saturating_sub(ended).max(floor)
    }
}

/// The byte offsets of `text`'s tokens, without special tokens.
fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<(usize, usize)>, ChunkError> {
    let encoding = tokenizer
        .encode(text, false)
        .map_err(|err| ChunkError::Tokenizer {
            reason: err.to_string(),
        })?;
    Ok(encoding.get_offsets().to_vec())
}

/// A Markdown text's headings, and the path of those in force at offsets asked in order.
struct HeadingPath {
    /// Every heading: where it starts, its level (1 to 6) and its text, in order.
    headings: Vec<(usize, u8, String)>,
    /// The next heading not yet entered.
    next: usize,
    /// Indexes in `headings` of the headings in force, outermost first.
    open: Vec<usize>,
}

impl HeadingPath {
    fn new(text: &str) -> Self {
        // The extensions the splitter parses with (tables, footnotes, front matter…), so both
        // see the same headings; smart punctuation would change the headings' quotes.
        let options = Options::all().difference(Options::ENABLE_SMART_PUNCTUATION);
        let mut headings = Vec::new();
        let mut current: Option<(usize, u8, String)> = None;
        for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
            match event {
                Event::Start(Tag::Heading { level, .. }) => {
                    current = Some((range.start, level as u8, String::new()));
                }
                Event::End(TagEnd::Heading(_)) => headings.extend(current.take()),
                Event::Text(words) | Event::Code(words) | Event::InlineMath(words) => {
                    if let Some((_, _, title)) = &mut current {
                        title.push_str(&words);
                    }
                }
                Event::SoftBreak | Event::HardBreak => {
                    if let Some((_, _, title)) = &mut current {
                        title.push(' ');
                    }
                }
                _ => {}
            }
        }
        for (_, _, title) in &mut headings {
            *title = tidy_heading(title);
        }
        Self {
            headings,
            next: 0,
            open: Vec::new(),
        }
    }

    /// The heading path at `offset`, which is no smaller than at the previous call.
    fn at(&mut self, offset: usize) -> Option<String> {
        while let Some((start, level, _)) = self.headings.get(self.next) {
            if *start > offset {
                break;
            }
            // A heading closes those of its level and deeper.
            while self
                .open
                .last()
                .is_some_and(|&open| self.headings[open].1 >= *level)
            {
                self.open.pop();
            }
            self.open.push(self.next);
            self.next += 1;
        }
        let titles: Vec<&str> = self
            .open
            .iter()
            .map(|&open| self.headings[open].2.as_str())
            .filter(|title| !title.is_empty())
            .collect();
        (!titles.is_empty()).then(|| titles.join(" > "))
    }
}

/// A heading's text on one line, spaces collapsed, at most [`MAX_HEADING_BYTES`] long.
fn tidy_heading(title: &str) -> String {
    let mut tidy = String::new();
    for word in title.split_whitespace() {
        if !tidy.is_empty() {
            tidy.push(' ');
        }
        tidy.push_str(word);
        if tidy.len() >= MAX_HEADING_BYTES {
            tidy.truncate(tidy.floor_char_boundary(MAX_HEADING_BYTES));
            tidy.push('…');
            break;
        }
    }
    tidy
}
