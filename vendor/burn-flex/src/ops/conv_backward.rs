//! Backward pass of 2D convolution: direct kernels for depthwise convolution and an
//! im2col + GEMM weight gradient for ungrouped convolution.
//!
//! **ftuscope patch, not in burn-flex 0.22.1** (see `vendor/README.md` of ftuscope).
//!
//! Upstream, `Flex` inherits burn-backend's generic `conv2d_weight_backward` and
//! `conv2d_x_backward`. For a grouped convolution the weight gradient is computed by a loop
//! over the groups, each a full `conv2d` whose "kernel" is the output gradient (a whole
//! feature map), and the input gradient by a grouped `conv_transpose2d`. For a depthwise
//! convolution (one channel per group, as in MobileNet/EfficientNet) that is `channels`
//! tiny convolutions with huge kernels per step — most of an EfficientNet's CPU training
//! time. Here the canonical depthwise case (`groups == channels_in == channels_out`,
//! symmetric padding, f32/f64) is computed directly:
//!
//! - weight: `dW[c, ky, kx] = Σ_b Σ_oy Σ_ox x[b, c, oy·sy + ky·dy − py, ox·sx + kx·dx − px] · g[b, c, oy, ox]`,
//!   one task per channel, the inner sum a multi-accumulator dot product over an output row;
//! - input: `dX[b, c, iy, ix] = Σ w[c, ky, kx] · g[b, c, oy, ox]` over the taps that read
//!   `(iy, ix)`, one task per `(b, c)` plane, scattered row by row (an axpy over the row).
//!
//! The weight gradient of an ungrouped convolution (every 1×1 and 3×3 convolution of a U-Net)
//! is, upstream, a `conv2d` whose kernel is the output gradient — scalar plane accumulation
//! with feature-map-sized kernels; here it is one GEMM per batch item and chunk of output rows
//! against the im2col matrix of the input (`dense_weight_grad`).
//!
//! Padded positions contribute nothing (as zero padding times a finite gradient). Every other
//! case goes through a verbatim copy of burn-backend 0.22.1's generic code
//! (`backend/ops/modules/conv.rs`), so results are unchanged there.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::ops::conv::{calculate_padding_out, pad_asymmetric_conv_input};
use burn_backend::ops::{ConvOptions, ConvTransposeOptions, FloatTensorOps, ModuleOps};
use burn_backend::{DType, TensorMetadata};
use burn_std::{Bytes, Shape, Slice};

use crate::{Flex, FlexTensor, Layout};

/// Whether the direct depthwise kernels apply: one input and one output channel per group,
/// more than one group, symmetric padding, and a dtype they are written for.
pub(crate) fn is_depthwise_2d(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> bool {
    let x_shape = x.layout().shape();
    let w_shape = weight.layout().shape();
    let channels = x_shape[1];
    options.groups > 1
        && options.groups == channels
        && w_shape[0] == channels
        && w_shape[1] == 1
        && !options.is_asymmetric()
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && x.dtype() == weight.dtype()
}

/// Whether the im2col + GEMM weight gradient applies: an ungrouped convolution with symmetric
/// padding, f32/f64.
pub(crate) fn is_dense_2d(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> bool {
    options.groups == 1
        && x.layout().shape()[1] == weight.layout().shape()[1]
        && !options.is_asymmetric()
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && x.dtype() == weight.dtype()
}

/// Gradient of `conv2d` with respect to its weight.
pub(crate) fn conv2d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: ConvOptions<2>,
) -> FlexTensor {
    if is_depthwise_2d(&x, &weight, &options) && output_grad.dtype() == x.dtype() {
        let kernel = [weight.layout().shape()[2], weight.layout().shape()[3]];
        return match x.dtype() {
            DType::F64 => depthwise_weight_grad::<f64>(&x, &output_grad, kernel, &options),
            _ => depthwise_weight_grad::<f32>(&x, &output_grad, kernel, &options),
        };
    }
    if is_dense_2d(&x, &weight, &options) && output_grad.dtype() == x.dtype() {
        let w = weight.layout().shape();
        let w_shape = [w[0], w[1], w[2], w[3]];
        return match x.dtype() {
            DType::F64 => dense_weight_grad::<f64>(&x, &output_grad, w_shape, &options),
            _ => dense_weight_grad::<f32>(&x, &output_grad, w_shape, &options),
        };
    }
    generic::conv2d_weight_backward(x, weight, output_grad, options)
}

/// Gradient of `conv2d` with respect to its input.
pub(crate) fn conv2d_x_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: ConvOptions<2>,
) -> FlexTensor {
    if is_depthwise_2d(&x, &weight, &options) && output_grad.dtype() == x.dtype() {
        let x_shape = x.layout().shape();
        let in_size = [x_shape[2], x_shape[3]];
        return match x.dtype() {
            DType::F64 => depthwise_x_grad::<f64>(&weight, &output_grad, in_size, &options),
            _ => depthwise_x_grad::<f32>(&weight, &output_grad, in_size, &options),
        };
    }
    generic::conv2d_x_backward(x, weight, output_grad, options)
}

