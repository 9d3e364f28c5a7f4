//! Edit tasks: an ordered list of operations from `POST /api/v1/images/{id}/edits`.

use image::{DynamicImage, GenericImageView, RgbaImage};
use serde::{Deserialize, Serialize};

use crate::apply::{self, Vision};
use crate::color::{self, Adjustments, ColorSpec};
use crate::error::TransformError;
use crate::options::Gravity;

/// Mirroring direction of [`EditOp::Flip`].
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FlipDirection {
    /// Left-right.
    Horizontal,
    /// Top-bottom.
    Vertical,
}

/// Named looks of [`EditOp::Filter`], each a fixed combination of colour adjustments.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FilterName {
    /// Grayscale.
    Mono,
    /// Full sepia.
    Sepia,
    /// Saturation +40, contrast +15.
    Vivid,
    /// Red gain +8 %, blue gain -10 %, saturation +10.
    Warm,
    /// Red gain -8 %, blue gain +10 %, saturation -5.
    Cool,
    /// Contrast -25, brightness +8, saturation -30.
    Fade,
    /// Grayscale, contrast +40, gamma 0.9.
    Noir,
}

impl FilterName {
    fn spec(self) -> ColorSpec {
        let adj = |brightness, contrast, saturation, gamma| Adjustments {
            brightness,
            contrast,
            saturation,
            gamma,
            hue: 0.0,
        };
        let base = ColorSpec::default();
        match self {
            Self::Mono => ColorSpec {
                grayscale: true,
                ..base
            },
            Self::Sepia => ColorSpec { sepia: 1.0, ..base },
            Self::Vivid => ColorSpec {
                adjust: adj(0.0, 15.0, 40.0, 1.0),
                ..base
            },
            Self::Warm => ColorSpec {
                adjust: adj(0.0, 0.0, 10.0, 1.0),
                balance: [1.08, 1.0, 0.9],
                ..base
            },
            Self::Cool => ColorSpec {
                adjust: adj(0.0, 0.0, -5.0, 1.0),
                balance: [0.92, 1.0, 1.1],
                ..base
            },
            Self::Fade => ColorSpec {
                adjust: adj(8.0, -25.0, -30.0, 1.0),
                ..base
            },
            Self::Noir => ColorSpec {
                adjust: adj(0.0, 40.0, 0.0, 0.9),
                grayscale: true,
                ..base
            },
        }
    }
}

/// One edit operation, tagged by `op`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum EditOp {
    /// Keep the given region (clamped to the image; an error when outside it).
    Crop {
        /// Left edge.
        x: u32,
        /// Top edge.
        y: u32,
        /// Width, positive.
        width: u32,
        /// Height, positive.
        height: u32,
    },
    /// Clockwise rotation: 90, 180, 270, or -90, -180, -270 (counter-clockwise).
    Rotate {
        /// Degrees.
        degrees: i32,
    },
    /// Mirroring.
    Flip {
        /// Direction.
        direction: FlipDirection,
    },
    /// Colour adjustments, same ranges as the transform options.
    Adjust {
        /// -100..=100.
        brightness: Option<f32>,
        /// -100..=100.
        contrast: Option<f32>,
        /// -100..=100.
        saturation: Option<f32>,
        /// 0.1..=10.
        gamma: Option<f32>,
        /// -180..=180.
        hue: Option<f32>,
    },
    /// A named look.
    Filter {
        /// The look.
        name: FilterName,
    },
    /// Red-eye reduction inside detected faces.
    RedEye,
    /// Another image placed over this one.
    Watermark {
        /// The watermark image (the caller loads it and passes it to [`apply_edits`]).
        image_id: uuid::Uuid,
        /// Compass gravity (`soea` default; `ce`, `no`, `nowe`, ...).
        gravity: Option<String>,
        /// 0..=1, default 0.5.
        opacity: Option<f32>,
        /// Watermark width as a fraction of the image width, 0.01..=1, default 0.25.
        scale: Option<f32>,
    },
}

/// Most operations in one edit task.
pub const MAX_EDIT_OPS: usize = 20;

