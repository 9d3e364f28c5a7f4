//! Applying [`Options`] to pixels.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{ColorType, DynamicImage, RgbImage};

use crate::color::{self, ColorSpec};
use crate::error::TransformError;
use crate::geometry::Rect;
use crate::options::{Gravity, Options, Plan, ResizeMode};

/// Computer-vision services used by face/smart gravity and red-eye removal.
pub trait Vision {
    /// Face boxes in `img`'s pixel coordinates.
    fn faces(&self, img: &RgbImage) -> Vec<Rect>;
    /// Top-left corner of the most interesting `width` x `height` window of `img`.
    fn smart_crop(&self, img: &RgbImage, width: u32, height: u32) -> (u32, u32);
    /// Removes red eyes inside `faces`; returns how many eyes were corrected.
    fn reduce_red_eye(&self, img: &mut RgbImage, faces: &[Rect]) -> usize;
}

/// A [`Vision`] that sees nothing: no faces, centred smart crops, no red-eye correction.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVision;

impl Vision for NoVision {
    fn faces(&self, _img: &RgbImage) -> Vec<Rect> {
        Vec::new()
    }

    fn smart_crop(&self, img: &RgbImage, width: u32, height: u32) -> (u32, u32) {
        (
            img.width().saturating_sub(width) / 2,
            img.height().saturating_sub(height) / 2,
        )
    }

    fn reduce_red_eye(&self, _img: &mut RgbImage, _faces: &[Rect]) -> usize {
        0
    }
}

/// Longest edge of the copy handed to [`Vision`] for face and smart gravity.
pub(crate) const VISION_EDGE: u32 = 512;

/// Applies `opts`: explicit crop, resize (with gravity), rotation, flip, colour, blur, sharpen.
pub fn apply(
    img: DynamicImage,
    opts: &Options,
    vision: &dyn Vision,
) -> Result<DynamicImage, TransformError> {
    let mut img = img;
    if let Some(c) = opts.crop {
        img = crop(img, c)?;
    }
    img = resize(img, opts, vision)?;
    img = match opts.rotate {
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => img,
    };
    if opts.flip.horizontal {
        img = img.fliph();
    }
    if opts.flip.vertical {
        img = img.flipv();
    }
    img = color::apply_color(
        img,
        &ColorSpec {
            adjust: opts.adjust,
            grayscale: opts.grayscale,
            sepia: if opts.sepia { 1.0 } else { 0.0 },
            ..ColorSpec::default()
        },
    );
    if let Some(sigma) = opts.blur {
        img = img.fast_blur(sigma);
    }
    if let Some(sigma) = opts.sharpen {
        img = color::sharpen(img, sigma);
    }
    Ok(img)
}

/// Crops to `c` clamped to the image; an error when they do not overlap.
pub(crate) fn crop(img: DynamicImage, c: Rect) -> Result<DynamicImage, TransformError> {
    let (w, h) = (img.width(), img.height());
    let r = c.clamp_to(w, h).ok_or(TransformError::CropOutside {
        x: c.x,
        y: c.y,
        width: c.width,
        height: c.height,
        image_width: w,
        image_height: h,
    })?;
    if (r.width, r.height) == (w, h) {
        return Ok(img);
    }
    Ok(img.crop_imm(r.x, r.y, r.width, r.height))
}

fn resize(
    img: DynamicImage,
    opts: &Options,
    vision: &dyn Vision,
) -> Result<DynamicImage, TransformError> {
    let (cw, ch) = (img.width(), img.height());
    match opts.plan(cw, ch) {
        Plan::Keep => Ok(img),
        Plan::Scale { out, .. } => scale(&img, out, None),
        Plan::Window { win, out } => {
            let (left, top) = place(&img, win, opts.gravity, vision)?;
            if opts.resize_mode == ResizeMode::Crop
                || (f64::from(out.0) == win.0 && f64::from(out.1) == win.1)
            {
                // No scaling: cut whole pixels.
                let x = (left.round() as u32).min(cw.saturating_sub(out.0));
                let y = (top.round() as u32).min(ch.saturating_sub(out.1));
                Ok(img.crop_imm(x, y, out.0, out.1))
            } else {
                scale(&img, out, Some((left, top, win.0, win.1)))
            }
        }
    }
}

