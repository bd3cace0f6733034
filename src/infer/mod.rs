//! The whole-slide engine, the one inference path of the app, the CLI and training's validation:
//! plan windows over tissue ([`plan_slide`]), read each window from the cheapest sufficient level
//! and resize it to the network's input, run batches through a [`TileModel`] (a trained
//! [`NetModel`] with the manifest's normalisation and flip TTA), blend overlapping windows
//! ([`Blender`]), report progress and stop when cancelled ([`SlideRun`]), and give a
//! [`Prediction`] with glomeruli, RLE, GeoJSON and an overview.
//!
//! Words: a *window* is the level-0 square read from the slide (`window` pixels on a side), the
//! network's *input* is what it is resized to (`input_size`²); *tile* is kept for TIFF tiles.

mod blend;
mod net;
mod plan;
mod prediction;
mod stain;
mod wsi;

pub use blend::{Blend, Blender};
pub use net::{NetModel, TileModel};
pub use plan::{Plan, PlanConfig, Window, plan_slide, saturation, tissue_mask};
pub use prediction::{Glomerulus, ObjectFilter, Prediction, Timings};
pub use stain::{LabAccumulator, StainNormaliser};
pub use wsi::{NewWindows, Progress, SlideRun, Update, WindowJob, WsiConfig, predict_slide, slide_colours};

/// Errors while segmenting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot work (e.g. a window smaller than its overlap).
    #[error("invalid segmentation settings: {0}")]
    Config(String),
    /// The compute backend failed (device lost, out of memory, shader rejected).
    #[error("the compute backend failed: {0}")]
    Backend(String),
    /// Reading the slide failed.
    #[error(transparent)]
    Slide(#[from] crate::slide::Error),
    /// The model cannot be used.
    #[error(transparent)]
    Model(#[from] crate::model::Error),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}
