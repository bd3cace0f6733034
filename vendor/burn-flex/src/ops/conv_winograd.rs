//! ftuscope patch: Winograd F(2×2, 3×3) for ungrouped 3×3 stride-1 convolutions in f32.
//!
//! Every output tile of 2×2 pixels is computed from a 4×4 input tile with 16 products per
//! (input channel, output channel) instead of the 36 of im2col + GEMM (Lavin & Gray, "Fast
//! Algorithms for Convolutional Neural Networks", 2016):
//!
//! - weights: `U = G g Gᵀ` (4×4 per filter), stored as 16 matrices `U_ξ[c_out, c_in]`;
//! - input tiles: `V = Bᵀ d B` (4×4 per tile and channel), stored as 16 matrices `V_ξ[c_in, tile]`;
//! - one GEMM per position ξ: `M_ξ[c_out, tile] = U_ξ · V_ξ` (the sum over input channels);
//! - output tiles: `Y = Aᵀ M A` (2×2), plus the bias.
//!
//! Tiles are taken in chunks of tile rows so the transformed buffers stay a few MiB (chunks run in
//! parallel with rayon; a single chunk runs its 16 GEMMs in parallel instead). The transforms work
//! on whole rows of tiles — an input row split into its even and odd columns — so they are loops
//! over contiguous slices that LLVM vectorises (SSE/AVX natively, SIMD128 in wasm).
//!
//! Rounding differs from the im2col path by a few ulps of the largest term (the transforms add and
//! halve values); the tests compare it with a direct convolution.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_backend::ops::conv::calculate_conv_output_size;
use burn_std::{Bytes, Shape};

use super::SendMutPtr;
use crate::{FlexTensor, Layout};

/// Channels (in and out) below which im2col stays faster: the transforms cost per channel what the
/// saved products gain per channel pair.
const MIN_CHANNELS: usize = 16;

/// Transformed input values per chunk (16 × c_in × tiles): ~4 MiB of f32.
const CHUNK_VALUES: usize = 1 << 20;

/// Whether the Winograd path computes this convolution: f32 is checked by the caller; here an
/// ungrouped 2D (depth 1) 3×3 kernel, stride and dilation 1, at least [`MIN_CHANNELS`] in and out.
pub(crate) fn applies(x_shape: &[usize], w_shape: &[usize], options: &ConvOptions<3>) -> bool {
    let (c_in, in_d, c_out) = (x_shape[1], x_shape[2], w_shape[0]);
    let out = |k: usize, pad: usize, size: usize| {
        (size + 2 * pad).checked_sub(k).map(|s| s + 1).unwrap_or(0)
    };
    let [pad_d, pad_h, pad_w] = options.padding_begin();
    options.groups == 1
        && options.stride == [1, 1, 1]
        && options.dilation == [1, 1, 1]
        && pad_d == 0
        && w_shape[1] == c_in
        && w_shape[2] == 1
        && w_shape[3] == 3
        && w_shape[4] == 3
        && in_d == 1
        && c_in >= MIN_CHANNELS
        && c_out >= MIN_CHANNELS
        && out(3, pad_h, x_shape[3]) >= 2
        && out(3, pad_w, x_shape[4]) >= 2
}

