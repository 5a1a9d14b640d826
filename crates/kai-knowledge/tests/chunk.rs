//! Chunking: sizes within the limit in a real tokenizer's tokens, heading paths, overlap, and
//! bounded work on pathological text.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::time::Instant;

use kai_knowledge::chunk::{Chunk, ChunkError, ChunkSettings, TokenSizer, chunk};
use kai_knowledge::extract::{self, Format};

/// Words the test prose is made of; all are whole words in the test tokenizer's vocabulary.
const WORDS: &[&str] = &[
    "the",
    "server",
    "keeps",
    "notes",
    "and",
    "files",
    "for",
    "a",
    "person",
    "who",
    "writes",
    "code",
    "every",
    "day",
    "index",
    "search",
    "finds",
    "what",
    "they",
    "meant",
    "model",
    "embedding",
    "vector",
    "keyword",
    "chunk",
    "text",
    "is",
    "cut",
    "into",
    "pieces",
    "small",
    "enough",
    "to",
    "fit",
    "window",
    "of",
    "tokens",
    "with",
    "some",
    "overlap",
    "between",
    "neighbours",
    "install",
    "from",
    "source",
    "build",
    "run",
    "test",
    "release",
    "fast",
];

/// A tokenizer like all-MiniLM-L6-v2's (BERT's normalizer and pre-tokenizer, a WordPiece model)
/// with a tiny vocabulary: the test words whole, and every letter and digit alone and as a
/// `##` continuation, so that other words become several tokens, as in the real one. It carries
/// a truncation to 128 tokens, as the real file does, which the sizer must clear.
fn test_tokenizer_json() -> String {
    let mut vocab = serde_json::Map::new();
    let mut add = |token: String| {
        let id = vocab.len();
        vocab.entry(token).or_insert_with(|| id.into());
    };
    add("[UNK]".to_owned());
    for word in WORDS {
        add((*word).to_owned());
    }
    for c in ('a'..='z').chain('0'..='9') {
        add(c.to_string());
        add(format!("##{c}"));
    }
    for c in ".,;:!?#-*()[]`'\"/".chars() {
        add(c.to_string());
    }
    serde_json::json!({
        "version": "1.0",
        "truncation": {
            "direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0
        },
        "padding": null,
        "added_tokens": [],
        "normalizer": {
            "type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true
        },
        "pre_tokenizer": { "type": "BertPreTokenizer" },
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab
        }
    })
    .to_string()
}

fn test_sizer() -> TokenSizer {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, test_tokenizer_json()).unwrap();
    TokenSizer::from_file(&path).unwrap()
}

/// Deterministic prose: `sentences` sentences of 6 to 17 test words.
fn prose(seed: u64, sentences: usize) -> String {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap() % bound
    };
    let mut text = String::new();
    for _ in 0..sentences {
        let length = 6 + next(12);
        for i in 0..length {
            let word = WORDS[next(WORDS.len())];
            if i == 0 {
                let mut letters = word.chars();
                let first = letters.next().unwrap().to_ascii_uppercase();
                text.push(first);
                text.push_str(letters.as_str());
            } else {
                text.push(' ');
                text.push_str(word);
            }
        }
        text.push_str(". ");
    }
    text.pop();
    text
}

/// A Markdown guide with nested sections, each `paragraphs` paragraphs of `sentences` sentences.
fn guide(paragraphs: usize, sentences: usize) -> String {
    let mut doc = String::from("# Guide\n\n");
    let sections = [
        ("## Install", "install-marker"),
        ("### From source", "source-marker"),
        ("### With a package", "package-marker"),
        ("## Usage", "usage-marker"),
    ];
    for (n, (heading, marker)) in sections.iter().enumerate() {
        doc.push_str(heading);
        doc.push_str("\n\n");
        for p in 0..paragraphs {
            let seed = u64::try_from(n * 100 + p).unwrap();
            doc.push_str(&prose(seed, sentences));
            if p == 0 {
                doc.push(' ');
                doc.push_str(marker);
            }
            doc.push_str("\n\n");
        }
    }
    doc
}

