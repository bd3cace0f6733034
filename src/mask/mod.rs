//! Masks and what people do with them: overlays of probabilities, binary masks, the Kaggle
//! HuBMAP run-length encoding, the competition's Dice and object-level precision/recall, polygon
//! rasterisation, QuPath GeoJSON, LabelMe JSON, annotated image folders, and the review of a
//! prediction against annotations (disagreements, decisions, the reviewed set).

mod binary;
mod dataset;
#[cfg(not(target_arch = "wasm32"))]
mod folder;
mod geojson;
mod labelme;
mod metrics;
mod objects;
mod overlay;
mod polygon;
mod review;
mod rle;

pub use binary::BinaryMask;
pub use dataset::DatasetConfig;
#[cfg(not(target_arch = "wasm32"))]
pub use folder::{LabelledImage, Truth, fold_split, list_images, natural_key, read_folder};
pub use geojson::{Annotation, read_annotations, write_annotations};
pub use labelme::{LabelMe, read_labelme, read_outlines};
pub use metrics::{IOU_MATCH, Runs, Scores, dice, dice_rle, mean_dice, rle_objects, score_objects, score_rle};
pub use objects::{Components, Object, Run, components, components_of_rows, douglas_peucker, row_runs, threshold_level};
pub use overlay::{OVERLAY_COLOUR, overlay};
pub use polygon::{Polygon, rasterise};
pub use review::{
    CONFIDENCE, Counts, Decision, Item, ItemKind, Predicted, Review, ReviewError, Reviewed, Status, outline_iou, review,
    reviewed_annotations, status_counts,
};
pub use rle::{RleStream, rle_decode, rle_encode, rle_encode_polygons, rle_runs};

/// Errors in mask formats: run-length encodings and GeoJSON annotations.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// An RLE token is not a positive integer.
    #[error("invalid RLE: token {index} '{token}' is not a positive integer")]
    RleToken {
        /// Position of the token (0-based).
        index: usize,
        /// The token as written.
        token: String,
    },
    /// An RLE has a start without a length.
    #[error("invalid RLE: {0} numbers, expected `start length` pairs")]
    RleOddCount(usize),
    /// A run starts at or before the end of the previous run.
    #[error("invalid RLE: run {index} starts at {start}, not after the previous run's end {previous_end}")]
    RleOrder {
        /// Which run (0-based).
        index: usize,
        /// Its 1-indexed start.
        start: u64,
        /// The previous run's last pixel (1-indexed).
        previous_end: u64,
    },
    /// A run reaches past the last pixel of the image.
    #[error("invalid RLE: run {index} ({start} +{length}) ends past pixel {pixels} of a {width}×{height} image")]
    RleOutside {
        /// Which run (0-based).
        index: usize,
        /// Its 1-indexed start.
        start: u64,
        /// Its length.
        length: u64,
        /// Pixels in the image.
        pixels: u64,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// The text is not GeoJSON of the expected shape.
    #[error("invalid GeoJSON: {0}")]
    GeoJson(String),
    /// A feature has a geometry other than Polygon or MultiPolygon.
    #[error("unsupported GeoJSON geometry '{0}' (expected Polygon or MultiPolygon)")]
    Geometry(String),
    /// The text is not a LabelMe file.
    #[error("invalid LabelMe JSON: {0}")]
    LabelMe(String),
    /// A LabelMe shape other than a polygon or rectangle.
    #[error("unsupported LabelMe shape '{0}' (expected polygon or rectangle)")]
    Shape(String),
    /// A polygon ring has too few points or non-finite coordinates.
    #[error("invalid polygon in feature {feature}: {reason}")]
    Polygon {
        /// Which feature (0-based).
        feature: usize,
        /// What is wrong.
        reason: String,
    },
    /// An annotated image folder that cannot be used (no images, an image without truth, a mask of
    /// the wrong size, an unreadable file).
    #[error("{0}")]
    Folder(String),
}
