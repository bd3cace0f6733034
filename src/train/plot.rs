//! Training-curve charts as PNG files, drawn with the `image` crate alone: axes, grid, tick labels, a title
//! and a legend, with text in an embedded 5×7 bitmap font (upper case, digits and common punctuation;
//! lower case is drawn as upper case). No font files and no plotting dependency, so it builds anywhere.

use image::{Rgb, RgbImage};
use std::path::Path;

/// One line of a chart.
pub struct Series<'a> {
    /// Legend entry.
    pub name: &'a str,
    /// `(x, y)` points in drawing order; points with a non-finite coordinate are skipped.
    pub points: &'a [(f64, f64)],
}

const SIZE: (u32, u32) = (960, 600);
/// Plot area: left, top, right, bottom, in pixels.
const AREA: (i32, i32, i32, i32) = (100, 60, 936, 520);
/// Series colours (matplotlib's tab10), cycled.
const COLOURS: [[u8; 3]; 6] = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75]];
const INK: Rgb<u8> = Rgb([30, 30, 30]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);

/// Draws a line chart (x axis: epoch or step; y axis autoscaled, or fixed 0..1 when `unit_range`) with axes,
/// tick labels, a title and a legend, and writes it as PNG.
pub fn line_chart(path: &Path, title: &str, x_label: &str, series: &[Series<'_>], unit_range: bool) -> Result<(), String> {
    let finite: Vec<Vec<(f64, f64)>> =
        series.iter().map(|s| s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect()).collect();
    let (x0, x1) = span(finite.iter().flatten().map(|p| p.0), 0.02);
    let (y0, y1) = if unit_range { (0.0, 1.0) } else { span(finite.iter().flatten().map(|p| p.1), 0.05) };
    let (l, t, r, b) = AREA;
    let (l, t, r, b) = (f64::from(l), f64::from(t), f64::from(r), f64::from(b));
    let to_px = |(x, y): (f64, f64)| (l + (x - x0) / (x1 - x0) * (r - l), b - (y - y0) / (y1 - y0) * (b - t));
    let mut img = RgbImage::from_pixel(SIZE.0, SIZE.1, Rgb([255, 255, 255]));

    for (v, label) in ticks(x0, x1) {
        let x = to_px((v, y0)).0.round() as i32;
        fill(&mut img, (x, AREA.1, x, AREA.3), GRID);
        fill(&mut img, (x, AREA.3, x, AREA.3 + 5), INK);
        text(&mut img, x - text_width(&label, 2) / 2, AREA.3 + 12, &label, 2, INK);
    }
    for (v, label) in ticks(y0, y1) {
        let y = to_px((x0, v)).1.round() as i32;
        fill(&mut img, (AREA.0, y, AREA.2, y), GRID);
        fill(&mut img, (AREA.0 - 5, y, AREA.0, y), INK);
        text(&mut img, AREA.0 - 10 - text_width(&label, 2), y - 7, &label, 2, INK);
    }
    for edge in [(l, t, r, t), (l, b, r, b), (l, t, l, b), (r, t, r, b)] {
        let e = (edge.0 as i32, edge.1 as i32, edge.2 as i32, edge.3 as i32);
        fill(&mut img, e, INK);
    }

    for (k, points) in finite.iter().enumerate() {
        let colour = Rgb(COLOURS[k % COLOURS.len()]);
        let px: Vec<(f64, f64)> = points.iter().map(|&p| to_px(p)).collect();
        for pair in px.windows(2) {
            if let Some((a, b)) = clip(pair[0], pair[1]) {
                line(&mut img, a, b, colour);
            }
        }
        if px.len() <= 60 {
            for &(x, y) in &px {
                if clip((x, y), (x, y)).is_some() {
                    fill(&mut img, (x as i32 - 2, y as i32 - 2, x as i32 + 2, y as i32 + 2), colour);
                }
            }
        }
    }

    if !series.is_empty() {
        let width = series.iter().map(|s| text_width(s.name, 2)).max().unwrap_or(0) + 56;
        let (lx, ly) = (AREA.2 - width - 10, AREA.1 + 10);
        let rows = series.len() as i32;
        fill(&mut img, (lx, ly, lx + width, ly + 8 + 22 * rows), Rgb([200, 200, 200]));
        fill(&mut img, (lx + 1, ly + 1, lx + width - 1, ly + 7 + 22 * rows), Rgb([255, 255, 255]));
        for (k, s) in series.iter().enumerate() {
            let y = ly + 8 + 22 * k as i32;
            fill(&mut img, (lx + 8, y + 5, lx + 36, y + 8), Rgb(COLOURS[k % COLOURS.len()]));
            text(&mut img, lx + 44, y, s.name, 2, INK);
        }
    }
    text(&mut img, (SIZE.0 as i32 - text_width(title, 3)) / 2, 16, title, 3, INK);
    text(&mut img, (AREA.0 + AREA.2 - text_width(x_label, 2)) / 2, AREA.3 + 44, x_label, 2, INK);
    img.save(path).map_err(|e| format!("cannot write the chart: {e}: {}", path.display()))
}

/// The range of `values`, widened by `pad` of its length on each side; a single value gets a range around
/// it, no values at all get 0..1.
fn span(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else if hi - lo <= 1e-12 * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d, hi + d)
    } else {
        ((hi - lo).mul_add(-pad, lo), (hi - lo).mul_add(pad, hi))
    }
}

