//! Training-curve charts as PNG files: plotters draws into an RGB buffer and `image` encodes it. Text is set in
//! DejaVu Sans, embedded from `assets/fonts/` (licence beside it), so no system font library is needed.

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::error::Error;
use std::path::Path;
use std::sync::OnceLock;

/// One line of a chart.
pub struct Series<'a> {
    /// Legend entry; an empty name leaves the series out of the legend.
    pub name: &'a str,
    /// `(x, y)` points in drawing order; points with a non-finite coordinate are skipped.
    pub points: &'a [(f64, f64)],
}

const SIZE: (u32, u32) = (960, 600);
/// Series colours (matplotlib's tab10), cycled.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
const INK: RGBColor = RGBColor(30, 30, 30);
const GRID: RGBColor = RGBColor(225, 225, 225);
/// Series with at most this many points also get a dot at each point.
const MARKED_POINTS: usize = 60;
/// Length of a series' line sample in the legend, in pixels.
const LEGEND_LINE: i32 = 28;
/// The family plotters falls back to for any text not given a font, so the embedded font is registered under it.
const FAMILY: &str = "sans-serif";
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Draws a line chart (x axis: epoch or step; y axis autoscaled, or fixed 0..1 when `unit_range`, points outside
/// it drawn on its edge) with axes, tick labels, a grid, a title and a legend, and writes it as a 960×600 PNG.
pub fn line_chart(path: &Path, title: &str, x_label: &str, series: &[Series<'_>], unit_range: bool) -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if !*REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok()) {
        return Err("cannot draw the chart: the embedded font does not parse".into());
    }
    let finite: Vec<Vec<(f64, f64)>> =
        series.iter().map(|s| s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect()).collect();
    let x_range = span(finite.iter().flatten().map(|p| p.0), 0.02);
    let y_range = if unit_range { (0.0, 1.0) } else { span(finite.iter().flatten().map(|p| p.1), 0.05) };
    let mut rgb = vec![255; SIZE.0 as usize * SIZE.1 as usize * 3];
    let names = series.iter().map(|s| s.name);
    draw(&mut rgb, title, x_label, names.zip(finite.iter().map(Vec::as_slice)), x_range, y_range)
        .map_err(|e| format!("cannot draw the chart: {e}: {}", path.display()))?;
    // The buffer was allocated for SIZE just above, so `from_raw` cannot refuse it.
    let img = RgbImage::from_raw(SIZE.0, SIZE.1, rgb).ok_or("chart buffer of the wrong size")?;
    img.save(path).map_err(|e| format!("cannot write the chart: {e}: {}", path.display()))
}

/// Draws the chart into `rgb`, a white SIZE image, three bytes a pixel.
fn draw<'a>(
    rgb: &mut [u8],
    title: &str,
    x_label: &str,
    series: impl Iterator<Item = (&'a str, &'a [(f64, f64)])>,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<(), Box<dyn Error>> {
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 30).into_font().color(&INK))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .max_light_lines(0)
        .axis_style(INK)
        .label_style((FAMILY, 16).into_font().color(&INK))
        .axis_desc_style((FAMILY, 18).into_font().color(&INK))
        .x_desc(x_label)
        .x_label_formatter(&|v| tick_label(*v, x1 - x0))
        .y_label_formatter(&|v| tick_label(*v, y1 - y0))
        .draw()?;
    let mut labelled = false;
    for (k, (name, points)) in series.enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let dots = if points.len() <= MARKED_POINTS { 3 } else { 0 };
        // Only a fixed 0..1 range can leave points outside. Plotters pins such points to the plot area's edge,
        // but its pixel mapping overflows `i32` for values far outside, so they are pinned here first.
        let pinned = points.iter().map(|&(x, y)| (x, y.clamp(y0, y1)));
        let line = chart.draw_series(LineSeries::new(pinned, colour.filled().stroke_width(2)).point_size(dots))?;
        if !name.is_empty() {
            line.label(name).legend(move |(x, y)| PathElement::new([(x, y), (x + LEGEND_LINE, y)], colour.stroke_width(3)));
            labelled = true;
        }
    }
    if labelled {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .legend_area_size(LEGEND_LINE + 10)
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FAMILY, 18).into_font().color(&INK))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// A tick value rounded to a thousandth of the axis length, then written as briefly as it reads back: "10", not
/// plotters' "10.0" for an epoch; "0.1", not "0.30000000000000004"-style noise.
fn tick_label(v: f64, length: f64) -> String {
    // Dividing by an exact power of ten (not multiplying by its inverse) gives the double nearest the decimal.
    let scale = 10f64.powf((-(length / 1000.0).log10().floor()).max(0.0));
    let rounded = (v * scale).round() / scale;
    // Also turns -0 into 0.
    format!("{}", if rounded == 0.0 { 0.0 } else { rounded })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels of exactly `colour` inside the rectangle `x0..x1`, `y0..y1`.
    fn count(img: &RgbImage, colour: RGBColor, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> usize {
        let RGBColor(r, g, b) = colour;
        img.enumerate_pixels().filter(|(x, y, p)| (x0..x1).contains(x) && (y0..y1).contains(y) && p.0 == [r, g, b]).count()
    }

    /// Pixels darker than mid-grey (text and axes) inside the rectangle.
    fn dark(img: &RgbImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> usize {
        img.enumerate_pixels().filter(|(x, y, p)| (x0..x1).contains(x) && (y0..y1).contains(y) && p.0.iter().all(|&c| c < 128)).count()
    }

    const WHOLE: (u32, u32, u32, u32) = (0, 0, SIZE.0, SIZE.1);

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
        assert!(count(&img, COLOURS[0], WHOLE) > 500, "blue line missing");
        assert!(count(&img, COLOURS[1], WHOLE) > 300, "orange line missing");
        assert!(count(&img, GRID, WHOLE) > 1000, "grid missing");
        assert!(dark(&img, (0, 0, SIZE.0, 50)) > 100, "title missing");
        assert!(dark(&img, (0, SIZE.1 - 70, SIZE.0, SIZE.1)) > 300, "x tick labels and axis label missing");
        assert!(dark(&img, (0, 50, 110, SIZE.1 - 70)) > 300, "y tick labels missing");
        // Both curves end low on the right, so colour and text in the top right corner are the legend's.
        let legend = (SIZE.0 - 300, 40, SIZE.0, 170);
        assert!(count(&img, COLOURS[0], legend) > 40 && count(&img, COLOURS[1], legend) > 40, "legend samples missing");
        assert!(dark(&img, legend) > 100, "legend names missing");

        let unnamed = [Series { name: "", points: &train }, Series { name: "", points: &valid }];
        line_chart(&path, "Loss", "epoch", &unnamed, false).expect("chart written");
        let img = image::open(&path).expect("PNG readable").to_rgb8();
        assert!(dark(&img, legend) < 20, "a legend drawn with no names");
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
        assert!(count(&img, COLOURS[0], WHOLE) > 20, "single point marker missing");
        line_chart(&path, "Empty", "step", &[], false).expect("empty chart written");
        line_chart(&path, "Flat", "step", &[Series { name: "flat", points: &flat }], false).expect("flat chart written");
        let img = image::open(&path).expect("PNG readable").to_rgb8();
        assert!(count(&img, COLOURS[0], WHOLE) > 200, "flat line missing");
        line_chart(&path, "Wild", "step", &[Series { name: "w", points: &wild }], true).expect("clipped chart written");
        let img = image::open(&path).expect("PNG readable").to_rgb8();
        let outside = count(&img, COLOURS[0], (0, 0, SIZE.0, 40)) + count(&img, COLOURS[0], (0, SIZE.1 - 60, SIZE.0, SIZE.1));
        assert_eq!(outside, 0, "line drawn outside the plot area");
        assert!(count(&img, COLOURS[0], WHOLE) > 200, "line inside the plot area missing");
        assert!(line_chart(&dir.path().join("missing/x.png"), "T", "x", &[], false).is_err());
        assert_eq!(
            ["10", "0.3", "0", "0.00025", "-2", "0.7"],
            [(10.0, 80.0), (0.1 * 3.0, 0.7), (-1e-17, 1.0), (2.5e-4, 3e-4), (-2.0, 5.0), (0.7, 0.7)].map(|(v, l)| tick_label(v, l))
        );
        let (lo, hi) = span([2.0, 2.0].into_iter(), 0.05);
        assert!((lo - 1.8).abs() < 1e-12 && (hi - 2.2).abs() < 1e-12);
    }
}