/// Top-left corner of a `win` window placed by gravity, in source pixels.
fn place(
    img: &DynamicImage,
    win: (f64, f64),
    gravity: Gravity,
    vision: &dyn Vision,
) -> Result<(f64, f64), TransformError> {
    let (fw, fh) = (f64::from(img.width()), f64::from(img.height()));
    let (free_x, free_y) = ((fw - win.0).max(0.0), (fh - win.1).max(0.0));
    if let Some((ax, ay)) = gravity.anchor() {
        return Ok((free_x * ax, free_y * ay));
    }
    let (small, k) = vision_copy(img)?;
    let (left, top) = if gravity == Gravity::Smart {
        let sw = ((win.0 * k).round() as u32).clamp(1, small.width());
        let sh = ((win.1 * k).round() as u32).clamp(1, small.height());
        let (x, y) = vision.smart_crop(&small, sw, sh);
        (f64::from(x) / k, f64::from(y) / k)
    } else {
        let faces = vision.faces(&small);
        match union(&faces) {
            None => (free_x / 2.0, free_y / 2.0),
            Some(u) => {
                let cx = (f64::from(u.x) + f64::from(u.width) / 2.0) / k;
                let cy = (f64::from(u.y) + f64::from(u.height) / 2.0) / k;
                (cx - win.0 / 2.0, cy - win.1 / 2.0)
            }
        }
    };
    Ok((left.clamp(0.0, free_x), top.clamp(0.0, free_y)))
}

fn union(rects: &[Rect]) -> Option<Rect> {
    let first = rects.first()?;
    let (mut x0, mut y0) = (first.x, first.y);
    let (mut x1, mut y1) = (
        first.x.saturating_add(first.width),
        first.y.saturating_add(first.height),
    );
    for r in &rects[1..] {
        x0 = x0.min(r.x);
        y0 = y0.min(r.y);
        x1 = x1.max(r.x.saturating_add(r.width));
        y1 = y1.max(r.y.saturating_add(r.height));
    }
    Some(Rect {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

/// An RGB copy with the longest edge at most [`VISION_EDGE`], and its scale factor
/// (copy pixels per source pixel).
pub(crate) fn vision_copy(img: &DynamicImage) -> Result<(RgbImage, f64), TransformError> {
    let longest = img.width().max(img.height());
    if longest <= VISION_EDGE {
        return Ok((img.to_rgb8(), 1.0));
    }
    let k = f64::from(VISION_EDGE) / f64::from(longest);
    let out = (
        ((f64::from(img.width()) * k).round() as u32).max(1),
        ((f64::from(img.height()) * k).round() as u32).max(1),
    );
    let small = scale(img, out, None)?;
    let k = f64::from(out.0) / f64::from(img.width());
    Ok((small.into_rgb8(), k))
}

/// Faces found on a downsized copy, in `img`'s coordinates.
pub(crate) fn faces_full(
    img: &DynamicImage,
    vision: &dyn Vision,
) -> Result<Vec<Rect>, TransformError> {
    let (small, k) = vision_copy(img)?;
    let (w, h) = (img.width(), img.height());
    Ok(vision
        .faces(&small)
        .into_iter()
        .filter_map(|r| r.scale(1.0 / k).clamp_to(w, h))
        .collect())
}

/// Lanczos3 resize of `img` (or of the `crop` window `(left, top, width, height)` of it)
/// to `out`, keeping the colour type when the resizer supports it.
pub(crate) fn scale(
    img: &DynamicImage,
    out: (u32, u32),
    crop: Option<(f64, f64, f64, f64)>,
) -> Result<DynamicImage, TransformError> {
    let converted;
    let src = match img.color() {
        ColorType::L8
        | ColorType::La8
        | ColorType::Rgb8
        | ColorType::Rgba8
        | ColorType::L16
        | ColorType::La16
        | ColorType::Rgb16
        | ColorType::Rgba16
        | ColorType::Rgb32F
        | ColorType::Rgba32F => img,
        _ => {
            converted = DynamicImage::ImageRgba8(img.to_rgba8());
            &converted
        }
    };
    let mut dst = DynamicImage::new(out.0.max(1), out.1.max(1), src.color());
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if let Some((left, top, width, height)) = crop {
        options = options.crop(left, top, width, height);
    }
    Resizer::new()
        .resize(src, &mut dst, &options)
        .map_err(|e| TransformError::Resize(e.to_string()))?;
    Ok(dst)
}