/// Round tick positions (1, 2 or 5 × 10ⁿ apart, about six of them) inside `lo..=hi`, with their labels.
fn ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let raw = (hi - lo) / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = mag * [(1.5, 1.0), (3.0, 2.0), (7.0, 5.0), (f64::INFINITY, 10.0)].iter().find(|(n, _)| raw / mag < *n).map_or(10.0, |s| s.1);
    if !(step.is_finite() && step > 0.0) {
        return Vec::new();
    }
    let decimals = (-step.log10().floor()).clamp(0.0, 10.0) as usize;
    let first = (lo / step).ceil();
    (0..20)
        .map(|i| (first + f64::from(i)) * step)
        .take_while(|&v| v <= hi + step * 1e-9)
        .map(|v| (v, format!("{:.*}", decimals, if v.abs() < step * 1e-9 { 0.0 } else { v })))
        .collect()
}

/// Clips the segment `a`–`b` to the plot area (Liang–Barsky); `None` when nothing of it is inside.
fn clip(a: (f64, f64), b: (f64, f64)) -> Option<((f64, f64), (f64, f64))> {
    let (l, t, r, bo) = (f64::from(AREA.0), f64::from(AREA.1), f64::from(AREA.2), f64::from(AREA.3));
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 - l), (dx, r - a.0), (-dy, a.1 - t), (dy, bo - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else if p < 0.0 {
            t0 = t0.max(q / p);
        } else {
            t1 = t1.min(q / p);
        }
    }
    let ends = ((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy));
    (t0 <= t1 && [ends.0.0, ends.0.1, ends.1.0, ends.1.1].iter().all(|v| v.is_finite())).then_some(ends)
}

