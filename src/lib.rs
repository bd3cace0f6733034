//! ftuscope finds glomeruli — the kidney's functional tissue units — in whole-slide histology images.
//!
//! One crate serves two faces: the wasm module behind the browser app (WebGPU, CPU fallback) and the
//! native CLI. Data flows one way through the modules:
//! [`slide`] (pixels in) → [`infer`] (tiling, batching) → [`model`] (networks) → [`mask`] (masks,
//! overlays) → `web` (the wasm facade) or the `ftuscope` binary.

pub mod backend;
pub mod infer;
pub mod mask;
pub mod model;
pub mod rng;
pub mod slide;
pub mod synth;
#[cfg(all(feature = "train", not(target_arch = "wasm32")))]
pub mod train;
#[cfg(any(feature = "tune", target_arch = "wasm32"))]
pub mod tune;

#[cfg(target_arch = "wasm32")]
pub mod web;
