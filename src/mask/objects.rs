//! Objects in a binary grid: 8-connected components (two-pass labelling with union-find), their
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

/// Labels of a `width`×`height` grid (0 = background) and the objects found.
pub struct Components {
    /// Per-pixel label, row-major.
    pub labels: Vec<u32>,
    /// Objects by label (index = label − 1).
    pub objects: Vec<Object>,
    /// Grid width.
    pub width: u32,
    /// Grid height.
    pub height: u32,
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
    let (w, h) = (width as usize, height as usize);
    let mut labels = vec![0u32; w * h];
    let mut parent: Vec<u32> = vec![0];
    for y in 0..h {
        for x in 0..w {
            if !mask[y * w + x] {
                continue;
            }
            let mut neighbours = [0u32; 4];
            if x > 0 {
                neighbours[0] = labels[y * w + x - 1];
            }
            if y > 0 {
                neighbours[1] = labels[(y - 1) * w + x];
                if x > 0 {
                    neighbours[2] = labels[(y - 1) * w + x - 1];
                }
                if x + 1 < w {
                    neighbours[3] = labels[(y - 1) * w + x + 1];
                }
            }
            let mut label = 0;
            for &n in neighbours.iter().filter(|&&n| n > 0) {
                let root = find(&mut parent, n);
                if label == 0 {
                    label = root;
                } else if root != label {
                    let (a, b) = (root.min(label), root.max(label));
                    parent[b as usize] = a;
                    label = a;
                }
            }
            if label == 0 {
                label = parent.len() as u32;
                parent.push(label);
            }
            labels[y * w + x] = label;
        }
    }
    // Second pass: roots → compact labels in raster order; statistics.
    let mut compact = vec![0u32; parent.len()];
    let mut objects: Vec<Object> = Vec::new();
    let mut sums: Vec<[f64; 2]> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let l = labels[y * w + x];
            if l == 0 {
                continue;
            }
            let root = find(&mut parent, l) as usize;
            if compact[root] == 0 {
                objects.push(Object { label: objects.len() as u32 + 1, area: 0, bbox: [x as u32, y as u32, x as u32, y as u32], centroid: [0.0; 2] });
                sums.push([0.0; 2]);
                compact[root] = objects.len() as u32;
            }
            let c = compact[root];
            labels[y * w + x] = c;
            let o = &mut objects[c as usize - 1];
            o.area += 1;
            o.bbox = [o.bbox[0].min(x as u32), o.bbox[1].min(y as u32), o.bbox[2].max(x as u32), o.bbox[3].max(y as u32)];
            sums[c as usize - 1][0] += x as f64 + 0.5;
            sums[c as usize - 1][1] += y as f64 + 0.5;
        }
    }
    for (o, s) in objects.iter_mut().zip(&sums) {
        o.centroid = [s[0] / o.area as f64, s[1] / o.area as f64];
    }
    Components { labels, objects, width, height }
}

impl Components {
    /// The outer boundary of object `label` as a polygon through pixel corners (grid coordinates),
    /// simplified with tolerance `epsilon` pixels. Holes are not traced (glomeruli have none).
    pub fn outline(&self, label: u32, epsilon: f64) -> Option<Polygon> {
        let o = self.objects.get(label as usize - 1)?;
        let (w, h) = (self.width as i64, self.height as i64);
        let inside = |x: i64, y: i64| x >= 0 && y >= 0 && x < w && y < h && self.labels[(y * w + x) as usize] == label;
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
                (true, _) => (dir + 3) % 4, // turn left
                (false, true) => dir,       // straight on
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
    let far = (1..ring.len())
        .max_by(|&a, &b| dist2(ring[0], ring[a]).total_cmp(&dist2(ring[0], ring[b])))
        .unwrap_or(1);
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
    let (index, max) = points[1..points.len() - 1].iter().enumerate().map(|(i, &p)| (i + 1, distance(p))).fold((0, 0.0), |m, v| if v.1 > m.1 { v } else { m });
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
    fn outlines_reproduce_the_object() {
        // A disc: its traced outline rasterises back to the same pixels.
        let disc = Polygon::new((0..64).map(|i| {
            let a = i as f64 / 64.0 * std::f64::consts::TAU;
            [30.0 + 17.0 * a.cos(), 25.0 + 12.0 * a.sin()]
        }).collect());
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
