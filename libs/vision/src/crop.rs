//! Attention-based smart crop (in the spirit of libvips' `attention` crop).

use image::RgbImage;

/// Edges weaker than this (in luma levels over two pixels) are treated as noise.
const EDGE_FLOOR: f32 = 12.0;
/// Weight of squared chroma (0..1): kept low so large saturated areas (clothes,
/// flags) do not outweigh detail.
const SATURATION_WEIGHT: f32 = 0.25;
/// Weight of a skin-toned pixel, so that people win over busy backgrounds.
const SKIN_WEIGHT: f32 = 0.7;

/// Top-left corner of the `width x height` window of `img` with the most interest:
/// luma edges (detail), strongly saturated colours and skin tones. Among equally
/// interesting windows the one nearest the centre wins, so a flat picture crops
/// centrally. `width`/`height` larger than the image are clamped to it.
pub fn smart_crop(img: &RgbImage, width: u32, height: u32) -> (u32, u32) {
    let (w, h) = img.dimensions();
    let (cw, ch) = (width.min(w), height.min(h));
    if w == 0 || h == 0 || (cw, ch) == (w, h) {
        return (0, 0);
    }
    let interest = interest_map(img);

    // Summed-area table, (w + 1) x (h + 1).
    let (iw, ih) = (w as usize + 1, h as usize + 1);
    let mut sat = vec![0.0f64; iw * ih];
    for y in 0..h as usize {
        let mut row = 0.0f64;
        for x in 0..w as usize {
            row += f64::from(interest[y * w as usize + x]);
            sat[(y + 1) * iw + x + 1] = sat[y * iw + x + 1] + row;
        }
    }
    let total = sat[iw * ih - 1];
    let eps = total * 1e-9 + 1e-9;

    let (cwu, chu) = (cw as usize, ch as usize);
    let (max_x, max_y) = (w - cw, h - ch);
    let centre = (f64::from(max_x) / 2.0, f64::from(max_y) / 2.0);
    let mut best = (f64::NEG_INFINITY, f64::INFINITY, (0, 0));
    for y in 0..=max_y as usize {
        for x in 0..=max_x as usize {
            let s = sat[(y + chu) * iw + x + cwu] - sat[y * iw + x + cwu] - sat[(y + chu) * iw + x]
                + sat[y * iw + x];
            let dist = (x as f64 - centre.0).powi(2) + (y as f64 - centre.1).powi(2);
            if s > best.0 + eps || (s >= best.0 - eps && dist < best.1) {
                best = (s, dist, (x as u32, y as u32));
            }
        }
    }
    best.2
}

/// Per-pixel interest, row-major.
fn interest_map(img: &RgbImage) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let luma: Vec<f32> = img
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            let (left, right) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let gx = (luma[y * w + right] - luma[y * w + left]).abs();
            let gy = (luma[down * w + x] - luma[up * w + x]).abs();
            let edge = gx + gy;
            let edge = if edge > EDGE_FLOOR { edge / 255.0 } else { 0.0 };

            let [r, g, b] = img.get_pixel(x as u32, y as u32).0;
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            let chroma = f32::from(max - min) / 255.0;
            let saturation = chroma * chroma;
            let skin = if is_skin(r, g, b) { 1.0 } else { 0.0 };
            out.push(edge + SATURATION_WEIGHT * saturation + SKIN_WEIGHT * skin);
        }
    }
    out
}

/// Skin tone by normalized rg chromaticity (any complexion, reasonably lit); the
/// orange-red of fabrics and flags falls outside (red share above 0.48).
fn is_skin(r: u8, g: u8, b: u8) -> bool {
    let (rf, gf, bf) = (f32::from(r), f32::from(g), f32::from(b));
    let sum = rf + gf + bf;
    if r <= 60 || !(r > g && g > b) || r - b < 25 {
        return false;
    }
    let (rn, gn) = (rf / sum, gf / sum);
    (0.38..=0.48).contains(&rn) && (0.29..=0.36).contains(&gn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_image_crops_centrally() {
        let img = RgbImage::from_pixel(200, 100, image::Rgb([90, 90, 90]));
        assert_eq!(smart_crop(&img, 100, 100), (50, 0));
        assert_eq!(smart_crop(&img, 300, 300), (0, 0));
    }

    #[test]
    fn skin_rule() {
        assert!(is_skin(224, 172, 140));
        assert!(!is_skin(120, 120, 120));
        assert!(!is_skin(40, 90, 200));
        assert!(is_skin(159, 119, 93)); // shaded skin
        assert!(!is_skin(218, 101, 66)); // orange suit
    }
}
