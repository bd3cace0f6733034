//! Laying out a synthetic slide from a seed: what is where, and the ground truth outlines.

use super::SynthConfig;
use crate::mask::{Annotation, Polygon};
use crate::rng::SplitMix64;
use std::f64::consts::TAU;

/// Grid cell side (pixels) of the spatial index used while rendering.
pub(super) const CELL: u32 = 256;
/// Points per outline polygon.
const OUTLINE_POINTS: usize = 64;

/// A round-ish outline: an ellipse whose radius wobbles with a few harmonics.
#[derive(Debug, Clone)]
pub(super) struct Shape {
    pub cx: f64,
    pub cy: f64,
    pub rx: f64,
    pub ry: f64,
    cos: f64,
    sin: f64,
    harmonics: [(f64, f64); 4],
}

impl Shape {
    fn random(rng: &mut SplitMix64, cx: f64, cy: f64, rx: f64, ry: f64, wobble: f64) -> Self {
        let angle = rng.range(0.0, TAU);
        let mut harmonics = [(0.0, 0.0); 4];
        for (k, h) in harmonics.iter_mut().enumerate() {
            *h = (rng.range(0.0, wobble) / (k as f64 + 1.0), rng.range(0.0, TAU));
        }
        Self { cx, cy, rx, ry, cos: angle.cos(), sin: angle.sin(), harmonics }
    }

    /// Largest distance from the centre the outline can reach.
    pub fn reach(&self) -> f64 {
        let wobble: f64 = self.harmonics.iter().map(|h| h.0).sum();
        self.rx.max(self.ry) * (1.0 + wobble)
    }

    /// The outline's radius factor at angle `theta` (in the shape's own frame).
    fn factor(&self, theta: f64) -> f64 {
        1.0 + self.harmonics.iter().enumerate().map(|(k, &(a, phase))| a * ((k as f64 + 2.0) * theta + phase).cos()).sum::<f64>()
    }

    /// Distance from the centre relative to the outline: < 1 inside, 1 on it.
    pub fn norm(&self, x: f64, y: f64) -> f64 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let (u, v) = ((dx * self.cos + dy * self.sin) / self.rx, (-dx * self.sin + dy * self.cos) / self.ry);
        (u * u + v * v).sqrt() / self.factor(v.atan2(u))
    }

    /// Whether `(x, y)` lies inside the outline. Skips the trigonometry away from the boundary,
    /// where the wobble cannot change the answer.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let (u, v) = ((dx * self.cos + dy * self.sin) / self.rx, (-dx * self.sin + dy * self.cos) / self.ry);
        let r2 = u * u + v * v;
        let wobble: f64 = self.harmonics.iter().map(|h| h.0).sum();
        if r2 < (1.0 - wobble).powi(2) {
            return true;
        }
        if r2 >= (1.0 + wobble).powi(2) {
            return false;
        }
        r2.sqrt() < self.factor(v.atan2(u))
    }

    /// The outline scaled by `scale` (1 = the outline itself) as a polygon ring.
    fn ring(&self, scale: f64) -> Vec<[f64; 2]> {
        (0..OUTLINE_POINTS)
            .map(|i| {
                let t = i as f64 / OUTLINE_POINTS as f64 * TAU;
                let r = scale * self.factor(t);
                let (u, v) = (r * t.cos() * self.rx, r * t.sin() * self.ry);
                [self.cx + u * self.cos - v * self.sin, self.cy + u * self.sin + v * self.cos]
            })
            .collect()
    }
}

/// Slide-wide stain colours (RGB, 0–255), varied per slide like PAS/H&E batches.
#[derive(Debug, Clone)]
pub struct Stain {
    /// Nuclei (haematoxylin).
    pub nucleus: [f32; 3],
    /// Cytoplasm and matrix (eosin/PAS).
    pub cytoplasm: [f32; 3],
    /// Loose stroma.
    pub stroma: [f32; 3],
    /// Empty glass.
    pub glass: [f32; 3],
    /// Lumens and Bowman's space.
    pub lumen: [f32; 3],
}

impl Stain {
    fn random(rng: &mut SplitMix64) -> Self {
        let jitter = |rng: &mut SplitMix64, c: [f32; 3], amount: f64| c.map(|v| (v + rng.range(-amount, amount) as f32).clamp(0.0, 255.0));
        Self {
            nucleus: jitter(rng, [70.0, 45.0, 120.0], 20.0),
            cytoplasm: jitter(rng, [215.0, 120.0, 170.0], 20.0),
            stroma: jitter(rng, [232.0, 180.0, 210.0], 12.0),
            glass: jitter(rng, [242.0, 240.0, 244.0], 5.0),
            lumen: jitter(rng, [246.0, 228.0, 238.0], 6.0),
        }
    }
}

