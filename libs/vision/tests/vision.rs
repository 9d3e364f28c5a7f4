//! Behaviour of the analyses on real photos: the committed astronaut portrait
//! (tests/fixtures) and the MATE nature wallpapers (Debian package `mate-backgrounds`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use base64::Engine as _;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgb, RgbImage};
use pinhole_vision::{
    Rect, analyze, detect_faces, dominant_color, eye_regions, hamming, phash, reduce_red_eye,
    smart_crop, thumbhash,
};

const NATURE: &str = "/usr/share/backgrounds/mate/nature";

/// Eye centres and mouth centre of the astronaut, read off the 512x512 picture.
const LEFT_EYE: (u32, u32) = (205, 100);
const RIGHT_EYE: (u32, u32) = (246, 102);
const MOUTH: (u32, u32) = (225, 147);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(path: &Path) -> RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

fn astronaut() -> RgbImage {
    load(&fixture("astronaut.jpg"))
}

/// A MATE wallpaper fitted within `max` px, as the caller of this crate would pass it
/// (decoded once per test binary: the originals are up to 2560 px wide).
fn nature(name: &str, max: u32) -> RgbImage {
    static CACHE: LazyLock<Mutex<HashMap<String, Arc<RgbImage>>>> = LazyLock::new(Default::default);
    let full = {
        let mut cache = CACHE.lock().unwrap();
        let entry = cache.entry(name.to_owned()).or_default();
        if entry.width() == 0 {
            *entry = Arc::new(load(&Path::new(NATURE).join(name)));
        }
        Arc::clone(entry)
    };
    fit(&full, max)
}

fn fit(img: &RgbImage, max: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let scale = f64::from(max) / f64::from(w.max(h));
    let (tw, th) = (
        (f64::from(w) * scale).round() as u32,
        (f64::from(h) * scale).round() as u32,
    );
    resize(img, tw, th)
}

/// Triangle-filtered resize (through `DynamicImage`, so it runs as optimized
/// `image` code rather than generic code compiled into this unoptimized test).
fn resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    DynamicImage::ImageRgb8(img.clone())
        .resize_exact(w, h, FilterType::Triangle)
        .into_rgb8()
}

fn recompress(img: &RgbImage, quality: u8) -> RgbImage {
    let mut buf = Vec::new();
    JpegEncoder::new_with_quality(&mut buf, quality)
        .encode_image(img)
        .unwrap();
    image::load(Cursor::new(buf), image::ImageFormat::Jpeg)
        .unwrap()
        .to_rgb8()
}

fn mean_rgb(pixels: impl Iterator<Item = [u8; 3]>) -> [f64; 3] {
    let (mut acc, mut n) = ([0.0f64; 3], 0.0);
    for p in pixels {
        for c in 0..3 {
            acc[c] += f64::from(p[c]);
        }
        n += 1.0;
    }
    acc.map(|v| v / n)
}

