//! Rendering any rectangle of a [`Scene`] into RGB pixels. Every pixel depends only on the scene and
//! its own coordinates, so tiles can be rendered in any order, in parallel, with identical results.

use super::scene::{CELL, Item, Negative, Scene, on_tissue};
use crate::rng::mix;
use image::{Rgb, RgbImage};
use std::f64::consts::TAU;

type Colour = [f32; 3];

fn blend(a: Colour, b: Colour, t: f32) -> Colour {
    let t = t.clamp(0.0, 1.0);
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// A hash of integer coordinates and a salt, uniform in `[0, 1)`.
fn hash01(x: i64, y: i64, salt: u64) -> f32 {
    let h = mix((x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ salt);
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth value noise in `[0, 1)` at feature size `scale` pixels.
fn noise(x: f64, y: f64, scale: f64, salt: u64) -> f32 {
    let (fx, fy) = (x / scale, y / scale);
    let (ix, iy) = (fx.floor() as i64, fy.floor() as i64);
    let (tx, ty) = ((fx - ix as f64) as f32, (fy - iy as f64) as f32);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let a = hash01(ix, iy, salt) + (hash01(ix + 1, iy, salt) - hash01(ix, iy, salt)) * sx;
    let b = hash01(ix, iy + 1, salt) + (hash01(ix + 1, iy + 1, salt) - hash01(ix, iy + 1, salt)) * sx;
    a + (b - a) * sy
}

/// Nuclei scattered on a jittered grid of `cell` pixels: how much of a nucleus covers `(x, y)`
/// (0 = none, 1 = its core). `density` is the fraction of cells holding one.
fn nuclei(x: f64, y: f64, cell: f64, density: f32, radius: f64, salt: u64) -> f32 {
    let (gx, gy) = ((x / cell).floor() as i64, (y / cell).floor() as i64);
    let mut best = 0f32;
    for (cx, cy) in [(gx, gy), (gx + 1, gy), (gx, gy + 1), (gx + 1, gy + 1), (gx - 1, gy), (gx, gy - 1)] {
        if hash01(cx, cy, salt) >= density {
            continue;
        }
        let nx = (cx as f64 + 0.2 + 0.6 * hash01(cx, cy, salt ^ 1) as f64) * cell;
        let ny = (cy as f64 + 0.2 + 0.6 * hash01(cx, cy, salt ^ 2) as f64) * cell;
        let r = radius * (0.8 + 0.4 * hash01(cx, cy, salt ^ 3) as f64);
        let d = (x - nx).hypot(y - ny) / r;
        best = best.max((1.5 - d as f32).clamp(0.0, 1.0));
    }
    best
}

impl Scene {
    /// Renders the `w`×`h` rectangle at `(x0, y0)` of level 0. Outside the slide is glass.
    pub fn render(&self, x0: u32, y0: u32, w: u32, h: u32) -> RgbImage {
        if !self.blurred {
            let mut image = RgbImage::new(w, h);
            for (dx, dy, px) in image.enumerate_pixels_mut() {
                let c = self.pixel(x0 as f64 + dx as f64 + 0.5, y0 as f64 + dy as f64 + 0.5);
                *px = Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8));
            }
            return image;
        }
        // Out of focus: a 3×3 binomial blur over a one-pixel margin, so tiles still join seamlessly.
        let (mw, mh) = (w as usize + 2, h as usize + 2);
        let mut sharp = vec![[0f32; 3]; mw * mh];
        for my in 0..mh {
            for mx in 0..mw {
                sharp[my * mw + mx] = self.pixel(x0 as f64 + mx as f64 - 0.5, y0 as f64 + my as f64 - 0.5);
            }
        }
        RgbImage::from_fn(w, h, |dx, dy| {
            let (cx, cy) = (dx as usize + 1, dy as usize + 1);
            let mut acc = [0f32; 3];
            for (oy, wy) in [(0, 1.0), (1, 2.0), (2, 1.0)] {
                for (ox, wx) in [(0, 1.0), (1, 2.0), (2, 1.0)] {
                    let c = sharp[(cy + oy - 1) * mw + cx + ox - 1];
                    for k in 0..3 {
                        acc[k] += c[k] * wx * wy / 16.0;
                    }
                }
            }
            Rgb(acc.map(|v| v.round().clamp(0.0, 255.0) as u8))
        })
    }

    fn pixel(&self, x: f64, y: f64) -> Colour {
        let s = &self.stain;
        let salt = self.seed;
        let grain = (hash01(x as i64, y as i64, salt ^ 0xA1) - 0.5) * 6.0;
        if !on_tissue(&self.pieces, x, y) {
            let dust = nuclei(x, y, 180.0, 0.05, 3.0, salt ^ 0xD0);
            let c = blend(s.glass, [120.0, 110.0, 100.0], dust * 0.6);
            return c.map(|v| v + grain);
        }
        // Stroma and cytoplasm with a fibrous texture, stronger in the cortex.
        let fibre = noise(x, y, 18.0, salt ^ 0xF1) * 0.6 + noise(x, y, 5.0, salt ^ 0xF2) * 0.4;
        let mut c = blend(s.stroma, s.cytoplasm, 0.15 + 0.35 * fibre);
        c = blend(c, s.nucleus, 0.85 * nuclei(x, y, 26.0, 0.18, 3.2, salt ^ 0x51));
        if let Some(items) = self.cell_items(x, y) {
            for item in items {
                if let Some(colour) = self.item_colour(*item, x, y, c) {
                    c = colour;
                    break;
                }
            }
        }
        // Folds: the section lies doubled, so the stain is denser and darker there.
        let fold = self.folds.iter().map(|f| f.depth(x, y)).fold(0.0, f64::max) as f32;
        if fold > 0.0 {
            c = blend(c, blend(c, s.nucleus, 0.35).map(|v| v * 0.85), fold.min(0.6) * 1.6);
        }
        c.map(|v| v + grain)
    }

    fn cell_items(&self, x: f64, y: f64) -> Option<&Vec<Item>> {
        if x < 0.0 || y < 0.0 {
            return None;
        }
        let (gx, gy) = ((x as u32) / CELL, (y as u32) / CELL);
        if gx >= self.grid_cols {
            return None;
        }
        self.grid.get((gy * self.grid_cols + gx) as usize)
    }

    fn item_colour(&self, item: Item, x: f64, y: f64, under: Colour) -> Option<Colour> {
        let s = &self.stain;
        let salt = self.seed;
        match item {
            Item::Glomerulus(i) => {
                let shape = &self.glomeruli[i as usize].shape;
                let n = shape.norm(x, y);
                if n >= 1.0 {
                    return None;
                }
                Some(if n > 0.93 {
                    blend(s.cytoplasm, s.nucleus, 0.15) // Bowman's capsule
                } else if n > 0.84 {
                    s.lumen // Bowman's space
                } else {
                    // The tuft: capillary loops (pale) in a cellular matrix dense with nuclei.
                    let loops = noise(x, y, 9.0, salt ^ 0x61 ^ i as u64);
                    let base = if loops > 0.58 { blend(s.lumen, s.cytoplasm, 0.2) } else { blend(s.cytoplasm, s.nucleus, 0.25) };
                    blend(base, s.nucleus, nuclei(x, y, 10.0, 0.55, 3.0, salt ^ 0x62))
                })
            }
            Item::Tubule(i) => {
                let t = &self.tubules[i as usize];
                let (dx, dy) = (x - t.cx, y - t.cy);
                // In the tubule's own frame, scaled to a unit circle.
                let (u, v) = ((dx * t.cos + dy * t.sin) / t.r, (-dx * t.sin + dy * t.cos) / (t.r * t.aspect));
                let r = u.hypot(v);
                if r >= 1.0 {
                    return None;
                }
                if r > 0.93 {
                    return Some(blend(under, s.cytoplasm, 0.6)); // basement membrane
                }
                if r < t.lumen {
                    return Some(blend(s.lumen, s.cytoplasm, 0.15 * noise(x, y, 5.0, salt ^ 0x72)));
                }
                let granular = noise(x, y, 3.5, salt ^ 0x71);
                let epithelium = blend(s.cytoplasm, s.nucleus, 0.08 + 0.2 * granular);
                // Nuclei sit evenly around the ring, near the base of the cells.
                let angle = (v.atan2(u) + t.phase).rem_euclid(TAU);
                let k = (angle / TAU * t.nuclei as f64).round();
                let na = k / t.nuclei as f64 * TAU - t.phase;
                let ring = (1.0 + t.lumen) / 2.0 + 0.12;
                let d = (u - ring * na.cos()).hypot((v - ring * na.sin()) * t.aspect) / 0.11;
                Some(blend(epithelium, s.nucleus, (1.4 - d as f32).clamp(0.0, 1.0)))
            }
            Item::Negative(i) => {
                let negative = &self.negatives[i as usize];
                let n = negative.shape().norm(x, y);
                if n >= 1.0 {
                    return None;
                }
                Some(match negative {
                    Negative::Artery(_) if n < 0.4 => blend(s.lumen, [200.0, 60.0, 80.0], 0.3 * noise(x, y, 6.0, salt ^ 0x81)),
                    Negative::Artery(_) => {
                        let wall = blend(s.cytoplasm, [230.0, 90.0, 140.0], 0.35);
                        blend(wall, s.nucleus, 0.9 * nuclei(x, y, 14.0, 0.35, 2.6, salt ^ 0x82))
                    }
                    Negative::Aggregate(_) => {
                        let base = blend(s.stroma, s.nucleus, 0.25);
                        blend(base, s.nucleus, nuclei(x, y, 8.0, 0.75, 2.8, salt ^ 0x83))
                    }
                })
            }
        }
    }
}

impl Scene {
    /// Renders the `w`×`h` rectangle at `(x0, y0)` of the level downsampled by `downsample`
    /// (each output pixel samples the centre of its `downsample`² block of level 0).
    pub fn render_scaled(&self, x0: u32, y0: u32, w: u32, h: u32, downsample: u32) -> RgbImage {
        if downsample <= 1 {
            return self.render(x0, y0, w, h);
        }
        let d = downsample as f64;
        let mut image = RgbImage::new(w, h);
        for (dx, dy, px) in image.enumerate_pixels_mut() {
            let c = self.pixel((x0 + dx) as f64 * d + d / 2.0, (y0 + dy) as f64 * d + d / 2.0);
            *px = Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
        image
    }
}
