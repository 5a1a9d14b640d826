//! Quantized weight matrices and their products with activations, on kai's rayon pool.
//!
//! Weights are kept in one of two block formats of 32 values with f32 scales:
//!
//! - [`Q4x8`]: 4-bit values with a scale and a minimum (GGUF's Q4_1; Q4_0 converts to it
//!   exactly), eight rows interleaved. The default chat model's layers are Q4_1, and these
//!   kernels keep them at 4 bits: generation reads every weight once per token, so bytes are
//!   time. Interleaving puts eight rows' products in the eight lanes of one register, so a
//!   block's scales, conversion and accumulation are one instruction for eight rows instead
//!   of one each (llama.cpp's repacked Q4_0 kernels do the same).
//! - [`Q8Block`]: 8-bit values with a scale (GGUF's Q8_0). Every other type is dequantized at
//!   load and re-quantized to it, which represents them almost exactly.
//!
//! GGUF stores scales as f16; they are widened to f32 at load because the SIMD level used here
//! (pulp's x86-64-v3) has no F16C, and converting two scales per block in software would cost
//! more than the 4 bytes a block saves.
//!
//! Activations are quantized to [`ActBlock`]s (8 bits, llama.cpp's Q8_1) before each product,
//! so the inner loop is integer multiply-adds: `_mm256_maddubs_epi16` on AVX2, through pulp's
//! safe wrappers (the workspace forbids `unsafe`), chosen at run time; plain Rust elsewhere.
//! With several inputs (a prompt chunk) each weight block is unpacked once and multiplied with
//! up to [`INPUT_TILE`] inputs while it is in registers.

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;
use rayon::prelude::*;

use crate::vector::{Isa, with_simd};

/// Values per block, in every format here.
pub(crate) const BLOCK: usize = 32;

/// Inputs multiplied together with one unpacked weight block.
const INPUT_TILE: usize = 4;

/// Rows of 4-bit weights interleaved in groups of eight.
const GROUP: usize = 8;

/// A block of 32 weights `scale * q + min` (`q` in 0..16) from each of eight rows. Four-byte
/// lane `r` of `nibbles[k]` holds bytes `4k..4k + 4` of row `r`'s GGUF block, whose low halves
/// are values `4k..4k + 4` and high halves values `16 + 4k..16 + 4k + 4`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Q4x8 {
    scales: [f32; GROUP],
    mins: [f32; GROUP],
    nibbles: [[u8; 32]; 4],
}

impl Q4x8 {
    const ZERO: Q4x8 = Q4x8 {
        scales: [0.0; GROUP],
        mins: [0.0; GROUP],
        nibbles: [[0; 32]; 4],
    };

    /// Byte `i` (0..16) of row `lane`'s block: values `i` (low half) and `i + 16` (high).
    fn byte(&self, lane: usize, i: usize) -> u8 {
        self.nibbles[i / 4][lane * 4 + i % 4]
    }
}

/// 32 weights `scale * q` with `q` in -127..=127.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Q8Block {
    scale: f32,
    values: [i8; BLOCK],
}

/// 32 activations `scale * q`, with `scale * Σq` kept for the Q4 product's minimum term.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActBlock {
    scale: f32,
    scaled_sum: f32,
    values: [i8; BLOCK],
}

impl ActBlock {
    const ZERO: ActBlock = ActBlock {
        scale: 0.0,
        scaled_sum: 0.0,
        values: [0; BLOCK],
    };
}

/// Rows of a batch of activations, quantized for [`QMatrix::multiply`].
pub(crate) struct Activations {
    cols: usize,
    count: usize,
    blocks: Vec<ActBlock>,
}

impl Activations {
    /// Quantizes `values`, `count` rows of `cols` (a multiple of [`BLOCK`]) each.
    pub(crate) fn quantize(values: &[f32], cols: usize) -> Activations {
        debug_assert!(cols.is_multiple_of(BLOCK) && values.len().is_multiple_of(cols));
        let mut blocks = vec![ActBlock::ZERO; values.len() / BLOCK];
        with_simd(
            #[inline(always)]
            || {
                for (block, chunk) in blocks.iter_mut().zip(values.chunks_exact(BLOCK)) {
                    *block = quantize_activations(chunk);
                }
            },
        );
        Activations {
            cols,
            count: values.len() / cols,
            blocks,
        }
    }