/// What every chunking must give: chunks in order, numbered, each the slice of the text its
/// offsets say, not blank, within `max_bytes`, and together covering every non-blank byte.
fn assert_well_formed(text: &str, chunks: &[Chunk], max_bytes: usize) {
    let mut covered = 0;
    for (i, piece) in chunks.iter().enumerate() {
        assert_eq!(piece.index, i);
        assert_eq!(piece.text, text[piece.start..piece.end], "chunk {i}");
        assert!(!piece.text.trim().is_empty(), "chunk {i} is blank");
        assert!(
            piece.text.len() <= max_bytes,
            "chunk {i}: {} bytes",
            piece.text.len()
        );
        if i > 0 {
            assert!(
                piece.start > chunks[i - 1].start,
                "chunk {i} starts before its previous"
            );
            assert!(
                piece.end > chunks[i - 1].end,
                "chunk {i} ends before its previous"
            );
        }
        assert!(
            piece.start <= covered || text[covered..piece.start].trim().is_empty(),
            "text between {covered} and {} is in no chunk",
            piece.start
        );
        covered = covered.max(piece.end);
    }
    assert!(
        text[covered..].trim().is_empty(),
        "the text after {covered} is in no chunk"
    );
}

#[test]
fn markdown_chunks_fit_the_tokenizer_and_carry_heading_paths() {
    let sizer = test_sizer();
    let settings = ChunkSettings::new(64, 8).unwrap();
    let doc = guide(4, 5);
    let chunks = chunk(&doc, Format::Markdown, &sizer, &settings).unwrap();
    assert!(chunks.len() > 10, "{} chunks", chunks.len());
    assert_well_formed(&doc, &chunks, usize::MAX);
    for piece in &chunks {
        let tokens = sizer.count(&piece.text).unwrap();
        assert!(tokens <= 64, "chunk {} has {tokens} tokens", piece.index);
    }
    let heading_of = |marker: &str| {
        let piece = chunks.iter().find(|c| c.text.contains(marker)).unwrap();
        piece.heading.clone()
    };
    assert_eq!(
        heading_of("install-marker").as_deref(),
        Some("Guide > Install")
    );
    assert_eq!(
        heading_of("source-marker").as_deref(),
        Some("Guide > Install > From source")
    );
    assert_eq!(
        heading_of("package-marker").as_deref(),
        Some("Guide > Install > With a package")
    );
    assert_eq!(heading_of("usage-marker").as_deref(), Some("Guide > Usage"));
    // A heading starts a chunk rather than ending one; where a section does not fit in one
    // chunk with its heading, the heading is a chunk of its own.
    for piece in &chunks {
        let last_line = piece.text.lines().last().unwrap();
        if last_line.starts_with('#') {
            assert!(
                piece
                    .text
                    .lines()
                    .all(|line| line.is_empty() || line.starts_with('#')),
                "chunk {} ends with a heading: {:?}",
                piece.index,
                piece.text
            );
        }
    }
}

#[test]
fn the_sizer_ignores_the_tokenizers_truncation() {
    let sizer = test_sizer();
    let text = prose(1, 40);
    // The file truncates to 128 tokens; the sizer counts them all.
    assert!(sizer.count(&text).unwrap() > 300);
}

#[test]
fn neighbouring_chunks_overlap() {
    let sizer = test_sizer();
    // Long enough for several windows. The overlap is whole sentences, so it is made larger
    // than the longest sentence (18 tokens).
    let text = prose(7, 1_000);
    let settings = ChunkSettings::new(64, 24).unwrap();
    let chunks = chunk(&text, Format::PlainText, &sizer, &settings).unwrap();
    assert!(chunks.len() > 40, "{} chunks", chunks.len());
    assert_well_formed(&text, &chunks, usize::MAX);
    for pair in chunks.windows(2) {
        assert!(
            pair[1].start < pair[0].end,
            "chunks {} and {} share no text",
            pair[0].index,
            pair[1].index
        );
        let shared = &text[pair[1].start..pair[0].end];
        assert!(sizer.count(shared).unwrap() <= 24, "{shared:?}");
    }

    let settings = ChunkSettings::new(64, 0).unwrap();
    let chunks = chunk(&text, Format::PlainText, &sizer, &settings).unwrap();
    assert_well_formed(&text, &chunks, usize::MAX);
    for pair in chunks.windows(2) {
        assert!(pair[1].start >= pair[0].end);
    }
}