/// The convolution (`x`: [batch, c_in, 1, h, w], `weight`: [c_out, c_in, 1, 3, 3]) by Winograd
/// F(2×2, 3×3); callers check [`applies`] first.
pub(crate) fn conv3d_winograd_f32(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<3>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let x_shape = x.layout().shape();
    let (batch, c_in, in_h, in_w) = (x_shape[0], x_shape[1], x_shape[3], x_shape[4]);
    let c_out = weight.layout().shape()[0];
    let [_, pad_h, pad_w] = options.padding_begin();
    let out_h = calculate_conv_output_size(3, 1, pad_h, 1, in_h);
    let out_w = calculate_conv_output_size(3, 1, pad_w, 1, in_w);
    let bias = bias.map(|b| b.to_contiguous());
    let bias: Option<&[f32]> = bias.as_ref().map(|b| b.storage());

    let geometry = Geometry {
        c_in,
        c_out,
        in_h,
        in_w,
        out_h,
        out_w,
        pad_h,
        pad_w,
        tiles_h: out_h.div_ceil(2),
        tiles_w: out_w.div_ceil(2),
    };
    let u = transform_weights(weight.storage(), c_out, c_in);
    let mut output = vec![0.0f32; batch * c_out * out_h * out_w];

    // Chunks of whole tile rows (row index R = b · tiles_h + th over the batch).
    let rows = batch * geometry.tiles_h;
    let per_chunk = (CHUNK_VALUES / (16 * c_in * geometry.tiles_w)).clamp(1, rows);
    let chunks = rows.div_ceil(per_chunk);
    let x_data: &[f32] = x.storage();
    let out = SendMutPtr::new(output.as_mut_ptr());
    // Several chunks run in parallel; a single one runs its 16 GEMMs in parallel instead.
    let mut chunk_rows: Vec<_> = (0..chunks).map(|c| c * per_chunk..((c + 1) * per_chunk).min(rows)).collect();
    let parallel_chunks = chunks > 1;
    for_each_item(&mut chunk_rows, parallel_chunks, |_, rows| {
        geometry.chunk(x_data, &u, bias, rows.clone(), &out, !parallel_chunks);
    });

    let shape = Shape::from(vec![batch, c_out, 1, out_h, out_w]);
    FlexTensor::new(Bytes::from_elems(output), Layout::contiguous(shape), DType::F32)
}

/// `f(index, item)` for every item, in parallel when the `rayon` feature is on and `parallel` asks.
fn for_each_item<T: Send, F: Fn(usize, &mut T) + Send + Sync>(items: &mut [T], parallel: bool, f: F) {
    #[cfg(feature = "rayon")]
    if parallel {
        use rayon::prelude::*;
        items.par_iter_mut().enumerate().for_each(|(i, item)| f(i, item));
        return;
    }
    let _ = parallel;
    items.iter_mut().enumerate().for_each(|(i, item)| f(i, item));
}

/// `U_ξ[c_out, c_in] = (G g Gᵀ)_ξ` for every filter `g` (3×3), ξ = 4·row + column of the 4×4 result;
/// G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
fn transform_weights(w: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let plane = c_out * c_in;
    let mut u = vec![0.0f32; 16 * plane];
    for (f, g) in w.chunks_exact(9).enumerate() {
        // G g: 4 rows of 3.
        let mut t = [[0.0f32; 3]; 4];
        for c in 0..3 {
            let (a, b, d) = (g[c], g[3 + c], g[6 + c]);
            t[0][c] = a;
            t[1][c] = 0.5 * (a + b + d);
            t[2][c] = 0.5 * (a - b + d);
            t[3][c] = d;
        }
        // (G g) Gᵀ: 4 × 4.
        for (r, [a, b, d]) in t.into_iter().enumerate() {
            let row = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
            for (c, v) in row.into_iter().enumerate() {
                u[(4 * r + c) * plane + f] = v;
            }
        }
    }
    u
}

/// The convolution's sizes: tiles of 2×2 output pixels, `tiles_h` × `tiles_w` per image.
struct Geometry {
    c_in: usize,
    c_out: usize,
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    pad_h: usize,
    pad_w: usize,
    tiles_h: usize,
    tiles_w: usize,
}