/// A glomerulus: its outline (Bowman's capsule) and whether the annotations include it.
#[derive(Debug, Clone)]
pub struct Glomerulus {
    pub(super) shape: Shape,
    /// Whether it appears in `train.csv` and the JSON (some are left out on purpose).
    pub annotated: bool,
}

/// A tubule cross-section: a ring of epithelium with nuclei around a lumen.
#[derive(Debug, Clone)]
pub(super) struct Tubule {
    pub cx: f64,
    pub cy: f64,
    /// Larger radius; the tubule is an ellipse (cut at an angle) with axes `r` and `r·aspect`.
    pub r: f64,
    pub aspect: f64,
    pub cos: f64,
    pub sin: f64,
    pub nuclei: u32,
    pub phase: f64,
    /// Relative lumen radius: wide in collecting ducts, narrow in proximal tubules.
    pub lumen: f64,
}

/// A round structure that is not a glomerulus.
#[derive(Debug, Clone)]
pub(super) enum Negative {
    /// An artery: thick muscular wall around a lumen.
    Artery(Shape),
    /// A dense ball of nuclei without Bowman's space (e.g. a lymphoid aggregate).
    Aggregate(Shape),
}

impl Negative {
    pub fn shape(&self) -> &Shape {
        match self {
            Self::Artery(s) | Self::Aggregate(s) => s,
        }
    }
}

/// A piece of tissue; the outer band (normalised radius from `cortex_from` to 1) is cortex.
#[derive(Debug, Clone)]
pub(super) struct Piece {
    pub shape: Shape,
    pub cortex_from: f64,
}

/// A fold: a band where the section lies doubled over itself and stains darker.
#[derive(Debug, Clone)]
pub(super) struct Fold {
    pub a: (f64, f64),
    pub b: (f64, f64),
    pub half_width: f64,
}

