//! Synthetic kidney slides with exact ground truth. A [`Scene`] is laid out once from a seed —
//! tissue pieces, cortex and medulla, glomeruli (with their outlines), tubules, vessels and
//! glomerulus-sized hard negatives — and any rectangle of it can then be rendered on demand, so
//! slides of any size are produced tile by tile in bounded memory.

#[cfg(not(target_arch = "wasm32"))]
mod dataset;
mod render;
mod scene;

#[cfg(not(target_arch = "wasm32"))]
pub use dataset::{DatasetOptions, SlideSummary, write_dataset};
pub use scene::{Glomerulus, Scene, Stain};

use burn::config::Config;

/// What a synthetic slide looks like and how big it is.
#[derive(Config, Debug)]
pub struct SynthConfig {
    /// Width in pixels (level 0, 0.5 µm per pixel).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Seed: the same seed gives the same slide, pixel for pixel.
    #[config(default = 1)]
    pub seed: u64,
    /// Fraction of glomeruli left out of the annotations (real annotations miss some too).
    #[config(default = 0.0)]
    pub unannotated_fraction: f64,
    /// Round, glomerulus-sized structures that are not glomeruli, per glomerulus.
    #[config(default = 0.5)]
    pub hard_negatives_per_glomerulus: f64,
    /// Tissue piece size relative to the default (area ∝ square: 0.7 ≈ 20% of the slide, 1.0 ≈ 40%,
    /// 1.25 ≈ 60%), for benchmarks whose cost should follow tissue, not slide area.
    #[config(default = 1.0)]
    pub tissue_scale: f64,
}

/// Pixel size of every synthetic slide's level 0, in µm (the HuBMAP scanners' 0.5 µm/px).
pub const PIXEL_SIZE_UM: f64 = 0.5;

#[cfg(test)]
mod tests;
