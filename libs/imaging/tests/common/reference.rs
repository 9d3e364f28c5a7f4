//! A slow, plain float Lanczos3 resize and PSNR, as the quality yardstick for
//! the tests and the benchmark (shared by both with `#[path]`).

#![allow(dead_code)]

use image::RgbImage;

/// An RGB image in `f32`, 0 to 255.
pub struct FloatImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl FloatImage {
    pub fn from_rgb(img: &RgbImage) -> FloatImage {
        FloatImage {
            width: img.width(),
            height: img.height(),
            data: img.as_raw().iter().map(|&v| f32::from(v)).collect(),
        }
    }
}

fn lanczos3(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else if x.abs() >= 3.0 {
        0.0
    } else {
        let px = std::f64::consts::PI * x;
        3.0 * px.sin() * (px / 3.0).sin() / (px * px)
    }
}

/// For each output index, the first source index and the normalised weights.
fn weights(src_len: u32, start: f64, span: f64, dst_len: u32) -> Vec<(usize, Vec<f32>)> {
    let scale = span / f64::from(dst_len);
    let filter_scale = scale.max(1.0);
    let support = 3.0 * filter_scale;
    (0..dst_len)
        .map(|i| {
            let centre = start + (f64::from(i) + 0.5) * scale;
            let lo = (centre - support).floor() as i64;
            let hi = (centre + support).ceil() as i64;
            let mut taps = vec![0.0f64; src_len as usize];
            let mut first = usize::MAX;
            let mut last = 0;
            for j in lo..=hi {
                let w = lanczos3((j as f64 + 0.5 - centre) / filter_scale);
                if w == 0.0 {
                    continue;
                }
                let k = j.clamp(0, i64::from(src_len) - 1) as usize;
                taps[k] += w;
                first = first.min(k);
                last = last.max(k);
            }
            let sum: f64 = taps[first..=last].iter().sum();
            (
                first,
                taps[first..=last]
                    .iter()
                    .map(|w| (w / sum) as f32)
                    .collect(),
            )
        })
        .collect()
}

/// Lanczos3 of the region (`left`, `top`, `w`, `h`, in source pixels) of
/// `src` to `dw` x `dh`, in `f32`, edges replicated; rounded to 8 bits.
pub fn lanczos_region(
    src: &FloatImage,
    (left, top, w, h): (f64, f64, f64, f64),
    dw: u32,
    dh: u32,
) -> RgbImage {
    let sw = src.width as usize;
    let xw = weights(src.width, left, w, dw);
    let yw = weights(src.height, top, h, dh);
    // Rows needed by the vertical pass.
    let row_lo = yw.iter().map(|(f, _)| *f).min().unwrap_or(0);
    let row_hi = yw.iter().map(|(f, t)| f + t.len()).max().unwrap_or(0);
    let mut horizontal = vec![0f32; (row_hi - row_lo) * dw as usize * 3];
    for y in row_lo..row_hi {
        let row = &src.data[y * sw * 3..(y + 1) * sw * 3];
        let out = &mut horizontal[(y - row_lo) * dw as usize * 3..][..dw as usize * 3];
        for (x, (first, taps)) in xw.iter().enumerate() {
            let mut acc = [0f32; 3];
            for (k, w) in taps.iter().enumerate() {
                let p = &row[(first + k) * 3..][..3];
                acc[0] += p[0] * w;
                acc[1] += p[1] * w;
                acc[2] += p[2] * w;
            }
            out[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }
    let mut out = RgbImage::new(dw, dh);
    let stride = dw as usize * 3;
    for (y, (first, taps)) in yw.iter().enumerate() {
        for x in 0..stride {
            let mut acc = 0f32;
            for (k, w) in taps.iter().enumerate() {
                acc += horizontal[(first + k - row_lo) * stride + x] * w;
            }
            out.as_mut()[y * stride + x] = acc.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Lanczos3 of the whole of `src` to `dw` x `dh`.
pub fn lanczos(src: &FloatImage, dw: u32, dh: u32) -> RgbImage {
    lanczos_region(
        src,
        (0.0, 0.0, f64::from(src.width), f64::from(src.height)),
        dw,
        dh,
    )
}

/// PSNR in dB of two same-sized 8-bit RGB images (infinite when equal).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "PSNR needs equal sizes");
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    let mse = sum / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
