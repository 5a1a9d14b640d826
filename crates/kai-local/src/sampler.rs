//! Choosing the next token from the model's logits.

use std::collections::{HashMap, VecDeque};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

/// How many of the latest tokens the repetition penalty looks at (llama.cpp's default).
const REPETITION_WINDOW: usize = 64;

/// What the request asked for, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SamplingParams {
    /// 0 picks the likeliest token every time.
    pub(crate) temperature: f32,
    /// Keep only the `top_k` likeliest tokens; 0 keeps all.
    pub(crate) top_k: usize,
    /// Keep the likeliest tokens whose probabilities add up to `top_p`.
    pub(crate) top_p: f32,
    /// Divides the logits of tokens seen lately (multiplies negative ones); 1 is off.
    pub(crate) repetition_penalty: f32,
    /// Subtracted once per earlier occurrence in the answer.
    pub(crate) frequency_penalty: f32,
    /// Subtracted from every token the answer already has.
    pub(crate) presence_penalty: f32,
    /// Seeds the random choice: the same seed gives the same answer.
    pub(crate) seed: u64,
}

/// Picks tokens one after another, remembering what it picked for the penalties.
pub(crate) struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    recent: VecDeque<u32>,
    counts: HashMap<u32, u32>,
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler for an answer that follows `prompt`.
    pub(crate) fn new(params: SamplingParams, prompt: &[u32]) -> Sampler {
        let recent = prompt
            .iter()
            .skip(prompt.len().saturating_sub(REPETITION_WINDOW))
            .copied()
            .collect();
        Sampler {
            rng: StdRng::seed_from_u64(params.seed),
            params,
            recent,
            counts: HashMap::new(),
            candidates: Vec::new(),
        }
    }

    /// The next token, given the logits that follow the sequence so far. `logits` is
    /// changed (penalties applied).
    pub(crate) fn sample(&mut self, logits: &mut [f32]) -> u32 {
        self.penalise(logits);
        if self.params.temperature <= 0.0 {
            return argmax(logits);
        }
        let candidates = &mut self.candidates;
        candidates.clear();
        candidates.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, logit)| logit.is_finite())
                .map(|(id, logit)| (id as u32, *logit)),
        );
        if candidates.is_empty() {
            return argmax(logits);
        }
        // Likelier first; equal logits in id order, so the same input always ranks the same.
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k = self.params.top_k;
        if k > 0 && k < candidates.len() {
            candidates.select_nth_unstable_by(k - 1, order);
            candidates.truncate(k);
        }
        candidates.sort_unstable_by(order);
        let max = candidates[0].1;
        let mut total = 0.0;
        for candidate in candidates.iter_mut() {
            candidate.1 = ((candidate.1 - max) / self.params.temperature).exp();
            total += candidate.1;
        }
        if self.params.top_p < 1.0 {
            let mut mass = 0.0;
            let mut keep = candidates.len();
            for (index, candidate) in candidates.iter().enumerate() {
                mass += candidate.1 / total;
                if mass >= self.params.top_p {
                    keep = index + 1;
                    break;
                }
            }
            candidates.truncate(keep);
            total = candidates.iter().map(|candidate| candidate.1).sum();
        }
        let mut ticket = self.rng.random::<f32>() * total;
        for candidate in candidates.iter() {
            ticket -= candidate.1;
            if ticket <= 0.0 {
                return candidate.0;
            }
        }
        candidates[candidates.len() - 1].0
    }

    /// Records a token of the answer, for the penalties.
    pub(crate) fn accept(&mut self, token: u32) {
        if self.recent.len() == REPETITION_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(token);
        *self.counts.entry(token).or_insert(0) += 1;
    }

    fn penalise(&self, logits: &mut [f32]) {
        let params = &self.params;
        if params.repetition_penalty != 1.0 {
            let mut seen: Vec<u32> = self.recent.iter().copied().collect();
            seen.sort_unstable();
            seen.dedup();
            for token in seen {
                if let Some(logit) = logits.get_mut(token as usize) {
                    *logit = if *logit > 0.0 {
                        *logit / params.repetition_penalty
                    } else {
                        *logit * params.repetition_penalty
                    };
                }
            }
        }
        if params.frequency_penalty != 0.0 || params.presence_penalty != 0.0 {
            for (token, count) in &self.counts {
                if let Some(logit) = logits.get_mut(*token as usize) {
                    *logit -= *count as f32 * params.frequency_penalty + params.presence_penalty;
                }
            }
        }
    }
}

/// The index of the largest logit, the first where several tie.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (index, logit) in logits.iter().enumerate() {
        if *logit > logits[best] {
            best = index;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SamplingParams {
        SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 7,
        }
    }

    #[test]
    fn zero_temperature_is_greedy() {
        let mut sampler = Sampler::new(
            SamplingParams {
                temperature: 0.0,
                ..params()
            },
            &[],
        );
        assert_eq!(sampler.sample(&mut [0.1, 2.0, 2.0, -1.0]), 1);
    }

    #[test]
    fn the_same_seed_samples_the_same_tokens() {
        let logits = [0.5, 0.4, 0.3, 0.2, 0.1, 0.0];
        let run = |seed| {
            let mut sampler = Sampler::new(SamplingParams { seed, ..params() }, &[]);
            (0..32)
                .map(|_| sampler.sample(&mut logits.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn top_k_one_and_tiny_top_p_leave_only_the_likeliest() {
        let logits = [0.0, 3.0, 1.0, 2.9];
        let mut top_k = Sampler::new(
            SamplingParams {
                top_k: 1,
                ..params()
            },
            &[],
        );
        let mut top_p = Sampler::new(
            SamplingParams {
                top_p: 0.01,
                ..params()
            },
            &[],
        );
        for _ in 0..20 {
            assert_eq!(top_k.sample(&mut logits.clone()), 1);
            assert_eq!(top_p.sample(&mut logits.clone()), 1);
        }
    }

    #[test]
    fn penalties_push_down_repeated_tokens() {
        let greedy = SamplingParams {
            temperature: 0.0,
            ..params()
        };
        let mut repetition = Sampler::new(
            SamplingParams {
                repetition_penalty: 2.0,
                ..greedy.clone()
            },
            &[0],
        );
        assert_eq!(repetition.sample(&mut [2.0, 1.5]), 1);

        let mut frequency = Sampler::new(
            SamplingParams {
                frequency_penalty: 0.4,
                ..greedy.clone()
            },
            &[],
        );
        frequency.accept(0);
        assert_eq!(frequency.sample(&mut [2.0, 1.5]), 0);
        frequency.accept(0);
        assert_eq!(frequency.sample(&mut [2.0, 1.5]), 1);

        let mut presence = Sampler::new(
            SamplingParams {
                presence_penalty: 1.0,
                ..greedy
            },
            &[],
        );
        presence.accept(0);
        assert_eq!(presence.sample(&mut [2.0, 1.5]), 1);
    }
}
