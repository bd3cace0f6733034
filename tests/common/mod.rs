//! Helpers shared by the slide tests (tests/slide.rs, tests/formats.rs): where the real SVS and the
//! test venv's Python are, opening and reading whole levels, PSNR.

use ftuscope::slide::source::FileSource;
use ftuscope::slide::{ByteSource, Slide};
use futures_lite::future::block_on;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The real SVS (OpenSlide's CMU-1-Small-Region.svs, CC0), committed in tests/data/.
pub fn cmu() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/CMU-1-Small-Region.svs")
}

/// The Python with the peers (tifffile, imagecodecs, OpenSlide, wsidicomizer) that `make test` installs.
pub fn python() -> String {
    std::env::var("FTUSCOPE_PYTHON")
        .unwrap_or_else(|_| format!("{}/.cache/ftuscope/py/bin/python", std::env::var("HOME").unwrap_or_default()))
}

/// Opens a slide file, panicking with the reader's message.
pub fn open(path: &Path) -> Slide {
    let src: Arc<dyn ByteSource> = Arc::new(FileSource::open(path).unwrap());
    block_on(Slide::open(src)).unwrap_or_else(|e| panic!("{e}"))
}

/// All of `level`.
pub fn whole(slide: &Slide, level: usize) -> RgbImage {
    let l = &slide.levels()[level];
    block_on(slide.read_region(level, 0, 0, l.width, l.height)).unwrap_or_else(|e| panic!("{e}"))
}

/// Peak signal-to-noise ratio in dB of two images of the same size.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.as_raw().len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-12)).log10()
}
