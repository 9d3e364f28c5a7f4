//! Shared helpers for the pixel tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::OnceLock;

use image::{DynamicImage, RgbImage};
use pinhole_transform::{Rect, Vision};

/// A 1920x1280 Canon JPEG shipped by the `mate-backgrounds` Debian package.
pub const STORM: &str = "/usr/share/backgrounds/mate/nature/Storm.jpg";

/// The decoded photo (decoded once per test binary).
pub fn storm() -> &'static DynamicImage {
    static IMG: OnceLock<DynamicImage> = OnceLock::new();
    IMG.get_or_init(|| {
        image::open(STORM)
            .unwrap_or_else(|e| panic!("{STORM}: {e} (install the mate-backgrounds package)"))
    })
}

/// The photo at 480x320, for tests of colour operations.
pub fn small_storm() -> &'static DynamicImage {
    static IMG: OnceLock<DynamicImage> = OnceLock::new();
    IMG.get_or_init(|| storm().resize_exact(480, 320, image::imageops::FilterType::Triangle))
}

/// Rec. 709 luma of every pixel.
pub fn luma(img: &DynamicImage) -> Vec<f64> {
    img.to_rgb8()
        .pixels()
        .map(|p| 0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2]))
        .collect()
}

pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

pub fn stddev(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// Mean absolute luma difference between horizontal and vertical neighbours.
pub fn high_freq(img: &DynamicImage) -> f64 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let l = luma(img);
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in 0..h - 1 {
        for x in 0..w - 1 {
            let v = l[y * w + x];
            sum += (v - l[y * w + x + 1]).abs() + (v - l[(y + 1) * w + x]).abs();
            n += 2.0;
        }
    }
    sum / n
}

/// Mean of each RGB channel.
pub fn channel_means(img: &DynamicImage) -> [f64; 3] {
    let rgb = img.to_rgb8();
    let n = f64::from(rgb.width() * rgb.height());
    let mut s = [0.0; 3];
    for p in rgb.pixels() {
        for c in 0..3 {
            s[c] += f64::from(p[c]);
        }
    }
    s.map(|v| v / n)
}

/// Mean absolute per-channel difference of two same-sized images.
pub fn mean_abs_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .sum();
    sum / a.as_raw().len() as f64
}

/// A fake [`Vision`] with fixed answers (in the coordinates of the image it is given,
/// expressed as fractions so they survive downsizing) that records what it was shown.
#[derive(Default)]
pub struct FakeVision {
    /// Faces as fractions (x, y, w, h) of the image it is shown.
    pub faces: Vec<(f64, f64, f64, f64)>,
    /// Smart-crop answer as fractions of the image.
    pub smart: (f64, f64),
    /// Sizes of the images it was shown.
    pub seen: std::sync::Mutex<Vec<(u32, u32)>>,
    /// Face boxes handed to `reduce_red_eye`.
    pub red_eye_faces: std::sync::Mutex<Vec<Rect>>,
}

impl Vision for FakeVision {
    fn faces(&self, img: &RgbImage) -> Vec<Rect> {
        self.seen.lock().unwrap().push(img.dimensions());
        let (w, h) = (f64::from(img.width()), f64::from(img.height()));
        self.faces
            .iter()
            .map(|(x, y, fw, fh)| Rect {
                x: (x * w) as u32,
                y: (y * h) as u32,
                width: (fw * w) as u32,
                height: (fh * h) as u32,
            })
            .collect()
    }

    fn smart_crop(&self, img: &RgbImage, _width: u32, _height: u32) -> (u32, u32) {
        self.seen.lock().unwrap().push(img.dimensions());
        (
            (self.smart.0 * f64::from(img.width())) as u32,
            (self.smart.1 * f64::from(img.height())) as u32,
        )
    }

    fn reduce_red_eye(&self, img: &mut RgbImage, faces: &[Rect]) -> usize {
        self.red_eye_faces.lock().unwrap().extend_from_slice(faces);
        for f in faces {
            for y in f.y..f.y + f.height {
                for x in f.x..f.x + f.width {
                    img.put_pixel(x, y, image::Rgb([0, 255, 0]));
                }
            }
        }
        faces.len() * 2
    }
}
