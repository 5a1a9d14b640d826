//! Float loops written to vectorize: sums and dot products in eight lanes (a single running
//! sum would have to stay in order), an `exp` of plain arithmetic, and [`with_simd`], which
//! compiles the loops inlined into it for AVX2 and FMA where the CPU has them; and
//! [`Packed`], a weight matrix laid out once for the float matrix products of BERT.

use rayon::prelude::*;

/// Runs `f` with the CPU's AVX2 and FMA enabled for the code inlined into it, when the CPU has
/// them, so plain loops over floats vectorize 8 wide.
pub(crate) fn with_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return simd.vectorize(f);
    }
    f()
}

/// A dot product in eight lanes, so that it vectorizes without reordering a single sum.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + rest
}

/// In-place softmax.
#[inline(always)]
pub(crate) fn softmax(values: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let (chunks, rest) = values.as_chunks::<8>();
    for chunk in chunks {
        for lane in 0..8 {
            lanes[lane] = if chunk[lane] > lanes[lane] {
                chunk[lane]
            } else {
                lanes[lane]
            };
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    for v in values.iter_mut() {
        *v = exp(*v - max);
    }
    let inverse = 1.0 / sum(values);
    for v in values.iter_mut() {
        *v *= inverse;
    }
}

/// A sum in eight lanes, so that it vectorizes.
#[inline(always)]
pub(crate) fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (chunks, rest) = values.as_chunks::<8>();
    for chunk in chunks {
        for lane in 0..8 {
            lanes[lane] += chunk[lane];
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// `eˣ` to about 2 ulp for x in f32's normal range, 0 below it: `2ᵏ · eʳ` with `k` the nearest
/// integer to `x / ln 2` and `eʳ` by its Taylor polynomial. Plain arithmetic (no libm call), so
/// loops of it vectorize.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN_2_HIGH: f32 = 0.693_359_4;
    const LN_2_LOW: f32 = -2.121_944_4e-4;
    // Adding and taking away 1.5 · 2²³ rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let k = (x * LOG2_E + ROUND) - ROUND;
    let r = x - k * LN_2_HIGH - k * LN_2_LOW;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    f32::from_bits(((k as i32 + 127) as u32) << 23) * p
}

/// Outputs per panel of a [`Packed`] matrix: two AVX registers.
const PANEL: usize = 16;

/// Input rows multiplied with a panel together, each weight loaded once for all of them: six
/// rows of two registers keep twelve sums in registers, enough to keep the FMA units busy.
const ROW_TILE: usize = 6;

/// Input rows per job, a multiple of [`ROW_TILE`]: few enough that they stay in L2 while
/// every panel passes over them.
const ROW_BLOCK: usize = 8 * ROW_TILE;

/// A weight matrix `W` (outputs × inputs) laid out for `x · Wᵀ`, [`PANEL`] outputs at a time,
/// input by input, so that a product reads it straight through. A general matrix product
/// (candle's, gemm) repacks its operand on every call, which for a query of a dozen tokens
/// cost more than the arithmetic.
pub(crate) struct Packed {
    inputs: usize,
    outputs: usize,
    /// Row `k` of panel `p` holds `W[16p + l][k]` in lane `l`, zero past the last output.
    panels: Vec<[f32; PANEL]>,
}

impl Packed {
    /// Packs `weights`, `outputs` rows of `inputs` values.
    pub(crate) fn new(weights: &[f32], outputs: usize, inputs: usize) -> Packed {
        debug_assert_eq!(weights.len(), outputs * inputs);
        let mut panels = vec![[0f32; PANEL]; outputs.div_ceil(PANEL) * inputs];
        for (o, row) in weights.chunks_exact(inputs).enumerate() {
            let panel = &mut panels[o / PANEL * inputs..][..inputs];
            for (k, value) in row.iter().enumerate() {
                panel[k][o % PANEL] = *value;
            }
        }
        Packed {
            inputs,
            outputs,
            panels,
        }
    }

    /// `x · Wᵀ + bias` for `x` of `rows` rows, `rows × outputs`, on the current rayon pool.
    pub(crate) fn multiply(&self, x: &[f32], rows: usize, bias: &[f32]) -> Vec<f32> {
        self.multiply_with(Isa::detect(), x, rows, bias)
    }

    fn multiply_with(&self, isa: Isa, x: &[f32], rows: usize, bias: &[f32]) -> Vec<f32> {
        let inputs = self.inputs;
        debug_assert_eq!(x.len(), rows * inputs);
        if rows == 0 {
            return Vec::new();
        }
        let panels = self.outputs.div_ceil(PANEL);
        let row_blocks = rows.div_ceil(ROW_BLOCK);
        let threads = rayon::current_num_threads();
        // A short query is one row block: its outputs are shared out instead.
        let groups = if threads > 1 {
            (2 * threads).div_ceil(row_blocks).clamp(1, panels)
        } else {
            1
        };
        let per_group = panels.div_ceil(groups);
        let jobs: Vec<(usize, usize)> = (0..row_blocks)
            .flat_map(|block| (0..panels).step_by(per_group).map(move |p| (block, p)))
            .collect();
        let parts: Vec<Vec<f32>> = jobs
            .par_iter()
            .map(|&(block, first_panel)| {
                let rows = &x[block * ROW_BLOCK * inputs..]
                    [..(rows - block * ROW_BLOCK).min(ROW_BLOCK) * inputs];
                let panels = first_panel..(first_panel + per_group).min(panels);
                isa.multiply(&self.panels, inputs, panels, rows)
            })
            .collect();
        let mut out = vec![0f32; rows * self.outputs];
        for (&(block, first_panel), part) in jobs.iter().zip(&parts) {
            let first_row = block * ROW_BLOCK;
            let count = (rows - first_row).min(ROW_BLOCK);
            for (p, panel) in part.chunks_exact(count * PANEL).enumerate() {
                let first = (first_panel + p) * PANEL;
                let width = PANEL.min(self.outputs - first);
                for (r, values) in panel.chunks_exact(PANEL).enumerate() {
                    let out = &mut out[(first_row + r) * self.outputs + first..][..width];
                    for ((o, v), b) in out.iter_mut().zip(values).zip(&bias[first..]) {
                        *o = v + b;
                    }
                }
            }
        }
        out
    }
}

/// The instruction set of a product, found once per product: the float products here and the
/// quantized ones (`quant`).
#[derive(Clone, Copy)]
pub(crate) enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx2(pulp::x86::V3),
    Portable,
}

impl Isa {
    pub(crate) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return Isa::Avx2(simd);
        }
        Isa::Portable
    }

    /// `rows` (each `inputs` long) times `panels` of `all`: panel by panel, each
    /// `rows × PANEL`.
    fn multiply(
        self,
        all: &[[f32; PANEL]],
        inputs: usize,
        panels: std::ops::Range<usize>,
        rows: &[f32],
    ) -> Vec<f32> {
        let count = rows.len() / inputs;
        let mut out = vec![0f32; panels.len() * count * PANEL];
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(simd) => simd.vectorize(
                #[inline(always)]
                || self.panels(all, inputs, panels, rows, &mut out),
            ),
            Isa::Portable => self.panels(all, inputs, panels, rows, &mut out),
        }
        out
    }

    #[inline(always)]
    fn panels(
        self,
        all: &[[f32; PANEL]],
        inputs: usize,
        panels: std::ops::Range<usize>,
        rows: &[f32],
        out: &mut [f32],
    ) {
        let count = rows.len() / inputs;
        for (panel, out) in panels.zip(out.chunks_exact_mut(count * PANEL)) {
            let panel = &all[panel * inputs..][..inputs];
            let mut first = 0;
            while first < count {
                let n = (count - first).min(ROW_TILE);
                let row = |i: usize| &rows[(first + i) * inputs..][..inputs];
                let out = &mut out[first * PANEL..][..n * PANEL];
                match n {
                    6 => self.tile(panel, [row(0), row(1), row(2), row(3), row(4), row(5)], out),
                    5 => self.tile(panel, [row(0), row(1), row(2), row(3), row(4)], out),
                    4 => self.tile(panel, [row(0), row(1), row(2), row(3)], out),
                    3 => self.tile(panel, [row(0), row(1), row(2)], out),
                    2 => self.tile(panel, [row(0), row(1)], out),
                    _ => self.tile(panel, [row(0)], out),
                }
                first += n;
            }
        }
    }

    #[inline(always)]
    fn tile<const N: usize>(self, panel: &[[f32; PANEL]], rows: [&[f32]; N], out: &mut [f32]) {
        let sums = match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(simd) => avx2::tile(simd, panel, rows),
            Isa::Portable => portable_tile(panel, rows),
        };
        for (out, sums) in out.chunks_exact_mut(PANEL).zip(&sums) {
            out.copy_from_slice(sums);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::PANEL;
    use pulp::x86::V3;
    use std::arch::x86_64::__m256;

    /// One panel times `N` rows: each of the panel's rows is loaded once, each input
    /// broadcast once, two fused multiply-adds per input.
    #[inline(always)]
    pub(super) fn tile<const N: usize>(
        simd: V3,
        panel: &[[f32; PANEL]],
        rows: [&[f32]; N],
    ) -> [[f32; PANEL]; N] {
        let mut sums = [[simd.avx._mm256_setzero_ps(); 2]; N];
        // Inputs eight at a time, so that bounds are checked per eight.
        let (panel8, panel_rest) = panel.as_chunks::<8>();
        let rows8 = rows.map(|row| row.as_chunks::<8>().0);
        for (at, weights) in panel8.iter().enumerate() {
            let inputs: [&[f32; 8]; N] = std::array::from_fn(|i| &rows8[i][at]);
            for k in 0..8 {
                let [low, high]: [__m256; 2] = pulp::cast(weights[k]);
                for i in 0..N {
                    let x = simd.avx._mm256_set1_ps(inputs[i][k]);
                    sums[i][0] = simd.fma._mm256_fmadd_ps(low, x, sums[i][0]);
                    sums[i][1] = simd.fma._mm256_fmadd_ps(high, x, sums[i][1]);
                }
            }
        }
        let done = panel8.len() * 8;
        for (k, weights) in panel_rest.iter().enumerate() {
            let [low, high]: [__m256; 2] = pulp::cast(*weights);
            for i in 0..N {
                let x = simd.avx._mm256_set1_ps(rows[i][done + k]);
                sums[i][0] = simd.fma._mm256_fmadd_ps(low, x, sums[i][0]);
                sums[i][1] = simd.fma._mm256_fmadd_ps(high, x, sums[i][1]);
            }
        }
        sums.map(pulp::cast)
    }
}

