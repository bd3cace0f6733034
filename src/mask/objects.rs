//! Objects in a binary grid: 8-connected components (runs labelled with union-find), their
//! area, bounding box and centroid, and their outline as a simplified polygon (Moore-neighbour
//! boundary tracing, then Douglas–Peucker).

use super::Polygon;

/// One connected object, in grid pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Label (1-based, in raster order of first pixel).
    pub label: u32,
    /// Pixels.
    pub area: u64,
    /// Bounding box: min x, min y, max x (inclusive), max y (inclusive).
    pub bbox: [u32; 4],
    /// Mean pixel centre (x, y), pixel centres at +0.5.
    pub centroid: [f64; 2],
}

/// A horizontal run of object pixels: row `y`, columns `x0..x1`, and its object's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Row.
    pub y: u32,
    /// First column.
    pub x0: u32,
    /// One past the last column.
    pub x1: u32,
    /// Object label (1-based).
    pub label: u32,
}

/// The objects of a `width`×`height` grid, kept as labelled runs: memory grows with the objects'
/// rows, not with the grid (a 10000×12333 canvas would need 493 MB of per-pixel labels).
pub struct Components {
    /// Runs in raster order.
    pub runs: Vec<Run>,
    /// Objects by label (index = label − 1).
    pub objects: Vec<Object>,
    /// Grid width.
    pub width: u32,
    /// Grid height.
    pub height: u32,
    /// Run indices grouped by label: those of label `l` are `by_label[starts[l-1]..starts[l]]`.
    by_label: Vec<u32>,
    starts: Vec<usize>,
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

/// 8-connected components of `mask` (row-major, `width`×`height`).
pub fn components(mask: &[bool], width: u32, height: u32) -> Components {
    let w = width as usize;
    components_of_rows(width, height, |y, runs| row_runs(&mask[y as usize * w..(y as usize + 1) * w], |&m| m, runs))
}

/// The byte at or above which a probability stored as a byte (`round(p·255)`, as the whole-slide
/// canvas and its per-window updates hold it) is foreground for `threshold` in 0..1: `round(threshold·255)`,
/// at least 1 so that a zero probability is never foreground.
pub fn threshold_level(threshold: f32) -> u8 {
    (threshold.clamp(0.0, 1.0) * 255.0).round().clamp(1.0, 255.0) as u8
}

/// Appends the runs `(x0, x1)` of `row` where `inside` holds (what [`components_of_rows`] takes).
pub fn row_runs<T>(row: &[T], inside: impl Fn(&T) -> bool, runs: &mut Vec<(u32, u32)>) {
    let mut x = 0;
    while x < row.len() {
        if inside(&row[x]) {
            let start = x;
            while x < row.len() && inside(&row[x]) {
                x += 1;
            }
            runs.push((start as u32, x as u32));
        }
        x += 1;
    }
}

/// 8-connected components of a grid given row by row: `row(y, runs)` appends row `y`'s object
/// runs `(x0, x1)`, sorted and disjoint. Labels are numbered in raster order of first pixel.
pub fn components_of_rows(width: u32, height: u32, mut row: impl FnMut(u32, &mut Vec<(u32, u32)>)) -> Components {
    let mut runs: Vec<Run> = Vec::new();
    let mut parent: Vec<u32> = Vec::new();
    let mut line = Vec::new();
    let mut previous = 0..0;
    for y in 0..height {
        line.clear();
        row(y, &mut line);
        let first = runs.len();
        let mut p = previous.start;
        for &(x0, x1) in &line {
            let id = runs.len() as u32;
            parent.push(id);
            runs.push(Run { y, x0, x1, label: id });
            // Previous-row runs touching this one, diagonals included.
            while p < previous.end && runs[p].x1 < x0 {
                p += 1;
            }
            let mut q = p;
            while q < previous.end && runs[q].x0 <= x1 {
                let (a, b) = (find(&mut parent, runs[q].label), find(&mut parent, id));
                if a != b {
                    parent[a.max(b) as usize] = a.min(b);
                }
                q += 1;
            }
        }
        previous = first..runs.len();
    }
    // Roots → compact labels in raster order; statistics from the runs.
    let mut compact = vec![0u32; runs.len()];
    let mut objects: Vec<Object> = Vec::new();
    let mut sums: Vec<[f64; 2]> = Vec::new();
    for (i, run) in runs.iter_mut().enumerate() {
        let root = find(&mut parent, i as u32) as usize;
        if compact[root] == 0 {
            let r = *run;
            objects.push(Object { label: objects.len() as u32 + 1, area: 0, bbox: [r.x0, r.y, r.x1 - 1, r.y], centroid: [0.0; 2] });
            sums.push([0.0; 2]);
            compact[root] = objects.len() as u32;
        }
        let c = compact[root];
        let r = run;
        r.label = c;
        let n = (r.x1 - r.x0) as u64;
        let o = &mut objects[c as usize - 1];
        o.area += n;
        o.bbox = [o.bbox[0].min(r.x0), o.bbox[1].min(r.y), o.bbox[2].max(r.x1 - 1), o.bbox[3].max(r.y)];
        sums[c as usize - 1][0] += n as f64 * (r.x0 + r.x1) as f64 / 2.0;
        sums[c as usize - 1][1] += n as f64 * (r.y as f64 + 0.5);
    }
    for (o, s) in objects.iter_mut().zip(&sums) {
        o.centroid = [s[0] / o.area as f64, s[1] / o.area as f64];
    }
    // Group run indices by label (counting sort).
    let mut starts = vec![0usize; objects.len() + 1];
    for r in &runs {
        starts[r.label as usize] += 1;
    }
    for l in 1..starts.len() {
        starts[l] += starts[l - 1];
    }
    let mut fill = starts.clone();
    let mut by_label = vec![0u32; runs.len()];
    for (i, r) in runs.iter().enumerate() {
        let slot = &mut fill[r.label as usize - 1];
        by_label[*slot] = i as u32;
        *slot += 1;
    }
    Components { runs, objects, width, height, by_label, starts }
}

impl Components {
    /// The runs of object `label`.
    pub fn runs_of(&self, label: u32) -> impl Iterator<Item = &Run> {
        let l = label as usize;
        let range = if l >= 1 && l < self.starts.len() { self.starts[l - 1]..self.starts[l] } else { 0..0 };
        self.by_label[range].iter().map(|&i| &self.runs[i as usize])
    }

