//! Decoding with the orientation applied.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, ImageReader};
use pinhole_media::{Format, InspectError};

use crate::{Decoded, ImagingError, Limits, jpeg};

/// Decodes `bytes`, at the smallest decoder scale (JPEG: `n/8`) whose
/// longest edge is still at least `min_longest_edge` (`None`: full size),
/// and applies the EXIF orientation.
///
/// The headers are inspected first, so an image over `limits` is refused
/// before any pixel buffer is allocated. Only JPEG decodes at a reduced
/// scale; other formats come back at full size. HEIC and AVIF are
/// [`ImagingError::Unsupported`]. A truncated JPEG decodes leniently (the
/// missing rows grey); other damage is [`ImagingError::Decode`].
pub fn decode(
    bytes: &[u8],
    limits: &Limits,
    min_longest_edge: Option<u32>,
) -> Result<Decoded, ImagingError> {
    let need = |w: u32, h: u32| match min_longest_edge {
        // No scale is enough for an edge over the full size: 8/8 then.
        Some(edge) => w.max(h) >= edge,
        None => true,
    };
    let (mut decoded, orientation) = decode_unoriented(bytes, limits, &need)?;
    if let Some(o) = orientation {
        decoded.image.apply_orientation(o);
    }
    Ok(decoded)
}

/// The shared decoder: `enough(w, h)` tells, in stored (un-oriented)
/// dimensions of a candidate JPEG scale, whether that scale is large
/// enough; the smallest such scale is used. The image comes back as stored,
/// with the EXIF orientation still to apply (the full size in [`Decoded`]
/// is the displayed one already).
pub(crate) fn decode_unoriented(
    bytes: &[u8],
    limits: &Limits,
    enough: &dyn Fn(u32, u32) -> bool,
) -> Result<(Decoded, Option<Orientation>), ImagingError> {
    let inspected = pinhole_media::inspect(
        bytes,
        &pinhole_media::Limits {
            max_pixels: limits.max_pixels,
        },
    )
    .map_err(|e| match e {
        InspectError::Unsupported => ImagingError::Unsupported(e.to_string()),
        InspectError::TooManyPixels {
            width,
            height,
            limit,
        } => ImagingError::TooManyPixels {
            width,
            height,
            limit,
        },
        InspectError::Truncated | InspectError::Corrupt(_) => ImagingError::Decode(e.to_string()),
    })?;
    let format = inspected.format;
    let (full_width, full_height) = inspected.display_size();
    let orientation = inspected
        .exif
        .as_ref()
        .and_then(|exif| exif.orientation)
        .and_then(|o| Orientation::from_exif(u8::try_from(o).ok()?));
    let image = match format {
        Format::Heic | Format::Avif => {
            return Err(ImagingError::Unsupported(format!(
                "{format} images cannot be decoded on this server"
            )));
        }
        Format::Jpeg => {
            let (w, h) = (inspected.width, inspected.height);
            let numerator = (1..=8u8)
                .find(|&n| {
                    let (sw, sh) = jpeg::scaled_size(w, h, n);
                    enough(sw, sh)
                })
                .unwrap_or(8);
            let px = jpeg::decode(bytes, numerator, limits)?;
            let buf = image::RgbImage::from_raw(px.width, px.height, px.rgb)
                .ok_or_else(|| ImagingError::Decode("pixel buffer of the wrong size".into()))?;
            DynamicImage::ImageRgb8(buf)
        }
        Format::Png => with_image_crate(bytes, ImageFormat::Png, limits)?,
        Format::Gif => with_image_crate(bytes, ImageFormat::Gif, limits)?,
        Format::Webp => with_image_crate(bytes, ImageFormat::WebP, limits)?,
    };
    let decoded = Decoded {
        image,
        full_width,
        full_height,
        format,
    };
    Ok((decoded, orientation))
}

fn with_image_crate(
    bytes: &[u8],
    format: ImageFormat,
    limits: &Limits,
) -> Result<DynamicImage, ImagingError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut image_limits = image::Limits::default();
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    image_limits.max_image_width = Some(side);
    image_limits.max_image_height = Some(side);
    // 16-bit RGBA plus the decoders' own buffers.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(image_limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImagingError::Decode(format!(
            "the image needs more memory than its size allows: {e}"
        )),
        image::ImageError::Unsupported(_) => ImagingError::Unsupported(format!(
            "this {} image uses a feature that cannot be decoded: {e}",
            format_name(format)
        )),
        other => ImagingError::Decode(other.to_string()),
    })?;
    Ok(normalise(image))
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Gif => "GIF",
        ImageFormat::WebP => "WebP",
        _ => "image",
    }
}

/// `Rgb8` or `Rgba8`, whatever the decoder returned.
pub(crate) fn normalise(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}