impl Geometry {
    /// Tile rows `rows` (over the batch): input transform, 16 GEMMs, output transform into `out`.
    fn chunk(
        &self,
        x: &[f32],
        u: &[f32],
        bias: Option<&[f32]>,
        rows: core::ops::Range<usize>,
        out: &SendMutPtr<f32>,
        parallel_gemms: bool,
    ) {
        let (c_in, c_out, tw) = (self.c_in, self.c_out, self.tiles_w);
        let tiles = rows.len() * tw;
        let v = self.transform_input(x, rows.clone(), tiles);
        let mut m = vec![0.0f32; 16 * c_out * tiles];
        let mut parts: Vec<&mut [f32]> = m.chunks_mut(c_out * tiles).collect();
        for_each_item(&mut parts, parallel_gemms, |xi, m_xi| {
            // SAFETY: the slices hold c_out × c_in, c_in × tiles and c_out × tiles values, row-major.
            unsafe {
                gemm::gemm(
                    c_out,
                    tiles,
                    c_in,
                    m_xi.as_mut_ptr(),
                    1,
                    tiles as isize,
                    false,
                    u[xi * c_out * c_in..].as_ptr(),
                    1,
                    c_in as isize,
                    v[xi * c_in * tiles..].as_ptr(),
                    1,
                    tiles as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
        self.transform_output(&m, bias, rows, tiles, out);
    }

    /// `V_ξ[c_in, tile]` for the tiles of `rows`: Bᵀ d B of each 4×4 input tile `d`, with
    /// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
    fn transform_input(&self, x: &[f32], rows: core::ops::Range<usize>, tiles: usize) -> Vec<f32> {
        let (c_in, tw) = (self.c_in, self.tiles_w);
        let mut v = vec![0.0f32; 16 * c_in * tiles];
        // One input row split into even and odd columns (zero outside the image): a tile's four
        // columns are even[t], odd[t], even[t + 1], odd[t + 1].
        let mut even: [Vec<f32>; 4] = core::array::from_fn(|_| vec![0.0f32; tw + 1]);
        let mut odd = even.clone();
        // The row transform (d B) of the four rows: h[k][j][t].
        let mut h: [[Vec<f32>; 4]; 4] = core::array::from_fn(|_| core::array::from_fn(|_| vec![0.0f32; tw]));
        let plane = self.in_h * self.in_w;
        for ci in 0..c_in {
            for (r, row) in rows.clone().enumerate() {
                let (b, th) = (row / self.tiles_h, row % self.tiles_h);
                let image = &x[(b * c_in + ci) * plane..][..plane];
                for k in 0..4 {
                    let y = (2 * th + k) as isize - self.pad_h as isize;
                    let line = (y >= 0 && (y as usize) < self.in_h)
                        .then(|| &image[y as usize * self.in_w..][..self.in_w]);
                    self.split_columns(line, &mut even[k], &mut odd[k]);
                    // Resliced to `tw` so the loops have no bounds checks and vectorise.
                    let (e0, e1) = (&even[k][..tw], &even[k][1..=tw]);
                    let (o0, o1) = (&odd[k][..tw], &odd[k][1..=tw]);
                    let [h0, h1, h2, h3] = &mut h[k];
                    let (h0, h1, h2, h3) = (&mut h0[..tw], &mut h1[..tw], &mut h2[..tw], &mut h3[..tw]);
                    for t in 0..tw {
                        h0[t] = e0[t] - e1[t];
                        h1[t] = o0[t] + e1[t];
                        h2[t] = e1[t] - o0[t];
                        h3[t] = o0[t] - o1[t];
                    }
                }
                // Bᵀ (d B): column j of every tile from the four rows' h[·][j].
                let at = r * tw;
                for j in 0..4 {
                    let (d0, d1, d2, d3) = (&h[0][j][..tw], &h[1][j][..tw], &h[2][j][..tw], &h[3][j][..tw]);
                    let dst = |i: usize| (4 * i + j) * c_in * tiles + ci * tiles + at;
                    let out = &mut v[dst(0)..][..tw];
                    for t in 0..tw {
                        out[t] = d0[t] - d2[t];
                    }
                    let out = &mut v[dst(1)..][..tw];
                    for t in 0..tw {
                        out[t] = d1[t] + d2[t];
                    }
                    let out = &mut v[dst(2)..][..tw];
                    for t in 0..tw {
                        out[t] = d2[t] - d1[t];
                    }
                    let out = &mut v[dst(3)..][..tw];
                    for t in 0..tw {
                        out[t] = d1[t] - d3[t];
                    }
                }
            }
        }
        v
    }

    /// Input columns 2t − pad_w (even) and 2t + 1 − pad_w (odd) for t in 0..=tiles_w; zero outside
    /// the image or for a row outside it (`line` None).
    fn split_columns(&self, line: Option<&[f32]>, even: &mut [f32], odd: &mut [f32]) {
        even.fill(0.0);
        odd.fill(0.0);
        let Some(line) = line else { return };
        // Column c of the image is column c + pad_w of the padded row, which has 2·len columns.
        let n = line.len().min((2 * even.len()).saturating_sub(self.pad_w));
        if n == 0 {
            return;
        }
        let (line, half) = (&line[..n], self.pad_w / 2);
        let last = line[n - 1];
        if self.pad_w % 2 == 0 {
            for ((pair, e), o) in line.chunks_exact(2).zip(&mut even[half..]).zip(&mut odd[half..]) {
                *e = pair[0];
                *o = pair[1];
            }
            if n % 2 == 1 {
                even[half + n / 2] = last;
            }
        } else {
            for ((pair, o), e) in line.chunks_exact(2).zip(&mut odd[half..]).zip(&mut even[half + 1..]) {
                *o = pair[0];
                *e = pair[1];
            }
            if n % 2 == 1 {
                odd[half + n / 2] = last;
            }
        }
    }

    /// Aᵀ M A (+ bias) of every tile of `rows` into the output, with Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]];
    /// pixels past the output's last row or column (odd sizes) are dropped.
    fn transform_output(&self, m: &[f32], bias: Option<&[f32]>, rows: core::ops::Range<usize>, tiles: usize, out: &SendMutPtr<f32>) {
        let (c_out, tw) = (self.c_out, self.tiles_w);
        let vecs = || -> [Vec<f32>; 4] { core::array::from_fn(|_| vec![0.0f32; tw]) };
        let (mut s, mut t, mut y) = (vecs(), vecs(), vecs());
        for co in 0..c_out {
            let b0 = bias.map_or(0.0, |b| b[co]);
            for (r, row) in rows.clone().enumerate() {
                let (b, th) = (row / self.tiles_h, row % self.tiles_h);
                let at = co * tiles + r * tw;
                let mm = |xi: usize| &m[xi * c_out * tiles + at..][..tw];
                // Aᵀ M: two rows (s: first, t: second) of four columns.
                for j in 0..4 {
                    let (m0, m1, m2, m3) = (mm(j), mm(4 + j), mm(8 + j), mm(12 + j));
                    let (sj, tj) = (&mut s[j][..tw], &mut t[j][..tw]);
                    for k in 0..tw {
                        sj[k] = m0[k] + m1[k] + m2[k];
                        tj[k] = m1[k] - m2[k] - m3[k];
                    }
                }
                // (Aᵀ M) A: y[2·i + j] for output row i, column j of each tile.
                for (i, src) in [&s, &t].into_iter().enumerate() {
                    let (s0, s1, s2, s3) = (&src[0][..tw], &src[1][..tw], &src[2][..tw], &src[3][..tw]);
                    let (y0, y1) = y.split_at_mut(2 * i + 1);
                    let (y0, y1) = (&mut y0[2 * i][..tw], &mut y1[0][..tw]);
                    for k in 0..tw {
                        y0[k] = s0[k] + s1[k] + s2[k] + b0;
                        y1[k] = s1[k] - s2[k] - s3[k] + b0;
                    }
                }
                for i in 0..2 {
                    let oy = 2 * th + i;
                    if oy >= self.out_h {
                        break;
                    }
                    let offset = ((b * c_out + co) * self.out_h + oy) * self.out_w;
                    // SAFETY: output row `oy` of (b, co) belongs to tile row `row`, which only this
                    // chunk computes; the row holds out_w values.
                    let line = unsafe { core::slice::from_raw_parts_mut(out.ptr_add(offset), self.out_w) };
                    let (y0, y1) = (&y[2 * i], &y[2 * i + 1]);
                    for ((pair, a), b) in line.chunks_exact_mut(2).zip(y0).zip(y1) {
                        pair[0] = *a;
                        pair[1] = *b;
                    }
                    if self.out_w % 2 == 1 {
                        line[self.out_w - 1] = y0[tw - 1];
                    }
                }
            }
        }
    }
}