/// A 2-pixel-wide Bresenham line between points already inside the image.
fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), colour: Rgb<u8>) {
    let (mut x, mut y, x1, y1) = (a.0.round() as i32, a.1.round() as i32, b.0.round() as i32, b.1.round() as i32);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        fill(img, (x, y, x + 1, y + 1), colour);
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Fills the inclusive rectangle `(x0, y0, x1, y1)`, cut to the image.
fn fill(img: &mut RgbImage, (x0, y0, x1, y1): (i32, i32, i32, i32), colour: Rgb<u8>) {
    let (w, h) = (img.width() as i32, img.height() as i32);
    for y in y0.max(0)..=y1.min(h - 1) {
        for x in x0.max(0)..=x1.min(w - 1) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// Glyphs of [`FONT`], in order.
const CHARS: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:_/()%+,=?'";
/// 5×7 glyphs: seven row bytes, top row in the highest byte; bit 4 of a row is its leftmost column.
#[rustfmt::skip]
const FONT: [u64; 49] = [
    0x0E_11_13_15_19_11_0E, 0x04_0C_04_04_04_04_0E, 0x0E_11_01_02_04_08_1F, 0x1F_02_04_02_01_11_0E,
    0x02_06_0A_12_1F_02_02, 0x1F_10_1E_01_01_11_0E, 0x06_08_10_1E_11_11_0E, 0x1F_01_02_04_08_08_08,
    0x0E_11_11_0E_11_11_0E, 0x0E_11_11_0F_01_02_0C, 0x0E_11_11_1F_11_11_11, 0x1E_11_11_1E_11_11_1E,
    0x0E_11_10_10_10_11_0E, 0x1C_12_11_11_11_12_1C, 0x1F_10_10_1E_10_10_1F, 0x1F_10_10_1E_10_10_10,
    0x0E_11_10_17_11_11_0F, 0x11_11_11_1F_11_11_11, 0x0E_04_04_04_04_04_0E, 0x07_02_02_02_02_12_0C,
    0x11_12_14_18_14_12_11, 0x10_10_10_10_10_10_1F, 0x11_1B_15_15_11_11_11, 0x11_11_19_15_13_11_11,
    0x0E_11_11_11_11_11_0E, 0x1E_11_11_1E_10_10_10, 0x0E_11_11_11_15_12_0D, 0x1E_11_11_1E_14_12_11,
    0x0F_10_10_0E_01_01_1E, 0x1F_04_04_04_04_04_04, 0x11_11_11_11_11_11_0E, 0x11_11_11_11_11_0A_04,
    0x11_11_11_15_15_15_0A, 0x11_11_0A_04_0A_11_11, 0x11_11_11_0A_04_04_04, 0x1F_01_02_04_08_10_1F,
    0x00_00_00_00_00_0C_0C, 0x00_00_00_1F_00_00_00, 0x00_0C_0C_00_0C_0C_00, 0x00_00_00_00_00_00_1F,
    0x00_01_02_04_08_10_00, 0x02_04_08_08_08_04_02, 0x08_04_02_02_02_04_08, 0x18_19_02_04_08_13_03,
    0x00_04_04_1F_04_04_00, 0x00_00_00_00_0C_04_08, 0x00_00_1F_00_1F_00_00, 0x0E_11_01_02_04_00_04,
    0x04_04_08_00_00_00_00,
];

/// Width in pixels of `s` drawn at `scale`.
fn text_width(s: &str, scale: i32) -> i32 {
    (s.chars().count() as i32 * 6 - 1).max(0) * scale
}

/// Draws `s` with its top-left corner at `(x, y)`, each font pixel a `scale`×`scale` square.
fn text(img: &mut RgbImage, x: i32, y: i32, s: &str, scale: i32, colour: Rgb<u8>) {
    for (i, c) in s.chars().enumerate() {
        if c == ' ' {
            continue;
        }
        let index = CHARS.find(c.to_ascii_uppercase()).unwrap_or(CHARS.len() - 2); // unknown: '?'
        let glyph = FONT[index];
        let left = x + i as i32 * 6 * scale;
        for row in 0..7 {
            let bits = (glyph >> (8 * (6 - row))) & 0x1F;
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let (px, py) = (left + col * scale, y + row * scale);
                    fill(img, (px, py, px + scale - 1, py + scale - 1), colour);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(img: &RgbImage, colour: [u8; 3]) -> usize {
        img.pixels().filter(|p| p.0 == colour).count()
    }

    #[test]
    fn writes_a_chart_with_both_series() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("loss.png");
        let train: Vec<(f64, f64)> = (0..30).map(|e| (e as f64, 1.0 / (1.0 + e as f64))).collect();
        let valid = [(0.0, 0.9), (5.0, f64::NAN), (10.0, 0.4), (20.0, 0.3)];
        let series = [Series { name: "train loss", points: &train }, Series { name: "valid loss", points: &valid }];
        line_chart(&path, "Loss", "epoch", &series, false).expect("chart written");
        let img = image::open(&path).expect("PNG readable").to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        assert!(count(&img, COLOURS[0]) > 200, "blue line missing");
        assert!(count(&img, COLOURS[1]) > 100, "orange line missing");
        assert!(count(&img, INK.0) > 500, "axes and text missing");
    }

    #[test]
    fn odd_inputs_still_draw() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("odd.png");
        let single = [(3.0, 0.5)];
        let flat = [(0.0, 2.0), (1.0, 2.0), (2.0, f64::INFINITY)];
        let wild = [(0.0, -1e9), (1.0, 1e9)];
        let series = [Series { name: "dice", points: &single }, Series { name: "", points: &[] }, Series { name: "flat", points: &flat }];
        line_chart(&path, "Dice", "step", &series, true).expect("chart written");
        let img = image::open(&path).expect("PNG readable").to_rgb8();
        assert!(count(&img, COLOURS[0]) > 20, "single point marker missing");
        line_chart(&path, "Empty", "step", &[], false).expect("empty chart written");
        line_chart(&path, "Flat", "step", &[Series { name: "flat", points: &flat }], false).expect("flat chart written");
        line_chart(&path, "Wild", "step", &[Series { name: "w", points: &wild }], true).expect("clipped chart written");
        assert!(line_chart(&dir.path().join("missing/x.png"), "T", "x", &[], false).is_err());
        assert_eq!(ticks(0.0, 1.0).iter().map(|t| t.1.as_str()).collect::<Vec<_>>(), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let (lo, hi) = span([2.0, 2.0].into_iter(), 0.05);
        assert!((lo - 1.8).abs() < 1e-12 && (hi - 2.2).abs() < 1e-12);
    }
}
