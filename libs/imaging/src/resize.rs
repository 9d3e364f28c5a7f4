//! Exact resizing with `fast_image_resize`.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage, RgbaImage};

use crate::ImagingError;

/// Lanczos3: on photos it scores ~0.3 dB PSNR above Catmull-Rom against a
/// float reference for about 15% more resize time, which is a few ms in a
/// pipeline dominated by decoding and encoding.
const FILTER: FilterType = FilterType::Lanczos3;

/// The size that fits within a longest edge of `edge`: never enlarged, the
/// aspect ratio kept (rounded to the nearest pixel), each side at least 1.
pub fn fit_within(width: u32, height: u32, edge: u32) -> (u32, u32) {
    let (width, height, edge) = (width.max(1), height.max(1), edge.max(1));
    let long = width.max(height);
    if long <= edge {
        return (width, height);
    }
    let scale = |side: u32| -> u32 {
        let v = (u64::from(side) * u64::from(edge) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(v).unwrap_or(edge).clamp(1, edge)
    };
    if width >= height {
        (edge, scale(height))
    } else {
        (scale(width), edge)
    }
}

/// Resizes to exactly `width` x `height` (aspect not kept) with Lanczos3.
///
/// `Rgb8` stays `Rgb8`, `Rgba8` stays `Rgba8` (filtered with premultiplied
/// alpha, so transparent pixels do not bleed their colour); other pixel
/// types are converted to one of those first.
pub fn resize(img: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    resize_region(img, None, width, height)
}

/// A crop of the source, in source pixels: left, top, width, height.
pub(crate) type Region = (f64, f64, f64, f64);

/// Resizes `region` of `img` (all of it when `None`) to `width` x `height`.
pub(crate) fn resize_region(
    img: &DynamicImage,
    region: Option<Region>,
    width: u32,
    height: u32,
) -> Result<DynamicImage, ImagingError> {
    if width == 0 || height == 0 {
        return Err(ImagingError::Resize(format!(
            "cannot make an image of {width}x{height} pixels"
        )));
    }
    if img.width() == 0 || img.height() == 0 {
        return Err(ImagingError::Resize("the source image is empty".into()));
    }
    let converted;
    let img = match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img,
        other => {
            converted = crate::decode::normalise(other.clone());
            &converted
        }
    };
    let full = (0.0, 0.0, f64::from(img.width()), f64::from(img.height()));
    let region = region.unwrap_or(full);
    if region == full && (img.width(), img.height()) == (width, height) {
        return Ok(img.clone());
    }
    let (pixel_type, raw): (PixelType, &[u8]) = match img {
        DynamicImage::ImageRgba8(buf) => (PixelType::U8x4, buf.as_raw()),
        DynamicImage::ImageRgb8(buf) => (PixelType::U8x3, buf.as_raw()),
        _ => return Err(ImagingError::Resize("unexpected pixel type".into())),
    };
    let err = |e: &dyn std::fmt::Display| ImagingError::Resize(e.to_string());
    let src = ImageRef::new(img.width(), img.height(), raw, pixel_type).map_err(|e| err(&e))?;
    let mut dst = Image::new(width, height, pixel_type);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FILTER))
        .crop(region.0, region.1, region.2, region.3)
        .use_alpha(true);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| err(&e))?;
    let out = dst.into_vec();
    let image = match pixel_type {
        PixelType::U8x4 => RgbaImage::from_raw(width, height, out).map(DynamicImage::ImageRgba8),
        _ => RgbImage::from_raw(width, height, out).map(DynamicImage::ImageRgb8),
    };
    image.ok_or_else(|| ImagingError::Resize("pixel buffer of the wrong size".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_within_keeps_aspect_and_never_enlarges() {
        assert_eq!(fit_within(4000, 3000, 2048), (2048, 1536));
        assert_eq!(fit_within(3000, 4000, 1080), (810, 1080));
        assert_eq!(fit_within(640, 480, 2048), (640, 480));
        assert_eq!(fit_within(10_000, 10, 256), (256, 1));
        assert_eq!(fit_within(1, 1, 256), (1, 1));
    }
}
