//! Encoding, without metadata.

use image::codecs::gif::GifEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ExtendedColorType, ImageEncoder, RgbImage};

use crate::{ImagingError, OutputFormat, jpeg};

/// The libwebp `method` (0 fastest .. 6 smallest). Method 2 encodes a
/// 2048 px photo in about half the time of method 4 (libwebp's default)
/// for files within a few percent of its size.
pub const WEBP_METHOD: i32 = 2;

/// Encodes `img` in `format`, with no metadata.
///
/// - JPEG: baseline 4:2:0 at `quality` (1-100), optimised Huffman tables;
///   alpha is flattened onto white.
/// - WebP: lossy (VP8) at `quality`, with lossy alpha when there is alpha.
/// - PNG: lossless, fast compression; `quality` is ignored.
/// - GIF: a still, quantised to 256 colours; `quality` is ignored.
pub fn encode(
    img: &DynamicImage,
    format: OutputFormat,
    quality: u8,
) -> Result<Vec<u8>, ImagingError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(ImagingError::Encode("the image is empty".into()));
    }
    let converted;
    let img = match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img,
        other => {
            converted = crate::decode::normalise(other.clone());
            &converted
        }
    };
    match format {
        OutputFormat::Jpeg => match img {
            DynamicImage::ImageRgb8(rgb) => {
                jpeg::encode_rgb(rgb.as_raw(), rgb.width(), rgb.height(), quality)
            }
            other => {
                let rgb = flatten(other);
                jpeg::encode_rgb(rgb.as_raw(), rgb.width(), rgb.height(), quality)
            }
        },
        OutputFormat::Webp => webp(img, quality),
        OutputFormat::Png => {
            let mut out = Vec::new();
            let (raw, color) = raw_of(img);
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(raw, img.width(), img.height(), color)
                .map_err(|e| ImagingError::Encode(e.to_string()))?;
            Ok(out)
        }
        OutputFormat::Gif => {
            if img.width() > 65_535 || img.height() > 65_535 {
                return Err(ImagingError::Encode(format!(
                    "a GIF cannot be {}x{} pixels",
                    img.width(),
                    img.height()
                )));
            }
            let rgba = img.to_rgba8();
            let mut out = Vec::new();
            GifEncoder::new_with_speed(&mut out, 10)
                .encode(
                    rgba.as_raw(),
                    rgba.width(),
                    rgba.height(),
                    ExtendedColorType::Rgba8,
                )
                .map_err(|e| ImagingError::Encode(e.to_string()))?;
            Ok(out)
        }
    }
}

fn raw_of(img: &DynamicImage) -> (&[u8], ExtendedColorType) {
    match img {
        DynamicImage::ImageRgba8(buf) => (buf.as_raw(), ExtendedColorType::Rgba8),
        DynamicImage::ImageRgb8(buf) => (buf.as_raw(), ExtendedColorType::Rgb8),
        other => (other.as_bytes(), other.color().into()),
    }
}

/// RGB, with any alpha composited onto white.
pub(crate) fn flatten(img: &DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgba8(rgba) => {
            let mut out = Vec::with_capacity(rgba.width() as usize * rgba.height() as usize * 3);
            for px in rgba.as_raw().chunks_exact(4) {
                let a = u32::from(px[3]);
                for &c in &px[..3] {
                    out.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
                }
            }
            RgbImage::from_raw(rgba.width(), rgba.height(), out)
                .unwrap_or_else(|| img.to_rgb8())
        }
        DynamicImage::ImageRgb8(rgb) => rgb.clone(),
        other => flatten(&DynamicImage::ImageRgba8(other.to_rgba8())),
    }
}

fn webp(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, ImagingError> {
    if img.width() > 16_383 || img.height() > 16_383 {
        return Err(ImagingError::Encode(format!(
            "a WebP cannot be {}x{} pixels",
            img.width(),
            img.height()
        )));
    }
    let encoder = match img {
        DynamicImage::ImageRgba8(buf) => webp::Encoder::from_rgba(buf.as_raw(), buf.width(), buf.height()),
        DynamicImage::ImageRgb8(buf) => webp::Encoder::from_rgb(buf.as_raw(), buf.width(), buf.height()),
        _ => return Err(ImagingError::Encode("unexpected pixel type".into())),
    };
    let mut config = webp::WebPConfig::new()
        .map_err(|()| ImagingError::Encode("libwebp version mismatch".into()))?;
    config.lossless = 0;
    config.quality = f32::from(quality.min(100));
    config.method = WEBP_METHOD;
    config.alpha_compression = 1;
    let memory = encoder
        .encode_advanced(&config)
        .map_err(|e| ImagingError::Encode(format!("libwebp: {e:?}")))?;
    Ok(memory.to_vec())
}