/// The same tile in plain Rust, for CPUs without AVX2.
fn portable_tile<const N: usize>(panel: &[[f32; PANEL]], rows: [&[f32]; N]) -> [[f32; PANEL]; N] {
    let mut sums = [[0f32; PANEL]; N];
    for (k, weights) in panel.iter().enumerate() {
        for i in 0..N {
            let x = rows[i][k];
            for (sum, w) in sums[i].iter_mut().zip(weights) {
                *sum += w * x;
            }
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_close_to_the_standard_library() {
        for i in -2000..=800 {
            let x = i as f32 * 0.05;
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= want * 4e-7 + 1e-37,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert!(exp(-1000.0) < 1e-37);
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut values = vec![1.0, 3.0, -2.0, 3.0, 0.5];
        softmax(&mut values);
        assert!((values.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(values[1], values[3]);
        assert!(values[1] > values[0] && values[0] > values[4] && values[4] > values[2]);
    }

    #[test]
    fn dot_handles_lengths_off_the_lanes() {
        for len in [0, 1, 7, 8, 9, 64, 67] {
            let a: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..len).map(|i| 1.0 - i as f32 * 0.5).collect();
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - want).abs() <= want.abs() * 1e-6);
        }
    }

    #[test]
    fn packed_products_match_the_plain_sum() {
        // Sizes off every tile: rows past a block and a tile, inputs off the eight, outputs
        // off the panel.
        for (rows, inputs, outputs) in [(1, 8, 16), (13, 384, 40), (61, 21, 35), (7, 3, 1)] {
            let w: Vec<f32> = (0..outputs * inputs)
                .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let x: Vec<f32> = (0..rows * inputs)
                .map(|i| ((i * 104_729) % 89) as f32 / 44.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..outputs).map(|o| o as f32 * 0.25).collect();
            let got = Packed::new(&w, outputs, inputs).multiply(&x, rows, &bias);
            for r in 0..rows {
                for o in 0..outputs {
                    let want = bias[o]
                        + (0..inputs)
                            .map(|k| x[r * inputs + k] * w[o * inputs + k])
                            .sum::<f32>();
                    let value = got[r * outputs + o];
                    assert!(
                        (value - want).abs() < 1e-3,
                        "{rows}x{inputs}x{outputs} at {r},{o}"
                    );
                }
            }
            let portable =
                Packed::new(&w, outputs, inputs).multiply_with(Isa::Portable, &x, rows, &bias);
            assert!(portable.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-3));
        }
    }
}