/// The element types of the direct kernels.
trait Real:
    num_traits::Float + bytemuck::Pod + burn_backend::Element + Send + Sync + core::iter::Sum
{
}
impl Real for f32 {}
impl Real for f64 {}

/// Half-open range of output positions `o` whose input index `o·stride + k·dilation − pad`
/// lies in `[0, in_size)` (as burn-flex's forward depthwise kernel computes it).
fn valid_out_range(
    k: usize,
    dilation: usize,
    pad: usize,
    stride: usize,
    in_size: usize,
    out_size: usize,
) -> (usize, usize) {
    let offset = k * dilation;
    let start = if offset >= pad {
        0
    } else {
        (pad - offset).div_ceil(stride)
    };
    let threshold = in_size + pad;
    let end = if offset >= threshold {
        0
    } else {
        (threshold - offset).div_ceil(stride)
    };
    let end = end.min(out_size);
    (start.min(end), end)
}

/// `Σ a[i]·b[i]` with eight independent accumulators, so the loop vectorises without
/// reassociating a single running sum.
#[inline]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::zero(); 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (xa, xb) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] = acc[l] + xa[l] * xb[l];
        }
    }
    let tail: T = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&p, &q)| p * q)
        .sum();
    acc.iter().copied().sum::<T>() + tail
}

/// Geometry shared by both kernels.
struct Geometry {
    batch: usize,
    channels: usize,
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
    oh_ranges: Vec<(usize, usize)>,
    ow_ranges: Vec<(usize, usize)>,
}

impl Geometry {
    fn new(
        batch: usize,
        channels: usize,
        in_size: [usize; 2],
        out_size: [usize; 2],
        kernel: [usize; 2],
        options: &ConvOptions<2>,
    ) -> Self {
        let [in_h, in_w] = in_size;
        let [out_h, out_w] = out_size;
        let stride = options.stride;
        let pad = options.padding_begin();
        let dilation = options.dilation;
        let oh_ranges = (0..kernel[0])
            .map(|k| valid_out_range(k, dilation[0], pad[0], stride[0], in_h, out_h))
            .collect();
        let ow_ranges = (0..kernel[1])
            .map(|k| valid_out_range(k, dilation[1], pad[1], stride[1], in_w, out_w))
            .collect();
        Self {
            batch,
            channels,
            in_h,
            in_w,
            out_h,
            out_w,
            stride,
            pad,
            dilation,
            oh_ranges,
            ow_ranges,
        }
    }

    /// First input column read by output column `ox0` at kernel column `kx` (in range).
    #[inline]
    fn in_col(&self, ox: usize, kx: usize) -> usize {
        ox * self.stride[1] + kx * self.dilation[1] - self.pad[1]
    }

    #[inline]
    fn in_row(&self, oy: usize, ky: usize) -> usize {
        oy * self.stride[0] + ky * self.dilation[0] - self.pad[0]
    }
}

