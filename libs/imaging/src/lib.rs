//! The pixel pipeline of the thumbnails role: scaled decoding, resizing,
//! encoding, and the standard set of derivatives made from one decode.
//!
//! JPEG goes through libjpeg-turbo (the `mozjpeg` fork, built from source
//! with its SIMD code), which decodes at `n/8` of the full size inside the
//! IDCT, so a 256 px thumbnail of a 12 MP photo never materialises the full
//! pixels. PNG, GIF and WebP are decoded with the `image` crate (GIF and
//! animated WebP: the first frame). Resizing is `fast_image_resize`
//! (Lanczos3, SIMD); lossy WebP is libwebp. HEIC and AVIF are recognised but
//! cannot be decoded here.
//!
//! Everything is synchronous and CPU-bound: call it from a blocking pool.

mod decode;
mod derivatives;
mod encode;
mod jpeg;
mod resize;

use std::fmt;

pub use decode::decode;
pub use derivatives::{
    DERIVATIVE_NAMES, Derivatives, JPEG_QUALITY, Made, StageTimes, WEBP_QUALITY,
    make_derivatives, make_derivatives_timed, thumbnail,
};
pub use encode::{WEBP_METHOD, encode};
pub use resize::{fit_within, resize};

/// Limits checked from the headers, before any pixel buffer is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest `width * height` accepted.
    pub max_pixels: u64,
}

impl Default for Limits {
    /// 100 megapixels.
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
        }
    }
}

/// Why an image could not be decoded, resized or encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImagingError {
    /// The bytes are not an image, or in a format this server cannot decode
    /// (HEIC, AVIF).
    #[error("{0}")]
    Unsupported(String),
    /// The headers announce more pixels than [`Limits::max_pixels`].
    #[error("the image is {width}x{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    /// The image is corrupt or truncated beyond what the decoder tolerates.
    #[error("the image cannot be decoded: {0}")]
    Decode(String),
    /// A requested size cannot be produced (zero width or height).
    #[error("the image cannot be resized: {0}")]
    Resize(String),
    /// The encoder failed (or the image is too large for the format).
    #[error("the image cannot be encoded: {0}")]
    Encode(String),
}

/// A format derivatives can be written in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl OutputFormat {
    /// Every output format.
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Gif,
    ];

    /// The stable lowercase name: `jpeg`, `png`, `webp`, `gif`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Gif => "gif",
        }
    }

    /// The file name extension, without the dot: `jpg`, `png`, `webp`, `gif`.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            other => other.as_str(),
        }
    }

    /// The media type, for `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Gif => "image/gif",
        }
    }

    /// The format named by [`OutputFormat::as_str`] or
    /// [`OutputFormat::extension`] (ASCII case-insensitive), or `None`.
    pub fn parse(s: &str) -> Option<OutputFormat> {
        OutputFormat::ALL.into_iter().find(|f| {
            s.eq_ignore_ascii_case(f.as_str()) || s.eq_ignore_ascii_case(f.extension())
        })
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded image.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The pixels with the EXIF orientation applied: `Rgb8` for JPEG,
    /// `Rgb8` or `Rgba8` (when the source has alpha) otherwise; the first
    /// frame of an animation.
    pub image: image::DynamicImage,
    /// The displayed (oriented) width of the full-resolution image.
    pub full_width: u32,
    /// The displayed (oriented) height of the full-resolution image.
    pub full_height: u32,
    /// The source format.
    pub format: pinhole_media::Format,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_format_names_round_trip() {
        for f in OutputFormat::ALL {
            assert_eq!(OutputFormat::parse(f.as_str()), Some(f));
            assert_eq!(OutputFormat::parse(f.extension()), Some(f));
            assert!(f.mime().starts_with("image/"));
        }
        assert_eq!(OutputFormat::parse("JPG"), Some(OutputFormat::Jpeg));
        assert_eq!(OutputFormat::parse("heic"), None);
    }
}
