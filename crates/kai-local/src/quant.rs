//! Quantized weight matrices and their products with activations, on kai's rayon pool.
//!
//! Weights are kept in one of two block formats of 32 values with f32 scales:
//!
//! - [`Q4Block`]: 4-bit values with a scale and a minimum (GGUF's Q4_1; Q4_0 converts to it
//!   exactly). The default chat model's layers are Q4_1, and these kernels keep them at
//!   4 bits: generation reads every weight once per token, so bytes are time.
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
//! [`INPUT_TILE`] inputs while it is in registers.

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;
use rayon::prelude::*;

use crate::vector::with_simd;

/// Values per block, in every format here.
pub(crate) const BLOCK: usize = 32;

/// Inputs multiplied together with one unpacked weight block.
const INPUT_TILE: usize = 4;

/// 32 weights `scale * q + min` with `q` in 0..16: `nibbles[i]` holds value `i` in its low half
/// and value `i + 16` in its high half (GGUF's order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Q4Block {
    scale: f32,
    min: f32,
    nibbles: [u8; 16],
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
    Q4(Vec<Q4Block>),
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
        let raw = || -> candle_core::Result<Vec<u8>> { Ok(tensor.data()?.into_owned()) };
        let blocks = match tensor.dtype() {
            GgmlDType::Q4_1 => Blocks::Q4(
                raw()?
                    .chunks_exact(20)
                    .map(|b| Q4Block {
                        scale: f16_at(b, 0),
                        min: f16_at(b, 2),
                        nibbles: nibbles_at(b, 4),
                    })
                    .collect(),
            ),
            // `d * (q - 8)` is `d * q + (-8 d)`: Q4_0 is Q4_1 with a fixed minimum.
            GgmlDType::Q4_0 => Blocks::Q4(
                raw()?
                    .chunks_exact(18)
                    .map(|b| {
                        let scale = f16_at(b, 0);
                        Q4Block {
                            scale,
                            min: -8.0 * scale,
                            nibbles: nibbles_at(b, 2),
                        }
                    })
                    .collect(),
            ),
            _ => {
                let values = tensor
                    .dequantize(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                return Ok(QMatrix::quantize_q8(rows, cols, &values));
            }
        };
        let found = match &blocks {
            Blocks::Q4(blocks) => blocks.len(),
            Blocks::Q8(blocks) => blocks.len(),
        };
        if found != expected {
            candle_core::bail!("{found} blocks where a {rows}×{cols} matrix has {expected}");
        }
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
        let range = index * width..(index + 1) * width;
        match &self.blocks {
            Blocks::Q4(blocks) => {
                for (block, out) in blocks[range].iter().zip(out.chunks_exact_mut(BLOCK)) {
                    for (i, byte) in block.nibbles.iter().enumerate() {
                        out[i] = block.scale * f32::from(byte & 0x0F) + block.min;
                        out[i + 16] = block.scale * f32::from(byte >> 4) + block.min;
                    }
                }
            }
            Blocks::Q8(blocks) => {
                for (block, out) in blocks[range].iter().zip(out.chunks_exact_mut(BLOCK)) {
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

/// The instruction set the products use, found once per product.
#[derive(Clone, Copy)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx2(pulp::x86::V3),
    Portable,
}

impl Isa {
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return Isa::Avx2(simd);
        }
        Isa::Portable
    }

    /// Rows of `matrix` from `first` on, as many as `out` holds, times every input; `out` is
    /// by row.
    fn band(self, matrix: &QMatrix, first: usize, x: &Activations, out: &mut [f32]) {
        let width = matrix.cols / BLOCK;
        match (&matrix.blocks, self) {
            #[cfg(target_arch = "x86_64")]
            (Blocks::Q4(blocks), Isa::Avx2(simd)) => simd.vectorize(
                #[inline(always)]
                || {
                    for (row, out) in out.chunks_exact_mut(x.count).enumerate() {
                        let start = (first + row) * width;
                        let weights = &blocks[start..start + width];
                        tiles(x, out, |inputs| avx2::q4_dot(simd, weights, inputs));
                    }
                },
            ),
            #[cfg(target_arch = "x86_64")]
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
            (Blocks::Q4(blocks), _) => {
                for (row, out) in out.chunks_exact_mut(x.count).enumerate() {
                    let start = (first + row) * width;
                    let weights = &blocks[start..start + width];
                    for (input, out) in out.iter_mut().enumerate() {
                        *out = portable::q4_dot(weights, x.row(input));
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
    use super::{ActBlock, Q4Block, Q8Block, Tile, Tile4};
    use pulp::x86::V3;
    use std::arch::x86_64::{__m128i, __m256, __m256i};

    #[inline(always)]
    pub(super) fn q4_dot(simd: V3, weights: &[Q4Block], tile: Tile<'_>) -> Tile4 {
        match tile {
            Tile::One(a) => pad(q4_dot_n(simd, weights, [a])),
            Tile::Two(a) => pad(q4_dot_n(simd, weights, a)),
            Tile::Four(a) => pad(q4_dot_n(simd, weights, a)),
        }
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
    fn q4_dot_n<const N: usize>(
        simd: V3,
        weights: &[Q4Block],
        inputs: [&[ActBlock]; N],
    ) -> [f32; N] {
        let low_nibbles = simd.avx._mm256_set1_epi8(0x0F);
        let ones = simd.avx._mm256_set1_epi16(1);
        let mut sums = [simd.avx._mm256_setzero_ps(); N];
        let mut minimums = [0f32; N];
        for (b, w) in weights.iter().enumerate() {
            let packed: __m128i = pulp::cast(w.nibbles);
            let high = simd.sse2._mm_srli_epi16::<4>(packed);
            let q4 = simd
                .avx2
                ._mm256_and_si256(simd.avx._mm256_set_m128i(high, packed), low_nibbles);
            for j in 0..N {
                let a = &inputs[j][b];
                let q8: __m256i = pulp::cast(a.values);
                // Unsigned weights times signed activations, pairs summed: 16 × i16, then
                // pairs again: 8 × i32, exact (at most 2 · 2 · 15 · 127 per lane).
                let pairs = simd.avx2._mm256_maddubs_epi16(q4, q8);
                let quads = simd.avx2._mm256_madd_epi16(pairs, ones);
                let scale = simd.avx._mm256_set1_ps(w.scale * a.scale);
                sums[j] =
                    simd.fma
                        ._mm256_fmadd_ps(simd.avx._mm256_cvtepi32_ps(quads), scale, sums[j]);
                minimums[j] += w.min * a.scaled_sum;
            }
        }
        let mut out = [0f32; N];
        for j in 0..N {
            out[j] = horizontal_sum(sums[j]) + minimums[j];
        }
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
    use super::{ActBlock, Q4Block, Q8Block};

    pub(super) fn q4_dot(weights: &[Q4Block], inputs: &[ActBlock]) -> f32 {
        weights
            .iter()
            .zip(inputs)
            .map(|(w, a)| {
                let mut sum = 0i32;
                for (i, byte) in w.nibbles.iter().enumerate() {
                    sum += i32::from(byte & 0x0F) * i32::from(a.values[i]);
                    sum += i32::from(byte >> 4) * i32::from(a.values[i + 16]);
                }
                w.scale * a.scale * sum as f32 + w.min * a.scaled_sum
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
        let (rows, cols) = (40, 96);
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
                        let range = row * width..(row + 1) * width;
                        portable[input * rows + row] = match &matrix.blocks {
                            Blocks::Q4(b) => portable::q4_dot(&b[range], activations.row(input)),
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
            let (matrix, held) = matrix(dtype, 8, 64);
            assert!(matches!(matrix.blocks, Blocks::Q4(_)), "{dtype:?}");
            assert_eq!(matrix.bytes(), 8 * 2 * 24);
            let mut row = vec![0f32; 64];
            for index in 0..8 {
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
