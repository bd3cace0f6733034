//! What people see of a probability map: the image tinted where the network is confident, with a
//! faint heat map below the threshold so its hesitation shows too.

use image::{GrayImage, Rgb, RgbImage, RgbaImage};

/// Colour of glomeruli in overlays (a saturated green that stands out on pink/purple stains).
pub const OVERLAY_COLOUR: [u8; 3] = [0, 230, 64];

/// `image` tinted in [`OVERLAY_COLOUR`] by `probs` (0–255 per pixel, the image's size or
/// smaller), as RGBA ready for a canvas: pixels at or above `threshold` (0..1) with opacity
/// `alpha`, the others as a faint heat map (opacity `alpha·p/2`). Pixels `probs` does not cover are
/// left as they are.
pub fn overlay(image: &RgbImage, probs: &GrayImage, threshold: f32, alpha: f32) -> RgbaImage {
    let alpha = alpha.clamp(0.0, 1.0);
    RgbaImage::from_fn(image.width(), image.height(), |x, y| {
        let Rgb(px) = *image.get_pixel(x, y);
        let p = if x < probs.width() && y < probs.height() { probs.get_pixel(x, y).0[0] as f32 / 255.0 } else { 0.0 };
        let a = if p >= threshold { alpha } else { alpha * p / 2.0 };
        let blend = |c: usize| (px[c] as f32 * (1.0 - a) + OVERLAY_COLOUR[c] as f32 * a).round() as u8;
        image::Rgba([blend(0), blend(1), blend(2), 255])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn overlay_tints_by_probability() {
        let image = RgbImage::from_pixel(3, 1, Rgb([100, 100, 100]));
        let probs = GrayImage::from_fn(2, 1, |x, _| Luma([[0, 230][x as usize]]));
        let o = overlay(&image, &probs, 0.5, 1.0);
        assert_eq!(o.get_pixel(0, 0).0, [100, 100, 100, 255], "p = 0 leaves the pixel alone");
        assert_eq!(o.get_pixel(1, 0).0, [0, 230, 64, 255], "above the threshold: full tint");
        assert_eq!(o.get_pixel(2, 0).0, [100, 100, 100, 255], "outside the probabilities: untouched");
        let faint = overlay(&image, &GrayImage::from_pixel(1, 1, Luma([102])), 0.5, 1.0);
        assert_eq!(faint.get_pixel(0, 0).0, [80, 126, 93, 255], "below: faint tint, opacity p/2");
    }
}
