//! Blending overlapping windows into one probability canvas at model scale: each window adds its
//! probabilities, weighted by the [`Blend`] rule, into accumulator tiles; a tile is finalised into
//! the 8-bit canvas as soon as the last window touching it has run, so memory follows the band of
//! windows in flight, not the slide.

use super::plan::{Plan, Window};
use std::collections::{HashMap, HashSet};

/// How overlapping windows are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Blend {
    /// Each window contributes only its centre (half the overlap is cut on sides with a neighbour),
    /// as the HuBMAP winners did.
    #[default]
    Centre,
    /// Weighted average with weights ramping up linearly over the overlap.
    Ramp,
}

/// Side of the accumulator tiles, in model pixels.
const TILE: u32 = 256;

/// One accumulator tile: weighted sums of probabilities and the sums of weights.
struct Accumulator {
    sum: Vec<f32>,
    weight: Vec<f32>,
}

/// The canvas being blended, window by window.
pub struct Blender {
    blend: Blend,
    canvas_width: u32,
    canvas_height: u32,
    canvas: Vec<u8>,
    accumulators: HashMap<(u32, u32), Accumulator>,
    /// Grid cells (column, row) that hold a window: a side with no neighbour keeps its edge.
    occupied: HashSet<(u32, u32)>,
    /// The last window touching each accumulator tile: the tile is final once it has run.
    last_window: HashMap<(u32, u32), usize>,
}

impl Blender {
    /// An empty canvas for the windows of `plan`, which cover the slide at `plan.scale`.
    pub fn new(plan: &Plan, blend: Blend) -> Self {
        let canvas_width = (plan.width as f64 / plan.scale).ceil() as u32;
        let canvas_height = (plan.height as f64 / plan.scale).ceil() as u32;
        let mut blender = Self {
            blend,
            canvas_width,
            canvas_height,
            canvas: vec![0u8; canvas_width as usize * canvas_height as usize],
            accumulators: HashMap::new(),
            occupied: plan.windows.iter().map(|w| (w.col, w.row)).collect(),
            last_window: HashMap::new(),
        };
        for (i, w) in plan.windows.iter().enumerate() {
            for tile in blender.tiles_of(plan, w) {
                blender.last_window.insert(tile, i);
            }
        }
        blender
    }

    /// Canvas width and height in model pixels.
    pub fn canvas_size(&self) -> (u32, u32) {
        (self.canvas_width, self.canvas_height)
    }

    /// The canvas: probabilities 0–255 at model scale, row-major (windows not added count as 0).
    pub fn into_canvas(self) -> Vec<u8> {
        self.canvas
    }

    /// Adds the probabilities of window `index` of `plan` (`input_size`² values in 0..1,
    /// row-major) and finalises the tiles no later window touches.
    pub fn add(&mut self, plan: &Plan, index: usize, probs: &[f32]) {
        let window = &plan.windows[index];
        self.accumulate(plan, window, probs);
        for tile in self.tiles_of(plan, window) {
            if self.last_window.get(&tile) == Some(&index) {
                self.finalise(tile);
            }
        }
    }

    /// The window's top-left corner on the canvas.
    fn origin(plan: &Plan, w: &Window) -> (i64, i64) {
        ((w.x as f64 / plan.scale).round() as i64, (w.y as f64 / plan.scale).round() as i64)
    }

    /// The accumulator tiles a window covers.
    fn tiles_of(&self, plan: &Plan, w: &Window) -> Vec<(u32, u32)> {
        let (x0, y0) = Self::origin(plan, w);
        let s = plan.input_size as i64;
        let (x1, y1) = ((x0 + s).min(self.canvas_width as i64), (y0 + s).min(self.canvas_height as i64));
        if x1 <= x0.max(0) || y1 <= y0.max(0) {
            return Vec::new();
        }
        let t = TILE as i64;
        (y0.max(0) / t..=(y1 - 1) / t).flat_map(|ty| (x0.max(0) / t..=(x1 - 1) / t).map(move |tx| (tx as u32, ty as u32))).collect()
    }

    /// Adds one window's probabilities, weighted by the blend, into the accumulator tiles.
    fn accumulate(&mut self, plan: &Plan, w: &Window, probs: &[f32]) {
        let s = plan.input_size as i64;
        let half = (plan.window - plan.step) as f64 / plan.scale / 2.0;
        let neighbour = |dc: i64, dr: i64| self.occupied.contains(&((w.col as i64 + dc) as u32, (w.row as i64 + dr) as u32));
        // Distance-to-edge limits per side: infinite where no neighbour shares that edge.
        let sides = [neighbour(-1, 0), neighbour(1, 0), neighbour(0, -1), neighbour(0, 1)];
        let blend = self.blend;
        let weight = |i: i64, j: i64| -> f32 {
            let d = |has: bool, v: i64| if has { v as f64 + 0.5 } else { f64::INFINITY };
            let dist = d(sides[0], i).min(d(sides[1], s - 1 - i)).min(d(sides[2], j)).min(d(sides[3], s - 1 - j));
            match blend {
                Blend::Centre => (dist >= half) as u8 as f32,
                Blend::Ramp => (dist / (2.0 * half).max(1.0)).min(1.0) as f32,
            }
        };
        let (x0, y0) = Self::origin(plan, w);
        let t = TILE as i64;
        let area = (t * t) as usize;
        for j in 0..s {
            let y = y0 + j;
            if y < 0 || y >= self.canvas_height as i64 {
                continue;
            }
            for i in 0..s {
                let x = x0 + i;
                if x < 0 || x >= self.canvas_width as i64 {
                    continue;
                }
                let wgt = weight(i, j);
                if wgt <= 0.0 {
                    continue;
                }
                let tile = self
                    .accumulators
                    .entry(((x / t) as u32, (y / t) as u32))
                    .or_insert_with(|| Accumulator { sum: vec![0.0; area], weight: vec![0.0; area] });
                let k = ((y % t) * t + x % t) as usize;
                tile.sum[k] += wgt * probs[(j * s + i) as usize];
                tile.weight[k] += wgt;
            }
        }
    }

    /// Moves one accumulator tile into the canvas.
    fn finalise(&mut self, tile: (u32, u32)) {
        let Some(acc) = self.accumulators.remove(&tile) else { return };
        let (w, h) = (self.canvas_width, self.canvas_height);
        for ty in 0..TILE {
            let y = tile.1 * TILE + ty;
            if y >= h {
                break;
            }
            for tx in 0..TILE {
                let x = tile.0 * TILE + tx;
                if x >= w {
                    break;
                }
                let k = (ty * TILE + tx) as usize;
                if acc.weight[k] > 0.0 {
                    self.canvas[(y * w + x) as usize] = ((acc.sum[k] / acc.weight[k]).clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        }
    }
}