/// Runs `work(i, chunk)` over consecutive `chunk_len`-sized pieces of `out`, in parallel
/// where rayon is enabled.
fn for_each_chunk<T: Send>(out: &mut [T], chunk_len: usize, work: impl Fn(usize, &mut [T]) + Sync) {
    if chunk_len == 0 {
        return;
    }
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, chunk)| work(i, chunk));
    }
    #[cfg(not(feature = "rayon"))]
    for (i, chunk) in out.chunks_mut(chunk_len).enumerate() {
        work(i, chunk);
    }
}

fn depthwise_weight_grad<T: Real>(
    x: &FlexTensor,
    output_grad: &FlexTensor,
    kernel: [usize; 2],
    options: &ConvOptions<2>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let g = output_grad.to_contiguous();
    let xs = x.layout().shape();
    let gs = g.layout().shape();
    let geo = Geometry::new(
        xs[0],
        xs[1],
        [xs[2], xs[3]],
        [gs[2], gs[3]],
        kernel,
        options,
    );
    let x_data: &[T] = x.storage();
    let g_data: &[T] = g.storage();
    let k_len = kernel[0] * kernel[1];
    let in_plane = geo.in_h * geo.in_w;
    let out_plane = geo.out_h * geo.out_w;
    let mut grad = vec![T::zero(); geo.channels * k_len];

    for_each_chunk(&mut grad, k_len, |c, w_grad: &mut [T]| {
        for b in 0..geo.batch {
            let plane = b * geo.channels + c;
            let xp = &x_data[plane * in_plane..(plane + 1) * in_plane];
            let gp = &g_data[plane * out_plane..(plane + 1) * out_plane];
            for ky in 0..kernel[0] {
                let (oy0, oy1) = geo.oh_ranges[ky];
                for kx in 0..kernel[1] {
                    let (ox0, ox1) = geo.ow_ranges[kx];
                    if ox0 >= ox1 {
                        continue;
                    }
                    let mut acc = T::zero();
                    for oy in oy0..oy1 {
                        let x_row = &xp[geo.in_row(oy, ky) * geo.in_w..][..geo.in_w];
                        let g_row = &gp[oy * geo.out_w + ox0..oy * geo.out_w + ox1];
                        let ix0 = geo.in_col(ox0, kx);
                        if geo.stride[1] == 1 {
                            acc = acc + dot(&x_row[ix0..ix0 + (ox1 - ox0)], g_row);
                        } else {
                            acc = acc
                                + g_row
                                    .iter()
                                    .zip(x_row[ix0..].iter().step_by(geo.stride[1]))
                                    .map(|(&gv, &xv)| gv * xv)
                                    .sum::<T>();
                        }
                    }
                    w_grad[ky * kernel[1] + kx] = w_grad[ky * kernel[1] + kx] + acc;
                }
            }
        }
    });

    let shape = Shape::from(vec![geo.channels, 1, kernel[0], kernel[1]]);
    FlexTensor::new(Bytes::from_elems(grad), Layout::contiguous(shape), x.dtype())
}

/// Output pixels per im2col chunk of the dense weight gradient: bounds the column buffer to
/// `c_in · kh · kw · DENSE_CHUNK_PIXELS` elements.
const DENSE_CHUNK_PIXELS: usize = 4096;

