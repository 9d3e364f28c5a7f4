//! Edit operations: JSON shape, validation and pixels.
#![allow(clippy::unwrap_used)]

mod common;

use common::{FakeVision, channel_means, mean_abs_diff, small_storm, storm};
use image::{DynamicImage, GenericImageView, Rgba, RgbaImage};
use pinhole_transform::{
    EditOp, FilterName, FlipDirection, NoVision, Rect, TransformError, apply_edits, validate_edits,
};

fn ops(json: &str) -> Vec<EditOp> {
    serde_json::from_str(json).unwrap()
}

#[test]
fn json_shape() {
    let list = ops(r#"[
        {"op": "crop", "x": 1, "y": 2, "width": 30, "height": 40},
        {"op": "rotate", "degrees": -90},
        {"op": "flip", "direction": "horizontal"},
        {"op": "adjust", "brightness": 10, "gamma": 1.2},
        {"op": "filter", "name": "noir"},
        {"op": "red_eye"},
        {"op": "watermark", "image_id": "0190a5b4-7c1e-7d3a-9f00-123456789abc", "opacity": 0.3}
    ]"#);
    assert_eq!(list[1], EditOp::Rotate { degrees: -90 });
    assert_eq!(
        list[2],
        EditOp::Flip {
            direction: FlipDirection::Horizontal
        }
    );
    assert_eq!(
        list[4],
        EditOp::Filter {
            name: FilterName::Noir
        }
    );
    assert_eq!(list[5], EditOp::RedEye);
    assert!(validate_edits(&list).is_ok());
    // round trip
    let back: Vec<EditOp> = serde_json::from_str(&serde_json::to_string(&list).unwrap()).unwrap();
    assert_eq!(back, list);
    // unknown fields, ops and filter names are refused
    for bad in [
        r#"[{"op": "rotate", "degrees": 90, "extra": 1}]"#,
        r#"[{"op": "melt"}]"#,
        r#"[{"op": "filter", "name": "lomo"}]"#,
        r#"[{"op": "flip", "direction": "diagonal"}]"#,
    ] {
        assert!(serde_json::from_str::<Vec<EditOp>>(bad).is_err(), "{bad}");
    }
}

#[test]
fn validation_reports_field_paths() {
    let flip = EditOp::Flip {
        direction: FlipDirection::Vertical,
    };
    let e = validate_edits(&vec![flip.clone(); 22]).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, "operations");
    assert!(e[0].1.contains("1 to 20"), "{}", e[0].1);
    assert!(validate_edits(&vec![flip.clone(); 20]).is_ok());
    assert_eq!(validate_edits(&[]).unwrap_err()[0].0, "operations");

    let list = ops(r#"[
        {"op": "flip", "direction": "vertical"},
        {"op": "crop", "x": 0, "y": 0, "width": 0, "height": 10},
        {"op": "rotate", "degrees": 45},
        {"op": "adjust", "contrast": 150, "gamma": 0},
        {"op": "adjust"},
        {"op": "watermark", "image_id": "0190a5b4-7c1e-7d3a-9f00-123456789abc", "gravity": "face", "scale": 2},
        {"op": "watermark", "image_id": "0190a5b4-7c1e-7d3a-9f00-123456789abc", "opacity": -1}
    ]"#);
    let fields: Vec<String> = validate_edits(&list)
        .unwrap_err()
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        fields,
        [
            "operations[1].width",
            "operations[2].degrees",
            "operations[3].contrast",
            "operations[3].gamma",
            "operations[4]",
            "operations[5].scale",
            "operations[5].gravity",
            "operations[6].opacity",
            "operations[6].op",
        ]
    );
    let e = apply_edits(small_storm().clone(), &list, &NoVision, None).unwrap_err();
    assert_eq!(e.code(), "invalid-edits");
    assert!(
        e.to_string()
            .contains("operations[2].degrees: must be one of"),
        "{e}"
    );
}