#[test]
fn plain_text_is_cut_at_paragraphs_first() {
    let sizer = test_sizer();
    let paragraphs: Vec<String> = (0..6).map(|seed| prose(seed, 2)).collect();
    let text = paragraphs.join("\n\n");
    let settings = ChunkSettings::new(64, 0).unwrap();
    let chunks = chunk(&text, Format::PlainText, &sizer, &settings).unwrap();
    assert_well_formed(&text, &chunks, usize::MAX);
    for piece in &chunks {
        assert!(sizer.count(&piece.text).unwrap() <= 64);
        assert_eq!(piece.heading, None);
        // No paragraph shorter than a chunk is cut in two.
        for paragraph in &paragraphs {
            if sizer.count(paragraph).unwrap() <= 64 && piece.text.contains(&paragraph[..20]) {
                assert!(piece.text.contains(paragraph.as_str()));
            }
        }
    }
}

#[test]
fn the_estimate_counts_four_bytes_a_token() {
    let sizer = TokenSizer::estimate();
    assert_eq!(sizer.count("").unwrap(), 0);
    assert_eq!(sizer.count("abcd").unwrap(), 1);
    assert_eq!(sizer.count("abcde").unwrap(), 2);
    let text = prose(3, 500);
    let settings = ChunkSettings::default();
    let chunks = chunk(&text, Format::PlainText, &sizer, &settings).unwrap();
    assert_well_formed(&text, &chunks, 256 * 4);
    assert!(chunks.len() > text.len() / 1024, "{} chunks", chunks.len());
}

#[test]
fn a_long_document_is_chunked_the_same_across_windows() {
    // Long enough for many windows: chunks still overlap, fit, and cover the text.
    let sizer = test_sizer();
    let doc = guide(40, 20);
    let settings = ChunkSettings::new(64, 24).unwrap();
    let chunks = chunk(&doc, Format::Markdown, &sizer, &settings).unwrap();
    assert_well_formed(&doc, &chunks, usize::MAX);
    let mut sharing = 0;
    for pair in chunks.windows(2) {
        if pair[1].start < pair[0].end {
            sharing += 1;
        }
    }
    // Neighbours across a paragraph break need not share text; most do.
    assert!(
        sharing * 4 > chunks.len() * 3,
        "{sharing} of {} share",
        chunks.len()
    );
    for piece in &chunks {
        assert!(sizer.count(&piece.text).unwrap() <= 64);
        assert!(piece.heading.as_deref().unwrap().starts_with("Guide"));
    }
}

#[test]
fn a_twenty_megabyte_line_without_spaces_finishes() {
    let line = "abcdefghij".repeat(2_000_000);
    let settings = ChunkSettings::default();
    // The tokenizer's share is most of the time in a debug build (about 20 s here), so it runs
    // on one format.
    let runs = [
        ("estimate", TokenSizer::estimate(), Format::PlainText),
        ("estimate", TokenSizer::estimate(), Format::Markdown),
        ("tokenizer", test_sizer(), Format::PlainText),
    ];
    for (name, sizer, format) in runs {
        let started = Instant::now();
        let chunks = chunk(&line, format, &sizer, &settings).unwrap();
        eprintln!(
            "20 MB line, {name}, {format:?}: {} chunks in {:?}",
            chunks.len(),
            started.elapsed()
        );
        // To the tokenizer a long unknown "word" is one token; the byte bound keeps chunks
        // small anyway.
        assert_well_formed(&line, &chunks, 256 * 16);
    }
}

#[test]
fn a_large_markdown_text_is_chunked_quickly() {
    let sizer = test_sizer();
    let doc = guide(2_000, 5);
    let settings = ChunkSettings::default();
    let started = Instant::now();
    let chunks = chunk(&doc, Format::Markdown, &sizer, &settings).unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "{:.1} MB of Markdown: {} chunks in {elapsed:?}, {:.0} chunks/s",
        doc.len() as f64 / 1e6,
        chunks.len(),
        chunks.len() as f64 / elapsed.as_secs_f64()
    );
    assert_well_formed(&doc, &chunks, usize::MAX);
}

