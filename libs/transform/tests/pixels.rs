//! Pixel behaviour of transforms on a real photo.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    FakeVision, channel_means, high_freq, luma, mean, mean_abs_diff, small_storm, stddev, storm,
};
use image::{DynamicImage, GenericImageView, Rgba, RgbaImage};
use pinhole_transform::{Caps, NoVision, Options, Presets, apply};

fn opts(s: &str) -> Options {
    Options::parse(s, &Presets::standard(), &Caps::default()).unwrap()
}

fn run(img: &DynamicImage, s: &str) -> DynamicImage {
    apply(img.clone(), &opts(s), &NoVision).unwrap()
}

#[test]
fn resize_dimensions_match_output_size() {
    let src = storm();
    assert_eq!(src.dimensions(), (1920, 1280));
    for s in [
        "rs:fit:640:640",
        "w:500",
        "h:500",
        "rs:fill:300:300",
        "rs:fill:1000:200",
        "rs:fill:256:256,g:sowe",
        "rs:crop:500:300",
        "rs:crop:5000:300,g:so",
        "rs:fit:4000:4000",
        "cr:100:100:800:400,rs:fill:200:200",
        "rs:fit:300:300,rot:90",
    ] {
        let o = opts(s);
        let out = apply(src.clone(), &o, &NoVision).unwrap();
        assert_eq!(out.dimensions(), o.output_size(1920, 1280), "{s}");
    }
    assert_eq!(run(src, "rs:fit:640:640").dimensions(), (640, 427));
    assert_eq!(run(src, "rs:fill:300:300").dimensions(), (300, 300));
    assert_eq!(run(src, "rs:crop:500:300").dimensions(), (500, 300));
    assert_eq!(run(src, "rs:fit:4000:4000").dimensions(), (1920, 1280));
    // enlarging only when asked (on the 480x320 copy to keep the test quick)
    assert_eq!(
        run(small_storm(), "rs:fit:960:960").dimensions(),
        (480, 320)
    );
    assert_eq!(
        run(small_storm(), "rs:fit:960:960,el:1").dimensions(),
        (960, 640)
    );
    assert_eq!(
        run(small_storm(), "rs:fill:600:600,el:1").dimensions(),
        (600, 600)
    );
    assert_eq!(
        run(small_storm(), "rs:fill:600:600").dimensions(),
        (320, 320)
    );
}

#[test]
fn fit_output_looks_like_the_source() {
    // A downscale must resemble a plain downscale of the same picture, not just have the size.
    let out = run(storm(), "rs:fit:480:480");
    assert_eq!(out.dimensions(), (480, 320));
    let d = mean_abs_diff(&out, small_storm());
    assert!(d < 4.0, "mean abs diff {d}");
}

#[test]
fn reduced_decode_gives_the_same_output() {
    // What the server does with min_source_edge: decode smaller, then apply the same options.
    for s in ["rs:fit:640:640", "rs:fill:300:300", "h:320"] {
        let o = opts(s);
        let need = o.min_source_edge(1920, 1280).unwrap();
        let k = f64::from(need) / 1920.0;
        let reduced = storm().resize_exact(
            need,
            (1280.0 * k).ceil() as u32,
            image::imageops::FilterType::Triangle,
        );
        let out = apply(reduced, &o, &NoVision).unwrap();
        assert_eq!(out.dimensions(), o.output_size(1920, 1280), "{s}");
    }
}

#[test]
fn explicit_crop_equals_the_source_region() {
    let src = storm();
    let out = run(src, "cr:100:200:300:150");
    assert_eq!(out.dimensions(), (300, 150));
    assert_eq!(out.to_rgb8(), src.crop_imm(100, 200, 300, 150).to_rgb8());
    // clamped at the edges
    let out = run(src, "cr:1800:1200:500:500");
    assert_eq!(out.dimensions(), (120, 80));
    assert_eq!(out.to_rgb8(), src.crop_imm(1800, 1200, 120, 80).to_rgb8());
    // outside the image
    let e = apply(src.clone(), &opts("cr:1920:0:10:10"), &NoVision).unwrap_err();
    assert_eq!(e.code(), "crop-outside-image");
}

