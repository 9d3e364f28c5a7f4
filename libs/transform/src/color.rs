//! Per-pixel colour operations: a tone curve (brightness, contrast, gamma) followed by a
//! 3x3 colour matrix (saturation, hue, channel balance, grayscale, sepia).

use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};

/// Colour adjustments shared by transform options and edits. The default changes nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adjustments {
    /// -100..=100; adds up to ±128 levels.
    pub brightness: f32,
    /// -100..=100; -100 is flat grey, 100 scales the distance from mid-grey by 4.
    pub contrast: f32,
    /// -100..=100; -100 is grayscale, 100 doubles the saturation.
    pub saturation: f32,
    /// 0.1..=10; above 1 brightens the mid-tones.
    pub gamma: f32,
    /// -180..=180 degrees of hue rotation.
    pub hue: f32,
}

impl Default for Adjustments {
    fn default() -> Self {
        Self {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            gamma: 1.0,
            hue: 0.0,
        }
    }
}

type Matrix = [[f32; 3]; 3];

const IDENTITY: Matrix = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

const SEPIA: Matrix = [
    [0.393, 0.769, 0.189],
    [0.349, 0.686, 0.168],
    [0.272, 0.534, 0.131],
];

fn mul(a: &Matrix, b: &Matrix) -> Matrix {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// Saturation matrix with Rec. 709 luma weights (as CSS `saturate()`); `s = 0` is grayscale.
fn saturate(s: f32) -> Matrix {
    [
        [
            0.2126 + 0.7874 * s,
            0.7152 - 0.7152 * s,
            0.0722 - 0.0722 * s,
        ],
        [
            0.2126 - 0.2126 * s,
            0.7152 + 0.2848 * s,
            0.0722 - 0.0722 * s,
        ],
        [
            0.2126 - 0.2126 * s,
            0.7152 - 0.7152 * s,
            0.0722 + 0.9278 * s,
        ],
    ]
}

/// Luminance-preserving hue rotation (as CSS `hue-rotate()`).
fn hue_rotate(degrees: f32) -> Matrix {
    let (sin, cos) = degrees.to_radians().sin_cos();
    [
        [
            0.213 + cos * 0.787 - sin * 0.213,
            0.715 - cos * 0.715 - sin * 0.715,
            0.072 - cos * 0.072 + sin * 0.928,
        ],
        [
            0.213 - cos * 0.213 + sin * 0.143,
            0.715 + cos * 0.285 + sin * 0.140,
            0.072 - cos * 0.072 - sin * 0.283,
        ],
        [
            0.213 - cos * 0.213 - sin * 0.787,
            0.715 - cos * 0.715 + sin * 0.715,
            0.072 + cos * 0.928 + sin * 0.072,
        ],
    ]
}

/// A complete colour operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ColorSpec {
    pub adjust: Adjustments,
    /// Per-channel gains applied after saturation and hue (warm/cool filters).
    pub balance: [f32; 3],
    pub grayscale: bool,
    /// 0 = none, 1 = full sepia.
    pub sepia: f32,
}

impl Default for ColorSpec {
    fn default() -> Self {
        Self {
            adjust: Adjustments::default(),
            balance: [1.0; 3],
            grayscale: false,
            sepia: 0.0,
        }
    }
}

impl ColorSpec {
    fn curve(&self) -> Option<[f32; 256]> {
        let a = &self.adjust;
        if a.brightness == 0.0 && a.contrast == 0.0 && a.gamma == 1.0 {
            return None;
        }
        let offset = a.brightness * 1.28;
        let factor = if a.contrast >= 0.0 {
            1.0 + a.contrast / 100.0 * 3.0
        } else {
            1.0 + a.contrast / 100.0
        };
        let mut lut = [0.0f32; 256];
        for (v, out) in lut.iter_mut().enumerate() {
            let x = v as f32 + offset;
            let x = ((x - 128.0) * factor + 128.0).clamp(0.0, 255.0);
            *out = 255.0 * (x / 255.0).powf(1.0 / a.gamma);
        }
        Some(lut)
    }