impl Fold {
    /// How deep inside the band `(x, y)` lies: 1 on its axis, 0 at and beyond its edges.
    pub fn depth(&self, x: f64, y: f64) -> f64 {
        let (dx, dy) = (self.b.0 - self.a.0, self.b.1 - self.a.1);
        let t = (((x - self.a.0) * dx + (y - self.a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        let d = (x - self.a.0 - t * dx).hypot(y - self.a.1 - t * dy);
        (1.0 - d / self.half_width).max(0.0)
    }
}

/// What the spatial index points at.
#[derive(Debug, Clone, Copy)]
pub(super) enum Item {
    Glomerulus(u32),
    Tubule(u32),
    Negative(u32),
}

/// A synthetic slide, laid out and ready to render.
#[derive(Debug, Clone)]
pub struct Scene {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) seed: u64,
    pub(super) stain: Stain,
    pub(super) pieces: Vec<Piece>,
    pub(super) glomeruli: Vec<Glomerulus>,
    pub(super) tubules: Vec<Tubule>,
    pub(super) negatives: Vec<Negative>,
    pub(super) folds: Vec<Fold>,
    /// Whether the slide is slightly out of focus (a 3×3 blur at level 0).
    pub(super) blurred: bool,
    pub(super) grid: Vec<Vec<Item>>,
    pub(super) grid_cols: u32,
}

impl Scene {
    /// Lays out a slide. Deterministic: the same config gives the same scene.
    pub fn new(config: &SynthConfig) -> Self {
        let (w, h) = (config.width.max(1), config.height.max(1));
        let mut rng = SplitMix64::new(config.seed ^ 0x5EED_F7D5_C09E_0001);
        let stain = Stain::random(&mut rng);
        let pieces = lay_out_pieces(&mut rng, w as f64, h as f64, config.tissue_scale.clamp(0.1, 1.3));
        let glomeruli = place_glomeruli(&mut rng, &pieces, config.unannotated_fraction);
        let negatives = place_negatives(&mut rng, &pieces, &glomeruli, config.hard_negatives_per_glomerulus);
        let tubules = place_tubules(&mut rng, &pieces, &glomeruli, &negatives, w, h);
        let folds = pieces
            .iter()
            .flat_map(|p| {
                let count = (rng.next_u64() % 3) as usize;
                (0..count)
                    .map(|_| {
                        let r = p.shape.rx.min(p.shape.ry);
                        let a = (p.shape.cx + rng.range(-r, r), p.shape.cy + rng.range(-r, r));
                        let angle = rng.range(0.0, TAU);
                        let length = rng.range(0.2, 0.6) * r;
                        let b = (a.0 + length * angle.cos(), a.1 + length * angle.sin());
                        Fold { a, b, half_width: rng.range(15.0, 60.0) }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let blurred = rng.unit() < 0.5;
        let mut scene = Scene {
            width: w,
            height: h,
            seed: config.seed,
            stain,
            pieces,
            glomeruli,
            tubules,
            negatives,
            folds,
            blurred,
            grid: Vec::new(),
            grid_cols: w.div_ceil(CELL),
        };
        scene.build_grid();
        scene
    }

    /// Slide width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Slide height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Every glomerulus, annotated or not.
    pub fn glomeruli(&self) -> &[Glomerulus] {
        &self.glomeruli
    }

    /// The slide's stain colours.
    pub fn stain(&self) -> &Stain {
        &self.stain
    }

    /// The annotated glomeruli as QuPath annotations (class "glomerulus", locked), as in `<id>.json`.
    pub fn glomerulus_annotations(&self) -> Vec<Annotation> {
        self.glomeruli
            .iter()
            .filter(|g| g.annotated)
            .map(|g| Annotation {
                polygons: vec![Polygon::new(g.shape.ring(1.0))],
                classification: "glomerulus".into(),
                locked: true,
                measurements: Vec::new(),
            })
            .collect()
    }

    /// Cortex and medulla of every tissue piece, as in `<id>-anatomical-structure.json`.
    pub fn anatomy_annotations(&self) -> Vec<Annotation> {
        self.pieces
            .iter()
            .flat_map(|p| {
                let inner = p.shape.ring(p.cortex_from);
                [
                    Annotation {
                        polygons: vec![Polygon { rings: vec![p.shape.ring(1.0), inner.clone()] }],
                        classification: "Cortex".into(),
                        locked: false,
                        measurements: Vec::new(),
                    },
                    Annotation {
                        polygons: vec![Polygon::new(inner)],
                        classification: "Medulla".into(),
                        locked: false,
                        measurements: Vec::new(),
                    },
                ]
            })
            .collect()
    }

    fn build_grid(&mut self) {
        let rows = self.height.div_ceil(CELL);
        let mut grid = vec![Vec::new(); (self.grid_cols * rows) as usize];
        let cols = self.grid_cols;
        let mut add = |cx: f64, cy: f64, reach: f64, item: Item| {
            let x0 = ((cx - reach) / CELL as f64).floor().max(0.0) as u32;
            let y0 = ((cy - reach) / CELL as f64).floor().max(0.0) as u32;
            let x1 = (((cx + reach) / CELL as f64).floor().max(0.0) as u32).min(cols - 1);
            let y1 = (((cy + reach) / CELL as f64).floor().max(0.0) as u32).min(rows - 1);
            for gy in y0..=y1 {
                for gx in x0..=x1 {
                    grid[(gy * cols + gx) as usize].push(item);
                }
            }
        };
        for (i, g) in self.glomeruli.iter().enumerate() {
            add(g.shape.cx, g.shape.cy, g.shape.reach(), Item::Glomerulus(i as u32));
        }
        for (i, n) in self.negatives.iter().enumerate() {
            add(n.shape().cx, n.shape().cy, n.shape().reach(), Item::Negative(i as u32));
        }
        for (i, t) in self.tubules.iter().enumerate() {
            add(t.cx, t.cy, t.r, Item::Tubule(i as u32));
        }
        self.grid = grid;
    }
}

fn lay_out_pieces(rng: &mut SplitMix64, w: f64, h: f64, scale: f64) -> Vec<Piece> {
    let two = w.max(h) > 1.4 * w.min(h) && rng.unit() < 0.7;
    let boxes: Vec<(f64, f64, f64, f64)> = if !two {
        vec![(0.0, 0.0, w, h)]
    } else if w > h {
        vec![(0.0, 0.0, w / 2.0, h), (w / 2.0, 0.0, w / 2.0, h)]
    } else {
        vec![(0.0, 0.0, w, h / 2.0), (0.0, h / 2.0, w, h / 2.0)]
    };
    boxes
        .into_iter()
        .map(|(x, y, bw, bh)| {
            let (cx, cy) = (x + bw * rng.range(0.45, 0.55), y + bh * rng.range(0.45, 0.55));
            let (rx, ry) = (bw * rng.range(0.33, 0.4) * scale, bh * rng.range(0.33, 0.4) * scale);
            let shape = Shape::random(rng, cx, cy, rx, ry, 0.12);
            Piece { shape, cortex_from: rng.range(0.5, 0.62) }
        })
        .collect()
}

/// Whether `(x, y)` is on tissue (rather than glass).
pub(super) fn on_tissue(pieces: &[Piece], x: f64, y: f64) -> bool {
    pieces.iter().any(|p| p.shape.contains(x, y))
}

fn random_point_in(rng: &mut SplitMix64, piece: &Piece) -> (f64, f64) {
    let r = piece.shape.reach();
    (piece.shape.cx + rng.range(-r, r), piece.shape.cy + rng.range(-r, r))
}

fn place_glomeruli(rng: &mut SplitMix64, pieces: &[Piece], unannotated: f64) -> Vec<Glomerulus> {
    let mut glomeruli: Vec<Glomerulus> = Vec::new();
    for piece in pieces {
        let area = std::f64::consts::PI * piece.shape.rx * piece.shape.ry * (1.0 - piece.cortex_from.powi(2));
        let target = (area / 700f64.powi(2)).round().max(1.0) as usize;
        let mut placed = 0;
        for _ in 0..target * 40 {
            if placed == target {
                break;
            }
            let (x, y) = random_point_in(rng, piece);
            let n = piece.shape.norm(x, y);
            let r = 89.0 + 111.0 * rng.unit().powf(1.5);
            let margin = r / piece.shape.rx.min(piece.shape.ry);
            if n < piece.cortex_from + margin || n > 1.0 - 1.5 * margin {
                continue;
            }
            if glomeruli.iter().any(|g| (g.shape.cx - x).hypot(g.shape.cy - y) < g.shape.reach() + r * 1.2 + 60.0) {
                continue;
            }
            let squash = rng.range(0.85, 1.0);
            let shape = Shape::random(rng, x, y, r, r * squash, 0.05);
            let annotated = rng.unit() >= unannotated;
            glomeruli.push(Glomerulus { shape, annotated });
            placed += 1;
        }
    }
    glomeruli
}

fn place_negatives(rng: &mut SplitMix64, pieces: &[Piece], glomeruli: &[Glomerulus], per_glomerulus: f64) -> Vec<Negative> {
    let target = (glomeruli.len() as f64 * per_glomerulus.max(0.0)).round() as usize;
    let mut negatives: Vec<Negative> = Vec::new();
    for _ in 0..target * 40 {
        if negatives.len() == target || pieces.is_empty() {
            break;
        }
        let piece = &pieces[(rng.next_u64() % pieces.len() as u64) as usize];
        let (x, y) = random_point_in(rng, piece);
        let r = rng.range(70.0, 180.0);
        if piece.shape.norm(x, y) > 1.0 - 1.5 * r / piece.shape.rx.min(piece.shape.ry) {
            continue;
        }
        let clear = |cx: f64, cy: f64, reach: f64| (cx - x).hypot(cy - y) > reach + r * 1.2 + 60.0;
        if !glomeruli.iter().all(|g| clear(g.shape.cx, g.shape.cy, g.shape.reach()))
            || !negatives.iter().all(|n| clear(n.shape().cx, n.shape().cy, n.shape().reach()))
        {
            continue;
        }
        let ry = r * rng.range(0.8, 1.0);
        let shape = Shape::random(rng, x, y, r, ry, 0.06);
        negatives.push(if rng.unit() < 0.5 { Negative::Artery(shape) } else { Negative::Aggregate(shape) });
    }
    negatives
}

fn place_tubules(rng: &mut SplitMix64, pieces: &[Piece], glomeruli: &[Glomerulus], negatives: &[Negative], w: u32, h: u32) -> Vec<Tubule> {
    const SPACING: f64 = 88.0;
    let mut tubules = Vec::new();
    let (cols, rows) = ((w as f64 / SPACING) as u32 + 1, (h as f64 / SPACING) as u32 + 1);
    for gy in 0..rows {
        for gx in 0..cols {
            let x = (gx as f64 + 0.5) * SPACING + rng.range(-22.0, 22.0);
            let y = (gy as f64 + 0.5) * SPACING + rng.range(-22.0, 22.0);
            let r = rng.range(40.0, 62.0);
            let aspect = rng.range(0.6, 1.0);
            let angle = rng.range(0.0, TAU);
            let nuclei = rng.range(9.0, 16.0) as u32;
            let phase = rng.range(0.0, TAU);
            let lumen = if rng.unit() < 0.3 { rng.range(0.45, 0.6) } else { rng.range(0.12, 0.3) };
            if !pieces.iter().any(|p| p.shape.norm(x, y) <= 0.97) {
                continue;
            }
            let clear = |s: &Shape| (s.cx - x).hypot(s.cy - y) > s.reach() * 1.08 + r;
            if glomeruli.iter().all(|g| clear(&g.shape)) && negatives.iter().all(|n| clear(n.shape())) {
                tubules.push(Tubule { cx: x, cy: y, r, aspect, cos: angle.cos(), sin: angle.sin(), nuclei, phase, lumen });
            }
        }
    }
    tubules
}
