//! Merging the keyword and vector rankings of hybrid search into one.
//!
//! Two methods, because neither wins everywhere (Bruch et al., TOIS 2023, found a weighted
//! score combination ahead of reciprocal rank fusion; RRF needs no score calibration at all):
//! which one kai uses is a setting, and bench/knowledge measures both.

use std::collections::HashMap;

use kai_config::Fusion;

/// A hit in one ranking: a chunk id and that ranking's score for it.
pub type Ranked = (i64, f32);

/// A chunk's place in the merged ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    /// The chunk.
    pub id: i64,
    /// Its merged score (higher is better; comparable only within one search).
    pub score: f32,
    /// Its rank (from 1) in the keyword ranking, if it was there.
    pub keyword_rank: Option<usize>,
    /// Its rank (from 1) in the vector ranking, if it was there.
    pub vector_rank: Option<usize>,
}

/// How to merge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionMethod {
    /// RRF or a weighted score combination.
    pub method: Fusion,
    /// RRF's constant.
    pub rrf_k: u32,
    /// The keyword ranking's weight, from 0 to 1; the vector ranking gets the rest.
    pub keyword_weight: f32,
}

/// Scores scaled to 0..1 over the ranking (min-max); all equal scale to 1.
fn normalised(ranking: &[Ranked]) -> Vec<f32> {
    let (min, max) = ranking
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, s)| {
            (lo.min(*s), hi.max(*s))
        });
    ranking
        .iter()
        .map(|(_, s)| {
            if max > min {
                (s - min) / (max - min)
            } else {
                1.0
            }
        })
        .collect()
}

/// Merges two rankings (each best first) into one, best first; ties go to the better keyword
/// rank, then the lower id, so the order is stable.
#[must_use]
pub fn fuse(keyword: &[Ranked], vector: &[Ranked], how: FusionMethod) -> Vec<Fused> {
    let keyword_weight = how.keyword_weight.clamp(0.0, 1.0);
    let vector_weight = 1.0 - keyword_weight;
    let mut merged: HashMap<i64, Fused> = HashMap::new();
    let mut add = |ranking: &[Ranked], weight: f32, is_keyword: bool| {
        let scores = match how.method {
            Fusion::Rrf => ranking
                .iter()
                .enumerate()
                .map(|(at, _)| 1.0 / (how.rrf_k as f32 + at as f32 + 1.0))
                .collect(),
            Fusion::Weighted => normalised(ranking),
        };
        for (at, ((id, _), score)) in ranking.iter().zip(scores).enumerate() {
            let entry = merged.entry(*id).or_insert(Fused {
                id: *id,
                score: 0.0,
                keyword_rank: None,
                vector_rank: None,
            });
            entry.score += weight * score;
            if is_keyword {
                entry.keyword_rank = Some(at + 1);
            } else {
                entry.vector_rank = Some(at + 1);
            }
        }
    };
    add(keyword, keyword_weight, true);
    add(vector, vector_weight, false);
    let mut fused: Vec<Fused> = merged.into_values().collect();
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(
                a.keyword_rank
                    .unwrap_or(usize::MAX)
                    .cmp(&b.keyword_rank.unwrap_or(usize::MAX)),
            )
            .then(a.id.cmp(&b.id))
    });
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(fused: &[Fused]) -> Vec<i64> {
        fused.iter().map(|f| f.id).collect()
    }

    const RRF: FusionMethod = FusionMethod {
        method: Fusion::Rrf,
        rrf_k: 60,
        keyword_weight: 0.5,
    };

    #[test]
    fn rrf_rewards_agreement_between_rankings() {
        let keyword = [(1, 9.0), (2, 8.0), (3, 7.0)];
        let vector = [(4, 0.9), (2, 0.8), (5, 0.7)];
        let fused = fuse(&keyword, &vector, RRF);
        // Only 2 is in both: second in each beats first in one.
        assert_eq!(ids(&fused)[0], 2);
        assert_eq!(fused[0].keyword_rank, Some(2));
        assert_eq!(fused[0].vector_rank, Some(2));
        // 1 and 4 are tied (first in one ranking each): the keyword rank breaks the tie.
        assert_eq!(ids(&fused)[1..3], [1, 4]);
        assert_eq!(fused.len(), 5);
    }

    #[test]
    fn weights_can_silence_a_ranking() {
        let keyword = [(1, 9.0), (2, 8.0)];
        let vector = [(2, 0.9), (1, 0.1)];
        let only_vectors = FusionMethod {
            keyword_weight: 0.0,
            ..RRF
        };
        assert_eq!(ids(&fuse(&keyword, &vector, only_vectors)), [2, 1]);
        let only_keywords = FusionMethod {
            method: Fusion::Weighted,
            keyword_weight: 1.0,
            ..RRF
        };
        assert_eq!(ids(&fuse(&keyword, &vector, only_keywords)), [1, 2]);
    }

    #[test]
    fn weighted_fusion_uses_score_margins() {
        // The keyword ranking barely prefers 1; the vector ranking strongly prefers 2.
        let keyword = [(1, 10.0), (2, 9.9), (3, 0.0)];
        let vector = [(2, 0.9), (3, 0.2), (1, 0.1)];
        let weighted = FusionMethod {
            method: Fusion::Weighted,
            ..RRF
        };
        assert_eq!(ids(&fuse(&keyword, &vector, weighted))[0], 2);
    }

    #[test]
    fn empty_rankings_merge_to_nothing_or_to_the_other() {
        assert!(fuse(&[], &[], RRF).is_empty());
        assert_eq!(ids(&fuse(&[], &[(5, 0.3)], RRF)), [5]);
    }
}
