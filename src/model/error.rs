//! What can go wrong with a model: its manifest, its network, its weights, its files.

/// Errors of the model layer. A `model.json` or `model.bpk` is untrusted input: every problem
/// with one is one of these, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `model.json` is not JSON, not a manifest, or a manifest of another format.
    #[error("{0}")]
    Manifest(String),
    /// The manifest or network asks for something no engine can run (zero channels, a window
    /// smaller than its overlap, …).
    #[error("{0}")]
    Invalid(String),
    /// A network name that is not one of ours.
    #[error("{0}")]
    UnknownArch(String),
    /// `model.bpk` is not a burnpack file, or does not fit the network of `model.json`.
    #[error("{0}")]
    Weights(String),
    /// A PyTorch or safetensors file cannot be read.
    #[error("cannot read weights: {0}")]
    Read(String),
    /// Tensors exist under the right names but with other shapes: a different architecture.
    #[error("{count} tensor(s) do not fit this architecture, e.g. {first}")]
    Shape {
        /// How many.
        count: usize,
        /// The first one, described.
        first: String,
    },
    /// Nothing in the file matched the network: a wrong file or architecture.
    #[error("no tensor in the file matches the {arch} network (is it the right file and --arch?)")]
    NothingApplied {
        /// The architecture asked for.
        arch: String,
    },
    /// Reading or writing a model folder failed.
    #[error("{0}")]
    Io(String),
}

/// Results of the model layer.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The same error with the path or URL it concerns appended, last, as every message ends.
    pub fn at(self, location: &str) -> Self {
        let add = |text: String| format!("{text}: {location}");
        match self {
            Self::Manifest(t) => Self::Manifest(add(t)),
            Self::Invalid(t) => Self::Invalid(add(t)),
            Self::UnknownArch(t) => Self::UnknownArch(add(t)),
            Self::Weights(t) => Self::Weights(add(t)),
            Self::Read(t) => Self::Read(add(t)),
            Self::Io(t) => Self::Io(add(t)),
            other => other,
        }
    }
}
