//! Encoders: JPEG (libjpeg-turbo), lossy WebP (libwebp), lossy AVIF
//! (libheif over libaom), PNG and GIF (`image`).

use std::borrow::Cow;

use image::codecs::gif::GifEncoder;
use image::codecs::png::{CompressionType, PngEncoder};
use image::{DynamicImage, ExtendedColorType, ImageEncoder, RgbImage, RgbaImage};

use crate::{ImagingError, OutputFormat, jpeg, rgb_or_rgba};

/// libwebp's `method` (0 fastest .. 6 smallest). Measured on a 2048x1536
/// photo at quality 80: method 0 takes 108 ms, 2 takes 168 ms and 4 (the
/// default) 375 ms, for files within 3 % of each other and no PSNR loss
/// (0 scored 34.8 dB, 2 34.5, 4 34.9). WebP is the largest stage of the
/// derivative set, so the fastest method it is.
pub(crate) const WEBP_METHOD: i32 = 0;

/// Encodes `img` without metadata. `quality` (1 to 100) applies to JPEG,
/// AVIF and WebP, which is always lossy (VP8, with a separately compressed alpha
/// plane when the image has one). PNG is lossless; GIF is one still frame
/// quantised to 256 colours. JPEG has no alpha: transparent areas are
/// composited over white.
pub fn encode(
    img: &DynamicImage,
    format: OutputFormat,
    quality: u8,
) -> Result<Vec<u8>, ImagingError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(ImagingError::Encode("the image has no pixels".into()));
    }
    let quality = quality.clamp(1, 100);
    match format {
        OutputFormat::Jpeg => jpeg::encode(&flatten_on_white(img), quality),
        OutputFormat::Webp => encode_webp(img, quality),
        OutputFormat::Png => encode_png(img),
        OutputFormat::Gif => encode_gif(img),
        OutputFormat::Avif => crate::heif::encode_avif(img, quality),
    }
}

/// The image as RGB; alpha composited over white.
pub(crate) fn flatten_on_white(img: &DynamicImage) -> Cow<'_, RgbImage> {
    match img {
        DynamicImage::ImageRgb8(rgb) => Cow::Borrowed(rgb),
        other if other.color().has_alpha() => {
            let rgba = other.to_rgba8();
            let mut rgb = RgbImage::new(rgba.width(), rgba.height());
            for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
                let a = u16::from(px[3]);
                for c in 0..3 {
                    out[c] = ((u16::from(px[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
                }
            }
            Cow::Owned(rgb)
        }
        other => Cow::Owned(other.to_rgb8()),
    }
}

fn encode_webp(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, ImagingError> {
    let (pixels, alpha) = rgb_or_rgba(img);
    let (width, height) = (img.width(), img.height());
    let encoder = if alpha {
        webp::Encoder::from_rgba(&pixels, width, height)
    } else {
        webp::Encoder::from_rgb(&pixels, width, height)
    };
    let mut config = webp::WebPConfig::new()
        .map_err(|()| ImagingError::Encode("libwebp rejected its default settings".into()))?;
    config.lossless = 0;
    config.quality = f32::from(quality);
    config.method = WEBP_METHOD;
    config.alpha_compression = 1;
    let memory = encoder
        .encode_advanced(&config)
        .map_err(|e| ImagingError::Encode(format!("libwebp: {e:?}")))?;
    Ok(memory.to_vec())
}

fn encode_png(img: &DynamicImage) -> Result<Vec<u8>, ImagingError> {
    let (pixels, alpha) = rgb_or_rgba(img);
    let mut out = Vec::new();
    PngEncoder::new_with_quality(
        &mut out,
        CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        &pixels,
        img.width(),
        img.height(),
        if alpha {
            ExtendedColorType::Rgba8
        } else {
            ExtendedColorType::Rgb8
        },
    )
    .map_err(|e| ImagingError::Encode(e.to_string()))?;
    Ok(out)
}

fn encode_gif(img: &DynamicImage) -> Result<Vec<u8>, ImagingError> {
    let rgba: Cow<'_, RgbaImage> = match img {
        DynamicImage::ImageRgba8(rgba) => Cow::Borrowed(rgba),
        other => Cow::Owned(other.to_rgba8()),
    };
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
