//! Matrix products with Q8_0 weights on kai's own rayon pool.
//!
//! candle 0.11's quantized matrix product runs on a process-wide pool whose size comes from
//! `CANDLE_NUM_THREADS` (else the number of physical cores) when candle first computes, so
//! kai's `threads` setting could not reach it. Here the weights are kept as candle's Q8_0
//! blocks and multiplied with candle's own dot-product kernels (AVX2 where the CPU has it,
//! chosen at run time), with the work split over the rayon pool the caller runs in.

use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
use candle_core::{Device, Tensor};
use rayon::prelude::*;

/// Weight rows each parallel task takes: enough work to outweigh the hand-off, few enough
/// that two threads share a 576-row projection evenly.
const ROWS_PER_TASK: usize = 32;

/// A weight matrix `(rows, cols)` in Q8_0 blocks, row-major.
pub(crate) struct Q8Matrix {
    rows: usize,
    cols: usize,
    blocks: Vec<BlockQ8_0>,
}

impl Q8Matrix {
    /// Quantizes f32 weights `(rows, cols)`; `cols` must be a multiple of 32.
    pub(crate) fn quantize(weights: &Tensor) -> candle_core::Result<Q8Matrix> {
        let (rows, cols) = weights.dims2()?;
        if cols % BlockQ8_0::BLCK_SIZE != 0 {
            candle_core::bail!("Q8_0 rows must be a multiple of 32 wide, not {cols}");
        }
        let values = weights.flatten_all()?.to_vec1::<f32>()?;
        let mut blocks = vec![BlockQ8_0::zeros(); rows * cols / BlockQ8_0::BLCK_SIZE];
        BlockQ8_0::from_float(&values, &mut blocks);
        Ok(Q8Matrix { rows, cols, blocks })
    }

    /// `x · Wᵀ` for `x` of shape `(…, cols)`: the result is `(…, rows)`.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut shape = x.dims().to_vec();
        if shape.last() != Some(&self.cols) {
            candle_core::bail!(
                "a {}-wide input cannot multiply a matrix {} wide",
                shape.last().copied().unwrap_or(0),
                self.cols
            );
        }
        let values = x.flatten_all()?.to_vec1::<f32>()?;
        let inputs = values.len() / self.cols;
        if inputs == 0 {
            candle_core::bail!("no input rows to multiply");
        }
        let blocks_per_row = self.cols / BlockQ8_0::BLCK_SIZE;
        let mut quantized = vec![BlockQ8_0::zeros(); inputs * blocks_per_row];
        for (row, blocks) in values
            .chunks_exact(self.cols)
            .zip(quantized.chunks_exact_mut(blocks_per_row))
        {
            BlockQ8_0::from_float(row, blocks);
        }
        // Each task takes a band of weight rows and multiplies it with every input, so the
        // band stays in cache while the inputs stream past; the result comes out transposed.
        let mut transposed = vec![0f32; self.rows * inputs];
        transposed
            .par_chunks_mut(ROWS_PER_TASK * inputs)
            .enumerate()
            .for_each(|(task, out)| {
                let first_row = task * ROWS_PER_TASK;
                for (offset, out_row) in out.chunks_exact_mut(inputs).enumerate() {
                    let start = (first_row + offset) * blocks_per_row;
                    let weights = &self.blocks[start..start + blocks_per_row];
                    for (value, input) in out_row
                        .iter_mut()
                        .zip(quantized.chunks_exact(blocks_per_row))
                    {
                        *value = BlockQ8_0::vec_dot(self.cols, weights, input);
                    }
                }
            });
        if let Some(last) = shape.last_mut() {
            *last = self.rows;
        }
        let out = Tensor::from_vec(transposed, (self.rows, inputs), &Device::Cpu)?;
        let out = if inputs == 1 {
            out
        } else {
            out.t()?.contiguous()?
        };
        out.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_float_matrix_product() {
        let weights = Tensor::arange(0f32, 64.0 * 96.0, &Device::Cpu)
            .unwrap()
            .reshape((96, 64))
            .unwrap()
            .sin()
            .unwrap();
        let matrix = Q8Matrix::quantize(&weights).unwrap();
        for inputs in [1, 3] {
            let x = Tensor::arange(0f32, 64.0 * inputs as f32, &Device::Cpu)
                .unwrap()
                .reshape((1, inputs, 64))
                .unwrap()
                .cos()
                .unwrap();
            let exact = x.broadcast_matmul(&weights.t().unwrap()).unwrap();
            let got = matrix.forward(&x).unwrap();
            assert_eq!(got.dims(), &[1, inputs, 96]);
            let exact = exact.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in exact.iter().zip(&got) {
                assert!((a - b).abs() < 0.2, "{a} vs {b}");
            }
        }
    }
}
