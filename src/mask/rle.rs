//! The Kaggle HuBMAP run-length encoding: pixels numbered top to bottom, then left to right
//! (column-major), 1-indexed, as space-separated `start length` pairs.

use super::polygon::{Scan, extent, scanline_spans};
use super::{BinaryMask, Error, Polygon};
use std::fmt::Write;

/// Encodes a mask as the competition did. An empty mask gives an empty string.
pub fn rle_encode(mask: &BinaryMask) -> String {
    let (w, h) = (mask.width() as u64, mask.height() as u64);
    let mut out = String::new();
    let mut run_start = None;
    for i in 0..w * h {
        let on = mask.get((i / h) as u32, (i % h) as u32);
        match (on, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                push_run(&mut out, start, i - start);
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        push_run(&mut out, start, w * h - start);
    }
    out
}

/// Encodes the mask of `polygons` (pixel centres inside, even-odd per polygon, as [`rasterise`])
/// column by column, without ever holding the mask: memory grows with the polygons, not the image,
/// so a 30000×37000 slide's truth costs kilobytes.
///
/// [`rasterise`]: super::rasterise
pub fn rle_encode_polygons(polygons: &[Polygon], width: u32, height: u32) -> String {
    let h = height as u64;
    let bounds: Vec<(f64, f64)> = polygons.iter().map(|p| extent(p, 0)).collect();
    let mut out = String::new();
    let mut pending: Option<(u64, u64)> = None; // (start, end) as 0-based column-major indices, end exclusive
    let (mut spans, mut crossings) = (Vec::new(), Vec::new());
    for x in 0..width {
        let xc = x as f64 + 0.5;
        spans.clear();
        for (polygon, &(lo, hi)) in polygons.iter().zip(&bounds) {
            if (lo..=hi).contains(&xc) {
                scanline_spans(polygon, Scan::Column, x, height, &mut crossings, &mut spans);
            }
        }
        spans.sort_unstable();
        for &(from, to) in &spans {
            let (start, end) = (x as u64 * h + from as u64, x as u64 * h + to as u64);
            pending = match pending {
                Some((s, e)) if start <= e => Some((s, e.max(end))),
                Some((s, e)) => {
                    push_run(&mut out, s, e - s);
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
    }
    if let Some((s, e)) = pending {
        push_run(&mut out, s, e - s);
    }
    out
}

/// Builds a competition RLE column by column, without a full-resolution mask: feed each column's
/// set pixel spans in order; runs that continue from one column into the next are merged.
pub struct RleStream {
    out: String,
    height: u64,
    pending: Option<(u64, u64)>,
}

impl RleStream {
    /// An encoder for a mask `height` pixels tall.
    pub fn new(height: u32) -> Self {
        Self { out: String::new(), height: height as u64, pending: None }
    }

    /// Adds rows `from..to` of column `x` as set; calls must come in column-major order.
    pub fn push(&mut self, x: u32, from: u32, to: u32) {
        if to <= from {
            return;
        }
        let (start, end) = (x as u64 * self.height + from as u64, x as u64 * self.height + to as u64);
        self.pending = match self.pending {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                push_run(&mut self.out, s, e - s);
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }

    /// The encoding ("" for an empty mask).
    pub fn finish(mut self) -> String {
        if let Some((s, e)) = self.pending.take() {
            push_run(&mut self.out, s, e - s);
        }
        self.out
    }
}

fn push_run(out: &mut String, start0: u64, length: u64) {
    if !out.is_empty() {
        out.push(' ');
    }
    // Writing to a String cannot fail.
    let _ = write!(out, "{} {}", start0 + 1, length);
}

/// Decodes a competition RLE for a `width`×`height` image, strictly: every number a positive
/// integer, complete pairs, runs in increasing order without overlap, all inside the image.
pub fn rle_decode(rle: &str, width: u32, height: u32) -> Result<BinaryMask, Error> {
    let pixels = width as u64 * height as u64;
    let mut mask = BinaryMask::new(width, height);
    for (index, (start0, end)) in rle_runs(rle)?.into_iter().enumerate() {
        if end > pixels {
            return Err(Error::RleOutside { index, start: start0 + 1, length: end - start0, pixels, width, height });
        }
        for i in start0..end {
            mask.set((i / height as u64) as u32, (i % height as u64) as u32, true);
        }
    }
    Ok(mask)
}

/// Parses an RLE into 0-based half-open index runs, with the same validation as [`rle_decode`]
/// but without an image size (runs must be positive, sorted and not overlapping).
pub fn rle_runs(rle: &str) -> Result<Vec<(u64, u64)>, Error> {
    let numbers = rle
        .split_ascii_whitespace()
        .enumerate()
        .map(|(index, token)| match token.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::RleToken { index, token: token.to_string() }),
        })
        .collect::<Result<Vec<u64>, Error>>()?;
    if numbers.len() % 2 != 0 {
        return Err(Error::RleOddCount(numbers.len()));
    }
    let mut runs = Vec::with_capacity(numbers.len() / 2);
    let mut previous_end = 0u64;
    for (index, pair) in numbers.chunks_exact(2).enumerate() {
        let (start, length) = (pair[0], pair[1]);
        if start <= previous_end {
            return Err(Error::RleOrder { index, start, previous_end });
        }
        let end = start.saturating_add(length - 1);
        runs.push((start - 1, end));
        previous_end = end;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_competitions_example_is_column_major_and_crosses_columns() {
        // "1 3 10 5": pixels 1, 2, 3 and 10..=14, numbered down each column, 1-indexed.
        let mask = rle_decode("1 3 10 5", 4, 4).unwrap();
        let set: Vec<(u32, u32)> = (0..4).flat_map(|x| (0..4).map(move |y| (x, y))).filter(|&(x, y)| mask.get(x, y)).collect();
        assert_eq!(set, vec![(0, 0), (0, 1), (0, 2), (2, 1), (2, 2), (2, 3), (3, 0), (3, 1)]);
        assert_eq!(rle_encode(&mask), "1 3 10 5");
    }

    #[test]
    fn round_trips_including_runs_to_the_last_pixel() {
        let mut mask = BinaryMask::new(7, 5);
        for (x, y) in [(0, 4), (1, 0), (1, 1), (3, 2), (6, 3), (6, 4), (5, 4)] {
            mask.set(x, y, true);
        }
        let rle = rle_encode(&mask);
        assert_eq!(rle_decode(&rle, 7, 5).unwrap(), mask);
        // (0,4),(1,0),(1,1) is one run across a column end; (6,3),(6,4) ends at the last pixel, 35.
        assert_eq!(rle, "5 3 18 1 30 1 34 2");
        assert_eq!(rle_encode(&BinaryMask::new(3, 3)), "");
        assert_eq!(rle_decode("  ", 3, 3).unwrap(), BinaryMask::new(3, 3));
    }

    #[test]
    fn polygons_encode_without_a_mask_exactly_as_their_raster() {
        let ring = |cx: f64, cy: f64, r: f64, k: f64| {
            (0..48)
                .map(|i| {
                    let t = i as f64 / 48.0 * std::f64::consts::TAU;
                    let r = r * (1.0 + 0.1 * (k * t).cos());
                    [cx + r * t.cos(), cy + r * t.sin()]
                })
                .collect::<Vec<_>>()
        };
        let polygons = vec![
            Polygon { rings: vec![ring(30.3, 40.1, 20.0, 3.0), ring(30.3, 40.1, 6.0, 2.0)] },
            Polygon::new(ring(48.7, 55.2, 15.0, 5.0)), // overlaps the first
            Polygon::new(ring(95.0, 10.0, 12.0, 4.0)), // crosses the image edge
            Polygon::new(vec![[60.0, 0.0], [70.0, 0.0], [70.0, 80.0], [60.0, 80.0]]), // runs over column ends
        ];
        let expected = rle_encode(&super::super::rasterise(&polygons, 100, 80));
        assert_eq!(rle_encode_polygons(&polygons, 100, 80), expected);
        assert_eq!(rle_encode_polygons(&[], 100, 80), "");
    }

    #[test]
    fn malformed_encodings_are_typed_errors() {
        assert!(matches!(rle_decode("1 3 x 2", 4, 4), Err(Error::RleToken { index: 2, .. })));
        assert!(matches!(rle_decode("0 3", 4, 4), Err(Error::RleToken { index: 0, .. })));
        assert!(matches!(rle_decode("1 0", 4, 4), Err(Error::RleToken { index: 1, .. })));
        assert!(matches!(rle_decode("-1 2", 4, 4), Err(Error::RleToken { .. })));
        assert_eq!(rle_decode("1 3 5", 4, 4), Err(Error::RleOddCount(3)));
        assert!(matches!(rle_decode("5 2 1 2", 4, 4), Err(Error::RleOrder { index: 1, .. })));
        assert!(matches!(rle_decode("1 3 3 2", 4, 4), Err(Error::RleOrder { index: 1, start: 3, previous_end: 3 })));
        assert!(matches!(rle_decode("15 3", 4, 4), Err(Error::RleOutside { index: 0, .. })));
        assert!(matches!(rle_decode("1 18446744073709551615", 4, 4), Err(Error::RleOutside { .. })));
    }
}
