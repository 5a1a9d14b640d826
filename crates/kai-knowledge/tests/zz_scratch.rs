#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]
use std::time::Instant;
use kai_knowledge::chunk::{ChunkSettings, TokenSizer, chunk};
use kai_knowledge::extract::Format;

#[test]
fn timing() {
    let est = TokenSizer::estimate();
    let settings2 = ChunkSettings::default();
    for format in [Format::PlainText, Format::Markdown] {
        let text = "abcdefghij".repeat(2_000_000);
        let t = Instant::now();
        let n = chunk(&text, format, &est, &settings2).unwrap().len();
        eprintln!("20MB line default {format:?}: {n} chunks, {:?}", t.elapsed());
    }
}
