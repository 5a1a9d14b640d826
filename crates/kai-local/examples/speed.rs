//! Prompt and generation speed of a GGUF chat model on the CPU, in llama-bench's terms: a
//! 512-token prompt fed to an empty sequence (pp512), and 128 tokens generated one by one
//! (greedy) in another empty sequence (tg128; llama-bench also generates from an empty
//! context), three runs, medians.
//!
//! ```text
//! cargo run --release -p kai-local --example speed -- MODEL.gguf [THREADS] [CHUNK]
//! ```
//!
//! CHUNK is how many prompt tokens one forward pass takes (the runtime's turn size, 32, by
//! default).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::Instant;

use kai_local::ChatModel;

const PROMPT: usize = 512;
const GENERATED: usize = 128;
const RUNS: usize = 3;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: speed MODEL.gguf [THREADS] [CHUNK]");
    let threads: usize = args.next().map_or(2, |n| n.parse().unwrap());
    let chunk: usize = args.next().map_or(32, |n| n.parse().unwrap());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();

    let started = Instant::now();
    let model = ChatModel::load(path.as_ref(), None, 0).unwrap();
    println!(
        "loaded in {:.2} s, weights {:.1} MiB",
        started.elapsed().as_secs_f64(),
        model.weight_bytes() as f64 / (1 << 20) as f64
    );

    let text = "The quick brown fox jumps over the lazy dog. ".repeat(PROMPT);
    let mut prompt = model.tokenize(&text).unwrap();
    prompt.truncate(PROMPT);

    let mut prompt_rates = Vec::new();
    let mut generation_rates = Vec::new();
    for _ in 0..RUNS {
        pool.install(|| {
            let mut sequence = model.new_sequence();
            let started = Instant::now();
            for piece in prompt.chunks(chunk) {
                model.feed(&mut sequence, piece).unwrap();
            }
            prompt_rates.push(PROMPT as f64 / started.elapsed().as_secs_f64());

            let mut sequence = model.new_sequence();
            let mut logits = model.feed(&mut sequence, &prompt[..1]).unwrap();
            let started = Instant::now();
            for _ in 0..GENERATED {
                let next = logits
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(id, _)| id as u32)
                    .unwrap();
                logits = model.feed(&mut sequence, &[next]).unwrap();
            }
            generation_rates.push(GENERATED as f64 / started.elapsed().as_secs_f64());
        });
    }
    println!(
        "threads {threads}, chunk {chunk}: prompt {:.1} t/s (pp{PROMPT}), generation {:.1} t/s \
         (tg{GENERATED}), medians of {RUNS}",
        median(&mut prompt_rates),
        median(&mut generation_rates)
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