    fn matrix(&self) -> Option<Matrix> {
        let a = &self.adjust;
        let mut m = IDENTITY;
        if a.saturation != 0.0 {
            m = mul(&saturate(1.0 + a.saturation / 100.0), &m);
        }
        if a.hue != 0.0 {
            m = mul(&hue_rotate(a.hue), &m);
        }
        if self.balance != [1.0; 3] {
            let b = self.balance;
            m = mul(&[[b[0], 0.0, 0.0], [0.0, b[1], 0.0], [0.0, 0.0, b[2]]], &m);
        }
        if self.grayscale {
            m = mul(&saturate(0.0), &m);
        }
        if self.sepia > 0.0 {
            let t = self.sepia.min(1.0);
            let mut sep = IDENTITY;
            for (i, row) in sep.iter_mut().enumerate() {
                for (j, cell) in row.iter_mut().enumerate() {
                    *cell = *cell * (1.0 - t) + SEPIA[i][j] * t;
                }
            }
            m = mul(&sep, &m);
        }
        (m != IDENTITY).then_some(m)
    }
}

fn to_u8(v: f32) -> u8 {
    // Clamped first, so the cast cannot truncate.
    v.round().clamp(0.0, 255.0) as u8
}

fn pixel(rgb: [u8; 3], curve: Option<&[f32; 256]>, matrix: Option<&Matrix>) -> [u8; 3] {
    let c = rgb.map(|v| match curve {
        Some(lut) => lut[usize::from(v)],
        None => f32::from(v),
    });
    match matrix {
        Some(m) => [0, 1, 2].map(|i| to_u8(m[i][0] * c[0] + m[i][1] * c[1] + m[i][2] * c[2])),
        None => c.map(to_u8),
    }
}

/// Applies `spec`; returns the image untouched when it is a no-op. The result is 8-bit RGB,
/// or RGBA when the input has alpha (alpha is kept).
pub(crate) fn apply_color(img: DynamicImage, spec: &ColorSpec) -> DynamicImage {
    let curve = spec.curve();
    let matrix = spec.matrix();
    if curve.is_none() && matrix.is_none() {
        return img;
    }
    let (curve, matrix) = (curve.as_ref(), matrix.as_ref());
    if img.color().has_alpha() {
        let mut buf: RgbaImage = img.into_rgba8();
        for p in buf.pixels_mut() {
            let [r, g, b, a] = p.0;
            let [r, g, b] = pixel([r, g, b], curve, matrix);
            *p = Rgba([r, g, b, a]);
        }
        DynamicImage::ImageRgba8(buf)
    } else {
        let mut buf: RgbImage = img.into_rgb8();
        for p in buf.pixels_mut() {
            *p = Rgb(pixel(p.0, curve, matrix));
        }
        DynamicImage::ImageRgb8(buf)
    }
}

/// Unsharp mask: `out = in + amount * (in - blur(in))`, alpha untouched.
pub(crate) fn sharpen(img: DynamicImage, sigma: f32) -> DynamicImage {
    const AMOUNT: f32 = 1.0;
    let has_alpha = img.color().has_alpha();
    let img = if has_alpha {
        DynamicImage::ImageRgba8(img.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.into_rgb8())
    };
    let blurred = img.fast_blur(sigma);
    let channels = if has_alpha { 4 } else { 3 };
    let mut out = img;
    let dst: &mut [u8] = match &mut out {
        DynamicImage::ImageRgba8(b) => b,
        DynamicImage::ImageRgb8(b) => b,
        _ => return out,
    };
    for (i, (d, s)) in dst.iter_mut().zip(blurred.as_bytes()).enumerate() {
        if has_alpha && i % channels == 3 {
            continue;
        }
        let v = f32::from(*d);
        *d = to_u8(v + AMOUNT * (v - f32::from(*s)));
    }
    out
}
