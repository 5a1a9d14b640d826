//! Embedding speed of a BERT sentence-transformer on the CPU, in sentence-transformers' terms:
//! the sentences on stdin (one per line) embedded as one batch, ROUNDS times after a warm-up.
//!
//! ```text
//! cargo run --release -p kai-local --example embed_speed -- MODEL_DIR [THREADS] [ROUNDS] < sentences.txt
//! ```
//!
//! Prints one JSON line per round: `{"round": i, "sentences": n, "seconds": s}`, the format of
//! `bench/local/st_embed.py`, the peer's side.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::BufRead;
use std::time::Instant;

use kai_local::EmbeddingModel;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: embed_speed MODEL_DIR [THREADS] [ROUNDS] < sentences.txt");
    let threads: usize = args.next().map_or(2, |n| n.parse().unwrap());
    let rounds: usize = args.next().map_or(3, |n| n.parse().unwrap());
    let sentences: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map(Result::unwrap)
        .filter(|line| !line.is_empty())
        .collect();
    assert!(!sentences.is_empty(), "no sentences on stdin");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let model = EmbeddingModel::load(dir.as_ref()).unwrap();
    pool.install(|| model.embed(&sentences[..sentences.len().min(32)]).unwrap());
    for round in 0..rounds {
        let started = Instant::now();
        let embeddings = pool.install(|| model.embed(&sentences).unwrap());
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(embeddings.vectors.len(), sentences.len());
        println!(
            "{{\"round\": {round}, \"sentences\": {}, \"seconds\": {seconds}}}",
            sentences.len()
        );
    }
}