#[test]
fn odd_texts_are_chunked_or_skipped() {
    let sizer = test_sizer();
    let settings = ChunkSettings::new(32, 4).unwrap();

    let punctuation = "!?.,;:-*#()[]".repeat(2_000);
    let chunks = chunk(&punctuation, Format::PlainText, &sizer, &settings).unwrap();
    assert!(!chunks.is_empty());
    assert_well_formed(&punctuation, &chunks, 32 * 16);
    for piece in &chunks {
        assert!(sizer.count(&piece.text).unwrap() <= 32);
    }
    let chunks = chunk(&punctuation, Format::Markdown, &sizer, &settings).unwrap();
    assert_well_formed(&punctuation, &chunks, 32 * 16);

    for blank in ["", " ", "\n\n\t  \r\n", &" \n".repeat(100_000)] {
        for format in [Format::PlainText, Format::Markdown] {
            assert!(chunk(blank, format, &sizer, &settings).unwrap().is_empty());
        }
    }

    // Chinese has no spaces; BERT makes a token of each character.
    let cjk = "知识库把文本切成小块，每块都能放进模型的窗口。".repeat(500);
    let chunks = chunk(&cjk, Format::PlainText, &sizer, &settings).unwrap();
    assert!(chunks.len() > 100, "{} chunks", chunks.len());
    assert_well_formed(&cjk, &chunks, 32 * 16);
    for piece in &chunks {
        assert!(sizer.count(&piece.text).unwrap() <= 32);
    }
    let chunks = chunk(&cjk, Format::PlainText, &TokenSizer::estimate(), &settings).unwrap();
    assert_well_formed(&cjk, &chunks, 32 * 4);

    let binary = chunk("some text", Format::Binary, &sizer, &settings).unwrap();
    assert!(binary.is_empty());
}

#[test]
fn html_keeps_its_headings_for_chunks() {
    let page = format!(
        "<html><head><title>t</title></head><body><h1>Guide</h1><h2>Install</h2><p>{}</p>\
         <h2>Usage</h2><p>{} usage-marker</p></body></html>",
        prose(1, 30),
        prose(2, 30)
    );
    let text = extract::extract(page.as_bytes(), Format::Html).unwrap();
    let chunks = chunk(
        &text,
        Format::Html,
        &test_sizer(),
        &ChunkSettings::default(),
    )
    .unwrap();
    assert_well_formed(&text, &chunks, usize::MAX);
    let usage = chunks
        .iter()
        .find(|c| c.text.contains("usage-marker"))
        .unwrap();
    assert_eq!(usage.heading.as_deref(), Some("Guide > Usage"));
}

#[test]
fn bad_settings_are_refused() {
    let err = ChunkSettings::new(32, 32).unwrap_err();
    assert!(matches!(err, ChunkError::OverlapTooLarge { .. }));
    assert_eq!(
        err.to_string(),
        "the chunk overlap (32 tokens) must be smaller than the chunk size (32 tokens)"
    );
    assert!(matches!(
        ChunkSettings::new(0, 0),
        Err(ChunkError::ZeroMaxTokens)
    ));
    let settings = ChunkSettings::default();
    assert_eq!(settings.max_tokens(), ChunkSettings::DEFAULT_MAX_TOKENS);
    assert_eq!(
        settings.overlap_tokens(),
        ChunkSettings::DEFAULT_OVERLAP_TOKENS
    );
    assert!(ChunkSettings::new(1, 0).is_ok());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, "{ not a tokenizer").unwrap();
    let err = TokenSizer::from_file(&path).unwrap_err();
    assert!(matches!(err, ChunkError::LoadTokenizer { .. }), "{err}");
}

/// With `KAI_TEST_MODELS_DIR` naming a model store that holds all-MiniLM-L6-v2 (`minilm`), its
/// own tokenizer sizes the chunks; otherwise the test says so and passes.
#[test]
fn minilm_tokenizer_sizes_chunks_when_available() {
    let Some(dir) = std::env::var_os("KAI_TEST_MODELS_DIR") else {
        eprintln!("skipped: set KAI_TEST_MODELS_DIR to a model store holding minilm");
        return;
    };
    let path = std::path::Path::new(&dir)
        .join("minilm")
        .join("tokenizer.json");
    if !path.exists() {
        eprintln!("skipped: {} does not exist", path.display());
        return;
    }
    let sizer = TokenSizer::from_file(&path).unwrap();
    let doc = guide(200, 5);
    let settings = ChunkSettings::default();
    let started = Instant::now();
    let chunks = chunk(&doc, Format::Markdown, &sizer, &settings).unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "minilm: {:.1} MB of Markdown, {} chunks in {elapsed:?}, {:.0} chunks/s",
        doc.len() as f64 / 1e6,
        chunks.len(),
        chunks.len() as f64 / elapsed.as_secs_f64()
    );
    assert_well_formed(&doc, &chunks, usize::MAX);
    for piece in &chunks {
        assert!(sizer.count(&piece.text).unwrap() <= 256);
    }
}