    /// The outer boundary of object `label` as a polygon through pixel corners (grid coordinates),
    /// simplified with tolerance `epsilon` pixels. Holes are not traced (glomeruli have none).
    pub fn outline(&self, label: u32, epsilon: f64) -> Option<Polygon> {
        let o = self.objects.get((label as usize).checked_sub(1)?)?;
        // The object alone, in a bitmap of its bounding box.
        let (bx, by) = (o.bbox[0] as i64, o.bbox[1] as i64);
        let (bw, bh) = (o.bbox[2] as i64 - bx + 1, o.bbox[3] as i64 - by + 1);
        let mut bitmap = vec![false; (bw * bh) as usize];
        for r in self.runs_of(label) {
            let row = (r.y as i64 - by) * bw;
            for x in r.x0 as i64..r.x1 as i64 {
                bitmap[(row + x - bx) as usize] = true;
            }
        }
        let inside = |x: i64, y: i64| {
            let (lx, ly) = (x - bx, y - by);
            lx >= 0 && ly >= 0 && lx < bw && ly < bh && bitmap[(ly * bw + lx) as usize]
        };
        // Trace the boundary on the corner lattice: walk with the object on the right-hand side.
        // Start at the top-left corner of the first pixel in raster order, heading east.
        let (sx, sy) = {
            let y = o.bbox[1] as i64;
            let x = (o.bbox[0] as i64..=o.bbox[2] as i64).find(|&x| inside(x, y))?;
            (x, y)
        };
        let mut points = Vec::new();
        let (mut x, mut y, mut dir) = (sx, sy, 0u8); // 0 E, 1 S, 2 W, 3 N
        let limit = 4 * (o.area as usize + 2) * 4;
        for _ in 0..limit {
            points.push([x as f64, y as f64]);
            // Pixels ahead-left and ahead-right of the current edge, for each heading.
            let (left, right) = match dir {
                0 => (inside(x, y - 1), inside(x, y)),
                1 => (inside(x, y), inside(x - 1, y)),
                2 => (inside(x - 1, y), inside(x - 1, y - 1)),
                _ => (inside(x - 1, y - 1), inside(x, y - 1)),
            };
            dir = match (left, right) {
                (true, _) => (dir + 3) % 4,      // turn left
                (false, true) => dir,            // straight on
                (false, false) => (dir + 1) % 4, // turn right
            };
            match dir {
                0 => x += 1,
                1 => y += 1,
                2 => x -= 1,
                _ => y -= 1,
            }
            // The start corner touches only one object pixel (the first in raster order), so the
            // walk passes it once: back there, the ring is closed.
            if (x, y) == (sx, sy) {
                break;
            }
        }
        let simplified = douglas_peucker(&points, epsilon);
        (simplified.len() >= 3).then(|| Polygon::new(simplified))
    }
}

/// Douglas–Peucker simplification of a closed ring (first point not repeated at the end).
pub fn douglas_peucker(ring: &[[f64; 2]], epsilon: f64) -> Vec<[f64; 2]> {
    if ring.len() < 4 || epsilon <= 0.0 {
        return ring.to_vec();
    }
    // Split the ring at its first point and the point farthest from it.
    let far = (1..ring.len()).max_by(|&a, &b| dist2(ring[0], ring[a]).total_cmp(&dist2(ring[0], ring[b]))).unwrap_or(1);
    let mut first: Vec<[f64; 2]> = ring[..=far].to_vec();
    let mut second: Vec<[f64; 2]> = ring[far..].to_vec();
    second.push(ring[0]);
    first = simplify_open(&first, epsilon);
    second = simplify_open(&second, epsilon);
    first.pop();
    second.pop();
    first.extend(second);
    first
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

fn simplify_open(points: &[[f64; 2]], epsilon: f64) -> Vec<[f64; 2]> {
    if points.len() < 3 {
        return points.to_vec();
    }
    let (a, b) = (points[0], points[points.len() - 1]);
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    let distance = |p: [f64; 2]| if len == 0.0 { dist2(a, p).sqrt() } else { ((p[0] - a[0]) * dy - (p[1] - a[1]) * dx).abs() / len };
    let (index, max) = points[1..points.len() - 1]
        .iter()
        .enumerate()
        .map(|(i, &p)| (i + 1, distance(p)))
        .fold((0, 0.0), |m, v| if v.1 > m.1 { v } else { m });
    if max <= epsilon {
        return vec![a, b];
    }
    let mut left = simplify_open(&points[..=index], epsilon);
    let right = simplify_open(&points[index..], epsilon);
    left.pop();
    left.extend(right);
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::rasterise;

    #[test]
    fn threshold_levels_round_and_never_admit_zero() {
        assert_eq!(threshold_level(0.5), 128);
        assert_eq!(threshold_level(0.3), 77);
        assert_eq!(threshold_level(1.0), 255);
        assert_eq!(threshold_level(0.0), 1, "a zero probability is never foreground");
    }

    #[test]
    fn components_are_eight_connected_with_stats() {
        #[rustfmt::skip]
        let grid = [
            1, 1, 0, 0, 1,
            0, 1, 0, 1, 0,
            0, 0, 0, 0, 0,
            1, 0, 0, 1, 1,
        ];
        let mask: Vec<bool> = grid.iter().map(|&v| v == 1).collect();
        let c = components(&mask, 5, 4);
        assert_eq!(c.objects.len(), 4, "diagonal neighbours join: {:?}", c.objects);
        assert_eq!(c.objects[0].area, 3);
        assert_eq!(c.objects[0].bbox, [0, 0, 1, 1]);
        assert_eq!(c.objects[1].area, 2, "(4,0) and (3,1) touch diagonally");
        assert_eq!(c.objects[3].centroid, [4.0, 3.5]);
    }

    #[test]
    fn run_labels_match_a_pixel_flood_fill() {
        // A pseudo-random grid: every pixel's run label must equal a flood fill's object.
        let (w, h) = (37u32, 23u32);
        let mut rng = crate::rng::SplitMix64::new(9);
        let mask: Vec<bool> = (0..w * h).map(|_| rng.unit() < 0.45).collect();
        let c = components(&mask, w, h);
        let mut label = vec![0u32; (w * h) as usize];
        for r in &c.runs {
            for x in r.x0..r.x1 {
                label[(r.y * w + x) as usize] = r.label;
            }
        }
        let mut seen = vec![false; (w * h) as usize];
        let mut objects = 0;
        for start in 0..(w * h) as usize {
            if !mask[start] || seen[start] {
                continue;
            }
            objects += 1;
            let mut stack = vec![start];
            seen[start] = true;
            while let Some(i) = stack.pop() {
                assert_eq!(label[i], label[start], "pixel {i} split from {start}");
                let (x, y) = ((i as u32 % w) as i64, (i as u32 / w) as i64);
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (nx, ny) = (x + dx, y + dy);
                        if nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64 {
                            let j = (ny as u32 * w + nx as u32) as usize;
                            if mask[j] && !seen[j] {
                                seen[j] = true;
                                stack.push(j);
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(c.objects.len(), objects);
        assert_eq!(c.objects.iter().map(|o| o.area).sum::<u64>(), mask.iter().filter(|&&m| m).count() as u64);
        for o in &c.objects {
            assert_eq!(c.runs_of(o.label).map(|r| (r.x1 - r.x0) as u64).sum::<u64>(), o.area);
        }
    }

    #[test]
    fn outlines_reproduce_the_object() {
        // A disc: its traced outline rasterises back to the same pixels.
        let disc = Polygon::new(
            (0..64)
                .map(|i| {
                    let a = i as f64 / 64.0 * std::f64::consts::TAU;
                    [30.0 + 17.0 * a.cos(), 25.0 + 12.0 * a.sin()]
                })
                .collect(),
        );
        let raster = rasterise(&[disc], 60, 50);
        let mask: Vec<bool> = (0..50).flat_map(|y| (0..60).map(move |x| (x, y))).map(|(x, y)| raster.get(x, y)).collect();
        let c = components(&mask, 60, 50);
        assert_eq!(c.objects.len(), 1);
        let exact = c.outline(1, 0.0).unwrap();
        assert!((exact.area() - c.objects[0].area as f64).abs() < 1e-9, "{} vs {}", exact.area(), c.objects[0].area);
        let back = rasterise(&[exact], 60, 50);
        assert_eq!(back.count(), raster.count());
        assert_eq!(back.intersection_count(&raster), raster.count());
        let simple = c.outline(1, 1.0).unwrap();
        assert!(simple.rings[0].len() < 60, "{} points", simple.rings[0].len());
        assert!((simple.area() - c.objects[0].area as f64).abs() / (c.objects[0].area as f64) < 0.05);
    }
}
