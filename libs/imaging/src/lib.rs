//! The pixel pipeline of the thumbnails role: decoding at a reduced scale,
//! resizing, encoding, and the standard derivative set made from one decode.
//!
//! - JPEG is decoded and encoded with libjpeg-turbo's SIMD code (the
//!   mozjpeg fork, built from source with `nasm`): [`decode`] asks the
//!   decoder for the smallest `n/8` scale that still covers the wanted size,
//!   which skips most of the inverse DCT and colour conversion work.
//! - PNG is decoded by the `png` crate (16-bit samples narrowed to 8 bits
//!   as the rows are decoded), GIF (first frame) and WebP (first frame) by
//!   the `image` crate, HEIC and AVIF (the primary image, turned and made
//!   sRGB) by libheif.
//! - [`resize`] is a separable Lanczos3 convolution (`fast_image_resize`,
//!   SIMD), with alpha premultiplied while filtering.
//! - [`encode`] writes baseline JPEG (libjpeg-turbo, Huffman tables
//!   optimised), lossy WebP (libwebp), lossy AVIF (libheif, libaom), PNG and
//!   GIF. Outputs carry no metadata.
//!
//! Limits are checked from the headers ([`pinhole_media::inspect`]) before
//! any pixel buffer is allocated. Hostile input gives an error, never a
//! panic: libjpeg's fatal errors unwind out of the C code and are caught
//! here.

mod derivatives;
mod encode;
mod heif;
mod jpeg;
mod resize;

use std::borrow::Cow;
use std::io::Cursor;

pub use derivatives::{
    Derivatives, Made, ON_REQUEST, Planned, StageTimes, make_derivatives, make_derivatives_timed,
    make_on_request,
};
pub use encode::encode;
pub use resize::{fit_within, resize};

use image::DynamicImage;
use pinhole_media::{Format, InspectError};

/// Limits enforced before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest `width * height` of the full-resolution image.
    pub max_pixels: u64,
}

/// Why an image could not be decoded, resized or encoded.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// A format this server recognises but cannot work with.
    #[error("{0}")]
    Unsupported(String),
    #[error("the image is {width}x{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    #[error("the image could not be resized: {0}")]
    Resize(String),
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

impl From<InspectError> for ImagingError {
    fn from(error: InspectError) -> Self {
        match error {
            InspectError::Unsupported => ImagingError::Unsupported(
                "the file is not an image in a supported format (JPEG, PNG, GIF, WebP, HEIC, AVIF)"
                    .into(),
            ),
            InspectError::TooManyPixels {
                width,
                height,
                limit,
            } => ImagingError::TooManyPixels {
                width,
                height,
                limit,
            },
            other => ImagingError::Decode(other.to_string()),
        }
    }
}

/// A format [`encode`] can write.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    Avif,
}

impl OutputFormat {
    /// Every output format.
    pub const ALL: [OutputFormat; 5] = [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Gif,
        OutputFormat::Avif,
    ];

    /// The stable lowercase name: `jpeg`, `png`, `webp`, `gif`, `avif`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Gif => "gif",
            OutputFormat::Avif => "avif",
        }
    }

    /// The file name extension, without the dot: `jpg`, `png`, `webp`, `gif`,
    /// `avif`.
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
            OutputFormat::Avif => "image/avif",
        }
    }

    /// The format named by [`OutputFormat::as_str`] or by its extension
    /// (`jpg`), ignoring ASCII case; `None` for anything else.
    pub fn parse(s: &str) -> Option<OutputFormat> {
        let s = s.to_ascii_lowercase();
        OutputFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s || f.extension() == s)
    }
}

/// A decoded image.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The pixels, EXIF orientation applied: `Rgb8` for JPEG, `Rgb8` or
    /// `Rgba8` (when the source has alpha) otherwise. GIF and animated WebP
    /// give their first frame.
    pub image: DynamicImage,
    /// The displayed (oriented) width of the full-resolution image.
    pub full_width: u32,
    /// The displayed (oriented) height of the full-resolution image.
    pub full_height: u32,
    /// The format of the source.
    pub format: Format,
}

/// Decodes, at the smallest decoder scale (JPEG: `n/8`) whose longest edge
/// is still at least `min_longest_edge` (`None`: full size), applying the
/// EXIF orientation. Formats other than JPEG are always decoded at full size.
pub fn decode(
    bytes: &[u8],
    limits: &Limits,
    min_longest_edge: Option<u32>,
) -> Result<Decoded, ImagingError> {
    decode_covering(
        bytes,
        limits,
        MinSize {
            longest: min_longest_edge,
            shortest: None,
        },
    )
}

/// The smallest decoded size wanted: each edge is at least this, or the full
/// size when that is smaller.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MinSize {
    pub longest: Option<u32>,
    pub shortest: Option<u32>,
}

