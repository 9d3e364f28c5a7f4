//! HEIC and AVIF, decoded and (AVIF) encoded by libheif, which libheif-sys
//! builds from its sources against the system's libde265 (HEVC), dav1d
//! (AV1 decoding) and libaom (AV1 encoding).
//!
//! libheif applies the file's geometric transformations (`irot`, `imir`,
//! `clap`) while decoding, and reduces 10- and 12-bit sources to 8 bits.
//! Colour is made sRGB here: from the ICC profile when the file has one,
//! else from its `nclx` primaries and transfer.

use std::sync::OnceLock;

use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{
    Channel, ColorProfileNCLX, ColorSpace, CompressionFormat, DecodingOptions,
    EncoderParameterValue, EncoderQuality, HeifContext, HeifError, Image, ImageHandle, LibHeif,
    RgbChroma,
};
use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, Layout, MatrixCoefficients,
    TransferCharacteristics, TransformOptions,
};

use crate::ImagingError;

/// libaom's speed (`cpu-used`, 0 slowest .. 9 fastest). Measured with the
/// thumbnails bench on a 1080 px photo at quality 60: speed 9 takes about a
/// quarter of the CPU of speed 6 for files within a few percent in size.
const AVIF_SPEED: i32 = 9;

fn libheif() -> &'static LibHeif {
    static LIB: OnceLock<LibHeif> = OnceLock::new();
    LIB.get_or_init(LibHeif::new)
}

fn decode_error(error: HeifError) -> ImagingError {
    ImagingError::Decode(format!("libheif: {}", error.message))
}

fn encode_error(error: HeifError) -> ImagingError {
    ImagingError::Encode(format!("libheif: {}", error.message))
}

/// The primary image, as `Rgb8` or `Rgba8` in sRGB, turned as the file says.
/// Other images in the file (a burst's other frames, depth maps,
/// thumbnails) are ignored. The caller has checked the primary item's size
/// (`ispe`) against the pixel limit.
pub(crate) fn decode(bytes: &[u8]) -> Result<DynamicImage, ImagingError> {
    let context = HeifContext::read_from_bytes(bytes).map_err(decode_error)?;
    let handle = context.primary_image_handle().map_err(decode_error)?;
    let alpha = handle.has_alpha_channel();
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let mut options = DecodingOptions::new()
        .ok_or_else(|| ImagingError::Decode("libheif could not allocate its options".into()))?;
    options.set_convert_hdr_to_8bit(true);
    let decoded = libheif()
        .decode(&handle, ColorSpace::Rgb(chroma), Some(options))
        .map_err(decode_error)?;
    let planes = decoded.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| ImagingError::Decode("libheif gave no interleaved plane".into()))?;
    let channels = if alpha { 4 } else { 3 };
    let row = plane.width as usize * channels;
    let mut pixels = Vec::with_capacity(row * plane.height as usize);
    for y in 0..plane.height as usize {
        let start = y * plane.stride;
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| ImagingError::Decode("libheif gave a short plane".into()))?;
        pixels.extend_from_slice(line);
    }
    let mut image = if alpha {
        RgbaImage::from_raw(plane.width, plane.height, pixels).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(plane.width, plane.height, pixels).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| ImagingError::Decode("libheif gave a plane of the wrong size".into()))?;
    if let Some(profile) = source_profile(&handle) {
        to_srgb(&mut image, &profile)?;
    }
    Ok(image)
}

/// The colour space the pixels are in, when it is not sRGB.
fn source_profile(handle: &ImageHandle) -> Option<ColorProfile> {
    if let Some(icc) = handle.color_profile_raw() {
        return ColorProfile::new_from_slice(&icc.data).ok();
    }
    let nclx = handle.color_profile_nclx()?;
    cicp_profile(&nclx)
}

/// The profile an `nclx` box describes; `None` for sRGB, unspecified, or
/// what moxcms does not know.
fn cicp_profile(nclx: &ColorProfileNCLX) -> Option<ColorProfile> {
    let primaries = CicpColorPrimaries::try_from(nclx.color_primaries() as u8).ok()?;
    let transfer = TransferCharacteristics::try_from(nclx.transfer_characteristics() as u8).ok()?;
    let srgb_like = matches!(
        primaries,
        CicpColorPrimaries::Bt709 | CicpColorPrimaries::Unspecified
    ) && matches!(
        transfer,
        TransferCharacteristics::Srgb
            | TransferCharacteristics::Bt709
            | TransferCharacteristics::Unspecified
    );
    if srgb_like {
        return None;
    }
    Some(ColorProfile::new_from_cicp(CicpProfile {
        color_primaries: primaries,
        transfer_characteristics: transfer,
        matrix_coefficients: MatrixCoefficients::Bt709,
        full_range: true,
    }))
}

/// Converts the pixels from `source` to sRGB (alpha untouched).
fn to_srgb(image: &mut DynamicImage, source: &ColorProfile) -> Result<(), ImagingError> {
    let layout = if image.color().has_alpha() {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let transform = source
        .create_transform_8bit(
            layout,
            &ColorProfile::new_srgb(),
            layout,
            TransformOptions::default(),
        )
        .map_err(|e| ImagingError::Decode(format!("the colour profile is unusable: {e}")))?;
    let pixels: &mut [u8] = match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageRgba8(rgba) => rgba,
        _ => return Ok(()),
    };
    let source_pixels = pixels.to_vec();
    transform
        .transform(&source_pixels, pixels)
        .map_err(|e| ImagingError::Decode(format!("colour conversion failed: {e}")))
}

/// Lossy AVIF (AV1, 4:2:0, 8 bits, sRGB), with alpha when the image has it.
pub(crate) fn encode_avif(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, ImagingError> {
    let (pixels, alpha) = crate::rgb_or_rgba(img);
    let (width, height) = (img.width(), img.height());
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let mut image = Image::new(width, height, ColorSpace::Rgb(chroma)).map_err(encode_error)?;
    image
        .create_plane(Channel::Interleaved, width, height, 8)
        .map_err(encode_error)?;
    let planes = image.planes_mut();
    let plane = planes
        .interleaved
        .ok_or_else(|| ImagingError::Encode("libheif gave no interleaved plane".into()))?;
    let row = width as usize * if alpha { 4 } else { 3 };
    for (y, line) in pixels.chunks_exact(row).enumerate() {
        let start = y * plane.stride;
        plane.data[start..start + row].copy_from_slice(line);
    }
    let mut encoder = libheif()
        .encoder_for_format(CompressionFormat::Av1)
        .map_err(encode_error)?;
    encoder
        .set_quality(EncoderQuality::Lossy(quality))
        .map_err(encode_error)?;
    for (name, value) in [
        ("speed", EncoderParameterValue::Int(AVIF_SPEED)),
        ("threads", EncoderParameterValue::Int(1)),
        ("chroma", EncoderParameterValue::String("420".into())),
    ] {
        encoder
            .set_parameter_value(name, value)
            .map_err(encode_error)?;
    }
    let mut context = HeifContext::new().map_err(encode_error)?;
    context
        .encode_image(&image, &mut encoder, None)
        .map_err(encode_error)?;
    context.write_to_bytes().map_err(encode_error)
}
