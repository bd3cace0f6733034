//! A dataset as the command line names it (`--data`, `--stain-reference`): a location with its pixel
//! size, weight and whether it holds only negatives. Training reads it (`crate::train`); `predict`
//! and `eval` read the same syntax without the training code.

/// One dataset of a training run.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct DatasetConfig {
    /// A folder or http(s) URL in the Kaggle layout (`train.csv`), or a local folder of images
    /// with annotations (LabelMe JSON, GeoJSON or mask PNGs).
    pub location: String,
    /// µm per pixel of its images, overriding what the files record (needed for files that record
    /// none, such as PNG/JPEG, when the run sets an input pixel size).
    #[config(default = "None")]
    pub pixel_size_um: Option<f64>,
    /// Its share of the training draws, relative to the other datasets' weights.
    #[config(default = 1.0)]
    pub weight: f64,
    /// A folder of images that hold no glomerulus (other organs, non-kidney tissue, pen marks,
    /// glass): negatives, read without annotation files.
    #[config(default = false)]
    pub negative: bool,
}

impl DatasetConfig {
    /// Parses `LOCATION[,pixel-size=UM][,weight=W][,negative]` (the `--data` syntax).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.split(',');
        let location = parts.next().unwrap_or("").trim();
        if location.is_empty() {
            return Err(format!("'{spec}': expected LOCATION[,pixel-size=UM][,weight=W][,negative]"));
        }
        let mut config = Self::new(location.to_string());
        for part in parts {
            if part.trim() == "negative" {
                config.negative = true;
                continue;
            }
            let (key, value) =
                part.split_once('=').ok_or_else(|| format!("'{part}': expected KEY=VALUE (pixel-size or weight) or negative"))?;
            let number: f64 = value.trim().parse().map_err(|_| format!("'{part}': {value} is not a number"))?;
            if !(number.is_finite() && number > 0.0) {
                return Err(format!("'{part}': must be positive"));
            }
            match key.trim() {
                "pixel-size" => config.pixel_size_um = Some(number),
                "weight" => config.weight = number,
                other => return Err(format!("'{other}': unknown dataset option (pixel-size, weight, negative)")),
            }
        }
        Ok(config)
    }
}