#[test]
fn rotate_and_flip_map_corners() {
    let src = small_storm();
    let (w, h) = src.dimensions();
    let px = |img: &DynamicImage, x, y| img.get_pixel(x, y);
    // (output corner, source pixel that must land there)
    type Corners = [((u32, u32), (u32, u32)); 4];
    let cases: [(&str, (u32, u32), Corners); 5] = [
        // 90 clockwise: the source's bottom-left becomes the top-left
        (
            "rot:90",
            (h, w),
            [
                ((0, 0), (0, h - 1)),
                ((h - 1, 0), (0, 0)),
                ((0, w - 1), (w - 1, h - 1)),
                ((h - 1, w - 1), (w - 1, 0)),
            ],
        ),
        (
            "rot:180",
            (w, h),
            [
                ((0, 0), (w - 1, h - 1)),
                ((w - 1, 0), (0, h - 1)),
                ((0, h - 1), (w - 1, 0)),
                ((w - 1, h - 1), (0, 0)),
            ],
        ),
        (
            "rot:270",
            (h, w),
            [
                ((0, 0), (w - 1, 0)),
                ((h - 1, 0), (w - 1, h - 1)),
                ((0, w - 1), (0, 0)),
                ((h - 1, w - 1), (0, h - 1)),
            ],
        ),
        (
            "fl:h",
            (w, h),
            [
                ((0, 0), (w - 1, 0)),
                ((w - 1, 0), (0, 0)),
                ((0, h - 1), (w - 1, h - 1)),
                ((w - 1, h - 1), (0, h - 1)),
            ],
        ),
        (
            "fl:v",
            (w, h),
            [
                ((0, 0), (0, h - 1)),
                ((w - 1, 0), (w - 1, h - 1)),
                ((0, h - 1), (0, 0)),
                ((w - 1, h - 1), (w - 1, 0)),
            ],
        ),
    ];
    for (s, dims, corners) in cases {
        let out = run(src, s);
        assert_eq!(out.dimensions(), dims, "{s}");
        for (o, i) in corners {
            assert_eq!(px(&out, o.0, o.1), px(src, i.0, i.1), "{s}: {o:?} <- {i:?}");
        }
    }
    // rotation happens before flipping: rot:90 then fl:h == transpose
    let out = run(src, "rot:90,fl:h");
    assert_eq!(px(&out, 0, 0), px(src, 0, 0));
    assert_eq!(px(&out, h - 1, w - 1), px(src, w - 1, h - 1));
    assert_eq!(px(&out, 10, 3), px(src, 3, 10));
}

#[test]
fn grayscale_has_equal_channels() {
    let src = small_storm();
    let out = run(src, "gs").to_rgb8();
    assert!(out.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    // the source is a colour photo, and luma is preserved roughly
    assert!(src.to_rgb8().pixels().filter(|p| p[0] != p[2]).count() > 10_000);
    let d = (mean(&luma(&DynamicImage::ImageRgb8(out))) - mean(&luma(src))).abs();
    assert!(d < 2.0, "luma moved by {d}");
}

#[test]
fn sepia_is_warm() {
    let [r, g, b] = channel_means(&run(small_storm(), "sp"));
    assert!(r > g + 10.0 && g > b + 10.0, "r {r} g {g} b {b}");
    let [r0, _, b0] = channel_means(small_storm());
    assert!(
        r - b > (r0 - b0) + 20.0,
        "sepia {r}/{b} vs source {r0}/{b0}"
    );
}

#[test]
fn brightness_contrast_saturation_gamma_hue() {
    let src = small_storm();
    let base = luma(src);
    assert!(mean(&luma(&run(src, "br:30"))) > mean(&base) + 20.0);
    assert!(mean(&luma(&run(src, "br:-30"))) < mean(&base) - 20.0);
    assert!(stddev(&luma(&run(src, "co:40"))) > stddev(&base) * 1.3);
    assert!(stddev(&luma(&run(src, "co:-50"))) < stddev(&base) * 0.7);
    assert!(mean(&luma(&run(src, "ga:2"))) > mean(&base) + 10.0);

    let spread = |img: &DynamicImage| {
        let v: Vec<f64> = img
            .to_rgb8()
            .pixels()
            .map(|p| f64::from(p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2])))
            .collect();
        mean(&v)
    };
    assert!(spread(&run(src, "sa:80")) > spread(src) * 1.4);
    assert!(spread(&run(src, "sa:-100")) < 1.0);
    // a hue turn changes colours but (nearly) keeps the luma
    let hu = run(src, "hu:120");
    assert!(mean_abs_diff(&hu, src) > 5.0);
    assert!((mean(&luma(&hu)) - mean(&base)).abs() < 5.0);
}

#[test]
fn blur_and_sharpen_change_high_frequencies() {
    let src = small_storm();
    let hf = high_freq(src);
    let blurred = high_freq(&run(src, "bl:3"));
    let sharpened = high_freq(&run(src, "sh:1.5"));
    assert!(blurred < hf * 0.6, "blur {blurred} vs {hf}");
    assert!(sharpened > hf * 1.3, "sharpen {sharpened} vs {hf}");
    // large sigmas stay usable
    let big = high_freq(&run(src, "bl:100"));
    assert!(big < blurred * 0.5 && big < hf * 0.2);
}