pub(crate) fn decode_covering(
    bytes: &[u8],
    limits: &Limits,
    min: MinSize,
) -> Result<Decoded, ImagingError> {
    let inspected = pinhole_media::inspect(
        bytes,
        &pinhole_media::Limits {
            max_pixels: limits.max_pixels,
        },
    )?;
    let orientation = inspected
        .exif
        .as_ref()
        .and_then(|exif| exif.orientation)
        .and_then(|o| u8::try_from(o).ok())
        .and_then(image::metadata::Orientation::from_exif);
    let mut image = match inspected.format {
        Format::Jpeg => jpeg::decode(bytes, limits, min)?,
        Format::Png => decode_png(bytes, &inspected, limits)?,
        Format::Gif => decode_with_image(bytes, image::ImageFormat::Gif, &inspected, limits)?,
        Format::Webp => decode_with_image(bytes, image::ImageFormat::WebP, &inspected, limits)?,
        Format::Heic | Format::Avif => heif::decode(bytes)?,
    };
    // libheif has turned a HEIF already (irot, imir), so its EXIF
    // orientation is not applied; it is always decoded at full size, which
    // `clap` may have cropped.
    let heif = matches!(inspected.format, Format::Heic | Format::Avif);
    let (full_width, full_height) = if heif {
        (image.width(), image.height())
    } else {
        if let Some(orientation) = orientation {
            image.apply_orientation(orientation);
        }
        inspected.display_size()
    };
    Ok(Decoded {
        image,
        full_width,
        full_height,
        format: inspected.format,
    })
}

/// The pixels as packed RGB or RGBA bytes (converting other layouts), and
/// whether they have alpha.
pub(crate) fn rgb_or_rgba(img: &DynamicImage) -> (Cow<'_, [u8]>, bool) {
    match img {
        DynamicImage::ImageRgb8(rgb) => (Cow::Borrowed(rgb.as_raw().as_slice()), false),
        DynamicImage::ImageRgba8(rgba) => (Cow::Borrowed(rgba.as_raw().as_slice()), true),
        other if other.color().has_alpha() => (Cow::Owned(other.to_rgba8().into_raw()), true),
        other => (Cow::Owned(other.to_rgb8().into_raw()), false),
    }
}

/// What a decoder may allocate: about 4 bytes a pixel of the pixel limit
/// (an 8-bit RGBA canvas of the largest allowed image).
fn max_alloc(limits: &Limits) -> u64 {
    limits.max_pixels.saturating_mul(4).max(64 << 20)
}

/// PNG through the `png` crate, 16-bit samples narrowed to 8 bits as the
/// rows are decoded (the `image` crate keeps 16 bits, which takes twice the
/// memory and then a copy to narrow them, and would refuse a 16-bit image
/// within the pixel limit), as `Rgb8` or `Rgba8`. Palettes and low bit
/// depths are expanded; the first frame of an APNG is taken.
fn decode_png(
    bytes: &[u8],
    inspected: &pinhole_media::Inspected,
    limits: &Limits,
) -> Result<DynamicImage, ImagingError> {
    let too_many = || ImagingError::TooManyPixels {
        width: inspected.width,
        height: inspected.height,
        limit: limits.max_pixels,
    };
    let failed = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => too_many(),
        other => ImagingError::Decode(other.to_string()),
    };
    let max_alloc = max_alloc(limits);
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: usize::try_from(max_alloc).unwrap_or(usize::MAX),
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(failed)?;
    let size = reader.output_buffer_size().ok_or_else(too_many)?;
    if size as u64 > max_alloc {
        return Err(too_many());
    }
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(failed)?;
    buf.truncate(frame.buffer_size());
    let (width, height) = (frame.width, frame.height);
    let image = match frame.color_type {
        png::ColorType::Rgb => {
            image::RgbImage::from_raw(width, height, buf).map(DynamicImage::from)
        }
        png::ColorType::Rgba => {
            image::RgbaImage::from_raw(width, height, buf).map(DynamicImage::from)
        }
        png::ColorType::Grayscale => image::GrayImage::from_raw(width, height, buf)
            .map(|gray| DynamicImage::from(DynamicImage::from(gray).to_rgb8())),
        png::ColorType::GrayscaleAlpha => image::GrayAlphaImage::from_raw(width, height, buf)
            .map(|gray| DynamicImage::from(DynamicImage::from(gray).to_rgba8())),
        // Expanded to RGB or RGBA by the transformations.
        png::ColorType::Indexed => None,
    };
    image.ok_or_else(|| {
        ImagingError::Decode(format!(
            "the decoder gave {:?} pixels at {width}x{height} in {} bytes",
            frame.color_type,
            frame.buffer_size()
        ))
    })
}

/// GIF and WebP through the `image` crate, as `Rgb8` or `Rgba8`.
fn decode_with_image(
    bytes: &[u8],
    format: image::ImageFormat,
    inspected: &pinhole_media::Inspected,
    limits: &Limits,
) -> Result<DynamicImage, ImagingError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(inspected.width);
    image_limits.max_image_height = Some(inspected.height);
    image_limits.max_alloc = Some(max_alloc(limits));
    reader.limits(image_limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImagingError::TooManyPixels {
            width: inspected.width,
            height: inspected.height,
            limit: limits.max_pixels,
        },
        other => ImagingError::Decode(other.to_string()),
    })?;
    Ok(match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    })
}