#[test]
fn geometry_edits() {
    let src = small_storm();
    let list = ops(r#"[
        {"op": "crop", "x": 40, "y": 20, "width": 200, "height": 100},
        {"op": "rotate", "degrees": -90},
        {"op": "flip", "direction": "vertical"}
    ]"#);
    let out = apply_edits(src.clone(), &list, &NoVision, None).unwrap();
    assert_eq!(out.dimensions(), (100, 200));
    // crop's top-left (40,20) → after -90 (counter-clockwise) at bottom-left → after a
    // vertical flip at the top-left
    assert_eq!(out.get_pixel(0, 0), src.get_pixel(40, 20));
    assert_eq!(out.get_pixel(99, 199), src.get_pixel(239, 119));

    let outside = ops(r#"[{"op": "crop", "x": 480, "y": 0, "width": 10, "height": 10}]"#);
    assert!(matches!(
        apply_edits(src.clone(), &outside, &NoVision, None),
        Err(TransformError::CropOutside { .. })
    ));
}

#[test]
fn filters_change_tone() {
    let src = small_storm();
    let run = |name: FilterName| {
        apply_edits(src.clone(), &[EditOp::Filter { name }], &NoVision, None).unwrap()
    };
    for name in [FilterName::Mono, FilterName::Noir] {
        assert!(
            run(name)
                .to_rgb8()
                .pixels()
                .all(|p| p[0] == p[1] && p[1] == p[2]),
            "{name:?}"
        );
    }
    let [r0, _, b0] = channel_means(src);
    let [r, _, b] = channel_means(&run(FilterName::Warm));
    assert!(r / b > r0 / b0 * 1.1, "warm {r}/{b} vs {r0}/{b0}");
    let [r, _, b] = channel_means(&run(FilterName::Cool));
    assert!(r / b < r0 / b0 * 0.9, "cool {r}/{b} vs {r0}/{b0}");
    let [r, g, b] = channel_means(&run(FilterName::Sepia));
    assert!(r > g && g > b);
    for name in [FilterName::Vivid, FilterName::Fade] {
        assert!(mean_abs_diff(&run(name), src) > 3.0, "{name:?}");
    }
    let adjust = ops(r#"[{"op": "adjust", "brightness": 40}]"#);
    let out = apply_edits(src.clone(), &adjust, &NoVision, None).unwrap();
    assert!(common::mean(&common::luma(&out)) > common::mean(&common::luma(src)) + 30.0);
}

/// A 200x100 logo: transparent left half, opaque white right half.
fn logo() -> DynamicImage {
    let mut img = RgbaImage::from_pixel(200, 100, Rgba([255, 255, 255, 255]));
    for y in 0..100 {
        for x in 0..100 {
            img.put_pixel(x, y, Rgba([0, 0, 0, 0]));
        }
    }
    DynamicImage::ImageRgba8(img)
}

/// Bounding box (x0, y0, x1, y1 exclusive) of pixels that differ, and their count.
fn changed(a: &DynamicImage, b: &DynamicImage) -> ((u32, u32, u32, u32), usize) {
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let mut bbox = (u32::MAX, u32::MAX, 0, 0);
    let mut n = 0;
    for (x, y, p) in a.enumerate_pixels() {
        if p != b.get_pixel(x, y) {
            n += 1;
            bbox = (
                bbox.0.min(x),
                bbox.1.min(y),
                bbox.2.max(x + 1),
                bbox.3.max(y + 1),
            );
        }
    }
    (bbox, n)
}

#[test]
fn watermark_changes_only_the_gravity_corner() {
    let src = small_storm(); // 480x320: watermark 120x60, margin 6
    let id = "0190a5b4-7c1e-7d3a-9f00-123456789abc";
    let wm = logo();
    let default = ops(&format!(r#"[{{"op": "watermark", "image_id": "{id}"}}]"#));
    let out = apply_edits(src.clone(), &default, &NoVision, Some(&wm)).unwrap();
    assert_eq!(out.dimensions(), src.dimensions());
    let (bbox, n) = changed(&out, src);
    // only the opaque right half of the logo, in the bottom-right corner inside the margin
    // (resampling may soften the transparent/opaque edge by a pixel or two)
    assert!((410..=414).contains(&bbox.0), "{bbox:?}");
    assert_eq!((bbox.1, bbox.2, bbox.3), (254, 474, 314), "{n} changed");
    assert!(n > 60 * 60 * 9 / 10, "{n} changed");
    // half-transparent white over the photo
    let (p, s) = (out.get_pixel(440, 280), src.get_pixel(440, 280));
    for c in 0..3 {
        let want = (f32::from(s[c]) * 0.5 + 127.5).round() as u8;
        assert!(p[c].abs_diff(want) <= 1, "channel {c}: {} vs {want}", p[c]);
    }

    let top_left = ops(&format!(
        r#"[{{"op": "watermark", "image_id": "{id}", "gravity": "nowe", "opacity": 1, "scale": 0.5}}]"#
    ));
    let out = apply_edits(src.clone(), &top_left, &NoVision, Some(&wm)).unwrap();
    let (bbox, _) = changed(&out, src);
    // 240x120 logo at (6, 6); its opaque half starts at x = 126
    assert!((122..=126).contains(&bbox.0), "{bbox:?}");
    assert_eq!((bbox.1, bbox.2, bbox.3), (6, 246, 126));
    assert_eq!(out.get_pixel(200, 60), Rgba([255, 255, 255, 255]));

    assert_eq!(
        apply_edits(src.clone(), &default, &NoVision, None).unwrap_err(),
        TransformError::MissingWatermark
    );
}

#[test]
fn red_eye_gets_faces_in_full_resolution() {
    let src = storm();
    let vision = FakeVision {
        faces: vec![(0.5, 0.25, 0.1, 0.1)],
        ..FakeVision::default()
    };
    let out = apply_edits(src.clone(), &[EditOp::RedEye], &vision, None).unwrap();
    assert_eq!(out.dimensions(), (1920, 1280));
    // detection ran on the 512x341 copy; the box came back scaled to the full image
    assert_eq!(vision.seen.lock().unwrap().clone(), vec![(512, 341)]);
    let faces = vision.red_eye_faces.lock().unwrap().clone();
    assert_eq!(faces.len(), 1);
    let f = faces[0];
    // (256, 85, 51, 34) in the copy, times 1920/512
    let want = Rect {
        x: 960,
        y: 319,
        width: 191,
        height: 128,
    };
    assert_eq!(f, want);
    // the fake painted the faces; the rest is untouched
    assert_eq!(out.get_pixel(f.x + 5, f.y + 5), Rgba([0, 255, 0, 255]));
    assert_eq!(out.get_pixel(10, 10), src.get_pixel(10, 10));
    // without faces nothing changes
    let out = apply_edits(src.clone(), &[EditOp::RedEye], &NoVision, None).unwrap();
    assert_eq!(out.to_rgb8(), src.to_rgb8());
}