/// Hue in degrees and HSV saturation.
fn hue_sat([r, g, b]: [u8; 3]) -> (f64, f64) {
    let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let d = max - min;
    if d == 0.0 {
        return (0.0, 0.0);
    }
    let h = if max == r {
        60.0 * ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    (h, d / max)
}

#[test]
fn finds_the_astronauts_face() {
    let faces = detect_faces(&astronaut());
    assert_eq!(faces.len(), 1, "{faces:?}");
    let face = faces[0].rect;
    for (x, y) in [LEFT_EYE, RIGHT_EYE, MOUTH] {
        assert!(face.contains(x, y), "{face:?} misses ({x}, {y})");
    }
    // Roughly the face, not the whole upper body: about 90 px across.
    assert!(
        (60..=150).contains(&face.width) && (60..=150).contains(&face.height),
        "{face:?}"
    );
    let (cx, cy) = face.center();
    assert!(
        (cx - 225.0).abs() < 25.0 && (cy - 122.0).abs() < 30.0,
        "{face:?}"
    );
    assert!(faces[0].score >= 2.0);
}

#[test]
fn still_finds_the_face_at_other_sizes() {
    let img = astronaut();
    for size in [320, 900] {
        let scaled = resize(&img, size, size);
        let faces = detect_faces(&scaled);
        assert_eq!(faces.len(), 1, "at {size} px: {faces:?}");
        let k = size as f32 / 512.0;
        let (cx, cy) = faces[0].rect.center();
        assert!(
            (cx / k - 225.0).abs() < 30.0 && (cy / k - 122.0).abs() < 35.0,
            "at {size} px: {faces:?}"
        );
    }
}

#[test]
fn no_faces_in_landscapes() {
    for name in [
        "Storm.jpg",
        "GreenMeadow.jpg",
        "Dune.jpg",
        "Aqua.jpg",
        "Garden.jpg",
        "LadyBird.jpg",
        "FreshFlower.jpg",
        "Wood.jpg",
    ] {
        let faces = detect_faces(&nature(name, 640));
        assert!(faces.is_empty(), "{name}: {faces:?}");
    }
}

#[test]
fn phash_survives_resizing_and_recompression() {
    for img in [
        astronaut(),
        nature("Storm.jpg", 640),
        nature("Garden.jpg", 640),
    ] {
        let original = phash(&img);
        let small = recompress(&fit(&img, 300), 60);
        let d = hamming(original, phash(&small));
        assert!(d <= 6, "resized + recompressed copy is {d} bits away");
        let d = hamming(original, phash(&recompress(&img, 40)));
        assert!(d <= 6, "recompressed copy is {d} bits away");
    }
}

#[test]
fn phash_separates_different_photos() {
    let photos = [
        ("astronaut", astronaut()),
        ("Storm", nature("Storm.jpg", 640)),
        ("GreenMeadow", nature("GreenMeadow.jpg", 640)),
        ("Garden", nature("Garden.jpg", 640)),
        ("Aqua", nature("Aqua.jpg", 640)),
        ("LadyBird", nature("LadyBird.jpg", 640)),
    ];
    let hashes: Vec<(&str, u64)> = photos.iter().map(|(n, img)| (*n, phash(img))).collect();
    for (i, (a, ha)) in hashes.iter().enumerate() {
        for (b, hb) in &hashes[i + 1..] {
            let d = hamming(*ha, *hb);
            assert!(d >= 16, "{a} vs {b}: only {d} bits apart");
        }
    }
}

#[test]
fn thumbhash_decodes_to_the_average_colour() {
    for img in [
        astronaut(),
        nature("Garden.jpg", 640),
        nature("Dune.jpg", 640),
    ] {
        let encoded = thumbhash(&img);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&encoded)
            .unwrap();
        assert!(bytes.len() <= 25, "{} bytes", bytes.len());
        let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&bytes).unwrap();
        assert!(w > 0 && h > 0 && w <= 32 && h <= 32);
        // Aspect ratio is kept roughly.
        let ratio = w as f64 / h as f64;
        let want = f64::from(img.width()) / f64::from(img.height());
        assert!(
            (ratio - want).abs() < 0.25,
            "{w}x{h} for {}x{}",
            img.width(),
            img.height()
        );
        let decoded = mean_rgb(rgba.chunks_exact(4).map(|p| [p[0], p[1], p[2]]));
        let source = mean_rgb(img.pixels().map(|p| p.0));
        for c in 0..3 {
            assert!(
                (decoded[c] - source[c]).abs() < 12.0,
                "decoded {decoded:?} vs source {source:?}"
            );
        }
    }
}

#[test]
fn dominant_colour_has_the_hue_most_pixels_have() {
    for name in ["GreenMeadow.jpg", "Dune.jpg", "Aqua.jpg", "Garden.jpg"] {
        let img = nature(name, 640);
        // Hue family (60-degree sectors) most of the colourful pixels fall in.
        let mut sectors = [0usize; 6];
        for p in img.pixels() {
            let (h, s) = hue_sat(p.0);
            if s > 0.15 {
                sectors[(h / 60.0) as usize % 6] += 1;
            }
        }
        let expected = (0..6).max_by_key(|&i| sectors[i]).unwrap();
        let dominant = dominant_color(&img);
        let (h, s) = hue_sat(dominant);
        let got = (h / 60.0) as usize % 6;
        assert!(
            s > 0.15,
            "{name}: dominant {dominant:?} is grey, pixels say sector {expected}"
        );
        // The most common colour cluster may be in a runner-up hue family when that
        // family is nearly as large (a uniform sky beats varied grass).
        assert!(
            sectors[got] * 3 >= sectors[expected] * 2,
            "{name}: dominant {dominant:?} hue {h:.0} vs pixel sectors {sectors:?}"
        );
    }
}

#[test]
fn dominant_colour_is_the_majority_not_the_mean() {
    // A real photo pasted over 30 % of a flat orange canvas: the orange wins, and
    // the answer is not the mean colour of the canvas.
    let storm = nature("Storm.jpg", 300);
    let mut canvas = RgbImage::from_pixel(400, 300, Rgb([230, 120, 20]));
    imageops::replace(
        &mut canvas,
        &imageops::crop_imm(&storm, 0, 0, 120, 300).to_image(),
        280,
        0,
    );
    let [r, g, b] = dominant_color(&canvas);
    assert!(
        r.abs_diff(230) <= 8 && g.abs_diff(120) <= 8 && b.abs_diff(20) <= 8,
        "{:?}",
        [r, g, b]
    );
    let mean = mean_rgb(canvas.pixels().map(|p| p.0));
    assert!((mean[0] - f64::from(r)).abs() > 20.0);
}

