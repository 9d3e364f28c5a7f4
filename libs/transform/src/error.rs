//! The error type of the crate.

/// Why options could not be parsed or a transform or edit could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// An options item is malformed, unknown, out of range or repeated.
    #[error("\"{item}\": {message}")]
    InvalidOption {
        /// The offending item as written, e.g. `bl:abc`.
        item: String,
        /// What is wrong with it, for humans.
        message: String,
    },
    /// A preset definition is invalid.
    #[error("preset \"{name}\": {message}")]
    InvalidPreset {
        /// The preset name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The requested (or resulting) output exceeds the configured [`crate::Caps`].
    #[error("{0}")]
    TooLarge(String),
    /// An explicit crop does not overlap the image.
    #[error("crop {x}:{y}:{width}:{height} lies outside the {image_width}x{image_height} image")]
    CropOutside {
        /// Left edge of the requested crop.
        x: u32,
        /// Top edge of the requested crop.
        y: u32,
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Width of the image being cropped.
        image_width: u32,
        /// Height of the image being cropped.
        image_height: u32,
    },
    /// An edit list failed validation: `(field path, message)` pairs.
    #[error("invalid edits: {}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    InvalidEdits(Vec<(String, String)>),
    /// A watermark operation was requested but no watermark image was supplied.
    #[error("the watermark image was not supplied")]
    MissingWatermark,
    /// The resizer failed (an internal error; should not happen for valid sizes).
    #[error("resize failed: {0}")]
    Resize(String),
}

impl TransformError {
    /// A stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidOption { .. } => "invalid-transform",
            Self::InvalidPreset { .. } => "invalid-preset",
            Self::TooLarge(_) => "transform-too-large",
            Self::CropOutside { .. } => "crop-outside-image",
            Self::InvalidEdits(_) => "invalid-edits",
            Self::MissingWatermark => "watermark-missing",
            Self::Resize(_) => "transform-failed",
        }
    }

    /// True for [`TransformError::TooLarge`] (answered with `transform-too-large`).
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge(_))
    }

    pub(crate) fn option(item: &str, message: impl Into<String>) -> Self {
        Self::InvalidOption {
            item: item.to_owned(),
            message: message.into(),
        }
    }
}