/// Checks counts and ranges; errors are `(field path, message)` pairs such as
/// `("operations[2].degrees", "...")`.
pub fn validate_edits(ops: &[EditOp]) -> Result<(), Vec<(String, String)>> {
    let mut errors = Vec::new();
    if ops.is_empty() || ops.len() > MAX_EDIT_OPS {
        errors.push((
            "operations".to_owned(),
            format!(
                "must contain 1 to {MAX_EDIT_OPS} operations (got {})",
                ops.len()
            ),
        ));
    }
    let mut watermarks = 0;
    for (i, op) in ops.iter().enumerate() {
        let err = |errors: &mut Vec<(String, String)>, field: &str, message: &str| {
            errors.push((format!("operations[{i}].{field}"), message.to_owned()));
        };
        let range =
            |errors: &mut Vec<(String, String)>, field: &str, v: Option<f32>, lo: f32, hi: f32| {
                if let Some(v) = v
                    && !(lo..=hi).contains(&v)
                {
                    err(
                        errors,
                        field,
                        &format!("must be a number from {lo} to {hi}"),
                    );
                }
            };
        match op {
            EditOp::Crop { width, height, .. } => {
                if *width == 0 {
                    err(&mut errors, "width", "must be positive");
                }
                if *height == 0 {
                    err(&mut errors, "height", "must be positive");
                }
            }
            EditOp::Rotate { degrees } => {
                if !matches!(degrees, 90 | 180 | 270 | -90 | -180 | -270) {
                    err(
                        &mut errors,
                        "degrees",
                        "must be one of 90, 180, 270, -90, -180, -270",
                    );
                }
            }
            EditOp::Adjust {
                brightness,
                contrast,
                saturation,
                gamma,
                hue,
            } => {
                range(&mut errors, "brightness", *brightness, -100.0, 100.0);
                range(&mut errors, "contrast", *contrast, -100.0, 100.0);
                range(&mut errors, "saturation", *saturation, -100.0, 100.0);
                range(&mut errors, "gamma", *gamma, 0.1, 10.0);
                range(&mut errors, "hue", *hue, -180.0, 180.0);
                if [brightness, contrast, saturation, gamma, hue]
                    .iter()
                    .all(|v| v.is_none())
                {
                    errors.push((
                        format!("operations[{i}]"),
                        "adjust needs at least one of brightness, contrast, saturation, gamma, hue"
                            .into(),
                    ));
                }
            }
            EditOp::Watermark {
                gravity,
                opacity,
                scale,
                ..
            } => {
                watermarks += 1;
                range(&mut errors, "opacity", *opacity, 0.0, 1.0);
                range(&mut errors, "scale", *scale, 0.01, 1.0);
                if let Some(g) = gravity
                    && Gravity::parse(g).and_then(Gravity::anchor).is_none()
                {
                    err(
                        &mut errors,
                        "gravity",
                        "must be one of ce, no, so, ea, we, noea, nowe, soea, sowe",
                    );
                }
                if watermarks > 1 {
                    err(&mut errors, "op", "only one watermark per edit task");
                }
            }
            EditOp::Flip { .. } | EditOp::Filter { .. } | EditOp::RedEye => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Validates then applies `ops` in order. `watermark` is the image of the (single)
/// [`EditOp::Watermark`], if any.
pub fn apply_edits(
    img: DynamicImage,
    ops: &[EditOp],
    vision: &dyn Vision,
    watermark: Option<&DynamicImage>,
) -> Result<DynamicImage, TransformError> {
    validate_edits(ops).map_err(TransformError::InvalidEdits)?;
    let mut img = img;
    for op in ops {
        img = match op {
            EditOp::Crop {
                x,
                y,
                width,
                height,
            } => apply::crop(
                img,
                crate::Rect {
                    x: *x,
                    y: *y,
                    width: *width,
                    height: *height,
                },
            )?,
            EditOp::Rotate { degrees } => match degrees.rem_euclid(360) {
                90 => img.rotate90(),
                180 => img.rotate180(),
                270 => img.rotate270(),
                _ => img,
            },
            EditOp::Flip {
                direction: FlipDirection::Horizontal,
            } => img.fliph(),
            EditOp::Flip {
                direction: FlipDirection::Vertical,
            } => img.flipv(),
            EditOp::Adjust {
                brightness,
                contrast,
                saturation,
                gamma,
                hue,
            } => {
                let d = Adjustments::default();
                let spec = ColorSpec {
                    adjust: Adjustments {
                        brightness: brightness.unwrap_or(d.brightness),
                        contrast: contrast.unwrap_or(d.contrast),
                        saturation: saturation.unwrap_or(d.saturation),
                        gamma: gamma.unwrap_or(d.gamma),
                        hue: hue.unwrap_or(d.hue),
                    },
                    ..ColorSpec::default()
                };
                color::apply_color(img, &spec)
            }
            EditOp::Filter { name } => color::apply_color(img, &name.spec()),
            EditOp::RedEye => red_eye(img, vision)?,
            EditOp::Watermark {
                gravity,
                opacity,
                scale,
                ..
            } => {
                let mark = watermark.ok_or(TransformError::MissingWatermark)?;
                let gravity = gravity
                    .as_deref()
                    .and_then(Gravity::parse)
                    .unwrap_or(Gravity::SouthEast);
                overlay(
                    img,
                    mark,
                    gravity,
                    opacity.unwrap_or(0.5),
                    scale.unwrap_or(0.25),
                )?
            }
        };
    }
    Ok(img)
}

fn red_eye(img: DynamicImage, vision: &dyn Vision) -> Result<DynamicImage, TransformError> {
    let faces = apply::faces_full(&img, vision)?;
    if faces.is_empty() {
        return Ok(img);
    }
    let alpha = img.color().has_alpha().then(|| img.to_rgba8());
    let mut rgb = img.into_rgb8();
    vision.reduce_red_eye(&mut rgb, &faces);
    Ok(match alpha {
        None => DynamicImage::ImageRgb8(rgb),
        Some(mut rgba) => {
            for (dst, src) in rgba.pixels_mut().zip(rgb.pixels()) {
                dst.0[..3].copy_from_slice(&src.0);
            }
            DynamicImage::ImageRgba8(rgba)
        }
    })
}

/// Alpha-blends `mark`, scaled to `scale` of the base width, at the gravity with a margin of
/// 2 % of the shorter base side.
fn overlay(
    base: DynamicImage,
    mark: &DynamicImage,
    gravity: Gravity,
    opacity: f32,
    scale: f32,
) -> Result<DynamicImage, TransformError> {
    let (bw, bh) = base.dimensions();
    let margin = (f64::from(bw.min(bh)) * 0.02).round() as u32;
    let (mw, mh) = mark.dimensions();
    if mw == 0 || mh == 0 || bw <= 2 * margin || bh <= 2 * margin {
        return Ok(base);
    }
    let room = (bw - 2 * margin, bh - 2 * margin);
    let mut k = f64::from(bw) * f64::from(scale) / f64::from(mw);
    k = k
        .min(f64::from(room.0) / f64::from(mw))
        .min(f64::from(room.1) / f64::from(mh));
    let size = (
        ((f64::from(mw) * k).round() as u32).clamp(1, room.0),
        ((f64::from(mh) * k).round() as u32).clamp(1, room.1),
    );
    let scaled: RgbaImage = if size == (mw, mh) {
        mark.to_rgba8()
    } else {
        apply::scale(&DynamicImage::ImageRgba8(mark.to_rgba8()), size, None)?.into_rgba8()
    };
    let (ax, ay) = gravity.anchor().unwrap_or((1.0, 1.0));
    let x0 = margin + (f64::from(room.0 - size.0) * ax).round() as u32;
    let y0 = margin + (f64::from(room.1 - size.1) * ay).round() as u32;

    let blend = |dst: &mut [u8], src: &[u8; 4]| {
        let a = f32::from(src[3]) / 255.0 * opacity;
        for c in 0..3 {
            let v = f32::from(dst[c]) * (1.0 - a) + f32::from(src[c]) * a;
            dst[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    };
    Ok(if base.color().has_alpha() {
        let mut out = base.into_rgba8();
        for (x, y, p) in scaled.enumerate_pixels() {
            blend(&mut out.get_pixel_mut(x0 + x, y0 + y).0, &p.0);
        }
        DynamicImage::ImageRgba8(out)
    } else {
        let mut out = base.into_rgb8();
        for (x, y, p) in scaled.enumerate_pixels() {
            blend(&mut out.get_pixel_mut(x0 + x, y0 + y).0, &p.0);
        }
        DynamicImage::ImageRgb8(out)
    })
}