/// A flat canvas with a detailed piece of a real photo pasted at `(x, y)`.
fn canvas_with_object(w: u32, h: u32, x: u32, y: u32) -> (RgbImage, Rect) {
    let object = imageops::crop_imm(&nature("LadyBird.jpg", 640), 200, 100, 90, 90).to_image();
    let mut canvas = RgbImage::from_pixel(w, h, Rgb([128, 132, 136]));
    imageops::replace(&mut canvas, &object, i64::from(x), i64::from(y));
    (
        canvas,
        Rect {
            x,
            y,
            width: 90,
            height: 90,
        },
    )
}

fn window_contains(window: Rect, object: Rect) -> bool {
    window.x <= object.x
        && window.y <= object.y
        && window.x + window.width >= object.x + object.width
        && window.y + window.height >= object.y + object.height
}

#[test]
fn smart_crop_follows_the_detail() {
    // Wide canvas, tall crop: the object on the left, in the middle or on the right.
    for x in [10, 150, 300] {
        let (img, object) = canvas_with_object(400, 240, x, 75);
        let (cx, cy) = smart_crop(&img, 120, 240);
        let window = Rect {
            x: cx,
            y: cy,
            width: 120,
            height: 240,
        };
        assert!(
            window_contains(window, object),
            "object {object:?}, crop {window:?}"
        );
    }
    // Tall canvas, wide crop: the object at the top or at the bottom.
    for y in [5, 300] {
        let (img, object) = canvas_with_object(240, 400, 75, y);
        let (cx, cy) = smart_crop(&img, 240, 130);
        let window = Rect {
            x: cx,
            y: cy,
            width: 240,
            height: 130,
        };
        assert!(
            window_contains(window, object),
            "object {object:?}, crop {window:?}"
        );
    }
}

#[test]
fn smart_crop_keeps_the_astronauts_face_in_a_square() {
    // The face, not the flag, the suit or the helmet.
    let img = astronaut();
    let (x, y) = smart_crop(&img, 200, 200);
    let window = Rect {
        x,
        y,
        width: 200,
        height: 200,
    };
    for (px, py) in [LEFT_EYE, RIGHT_EYE, MOUTH] {
        assert!(window.contains(px, py), "{window:?}");
    }
}

fn paint_disc(
    img: &mut RgbImage,
    (cx, cy): (u32, u32),
    radius: i64,
    colour: Rgb<u8>,
) -> Vec<(u32, u32)> {
    let mut painted = Vec::new();
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            if dx * dx + dy * dy <= radius * radius {
                let (x, y) = ((i64::from(cx) + dx) as u32, (i64::from(cy) + dy) as u32);
                img.put_pixel(x, y, colour);
                painted.push((x, y));
            }
        }
    }
    painted
}

#[test]
fn red_eye_reduction_fixes_red_pupils_only() {
    let original = astronaut();
    let face = detect_faces(&original)[0].rect;
    assert!(face.contains(LEFT_EYE.0, LEFT_EYE.1) && face.contains(RIGHT_EYE.0, RIGHT_EYE.1));

    // Natural eyes (and the red suit, the flag, the lips) are left alone.
    let mut untouched = original.clone();
    assert_eq!(reduce_red_eye(&mut untouched, &[face]), 0);
    assert_eq!(untouched, original);

    let mut red = original.clone();
    let mut painted = paint_disc(&mut red, LEFT_EYE, 4, Rgb([235, 25, 35]));
    painted.extend(paint_disc(&mut red, RIGHT_EYE, 4, Rgb([180, 40, 50])));
    let before = red.clone();
    let changed = reduce_red_eye(&mut red, &[face]);
    assert_eq!(changed, painted.len());
    for &(x, y) in &painted {
        let [r, g, b] = red.get_pixel(x, y).0;
        assert!(
            r <= g.max(b).saturating_add(20),
            "({x}, {y}) still red: {:?}",
            [r, g, b]
        );
    }
    let eyes = eye_regions(&face);
    for (x, y, p) in red.enumerate_pixels() {
        if !eyes.iter().any(|e| e.contains(x, y)) {
            assert_eq!(
                p,
                before.get_pixel(x, y),
                "({x}, {y}) outside the eyes changed"
            );
        }
    }
}

#[test]
fn analysis_serializes_as_documented() {
    let analysis = analyze(&astronaut());
    assert_eq!(analysis.phash.len(), 16);
    assert!(
        analysis
            .phash
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(
        u64::from_str_radix(&analysis.phash, 16).unwrap(),
        phash(&astronaut())
    );
    assert!(analysis.dominant_color.starts_with('#') && analysis.dominant_color.len() == 7);
    assert_eq!(analysis.faces.len(), 1);
    let json = serde_json::to_value(&analysis).unwrap();
    let face = &json["faces"][0];
    for key in ["x", "y", "width", "height", "score"] {
        assert!(face.get(key).is_some(), "{face}");
    }
    let back: pinhole_vision::Analysis = serde_json::from_value(json).unwrap();
    assert_eq!(back, analysis);
}