    #[inline(always)]
    fn row(&self, index: usize) -> &[ActBlock] {
        let width = self.cols / BLOCK;
        &self.blocks[index * width..(index + 1) * width]
    }
}

#[inline(always)]
fn quantize_activations(values: &[f32]) -> ActBlock {
    let largest = values.iter().fold(0f32, |max, v| max.max(v.abs()));
    let scale = largest / 127.0;
    let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    let mut quantized = [0i8; BLOCK];
    let mut sum = 0i32;
    for (q, v) in quantized.iter_mut().zip(values) {
        *q = (v * inverse).round() as i8;
        sum += i32::from(*q);
    }
    ActBlock {
        scale,
        scaled_sum: scale * sum as f32,
        values: quantized,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Blocks {
    /// Groups of eight rows, `cols / 32` blocks per group; the last group is padded with
    /// zero rows.
    Q4(Vec<Q4x8>),
    Q8(Vec<Q8Block>),
}

/// A weight matrix `(rows, cols)` in blocks along its rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QMatrix {
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

impl QMatrix {
    /// Takes a GGUF tensor of shape `(rows, cols)`: Q4_0 and Q4_1 stay 4-bit, anything else
    /// becomes Q8 blocks.
    pub(crate) fn from_qtensor(tensor: &QTensor) -> candle_core::Result<QMatrix> {
        let (rows, cols) = tensor.shape().dims2()?;
        if !cols.is_multiple_of(BLOCK) {
            candle_core::bail!("matrix rows must be a multiple of {BLOCK} wide, not {cols}");
        }
        let expected = rows * cols / BLOCK;
        let raw = || tensor.data();
        // (scale, min, the block's 16 bytes) of each GGUF block, rows one after another.
        let parsed: Vec<(f32, f32, [u8; 16])> = match tensor.dtype() {
            GgmlDType::Q4_1 => raw()?
                .chunks_exact(20)
                .map(|b| (f16_at(b, 0), f16_at(b, 2), nibbles_at(b, 4)))
                .collect(),
            // `d * (q - 8)` is `d * q + (-8 d)`: Q4_0 is Q4_1 with a fixed minimum.
            GgmlDType::Q4_0 => raw()?
                .chunks_exact(18)
                .map(|b| {
                    let scale = f16_at(b, 0);
                    (scale, -8.0 * scale, nibbles_at(b, 2))
                })
                .collect(),
            // Read in place: dequantizing a large table (the default model's 49,152-token
            // embeddings) to f32 first would briefly take four times its size.
            GgmlDType::Q8_0 => {
                let blocks: Vec<Q8Block> = raw()?
                    .chunks_exact(34)
                    .map(|b| {
                        let mut values = [0i8; BLOCK];
                        for (v, byte) in values.iter_mut().zip(&b[2..34]) {
                            *v = i8::from_le_bytes([*byte]);
                        }
                        Q8Block {
                            scale: f16_at(b, 0),
                            values,
                        }
                    })
                    .collect();
                if blocks.len() != expected {
                    candle_core::bail!(
                        "{} blocks where a {rows}×{cols} matrix has {expected}",
                        blocks.len()
                    );
                }
                return Ok(QMatrix {
                    rows,
                    cols,
                    blocks: Blocks::Q8(blocks),
                });
            }
            _ => {
                let values = tensor
                    .dequantize(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                return Ok(QMatrix::quantize_q8(rows, cols, &values));
            }
        };
        if parsed.len() != expected {
            candle_core::bail!(
                "{} blocks where a {rows}×{cols} matrix has {expected}",
                parsed.len()
            );
        }
        let width = cols / BLOCK;
        let mut groups = vec![Q4x8::ZERO; rows.div_ceil(GROUP) * width];
        for (row, blocks) in parsed.chunks_exact(width).enumerate() {
            let lane = row % GROUP;
            let group = &mut groups[row / GROUP * width..][..width];
            for (interleaved, (scale, min, bytes)) in group.iter_mut().zip(blocks) {
                interleaved.scales[lane] = *scale;
                interleaved.mins[lane] = *min;
                for (k, quarter) in bytes.chunks_exact(4).enumerate() {
                    interleaved.nibbles[k][lane * 4..lane * 4 + 4].copy_from_slice(quarter);
                }
            }
        }
        let blocks = Blocks::Q4(groups);
        Ok(QMatrix { rows, cols, blocks })
    }

    /// Quantizes f32 weights, `rows` rows of `cols` (a multiple of [`BLOCK`]), to Q8 blocks.
    pub(crate) fn quantize_q8(rows: usize, cols: usize, values: &[f32]) -> QMatrix {
        debug_assert_eq!(values.len(), rows * cols);
        let blocks = values
            .chunks_exact(BLOCK)
            .map(|chunk| {
                let block = quantize_activations(chunk);
                Q8Block {
                    scale: block.scale,
                    values: block.values,
                }
            })
            .collect();
        QMatrix {
            rows,
            cols,
            blocks: Blocks::Q8(blocks),
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the weights take in memory.
    pub(crate) fn bytes(&self) -> usize {
        match &self.blocks {
            Blocks::Q4(blocks) => std::mem::size_of_val(blocks.as_slice()),
            Blocks::Q8(blocks) => std::mem::size_of_val(blocks.as_slice()),
        }
    }

    /// Writes row `index`, dequantized, to `out` (`cols` long): an embedding lookup.
    pub(crate) fn dequantize_row(&self, index: usize, out: &mut [f32]) {
        let width = self.cols / BLOCK;
        match &self.blocks {
            Blocks::Q4(groups) => {
                let lane = index % GROUP;
                let group = &groups[index / GROUP * width..][..width];
                for (block, out) in group.iter().zip(out.chunks_exact_mut(BLOCK)) {
                    let (scale, min) = (block.scales[lane], block.mins[lane]);
                    for i in 0..16 {
                        let byte = block.byte(lane, i);
                        out[i] = scale * f32::from(byte & 0x0F) + min;
                        out[i + 16] = scale * f32::from(byte >> 4) + min;
                    }
                }
            }
            Blocks::Q8(blocks) => {
                let row = &blocks[index * width..(index + 1) * width];
                for (block, out) in row.iter().zip(out.chunks_exact_mut(BLOCK)) {
                    for (out, q) in out.iter_mut().zip(block.values) {
                        *out = block.scale * f32::from(q);
                    }
                }
            }
        }
    }

    /// `x · Wᵀ` for every row of `x`: `out` is `x.count` rows of [`QMatrix::rows`] values.
    pub(crate) fn multiply(&self, x: &Activations, out: &mut [f32]) {
        multiply_all(&[self], x, out);
    }
}

/// `x · [W₁ W₂ …]ᵀ`: the products with several matrices of the same width as one parallel
/// job, so their outputs (the query, key and value projections, or gate and up) cost one
/// hand-off to the pool rather than one each. `out` holds, for each row of `x`, the outputs of
/// every matrix in order.
pub(crate) fn multiply_all(matrices: &[&QMatrix], x: &Activations, out: &mut [f32]) {
    let total_rows: usize = matrices.iter().map(|m| m.rows).sum();
    assert!(
        matrices.iter().all(|m| m.cols == x.cols),
        "matrix and activations differ in width"
    );
    assert_eq!(out.len(), total_rows * x.count, "output size");
    let isa = Isa::detect();
    // Bands of rows, each a task: about four per thread so that two threads finish together,
    // a multiple of 8 rows, and never across two matrices.
    let threads = rayon::current_num_threads().max(1);
    let band = (total_rows / (threads * 4))
        .clamp(8, 256)
        .next_multiple_of(8);
    // Results come out by row (each task writes a contiguous stretch); with one input that is
    // already the output's layout.
    let mut by_row = if x.count == 1 {
        Vec::new()
    } else {
        vec![0f32; out.len()]
    };
    let target: &mut [f32] = if x.count == 1 { out } else { &mut by_row };
    let mut tasks = Vec::with_capacity(total_rows / band + matrices.len());
    let mut rest = target;
    for matrix in matrices {
        let mut first = 0;
        while first < matrix.rows {
            let rows = band.min(matrix.rows - first);
            let (chunk, tail) = rest.split_at_mut(rows * x.count);
            tasks.push((*matrix, first, chunk));
            rest = tail;
            first += rows;
        }
    }
    tasks.into_par_iter().for_each(|(matrix, first, out)| {
        isa.band(matrix, first, x, out);
    });
    if x.count > 1 {
        for (row, values) in by_row.chunks_exact(x.count).enumerate() {
            for (input, value) in values.iter().enumerate() {
                out[input * total_rows + row] = *value;
            }
        }
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

fn nibbles_at(bytes: &[u8], at: usize) -> [u8; 16] {
    let mut nibbles = [0; 16];
    nibbles.copy_from_slice(&bytes[at..at + 16]);
    nibbles
}

impl Isa {
    /// Rows of `matrix` from `first` on, as many as `out` holds, times every input; `out` is
    /// by row.
    fn band(self, matrix: &QMatrix, first: usize, x: &Activations, out: &mut [f32]) {
        let width = matrix.cols / BLOCK;
        match (&matrix.blocks, self) {
            #[cfg(target_arch = "x86_64")]
            (Blocks::Q4(groups), Isa::Avx2(simd)) => simd.vectorize(
                #[inline(always)]
                || {
                    let rows = out.len() / x.count;
                    for (g, out) in out.chunks_mut(GROUP * x.count).enumerate() {
                        let group = first / GROUP + g;
                        let blocks = &groups[group * width..(group + 1) * width];
                        let lanes = (rows - g * GROUP).min(GROUP);
                        let mut input = 0;
                        while input < x.count {
                            let taken = avx2::q4x8_dot(simd, blocks, x, input, |j, sums| {
                                for (lane, sum) in sums.iter().take(lanes).enumerate() {
                                    out[lane * x.count + input + j] = *sum;
                                }
                            });
                            input += taken;
                        }
                    }
                },
            ),
            (Blocks::Q8(blocks), Isa::Avx2(simd)) => simd.vectorize(
                #[inline(always)]
                || {
                    for (row, out) in out.chunks_exact_mut(x.count).enumerate() {
                        let start = (first + row) * width;
                        let weights = &blocks[start..start + width];
                        tiles(x, out, |inputs| avx2::q8_dot(simd, weights, inputs));
                    }
                },
            ),
            (Blocks::Q4(groups), _) => {
                for (row, out) in out.chunks_exact_mut(x.count).enumerate() {
                    let row = first + row;
                    let blocks = &groups[row / GROUP * width..(row / GROUP + 1) * width];
                    for (input, out) in out.iter_mut().enumerate() {
                        *out = portable::q4_dot(blocks, row % GROUP, x.row(input));
                    }
                }
            }
            (Blocks::Q8(blocks), _) => {
                for (row, out) in out.chunks_exact_mut(x.count).enumerate() {
                    let start = (first + row) * width;
                    let weights = &blocks[start..start + width];
                    for (input, out) in out.iter_mut().enumerate() {
                        *out = portable::q8_dot(weights, x.row(input));
                    }
                }
            }
        }
    }
}

/// Calls `dot` with the inputs [`INPUT_TILE`] at a time (fewer for the last tile) and writes
/// the results to `out`, one per input.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn tiles(x: &Activations, out: &mut [f32], mut dot: impl FnMut(Tile<'_>) -> Tile4) {
    let mut input = 0;
    while input < x.count {
        let n = (x.count - input).min(INPUT_TILE);
        let tile = match n {
            4 => Tile::Four([
                x.row(input),
                x.row(input + 1),
                x.row(input + 2),
                x.row(input + 3),
            ]),
            2 | 3 => Tile::Two([x.row(input), x.row(input + 1)]),
            _ => Tile::One(x.row(input)),
        };
        let taken = tile.len();
        let results = dot(tile);
        out[input..input + taken].copy_from_slice(&results[..taken]);
        input += taken;
    }
}

/// Inputs for one call of a dot kernel.
#[cfg(target_arch = "x86_64")]
enum Tile<'a> {
    One(&'a [ActBlock]),
    Two([&'a [ActBlock]; 2]),
    Four([&'a [ActBlock]; 4]),
}

#[cfg(target_arch = "x86_64")]
impl Tile<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        match self {
            Tile::One(_) => 1,
            Tile::Two(_) => 2,
            Tile::Four(_) => 4,
        }
    }
}

#[cfg(target_arch = "x86_64")]
type Tile4 = [f32; INPUT_TILE];

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{ActBlock, Activations, GROUP, INPUT_TILE, Q4x8, Q8Block, Tile, Tile4};
    use pulp::x86::V3;
    use std::arch::x86_64::{__m256, __m256i};

    /// Eight rows (a group's `blocks`) times up to [`INPUT_TILE`] inputs from `first`;
    /// `write(j, sums)` gets input `first + j`'s eight results. Returns how many inputs it
    /// took.
    #[inline(always)]
    pub(super) fn q4x8_dot(
        simd: V3,
        blocks: &[Q4x8],
        x: &Activations,
        first: usize,
        mut write: impl FnMut(usize, [f32; GROUP]),
    ) -> usize {
        let left = x.count - first;
        if left >= INPUT_TILE {
            let sums = q4x8_dot_n(
                simd,
                blocks,
                [
                    x.row(first),
                    x.row(first + 1),
                    x.row(first + 2),
                    x.row(first + 3),
                ],
            );
            sums.into_iter().enumerate().for_each(|(j, s)| write(j, s));
            INPUT_TILE
        } else if left >= 2 {
            let sums = q4x8_dot_n(simd, blocks, [x.row(first), x.row(first + 1)]);
            sums.into_iter().enumerate().for_each(|(j, s)| write(j, s));
            2
        } else {
            write(0, q4x8_dot_n(simd, blocks, [x.row(first)])[0]);
            1
        }
    }

    #[inline(always)]
    fn q4x8_dot_n<const N: usize>(
        simd: V3,
        blocks: &[Q4x8],
        inputs: [&[ActBlock]; N],
    ) -> [[f32; GROUP]; N] {
        let low_nibbles = simd.avx._mm256_set1_epi8(0x0F);
        let ones = simd.avx._mm256_set1_epi16(1);
        let mut sums = [simd.avx._mm256_setzero_ps(); N];
        for (b, w) in blocks.iter().enumerate() {
            // Lane r of `dots[j]` gathers row r's products with input j as 16-bit sums: at
            // most 8 · 2 · 15 · 127 = 30,480, which fits.
            let mut dots = [simd.avx._mm256_setzero_si256(); N];
            for k in 0..4 {
                let packed: __m256i = pulp::cast(w.nibbles[k]);
                let low = simd.avx2._mm256_and_si256(packed, low_nibbles);
                let high = simd
                    .avx2
                    ._mm256_and_si256(simd.avx2._mm256_srli_epi16::<4>(packed), low_nibbles);
                for j in 0..N {
                    // Input values 4k..4k+4 and 16+4k..16+4k+4, in every lane.
                    let words: [i32; 8] = pulp::cast(inputs[j][b].values);
                    let a_low = simd.avx._mm256_set1_epi32(words[k]);
                    let a_high = simd.avx._mm256_set1_epi32(words[4 + k]);
                    let products = simd.avx2._mm256_add_epi16(
                        simd.avx2._mm256_maddubs_epi16(low, a_low),
                        simd.avx2._mm256_maddubs_epi16(high, a_high),
                    );
                    dots[j] = simd.avx2._mm256_add_epi16(dots[j], products);
                }
            }
            let scales: __m256 = pulp::cast(w.scales);
            let mins: __m256 = pulp::cast(w.mins);
            for j in 0..N {
                let a = &inputs[j][b];
                let dot = simd
                    .avx
                    ._mm256_cvtepi32_ps(simd.avx2._mm256_madd_epi16(dots[j], ones));
                let scale = simd
                    .avx
                    ._mm256_mul_ps(scales, simd.avx._mm256_set1_ps(a.scale));
                sums[j] = simd.fma._mm256_fmadd_ps(dot, scale, sums[j]);
                sums[j] =
                    simd.fma
                        ._mm256_fmadd_ps(mins, simd.avx._mm256_set1_ps(a.scaled_sum), sums[j]);
            }
        }
        sums.map(pulp::cast)
    }

    #[inline(always)]
    pub(super) fn q8_dot(simd: V3, weights: &[Q8Block], tile: Tile<'_>) -> Tile4 {
        match tile {
            Tile::One(a) => pad(q8_dot_n(simd, weights, [a])),
            Tile::Two(a) => pad(q8_dot_n(simd, weights, a)),
            Tile::Four(a) => pad(q8_dot_n(simd, weights, a)),
        }
    }

    #[inline(always)]
    fn pad<const N: usize>(values: [f32; N]) -> Tile4 {
        let mut out = [0.0; 4];
        out[..N].copy_from_slice(&values);
        out
    }

    #[inline(always)]
    fn q8_dot_n<const N: usize>(
        simd: V3,
        weights: &[Q8Block],
        inputs: [&[ActBlock]; N],
    ) -> [f32; N] {
        let ones = simd.avx._mm256_set1_epi16(1);
        let mut sums = [simd.avx._mm256_setzero_ps(); N];
        for (b, w) in weights.iter().enumerate() {
            let q8w: __m256i = pulp::cast(w.values);
            // maddubs multiplies unsigned by signed: move the weights' signs onto the inputs.
            let magnitudes = simd.avx2._mm256_sign_epi8(q8w, q8w);
            for j in 0..N {
                let a = &inputs[j][b];
                let q8: __m256i = pulp::cast(a.values);
                let signed = simd.avx2._mm256_sign_epi8(q8, q8w);
                let pairs = simd.avx2._mm256_maddubs_epi16(magnitudes, signed);
                let quads = simd.avx2._mm256_madd_epi16(pairs, ones);
                let scale = simd.avx._mm256_set1_ps(w.scale * a.scale);
                sums[j] =
                    simd.fma
                        ._mm256_fmadd_ps(simd.avx._mm256_cvtepi32_ps(quads), scale, sums[j]);
            }
        }
        let mut out = [0f32; N];
        for j in 0..N {
            out[j] = horizontal_sum(sums[j]);
        }
        out
    }

    #[inline(always)]
    fn horizontal_sum(v: __m256) -> f32 {
        let lanes: [f32; 8] = pulp::cast(v);
        (lanes[0] + lanes[4])
            + (lanes[1] + lanes[5])
            + (lanes[2] + lanes[6])
            + (lanes[3] + lanes[7])
    }
}

/// The same products in plain Rust, for CPUs without AVX2.
mod portable {
    use super::{ActBlock, Q4x8, Q8Block};

    /// Row `lane` of a group's `blocks` times one input.
    pub(super) fn q4_dot(blocks: &[Q4x8], lane: usize, inputs: &[ActBlock]) -> f32 {
        blocks
            .iter()
            .zip(inputs)
            .map(|(w, a)| {
                let mut sum = 0i32;
                for i in 0..16 {
                    let byte = w.byte(lane, i);
                    sum += i32::from(byte & 0x0F) * i32::from(a.values[i]);
                    sum += i32::from(byte >> 4) * i32::from(a.values[i + 16]);
                }
                w.scales[lane] * a.scale * sum as f32 + w.mins[lane] * a.scaled_sum
            })
            .sum()
    }

    pub(super) fn q8_dot(weights: &[Q8Block], inputs: &[ActBlock]) -> f32 {
        weights
            .iter()
            .zip(inputs)
            .map(|(w, a)| {
                let sum: i32 = w
                    .values
                    .iter()
                    .zip(a.values)
                    .map(|(w, a)| i32::from(*w) * i32::from(a))
                    .sum();
                w.scale * a.scale * sum as f32
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    fn weights(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| ((i as f32) * 0.37).sin() * 0.5 + ((i % 7) as f32) * 0.01)
            .collect()
    }

    fn inputs(count: usize, cols: usize) -> Vec<f32> {
        (0..count * cols)
            .map(|i| ((i as f32) * 0.11).cos())
            .collect()
    }

    fn exact(w: &[f32], x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let count = x.len() / cols;
        let mut out = vec![0f32; count * rows];
        for input in 0..count {
            for row in 0..rows {
                out[input * rows + row] = (0..cols)
                    .map(|c| w[row * cols + c] * x[input * cols + c])
                    .sum();
            }
        }
        out
    }

    fn matrix(dtype: GgmlDType, rows: usize, cols: usize) -> (QMatrix, Vec<f32>) {
        let values = weights(rows, cols);
        let tensor = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
        let quantized = QTensor::quantize(&tensor, dtype).unwrap();
        // The reference is what the file holds: the quantized weights, dequantized by candle.
        let held = quantized
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        (QMatrix::from_qtensor(&quantized).unwrap(), held)
    }

    fn assert_close(got: &[f32], want: &[f32], tolerance: f32) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tolerance * (1.0 + w.abs()),
                "value {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn every_format_and_tile_matches_a_float_product() {
        // 37 rows: four groups of eight and a padded one.
        let (rows, cols) = (37, 96);
        for dtype in [
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q8_0,
            GgmlDType::Q5_1,
            GgmlDType::F32,
        ] {
            let (matrix, held) = matrix(dtype, rows, cols);
            // 1 to 7 inputs: every tile size and remainder.
            for count in 1..=7 {
                let x = inputs(count, cols);
                let want = exact(&held, &x, rows, cols);
                let activations = Activations::quantize(&x, cols);
                let mut got = vec![0f32; count * rows];
                matrix.multiply(&activations, &mut got);
                // Quantizing the activations (and, for Q5_1 and F32, the weights) to 8 bits
                // moves a product of these ~2.5-sized values by up to a few hundredths.
                assert_close(&got, &want, 0.08);
                let mut portable = vec![0f32; count * rows];
                let width = cols / BLOCK;
                for input in 0..count {
                    for row in 0..rows {
                        let group = row / GROUP * width..(row / GROUP + 1) * width;
                        let range = row * width..(row + 1) * width;
                        portable[input * rows + row] = match &matrix.blocks {
                            Blocks::Q4(b) => {
                                portable::q4_dot(&b[group], row % GROUP, activations.row(input))
                            }
                            Blocks::Q8(b) => portable::q8_dot(&b[range], activations.row(input)),
                        };
                    }
                }
                assert_close(&got, &portable, 1e-4);
            }
        }
    }

    #[test]
    fn q4_formats_stay_four_bit_and_dequantize_exactly() {
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1] {
            let (matrix, held) = matrix(dtype, 11, 64);
            assert!(matches!(matrix.blocks, Blocks::Q4(_)), "{dtype:?}");
            assert_eq!(matrix.bytes(), 2 * 2 * std::mem::size_of::<Q4x8>());
            let mut row = vec![0f32; 64];
            for index in 0..11 {
                matrix.dequantize_row(index, &mut row);
                assert_close(&row, &held[index * 64..(index + 1) * 64], 1e-6);
            }
        }
    }

    #[test]
    fn several_matrices_multiply_as_one() {
        let cols = 64;
        let (a, held_a) = matrix(GgmlDType::Q4_1, 24, cols);
        let (b, held_b) = matrix(GgmlDType::Q8_0, 16, cols);
        let x = inputs(3, cols);
        let activations = Activations::quantize(&x, cols);
        let mut got = vec![0f32; 3 * 40];
        multiply_all(&[&a, &b], &activations, &mut got);
        let want_a = exact(&held_a, &x, 24, cols);
        let want_b = exact(&held_b, &x, 16, cols);
        for input in 0..3 {
            assert_close(
                &got[input * 40..input * 40 + 24],
                &want_a[input * 24..(input + 1) * 24],
                0.03,
            );
            assert_close(
                &got[input * 40 + 24..(input + 1) * 40],
                &want_b[input * 16..(input + 1) * 16],
                0.03,
            );
        }
    }
}
