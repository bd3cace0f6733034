//! Probability masks and what people see of them: thresholded fractions, grey-level mask images and
//! coloured overlays on the source image.

use image::{GrayImage, Luma, Rgb, RgbImage, RgbaImage};

/// Colour of glomeruli in overlays (a saturated green that stands out on pink/purple stains).
pub const OVERLAY_COLOUR: [u8; 3] = [0, 230, 64];

/// Per-pixel glomerulus probabilities in `0..=1`, row-major, at the resolution of the image segmented.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbMask {
    width: u32,
    height: u32,
    data: Vec<f32>,
}

impl ProbMask {
    /// An all-zero mask.
    pub fn zeros(width: u32, height: u32) -> Self {
        Self { width, height, data: vec![0.0; width as usize * height as usize] }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Probabilities, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Consumes the mask, returning its probabilities, row-major.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Copies a `w`×`h` block of probabilities, row-major with row stride `stride`, to `(x, y)`.
    /// Parts falling outside the mask are dropped.
    pub fn paste(&mut self, x: u32, y: u32, block: &[f32], stride: usize, w: u32, h: u32) {
        let w = w.min(self.width.saturating_sub(x)) as usize;
        let h = h.min(self.height.saturating_sub(y)) as usize;
        for row in 0..h {
            let src = &block[row * stride..row * stride + w];
            let start = (y as usize + row) * self.width as usize + x as usize;
            self.data[start..start + w].copy_from_slice(src);
        }
    }

    /// The pixels at or above `threshold`.
    pub fn threshold(&self, threshold: f32) -> super::BinaryMask {
        let mut mask = super::BinaryMask::new(self.width, self.height);
        for (i, &p) in self.data.iter().enumerate() {
            if p >= threshold {
                mask.set(i as u32 % self.width, i as u32 / self.width, true);
            }
        }
        mask
    }

    /// Fraction of pixels at or above `threshold`.
    pub fn positive_fraction(&self, threshold: f32) -> f32 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.data.iter().filter(|&&p| p >= threshold).count() as f32 / self.data.len() as f32
    }

    /// The probabilities as an 8-bit grey image (0 → black, 1 → white).
    pub fn to_luma8(&self) -> GrayImage {
        GrayImage::from_fn(self.width, self.height, |x, y| {
            let p = self.data[(y * self.width + x) as usize];
            Luma([(p.clamp(0.0, 1.0) * 255.0).round() as u8])
        })
    }

    /// The image tinted in [`OVERLAY_COLOUR`], as RGBA ready for a canvas: pixels at or above
    /// `threshold` with opacity `alpha`, the others as a faint heat map (opacity `alpha·p/2`), so the
    /// network's confidence shows even where it stays below the threshold. Pixels the mask does not
    /// cover are left as they are.
    pub fn overlay(&self, image: &RgbImage, threshold: f32, alpha: f32) -> RgbaImage {
        let alpha = alpha.clamp(0.0, 1.0);
        RgbaImage::from_fn(image.width(), image.height(), |x, y| {
            let Rgb(px) = *image.get_pixel(x, y);
            let p = if x < self.width && y < self.height { self.data[(y * self.width + x) as usize] } else { 0.0 };
            let a = if p >= threshold { alpha } else { alpha * p.clamp(0.0, 1.0) / 2.0 };
            let blend = |c: usize| (px[c] as f32 * (1.0 - a) + OVERLAY_COLOUR[c] as f32 * a).round() as u8;
            image::Rgba([blend(0), blend(1), blend(2), 255])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paste_clips_at_the_border() {
        let mut m = ProbMask::zeros(4, 3);
        m.paste(2, 1, &[1.0; 9], 3, 3, 3);
        let ones = m.data().iter().filter(|&&p| p == 1.0).count();
        assert_eq!(ones, 4, "only the 2×2 part inside the mask is written");
        assert_eq!(m.data()[4 + 2], 1.0);
        assert_eq!(m.data()[0], 0.0);
    }

    #[test]
    fn overlay_tints_by_probability() {
        let image = RgbImage::from_pixel(3, 1, Rgb([100, 100, 100]));
        let mut m = ProbMask::zeros(3, 1);
        m.paste(1, 0, &[0.9, 0.4], 2, 2, 1);
        let o = m.overlay(&image, 0.5, 1.0);
        assert_eq!(o.get_pixel(0, 0).0, [100, 100, 100, 255], "p = 0 leaves the pixel alone");
        assert_eq!(o.get_pixel(1, 0).0, [0, 230, 64, 255], "above the threshold: full tint");
        assert_eq!(o.get_pixel(2, 0).0, [80, 126, 93, 255], "below: faint tint, opacity p/2");
        assert!((m.positive_fraction(0.5) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(m.to_luma8().get_pixel(1, 0).0, [230]);
    }
}
