//! Polygons in pixel coordinates and their rasterisation into a [`BinaryMask`].

use super::BinaryMask;

/// A polygon in level-0 pixel coordinates `[x, y]`: an exterior ring, then any holes. Rings may be
/// closed (last point = first) or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    /// Exterior ring first, then holes.
    pub rings: Vec<Vec<[f64; 2]>>,
}

impl Polygon {
    /// A polygon without holes.
    pub fn new(exterior: Vec<[f64; 2]>) -> Self {
        Self { rings: vec![exterior] }
    }

    /// Area in square pixels (shoelace formula; holes subtract).
    pub fn area(&self) -> f64 {
        let ring_area = |ring: &Vec<[f64; 2]>| {
            let n = ring.len();
            (0..n).map(|i| ring[i][0] * ring[(i + 1) % n][1] - ring[(i + 1) % n][0] * ring[i][1]).sum::<f64>().abs() / 2.0
        };
        let mut rings = self.rings.iter();
        rings.next().map(ring_area).unwrap_or(0.0) - rings.map(ring_area).sum::<f64>()
    }

    /// Whether the point lies inside (even-odd over all rings, so holes are outside).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let mut inside = false;
        for ring in &self.rings {
            let n = ring.len();
            for i in 0..n {
                let ([x1, y1], [x2, y2]) = (ring[i], ring[(i + 1) % n]);
                if (y1 > y) != (y2 > y) && x < x1 + (y - y1) * (x2 - x1) / (y2 - y1) {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

/// Which way a scanline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    /// Along a row (fixed y): spans are x ranges.
    Row,
    /// Down a column (fixed x): spans are y ranges.
    Column,
}

/// Appends to `spans` the half-open pixel ranges of `line` (a row or column index) whose centres lie
/// inside `polygon` (even-odd across its rings), clipped to `0..limit`. `crossings` is scratch space.
pub(super) fn scanline_spans(polygon: &Polygon, scan: Scan, line: u32, limit: u32, crossings: &mut Vec<f64>, spans: &mut Vec<(u32, u32)>) {
    // (along, across): `across` is fixed on the scanline, `along` varies.
    let axes = |p: [f64; 2]| if scan == Scan::Row { (p[0], p[1]) } else { (p[1], p[0]) };
    let centre = line as f64 + 0.5;
    crossings.clear();
    for ring in &polygon.rings {
        let n = ring.len();
        for i in 0..n {
            let ((a_along, a_across), (b_along, b_across)) = (axes(ring[i]), axes(ring[(i + 1) % n]));
            // Half-open rule: an edge counts when the scanline is in [min, max).
            if (a_across <= centre) != (b_across <= centre) {
                crossings.push(a_along + (centre - a_across) * (b_along - a_along) / (b_across - a_across));
            }
        }
    }
    crossings.sort_by(f64::total_cmp);
    for pair in crossings.chunks_exact(2) {
        let from = (pair[0] - 0.5).ceil().clamp(0.0, limit as f64) as u32;
        let to = (pair[1] - 0.5).ceil().clamp(0.0, limit as f64) as u32;
        if from < to {
            spans.push((from, to));
        }
    }
}

/// The range of `polygon` along one axis (`0` = x, `1` = y).
pub(super) fn extent(polygon: &Polygon, axis: usize) -> (f64, f64) {
    polygon.rings.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p[axis]), hi.max(p[axis])))
}

/// Fills `polygons` into a `width`×`height` mask: a pixel is set when its centre lies inside a
/// polygon (even-odd rule across that polygon's rings, so holes stay empty).
pub fn rasterise(polygons: &[Polygon], width: u32, height: u32) -> BinaryMask {
    let mut mask = BinaryMask::new(width, height);
    let (mut crossings, mut spans) = (Vec::new(), Vec::new());
    for polygon in polygons {
        let (lo, hi) = extent(polygon, 1);
        if !lo.is_finite() || !hi.is_finite() || hi < 0.0 {
            continue;
        }
        let first_row = (lo - 0.5).ceil().max(0.0) as u32;
        let last_row = ((hi - 0.5).floor().min(height as f64 - 1.0)).max(-1.0);
        if last_row < 0.0 {
            continue;
        }
        for row in first_row..=last_row as u32 {
            spans.clear();
            scanline_spans(polygon, Scan::Row, row, width, &mut crossings, &mut spans);
            for &(from, to) in &spans {
                (from..to).for_each(|x| mask.set(x, row, true));
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rectangle_covers_the_pixels_whose_centres_it_contains() {
        let square = Polygon::new(vec![[1.0, 1.0], [4.0, 1.0], [4.0, 3.0], [1.0, 3.0]]);
        let mask = rasterise(std::slice::from_ref(&square), 6, 5);
        assert_eq!(mask.count(), 6, "3 columns × 2 rows");
        assert!(mask.get(1, 1) && mask.get(3, 2) && !mask.get(4, 1) && !mask.get(0, 0));
        assert_eq!(square.area(), 6.0);
    }

    #[test]
    fn points_inside_a_square_with_a_hole() {
        let p = Polygon {
            rings: vec![vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]], vec![[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0]]],
        };
        assert!(p.contains(1.0, 1.0) && !p.contains(5.0, 5.0) && !p.contains(11.0, 5.0) && !p.contains(-1.0, 5.0));
    }

    #[test]
    fn holes_stay_empty_and_area_matches_the_pixel_count_for_a_disc() {
        let ring = |r: f64| {
            (0..64)
                .map(|i| {
                    let t = i as f64 / 64.0 * std::f64::consts::TAU;
                    [50.0 + r * t.cos(), 50.0 + r * t.sin()]
                })
                .collect::<Vec<_>>()
        };
        let donut = Polygon { rings: vec![ring(40.0), ring(10.0)] };
        let mask = rasterise(std::slice::from_ref(&donut), 100, 100);
        assert!(!mask.get(50, 50), "the hole is empty");
        assert!(mask.get(50, 20));
        let error = (mask.count() as f64 - donut.area()).abs() / donut.area();
        assert!(error < 0.01, "pixel count {} vs area {}", mask.count(), donut.area());
    }

    #[test]
    fn polygons_partly_outside_are_clipped() {
        let big = Polygon::new(vec![[-10.0, -10.0], [5.0, -10.0], [5.0, 50.0], [-10.0, 50.0]]);
        let mask = rasterise(&[big], 8, 4);
        assert_eq!(mask.count(), 5 * 4);
    }
}
