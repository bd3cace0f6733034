//! Argument parsing and the subcommands. Errors are printed as one line and exit with code 2.

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use ftuscope::backend::{DeviceChoice, select_device};
use ftuscope::infer::{SegmentConfig, Segmenter};
use ftuscope::slide::decode_image;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Finds glomeruli in kidney histology images.
#[derive(Parser, Debug)]
#[command(name = "ftuscope", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Segment one PNG/JPEG image and write its probability mask as a grey PNG.
    ///
    /// The network is still the untrained placeholder: the mask shows the pipeline works, not
    /// where glomeruli are.
    Segment {
        /// The image to segment (PNG or JPEG).
        image: PathBuf,
        /// Where to write the mask PNG (0 = background, 255 = glomerulus).
        #[arg(long)]
        out: PathBuf,
        /// Also write the image with the thresholded mask overlaid (PNG).
        #[arg(long)]
        overlay: Option<PathBuf>,
        /// Compute device: cpu, wgpu (needs the `wgpu` feature) or cuda (needs `cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Window side in pixels (a multiple of 4).
        #[arg(long, default_value_t = 256)]
        tile: usize,
        /// Windows per forward pass.
        #[arg(long, default_value_t = 4)]
        batch: usize,
        /// Probability threshold for the overlay and the reported fraction.
        #[arg(long, default_value_t = 0.5)]
        threshold: f32,
        /// Segment this many times and report each run's time (the first includes kernel
        /// compilation): a quick benchmark.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
    },
}

/// Runs the CLI; any error becomes one line on stderr and exit code 2.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Segment { image, out, overlay, device, tile, batch, threshold, repeat } => {
            let choice: DeviceChoice = device.parse()?;
            let bytes = std::fs::read(&image).map_err(|e| anyhow!("cannot read image: {e}: {}", image.display()))?;
            let rgb = decode_image(&bytes).map_err(|e| anyhow!("{e}: {}", image.display()))?;
            let (device, info) = select_device(choice)?;
            let config = SegmentConfig::new().with_tile(tile).with_batch(batch).with_threshold(threshold);
            let segmenter = Segmenter::placeholder(&device, config)?;
            let mut mask = None;
            let mut seconds = 0.0;
            for run in 1..=repeat {
                let started = Instant::now();
                mask = Some(futures_lite::future::block_on(segmenter.segment(&rgb))?);
                seconds = started.elapsed().as_secs_f64();
                if repeat > 1 {
                    println!("run {run}/{repeat}: {:.1} ms", seconds * 1e3);
                }
            }
            let mask = mask.ok_or_else(|| anyhow!("no segmentation ran"))?;
            save_png(&out, |path| mask.to_luma8().save_with_format(path, image::ImageFormat::Png))?;
            if let Some(path) = &overlay {
                let tinted = mask.overlay(&rgb, threshold, 0.45);
                save_png(path, |p| tinted.save_with_format(p, image::ImageFormat::Png))?;
            }
            println!(
                "segmented {} ({}×{}) on {} [{}] in {seconds:.2} s: {:.1}% of pixels ≥ {threshold} (untrained placeholder network) → {}",
                image.display(),
                rgb.width(),
                rgb.height(),
                info.backend,
                info.adapter,
                100.0 * mask.positive_fraction(threshold),
                out.display()
            );
            Ok(())
        }
    }
}

/// Writes through a temporary file and renames it, so a failed write never leaves half a PNG
/// where a previous good one was.
fn save_png(path: &Path, write: impl FnOnce(&Path) -> image::ImageResult<()>) -> anyhow::Result<()> {
    let tmp = path.with_extension("png.partial");
    write(&tmp).map_err(|e| anyhow!("cannot write PNG: {e}: {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move PNG into place: {}", path.display()))
}