#[test]
fn gravity_picks_the_side() {
    let src = storm();
    // crop mode: exactly the source's right/left strip
    let ea = run(src, "rs:crop:400:1280,g:ea");
    assert_eq!(ea.to_rgb8(), src.crop_imm(1520, 0, 400, 1280).to_rgb8());
    let we = run(src, "rs:crop:400:1280,g:we");
    assert_eq!(we.to_rgb8(), src.crop_imm(0, 0, 400, 1280).to_rgb8());
    let sowe = run(src, "rs:crop:300:200,g:sowe");
    assert_eq!(sowe.to_rgb8(), src.crop_imm(0, 1080, 300, 200).to_rgb8());

    // fill mode: the 1:2 window of the scaled photo on that side
    let right = src.crop_imm(1280, 0, 640, 1280).resize_exact(
        160,
        320,
        image::imageops::FilterType::Triangle,
    );
    let left =
        src.crop_imm(0, 0, 640, 1280)
            .resize_exact(160, 320, image::imageops::FilterType::Triangle);
    let ea = run(src, "rs:fill:160:320,g:ea");
    let we = run(src, "rs:fill:160:320,g:we");
    assert!(mean_abs_diff(&ea, &right) < 4.0 && mean_abs_diff(&ea, &left) > 10.0);
    assert!(mean_abs_diff(&we, &left) < 4.0 && mean_abs_diff(&we, &right) > 10.0);
}

#[test]
fn face_gravity_follows_the_faces() {
    let src = storm();
    // A face on the right of whatever image the fake is shown.
    let vision = FakeVision {
        faces: vec![(0.75, 0.3, 0.05, 0.08)],
        ..FakeVision::default()
    };
    let o = opts("rs:crop:400:400,g:face");
    let out = apply(src.clone(), &o, &vision).unwrap();
    // Vision saw a downsized copy.
    let seen = vision.seen.lock().unwrap().clone();
    assert_eq!(seen, vec![(512, 341)]);
    // Face in the copy: x 384..409 (25 px), y 102..129 → centre (396.5, 115.5) in the copy,
    // (1486.9, 433.1) in the source; the window is centred there.
    let k = 512.0 / 1920.0;
    let (fx, fy) = ((384.0 + 12.5) / k, (102.0 + 13.5) / k);
    let (x, y) = (
        (fx - 200.0_f64).round() as u32,
        (fy - 200.0_f64).round() as u32,
    );
    assert_eq!(
        out.to_rgb8(),
        src.crop_imm(x, y, 400, 400).to_rgb8(),
        "window at {x},{y}"
    );

    // fill: the window slides to the right edge like g:ea
    let fill = apply(src.clone(), &opts("rs:fill:300:300,g:face"), &vision).unwrap();
    assert_eq!(fill.to_rgb8(), run(src, "rs:fill:300:300,g:ea").to_rgb8());
    assert_ne!(fill.to_rgb8(), run(src, "rs:fill:300:300").to_rgb8());

    // No faces: centre.
    let none = apply(
        src.clone(),
        &opts("rs:fill:300:300,g:face"),
        &FakeVision::default(),
    )
    .unwrap();
    assert_eq!(none.to_rgb8(), run(src, "rs:fill:300:300").to_rgb8());
}

#[test]
fn smart_gravity_uses_the_vision_answer() {
    let src = storm();
    let vision = FakeVision {
        smart: (0.0, 0.0),
        ..FakeVision::default()
    };
    let out = apply(src.clone(), &opts("rs:fill:300:300,g:sm"), &vision).unwrap();
    assert_eq!(out.to_rgb8(), run(src, "rs:fill:300:300,g:we").to_rgb8());
    assert_eq!(vision.seen.lock().unwrap().clone(), vec![(512, 341)]);
}

#[test]
fn alpha_survives_transforms() {
    let mut img = RgbaImage::from_pixel(200, 100, Rgba([200, 50, 50, 255]));
    for x in 100..200 {
        for y in 0..100 {
            img.put_pixel(x, y, Rgba([0, 0, 0, 0]));
        }
    }
    let out = apply(
        DynamicImage::ImageRgba8(img),
        &opts("w:100,br:10,sh:1"),
        &NoVision,
    )
    .unwrap();
    assert_eq!(out.dimensions(), (100, 50));
    assert!(out.color().has_alpha());
    assert_eq!(out.get_pixel(10, 25)[3], 255);
    assert_eq!(out.get_pixel(90, 25)[3], 0);
}
