//! Small, dependency-free resampling helpers shared by the analyses.

use image::RgbImage;

/// Largest `(w, h)` with the aspect ratio of `width x height` fitting in `max x max`
/// (never upscales, never returns 0).
pub(crate) fn fit_within(width: u32, height: u32, max: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max {
        return (width.max(1), height.max(1));
    }
    let scale =
        |v: u32| ((u64::from(v) * u64::from(max) + u64::from(long) / 2) / u64::from(long)) as u32;
    (scale(width).clamp(1, max), scale(height).clamp(1, max))
}

/// Source index range `[start, end)` covered by target index `i` of `n` over `len`.
fn span(i: u32, n: u32, len: u32) -> (usize, usize) {
    let start = (u64::from(i) * u64::from(len) / u64::from(n)) as usize;
    let end = (u64::from(i + 1) * u64::from(len) / u64::from(n)) as usize;
    (start, end.max(start + 1).min(len as usize))
}

/// Resizes to exactly `tw x th` by averaging each target pixel's source area
/// (nearest pixel when upscaling). Returns row-major linear-in-sRGB-values `[r, g, b]`.
pub(crate) fn area_resize(img: &RgbImage, tw: u32, th: u32) -> Vec<[f32; 3]> {
    let (w, h) = img.dimensions();
    let mut out = Vec::with_capacity(tw as usize * th as usize);
    if w == 0 || h == 0 {
        out.resize(tw as usize * th as usize, [0.0; 3]);
        return out;
    }
    let raw = img.as_raw();
    let stride = w as usize * 3;
    let cols: Vec<(usize, usize)> = (0..tw).map(|x| span(x, tw, w)).collect();
    for ty in 0..th {
        let (y0, y1) = span(ty, th, h);
        for &(x0, x1) in &cols {
            let mut acc = [0.0f32; 3];
            for y in y0..y1 {
                let row = &raw[y * stride + x0 * 3..y * stride + x1 * 3];
                for px in row.chunks_exact(3) {
                    acc[0] += f32::from(px[0]);
                    acc[1] += f32::from(px[1]);
                    acc[2] += f32::from(px[2]);
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as f32;
            out.push([acc[0] / n, acc[1] / n, acc[2] / n]);
        }
    }
    out
}

/// Rec. 601 luma of an RGB triple.
pub(crate) fn luma(p: [f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_within_keeps_aspect_and_bounds() {
        assert_eq!(fit_within(640, 427, 100), (100, 67));
        assert_eq!(fit_within(427, 640, 100), (67, 100));
        assert_eq!(fit_within(50, 20, 100), (50, 20));
        assert_eq!(fit_within(10_000, 1, 64), (64, 1));
    }

    #[test]
    fn area_resize_averages_and_upscales() {
        let img = RgbImage::from_fn(4, 2, |x, _| {
            if x < 2 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([200, 100, 50])
            }
        });
        assert_eq!(
            area_resize(&img, 2, 1),
            vec![[0.0; 3], [200.0, 100.0, 50.0]]
        );
        assert_eq!(area_resize(&img, 1, 1), vec![[100.0, 50.0, 25.0]]);
        let up = area_resize(&img, 8, 4);
        assert_eq!(up.len(), 32);
        assert_eq!(up[7], [200.0, 100.0, 50.0]);
        assert_eq!(up[0], [0.0; 3]);
    }
}