/// `dW[co, (ci, ky, kx)] = Σ_b Σ_p g[b, co, p] · col_b[(ci, ky, kx), p]`: one GEMM per batch item
/// and chunk of output rows, with `col` the im2col matrix of the input (zero where the kernel
/// reads padding). A 1×1 convolution with stride 1 and no padding needs no im2col: the input
/// plane is the column matrix. (Upstream computes this as a `conv2d` whose kernel is the output
/// gradient, which runs as scalar plane accumulation with a feature-map-sized kernel.)
fn dense_weight_grad<T: Real>(
    x: &FlexTensor,
    output_grad: &FlexTensor,
    w_shape: [usize; 4],
    options: &ConvOptions<2>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let g = output_grad.to_contiguous();
    let [c_out, c_in, kh, kw] = w_shape;
    let xs = x.layout().shape();
    let gs = g.layout().shape();
    let geo = Geometry::new(xs[0], c_in, [xs[2], xs[3]], [gs[2], gs[3]], [kh, kw], options);
    let x_data: &[T] = x.storage();
    let g_data: &[T] = g.storage();
    let j_len = c_in * kh * kw;
    let in_plane = geo.in_h * geo.in_w;
    let out_plane = geo.out_h * geo.out_w;
    let mut grad = vec![T::zero(); c_out * j_len];
    let shape = Shape::from(vec![c_out, c_in, kh, kw]);
    if out_plane == 0 || j_len == 0 || c_out == 0 {
        return FlexTensor::new(Bytes::from_elems(grad), Layout::contiguous(shape), x.dtype());
    }
    #[cfg(feature = "rayon")]
    let parallelism = if c_out * j_len * out_plane >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    #[cfg(not(feature = "rayon"))]
    let parallelism = gemm::Parallelism::None;
    // `grad[co, j] += Σ_l gt[l, co] · rhs[l, j]`: the left operand is the output gradient
    // transposed to pixel-major (`gt`, column-major for GEMM) and the right one column-major too,
    // the layouts gemm multiplies without packing (it packs a row-major operand element by
    // element, which cost more than the multiplication here).
    let accumulate = |grad: &mut [T], gt: &[T], rhs: &[T], rhs_cs: usize, k: usize| {
        // SAFETY: every index read or written lies inside the three slices: `grad` is
        // `c_out × j_len` (row stride `j_len`); `gt` is `k × c_out` (row stride `c_out`); `rhs`
        // holds `k × j_len` elements, rows adjacent, columns `rhs_cs` apart.
        unsafe {
            gemm::gemm(
                c_out,
                j_len,
                k,
                grad.as_mut_ptr(),
                1,
                j_len as isize,
                true,
                gt.as_ptr(),
                c_out as isize,
                1,
                rhs.as_ptr(),
                rhs_cs as isize,
                1,
                T::one(),
                T::one(),
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    // `gt[l, co] = g[co, first + l]` for `len` pixels.
    let transpose = |gt: &mut [T], gb: &[T], first: usize, len: usize| {
        for (co, row) in gb.chunks_exact(out_plane).enumerate() {
            for (l, &v) in row[first..first + len].iter().enumerate() {
                gt[l * c_out + co] = v;
            }
        }
    };
    let pointwise = kh == 1 && kw == 1 && geo.stride == [1, 1] && geo.pad == [0, 0] && in_plane == out_plane;
    let rows_per_chunk = (DENSE_CHUNK_PIXELS / geo.out_w).clamp(1, geo.out_h);
    let mut col = if pointwise { Vec::new() } else { vec![T::zero(); j_len * rows_per_chunk * geo.out_w] };
    let mut gt = vec![T::zero(); c_out * if pointwise { out_plane } else { rows_per_chunk * geo.out_w }];
    for b in 0..geo.batch {
        let xb = &x_data[b * c_in * in_plane..(b + 1) * c_in * in_plane];
        let gb = &g_data[b * c_out * out_plane..(b + 1) * c_out * out_plane];
        if pointwise {
            // rhs[l, ci] = x[b, ci, l].
            transpose(&mut gt, gb, 0, out_plane);
            accumulate(&mut grad, &gt, xb, in_plane, out_plane);
            continue;
        }
        for oy0 in (0..geo.out_h).step_by(rows_per_chunk) {
            let rows = rows_per_chunk.min(geo.out_h - oy0);
            let p = rows * geo.out_w;
            let col = &mut col[..j_len * p];
            for_each_chunk(col, p, |j, dst: &mut [T]| {
                let (ci, ky, kx) = (j / (kh * kw), (j / kw) % kh, j % kw);
                let xp = &xb[ci * in_plane..(ci + 1) * in_plane];
                let (vy0, vy1) = geo.oh_ranges[ky];
                let (vx0, vx1) = geo.ow_ranges[kx];
                for (r, row) in dst.chunks_mut(geo.out_w).enumerate() {
                    let oy = oy0 + r;
                    if oy < vy0 || oy >= vy1 || vx0 >= vx1 {
                        row.fill(T::zero());
                        continue;
                    }
                    row[..vx0].fill(T::zero());
                    row[vx1..].fill(T::zero());
                    let x_row = &xp[geo.in_row(oy, ky) * geo.in_w..][..geo.in_w];
                    let ix0 = geo.in_col(vx0, kx);
                    if geo.stride[1] == 1 {
                        row[vx0..vx1].copy_from_slice(&x_row[ix0..ix0 + (vx1 - vx0)]);
                    } else {
                        for (d, &v) in row[vx0..vx1].iter_mut().zip(x_row[ix0..].iter().step_by(geo.stride[1])) {
                            *d = v;
                        }
                    }
                }
            });
            // rhs[l, j] = col[j, l].
            transpose(&mut gt, gb, oy0 * geo.out_w, p);
            accumulate(&mut grad, &gt[..p * c_out], col, p, p);
        }
    }
    FlexTensor::new(Bytes::from_elems(grad), Layout::contiguous(shape), x.dtype())
}

fn depthwise_x_grad<T: Real>(
    weight: &FlexTensor,
    output_grad: &FlexTensor,
    in_size: [usize; 2],
    options: &ConvOptions<2>,
) -> FlexTensor {
    let w = weight.to_contiguous();
    let g = output_grad.to_contiguous();
    let ws = w.layout().shape();
    let gs = g.layout().shape();
    let kernel = [ws[2], ws[3]];
    let geo = Geometry::new(gs[0], gs[1], in_size, [gs[2], gs[3]], kernel, options);
    let w_data: &[T] = w.storage();
    let g_data: &[T] = g.storage();
    let k_len = kernel[0] * kernel[1];
    let in_plane = geo.in_h * geo.in_w;
    let out_plane = geo.out_h * geo.out_w;
    let mut grad = vec![T::zero(); geo.batch * geo.channels * in_plane];

    for_each_chunk(&mut grad, in_plane, |plane, dx: &mut [T]| {
        let c = plane % geo.channels;
        let wc = &w_data[c * k_len..(c + 1) * k_len];
        let gp = &g_data[plane * out_plane..(plane + 1) * out_plane];
        for ky in 0..kernel[0] {
            let (oy0, oy1) = geo.oh_ranges[ky];
            for oy in oy0..oy1 {
                let row = geo.in_row(oy, ky) * geo.in_w;
                let g_row = &gp[oy * geo.out_w..(oy + 1) * geo.out_w];
                for kx in 0..kernel[1] {
                    let (ox0, ox1) = geo.ow_ranges[kx];
                    if ox0 >= ox1 {
                        continue;
                    }
                    let wv = wc[ky * kernel[1] + kx];
                    let ix0 = geo.in_col(ox0, kx);
                    let g_part = &g_row[ox0..ox1];
                    if geo.stride[1] == 1 {
                        let dx_row = &mut dx[row + ix0..row + ix0 + (ox1 - ox0)];
                        for (d, &gv) in dx_row.iter_mut().zip(g_part) {
                            *d = *d + wv * gv;
                        }
                    } else {
                        let dx_row = &mut dx[row + ix0..row + geo.in_w];
                        for (d, &gv) in dx_row.iter_mut().step_by(geo.stride[1]).zip(g_part) {
                            *d = *d + wv * gv;
                        }
                    }
                }
            }
        }
    });

    let shape = Shape::from(vec![geo.batch, geo.channels, geo.in_h, geo.in_w]);
    FlexTensor::new(Bytes::from_elems(grad), Layout::contiguous(shape), g.dtype())
}

/// Verbatim copy of burn-backend 0.22.1's generic conv2d backward (its functions are
/// crate-private there), used for every case the direct kernels do not cover.
mod generic {
    use super::*;

    type B = Flex;

    pub(super) fn conv2d_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        if options.is_asymmetric() {
            let input_shape = x.shape();
            let padding = options.padding;
            let (x, options) = pad_asymmetric_conv_input::<B, 2>(x, options);
            let grad = conv2d_x_backward_symmetric(x, weight, output_grad, options);
            let mut ranges = input_shape
                .iter()
                .map(|&size| Slice::from(0..size))
                .collect::<Vec<_>>();
            for (dim, (begin, _)) in padding.iter().enumerate() {
                ranges[dim + 2] = Slice::from(*begin..*begin + input_shape[dim + 2]);
            }
            return B::float_slice(grad, &ranges);
        }
        conv2d_x_backward_symmetric(x, weight, output_grad, options)
    }

    fn conv2d_x_backward_symmetric(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let weight_shape = weight.shape();
        let [_batch_size, _channels_in, height_in, width_in] = x.shape().dims();
        let [_, _, height_out, width_out] = output_grad.shape().dims();
        let [_channels_out, _, kernel_size_1, kernel_size_2] = weight_shape.dims();
        let padding_1_out = calculate_padding_out(
            kernel_size_1,
            options.stride[0],
            options.padding_begin()[0],
            options.dilation[0],
            height_in,
            height_out,
        );
        let padding_2_out = calculate_padding_out(
            kernel_size_2,
            options.stride[1],
            options.padding_begin()[1],
            options.dilation[1],
            width_in,
            width_out,
        );
        B::conv_transpose2d(
            output_grad,
            weight,
            None,
            ConvTransposeOptions::new(
                options.stride,
                options.padding_begin(),
                [padding_1_out, padding_2_out],
                options.dilation,
                options.groups,
            ),
        )
    }

    pub(super) fn conv2d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let (x, options) = pad_asymmetric_conv_input::<B, 2>(x, options);
        let weight_dtype = weight.dtype();
        let weight_shape = weight.shape();
        let weight_device = weight.device();
        match options.groups == 1 {
            true => conv2d_weight_grad_no_groups(x, output_grad, weight_shape, options),
            false => conv2d_weight_grad_groups(
                x,
                B::float_zeros(weight_shape, &weight_device, weight_dtype.into()),
                output_grad,
                options,
            ),
        }
    }

    fn conv2d_weight_grad_no_groups(
        x: FlexTensor,
        output_grad: FlexTensor,
        weight_shape: Shape,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let x_swapped = B::float_swap_dims(x, 0, 1);
        let output_grad_swapped = B::float_swap_dims(output_grad, 0, 1);
        let weight_grad_swapped = B::conv2d(
            x_swapped,
            output_grad_swapped,
            None,
            ConvOptions::new(options.dilation, options.padding_begin(), options.stride, 1),
        );
        let mut weight_grad = B::float_swap_dims(weight_grad_swapped, 0, 1);
        if weight_grad.shape() != weight_shape {
            let slices = vec![
                Slice::from(0..weight_shape[0]),
                Slice::from(0..weight_shape[1]),
                Slice::from(0..weight_shape[2]),
                Slice::from(0..weight_shape[3]),
            ];
            weight_grad = B::float_slice(weight_grad, &slices);
        }
        weight_grad
    }

    fn conv2d_weight_grad_groups(
        x: FlexTensor,
        mut weight_grad: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let [channels_out, increment_ci, kernel_size_1, kernel_size_2] =
            weight_grad.shape().dims();
        let increment_co = channels_out / options.groups;
        let x_swapped = B::float_swap_dims(x, 0, 1);
        let output_grad_swapped = B::float_swap_dims(output_grad, 0, 1);
        for g in 0..options.groups {
            let start_idx_ci = g * increment_ci;
            let end_idx_ci = (g + 1) * increment_ci;
            let start_idx_co = g * increment_co;
            let end_idx_co = (g + 1) * increment_co;
            let x_slice = vec![Slice::new(
                start_idx_ci as isize,
                Some(end_idx_ci as isize),
                1,
            )];
            let x = B::float_slice(x_swapped.clone(), &x_slice);
            let grad_slice = vec![Slice::new(
                start_idx_co as isize,
                Some(end_idx_co as isize),
                1,
            )];
            let grad = B::float_slice(output_grad_swapped.clone(), &grad_slice);
            let mut weight_grad_tmp = B::conv2d(
                x,
                grad,
                None,
                ConvOptions::new(options.dilation, options.padding_begin(), options.stride, 1),
            );
            weight_grad_tmp = B::float_swap_dims(weight_grad_tmp, 0, 1);
            let [_, _, kernel_size_1_tmp, kernel_size_2_tmp] = weight_grad_tmp.shape().dims();
            if kernel_size_1_tmp != kernel_size_1 || kernel_size_2_tmp != kernel_size_2 {
                let slices = vec![
                    Slice::from(0..increment_co),
                    Slice::from(0..increment_ci),
                    Slice::from(0..kernel_size_1),
                    Slice::from(0..kernel_size_2),
                ];
                weight_grad_tmp = B::float_slice(weight_grad_tmp, &slices);
            }
            weight_grad = B::float_slice_assign(
                weight_grad,
                &[
                    Slice::from(start_idx_co..end_idx_co),
                    Slice::from(0..increment_ci),
                    Slice::from(0..kernel_size_1),
                    Slice::from(0..kernel_size_2),
                ],
                weight_grad_tmp,
            );
        }
        weight_grad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: the definition, summed naively over every tap, padding included.
    fn reference(
        x: &[f64],
        w: &[f64],
        g: &[f64],
        dims: [usize; 4],
        kernel: [usize; 2],
        out: [usize; 2],
        o: &ConvOptions<2>,
    ) -> (Vec<f64>, Vec<f64>) {
        let [b, c, h, wd] = dims;
        let mut dw = vec![0.0; c * kernel[0] * kernel[1]];
        let mut dx = vec![0.0; b * c * h * wd];
        let p = o.padding_begin();
        for bi in 0..b {
            for ci in 0..c {
                for oy in 0..out[0] {
                    for ox in 0..out[1] {
                        let gv = g[((bi * c + ci) * out[0] + oy) * out[1] + ox];
                        for ky in 0..kernel[0] {
                            for kx in 0..kernel[1] {
                                let iy = (oy * o.stride[0] + ky * o.dilation[0]) as isize - p[0] as isize;
                                let ix = (ox * o.stride[1] + kx * o.dilation[1]) as isize - p[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xi = ((bi * c + ci) * h + iy as usize) * wd + ix as usize;
                                let wi = (ci * kernel[0] + ky) * kernel[1] + kx;
                                dw[wi] += x[xi] * gv;
                                dx[xi] += w[wi] * gv;
                            }
                        }
                    }
                }
            }
        }
        (dw, dx)
    }

    #[test]
    fn depthwise_grads_match_the_definition() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        for (k, s, p, d, h) in [(3, 1, 1, 1, 9), (5, 2, 2, 1, 11), (3, 2, 1, 1, 8), (3, 1, 2, 2, 7)] {
            let (b, c) = (2, 3);
            let o = ConvOptions::new([s, s], [p, p], [d, d], c);
            let out = (h + 2 * p - d * (k - 1) - 1) / s + 1;
            let x: Vec<f64> = (0..b * c * h * h).map(|_| next()).collect();
            let w: Vec<f64> = (0..c * k * k).map(|_| next()).collect();
            let g: Vec<f64> = (0..b * c * out * out).map(|_| next()).collect();
            let tensor = |v: &Vec<f64>, s: Vec<usize>| {
                FlexTensor::new(Bytes::from_elems(v.clone()), Layout::contiguous(Shape::from(s)), DType::F64)
            };
            let xt = tensor(&x, vec![b, c, h, h]);
            let wt = tensor(&w, vec![c, 1, k, k]);
            let gt = tensor(&g, vec![b, c, out, out]);
            let (dw, dx) = reference(&x, &w, &g, [b, c, h, h], [k, k], [out, out], &o);
            let got_w = conv2d_weight_backward(xt.clone(), wt.clone(), gt.clone(), o.clone());
            let got_x = conv2d_x_backward(xt, wt, gt, o);
            for (a, e) in got_w.storage::<f64>().iter().zip(&dw) {
                assert!((a - e).abs() < 1e-12, "weight grad {a} vs {e} (k{k} s{s} p{p} d{d})");
            }
            assert_eq!(got_x.layout().shape().to_vec(), vec![b, c, h, h]);
            for (a, e) in got_x.storage::<f64>().iter().zip(&dx) {
                assert!((a - e).abs() < 1e-12, "input grad {a} vs {e} (k{k} s{s} p{p} d{d})");
            }
        }
    }

    #[test]
    fn dense_weight_grads_match_the_definition() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        // (kernel, stride, padding, dilation, height); width = height + 3.
        for (k, s, p, d, h) in [(1, 1, 0, 1, 9), (3, 1, 1, 1, 9), (3, 2, 1, 1, 8), (3, 1, 2, 2, 7), (1, 2, 0, 1, 6), (5, 1, 2, 1, 70)] {
            let (b, ci, co, wd) = (2, 3, 4, h + 3);
            let o = ConvOptions::new([s, s], [p, p], [d, d], 1);
            let out = |n: usize| (n + 2 * p - d * (k - 1) - 1) / s + 1;
            let (oh, ow) = (out(h), out(wd));
            let x: Vec<f64> = (0..b * ci * h * wd).map(|_| next()).collect();
            let w: Vec<f64> = (0..co * ci * k * k).map(|_| next()).collect();
            let g: Vec<f64> = (0..b * co * oh * ow).map(|_| next()).collect();
            let mut dw = vec![0.0; co * ci * k * k];
            for bi in 0..b {
                for o_c in 0..co {
                    for i_c in 0..ci {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let gv = g[((bi * co + o_c) * oh + oy) * ow + ox];
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let iy = (oy * s + ky * d) as isize - p as isize;
                                        let ix = (ox * s + kx * d) as isize - p as isize;
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                            continue;
                                        }
                                        let xv = x[((bi * ci + i_c) * h + iy as usize) * wd + ix as usize];
                                        dw[((o_c * ci + i_c) * k + ky) * k + kx] += xv * gv;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let tensor = |v: &Vec<f64>, s: Vec<usize>| {
                FlexTensor::new(Bytes::from_elems(v.clone()), Layout::contiguous(Shape::from(s)), DType::F64)
            };
            let got = conv2d_weight_backward(
                tensor(&x, vec![b, ci, h, wd]),
                tensor(&w, vec![co, ci, k, k]),
                tensor(&g, vec![b, co, oh, ow]),
                o,
            );
            assert_eq!(got.layout().shape().to_vec(), vec![co, ci, k, k]);
            for (a, e) in got.storage::<f64>().iter().zip(&dw) {
                assert!((a - e).abs() < 1e-10, "weight grad {a} vs {e} (k{k} s{s} p{p} d{d})");
            }
        }
    }

    /// Timing, not a check: the dense weight gradient against upstream's generic one on shapes of a
    /// U-Net-EfficientNet at 256² (`cargo test --release --lib conv_backward_timing -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn conv_backward_timing() {
        let tensor = |s: Vec<usize>| {
            let n: usize = s.iter().product();
            let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
            FlexTensor::new(Bytes::from_elems(v), Layout::contiguous(Shape::from(s)), DType::F32)
        };
        // (batch, c_in, c_out, side, kernel): pointwise expand/project, decoder 3×3.
        for (b, ci, co, side, k) in [(4, 24, 144, 64, 1), (4, 144, 24, 64, 1), (4, 48, 16, 128, 3), (4, 16, 16, 256, 3)] {
            let x = tensor(vec![b, ci, side, side]);
            let w = tensor(vec![co, ci, k, k]);
            let g = tensor(vec![b, co, side, side]);
            let o = ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], 1);
            let time = |f: &dyn Fn() -> FlexTensor| {
                f();
                let t = std::time::Instant::now();
                for _ in 0..3 {
                    f();
                }
                t.elapsed().as_secs_f64() / 3.0 * 1e3
            };
            let ours = time(&|| conv2d_weight_backward(x.clone(), w.clone(), g.clone(), o.clone()));
            let upstream = time(&|| generic::conv2d_weight_backward(x.clone(), w.clone(), g.clone(), o.clone()));
            println!("dW b{b} {ci}→{co} {side}² k{k}: {ours:.1} ms (upstream {upstream:.1} ms)");
        }
    }
}
