//! The pipeline on real photos (the `mate-backgrounds` package) and on
//! broken input. Needs `exiftool` (`libimage-exiftool-perl`) for the
//! orientation test.

#![allow(clippy::unwrap_used)]

#[path = "common/reference.rs"]
mod reference;

use std::process::Command;

use image::codecs::gif::GifEncoder;
use image::{Delay, DynamicImage, Frame, Rgb, Rgba, RgbaImage};
use pinhole_imaging::{
    Decoded, ImagingError, Limits, Made, OutputFormat, Planned, decode, encode, fit_within,
    make_derivatives, make_on_request, resize,
};
use pinhole_media::Format;
use reference::{FloatImage, lanczos_region, psnr};

const NATURE: &str = "/usr/share/backgrounds/mate/nature";
const ABSTRACT: &str = "/usr/share/backgrounds/mate/abstract";
const LIMITS: Limits = Limits {
    max_pixels: 100_000_000,
};

fn photo(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!("{path}: {e} (install the mate-backgrounds package)");
    })
}

fn storm() -> Vec<u8> {
    photo(&format!("{NATURE}/Storm.jpg"))
}

fn full(bytes: &[u8]) -> Decoded {
    decode(bytes, &LIMITS, None).unwrap()
}

/// The chunk holding the image data of a WebP file: `VP8 ` (lossy) or
/// `VP8L` (lossless), and whether an `ALPH` chunk came before it.
fn webp_coding(bytes: &[u8]) -> (String, bool) {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WEBP");
    let mut at = 12;
    let mut alpha = false;
    while at + 8 <= bytes.len() {
        let fourcc = String::from_utf8_lossy(&bytes[at..at + 4]).into_owned();
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        match fourcc.as_str() {
            "ALPH" => alpha = true,
            "VP8 " | "VP8L" => return (fourcc, alpha),
            _ => {}
        }
        at += 8 + size + (size & 1);
    }
    panic!("no image chunk in the WebP file");
}

#[test]
fn exif_orientation_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let rotated = dir.path().join("storm-6.jpg");
    std::fs::write(&rotated, storm()).unwrap();
    let status = Command::new("exiftool")
        .args(["-q", "-n", "-Orientation=6", "-overwrite_original"])
        .arg(&rotated)
        .status()
        .expect("exiftool runs (install libimage-exiftool-perl)");
    assert!(status.success());

    let upright = full(&storm());
    let turned = full(&std::fs::read(&rotated).unwrap());
    assert_eq!(upright.image.dimensions_wh(), (1920, 1280));
    assert_eq!(turned.image.dimensions_wh(), (1280, 1920), "portrait");
    assert_eq!((turned.full_width, turned.full_height), (1280, 1920));
    // Orientation 6: the stored picture is turned a quarter clockwise.
    assert_eq!(turned.image, upright.image.rotate90());
}

trait Dimensions {
    fn dimensions_wh(&self) -> (u32, u32);
}

impl Dimensions for DynamicImage {
    fn dimensions_wh(&self) -> (u32, u32) {
        (self.width(), self.height())
    }
}

#[test]
fn scaled_decode_covers_the_wanted_edge_and_is_smaller() {
    let bytes = storm();
    let whole = full(&bytes);
    for edge in [256u32, 700, 1500] {
        let scaled = decode(&bytes, &LIMITS, Some(edge)).unwrap();
        let (w, h) = scaled.image.dimensions_wh();
        assert!(w.max(h) >= edge, "{w}x{h} for {edge}");
        assert!(w < 1920 && h < 1280, "{w}x{h} is not reduced");
        assert_eq!((scaled.full_width, scaled.full_height), (1920, 1280));
        assert!(matches!(scaled.image, DynamicImage::ImageRgb8(_)));
        // The same picture as the full decode brought to that size.
        let reference = resize(&whole.image, w, h).unwrap().to_rgb8();
        let db = psnr(&reference, &scaled.image.to_rgb8());
        assert!(db > 30.0, "{edge}: {db:.1} dB");
    }
    // Wanting more than the image has gives the full size.
    let big = decode(&bytes, &LIMITS, Some(5000)).unwrap();
    assert_eq!(big.image.dimensions_wh(), (1920, 1280));
}

#[test]
fn jpeg_decodes_at_the_smallest_covering_eighth() {
    // Storm is 1920x1280: 1/8 gives 240x160, 2/8 480x320, 5/8 1200x800.
    let bytes = storm();
    for (edge, size) in [
        (Some(200), (240, 160)),
        (Some(240), (240, 160)),
        (Some(241), (480, 320)),
        (Some(1100), (1200, 800)),
        (Some(1921), (1920, 1280)),
        (None, (1920, 1280)),
    ] {
        let decoded = decode(&bytes, &LIMITS, edge).unwrap();
        assert_eq!(decoded.image.dimensions_wh(), size, "{edge:?}");
    }
    // libjpeg rounds scaled sizes up: 801x601 at 1/8 is 101x76.
    let odd = resize(&full(&bytes).image, 801, 601).unwrap();
    let odd = encode(&odd, OutputFormat::Jpeg, 90).unwrap();
    let decoded = decode(&odd, &LIMITS, Some(100)).unwrap();
    assert_eq!(decoded.image.dimensions_wh(), (101, 76));
}

/// The `thumb_256` JPEG of the derivative set, decoded.
fn jpeg_thumbnail(bytes: &[u8]) -> image::RgbImage {
    let set = make_derivatives(bytes, &LIMITS).unwrap();
    let thumb = set
        .made
        .iter()
        .find(|m| m.name == "thumb_256" && m.format == OutputFormat::Jpeg)
        .unwrap();
    full(&thumb.bytes).image.to_rgb8()
}

#[test]
fn a_panoramas_square_thumbnail_is_decoded_from_enough_rows() {
    // 3840x240: its longest edge alone would allow 1/8 (480x30), which
    // would leave the square thumbnail 30 rows to enlarge from.
    let wide = full(&storm()).image.crop_imm(0, 520, 1920, 240);
    let wide = resize(&wide, 3840, 480).unwrap();
    let source = FloatImage::from_rgb(&wide.to_rgb8());
    let bytes = encode(&wide, OutputFormat::Jpeg, 95).unwrap();
    let got = jpeg_thumbnail(&bytes);
    let reference = lanczos_region(&source, (1680.0, 0.0, 480.0, 480.0), 256, 256);
    let db = psnr(&reference, &got);
    assert!(db > 30.0, "panorama thumbnail PSNR {db:.2} dB");
}

#[test]
fn fit_within_keeps_aspect_and_never_enlarges() {
    assert_eq!(fit_within(4000, 3000, 2048), (2048, 1536));
    assert_eq!(fit_within(3000, 4000, 2048), (1536, 2048));
    assert_eq!(fit_within(1920, 1280, 256), (256, 171));
    assert_eq!(fit_within(800, 600, 2048), (800, 600));
    assert_eq!(fit_within(2048, 10, 2048), (2048, 10));
    assert_eq!(fit_within(100_000, 10, 256), (256, 1));
    assert_eq!(fit_within(10, 100_000, 256), (1, 256));
}

#[test]
fn zero_sized_targets_are_errors() {
    let img = DynamicImage::ImageRgb8(image::RgbImage::new(4, 4));
    assert!(matches!(resize(&img, 0, 3), Err(ImagingError::Resize(_))));
}

#[test]
fn output_format_names_round_trip() {
    for f in OutputFormat::ALL {
        assert_eq!(OutputFormat::parse(f.as_str()), Some(f));
        assert_eq!(OutputFormat::parse(f.extension()), Some(f));
        assert!(f.mime().starts_with("image/"));
    }
    assert_eq!(OutputFormat::parse("JPG"), Some(OutputFormat::Jpeg));
    assert_eq!(OutputFormat::parse("AVIF"), Some(OutputFormat::Avif));
    assert_eq!(OutputFormat::parse("heic"), None);
}

#[test]
fn derivative_set_has_every_size_and_format() {
    let set = make_derivatives(&storm(), &LIMITS).unwrap();
    assert_eq!((set.width, set.height), (1920, 1280));
    assert_eq!(set.analysis.dimensions(), (640, 427));

    let expected = [
        ("thumb_256", 256, 256),
        ("w640", 640, 427),
        ("w1080", 1080, 720),
        ("w2048", 1920, 1280), // never enlarged
    ];
    let names: Vec<(&str, OutputFormat)> = set.made.iter().map(|m| (m.name, m.format)).collect();
    let mut want = Vec::new();
    for (name, _, _) in &expected[..3] {
        want.push((*name, OutputFormat::Jpeg));
        want.push((*name, OutputFormat::Webp));
    }
    assert_eq!(names, want);
    // w2048 is planned, at the size it will have, and made on request.
    assert_eq!(
        set.later,
        [OutputFormat::Jpeg, OutputFormat::Webp].map(|format| Planned {
            name: "w2048",
            format,
            width: 1920,
            height: 1280,
        })
    );
    let later: Vec<Made> = set
        .later
        .iter()
        .map(|p| {
            make_on_request(&storm(), &LIMITS, p.name, p.format)
                .unwrap()
                .expect("made on request")
        })
        .collect();
    assert!(
        make_on_request(&storm(), &LIMITS, "w1080", OutputFormat::Jpeg)
            .unwrap()
            .is_none()
    );
    assert!(
        make_on_request(&storm(), &LIMITS, "w2048", OutputFormat::Png)
            .unwrap()
            .is_none()
    );

    for made in set.made.iter().chain(&later) {
        let (_, w, h) = expected.iter().find(|(n, _, _)| *n == made.name).unwrap();
        assert_eq!((made.width, made.height), (*w, *h), "{}", made.name);
        let back = full(&made.bytes);
        assert_eq!(
            back.image.dimensions_wh(),
            (*w, *h),
            "{} decoded",
            made.name
        );
        let inspected = pinhole_media::inspect(
            &made.bytes,
            &pinhole_media::Limits {
                max_pixels: u64::MAX,
            },
        )
        .unwrap();
        assert_eq!(
            inspected.exif, None,
            "{}: metadata must be stripped",
            made.name
        );
        match made.format {
            OutputFormat::Jpeg => assert_eq!(back.format, Format::Jpeg),
            OutputFormat::Webp => {
                assert_eq!(back.format, Format::Webp);
                assert_eq!(webp_coding(&made.bytes).0, "VP8 ", "lossy WebP");
            }
            other => panic!("unexpected {other:?}"),
        }
        // A lossy photo derivative is far smaller than raw pixels.
        assert!(made.bytes.len() < (w * h * 3 / 4) as usize, "{}", made.name);
    }
}

#[test]
fn thumbnail_is_close_to_a_float_lanczos_reference() {
    let bytes = storm();
    let source = FloatImage::from_rgb(&full(&bytes).image.to_rgb8());
    let got = jpeg_thumbnail(&bytes);
    // The centre 1280x1280 square of the 1920x1280 photo.
    let reference = lanczos_region(&source, (320.0, 0.0, 1280.0, 1280.0), 256, 256);
    let db = psnr(&reference, &got);
    assert!(db > 32.0, "thumbnail PSNR {db:.2} dB");

    // The same check on the pixels before JPEG coding, through resize().
    let fitted = fit_within(1920, 1280, 256);
    let resized = resize(&full(&bytes).image, fitted.0, fitted.1).unwrap();
    let reference = reference::lanczos(&source, fitted.0, fitted.1);
    let db = psnr(&reference, &resized.to_rgb8());
    assert!(db > 40.0, "resize PSNR {db:.2} dB");
}

#[test]
fn small_images_are_never_enlarged() {
    let small = resize(&full(&storm()).image, 200, 133).unwrap();
    let bytes = encode(&small, OutputFormat::Jpeg, 90).unwrap();
    let set = make_derivatives(&bytes, &LIMITS).unwrap();
    for made in &set.made {
        let want = if made.name == "thumb_256" {
            (133, 133)
        } else {
            (200, 133)
        };
        assert_eq!((made.width, made.height), want, "{}", made.name);
        assert_eq!(full(&made.bytes).image.dimensions_wh(), want);
    }
}

/// Half opaque white, half transparent black, as a PNG.
fn half_transparent() -> Vec<u8> {
    let img = RgbaImage::from_fn(64, 64, |x, _| {
        if x < 32 {
            Rgba([255, 255, 255, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    encode(&DynamicImage::ImageRgba8(img), OutputFormat::Png, 100).unwrap()
}

#[test]
fn png_alpha_is_kept_and_premultiplied_when_resizing() {
    let decoded = full(&half_transparent());
    assert_eq!(decoded.format, Format::Png);
    let DynamicImage::ImageRgba8(_) = decoded.image else {
        panic!("alpha lost: {:?}", decoded.image.color());
    };
    let small = resize(&decoded.image, 20, 20).unwrap().to_rgba8();
    for px in small.pixels().filter(|p| p[3] > 8) {
        // Without premultiplication the transparent black bleeds in and
        // the edge turns grey.
        assert!(px[0] >= 250 && px[1] >= 250 && px[2] >= 250, "{px:?}");
    }
    assert!(small.pixels().any(|p| p[3] > 0 && p[3] < 255), "an edge");

    // A real RGBA wallpaper through the whole set: the WebP keeps alpha, the
    // JPEG shows white where the PNG is transparent.
    let set = make_derivatives(&half_transparent(), &LIMITS).unwrap();
    let webp = set
        .made
        .iter()
        .find(|m| m.format == OutputFormat::Webp)
        .unwrap();
    assert_eq!(webp_coding(&webp.bytes), ("VP8 ".to_string(), true));
    let jpeg = set
        .made
        .iter()
        .find(|m| m.name == "w640" && m.format == OutputFormat::Jpeg)
        .unwrap();
    let jpeg = full(&jpeg.bytes).image.to_rgb8();
    let Rgb(right) = *jpeg.get_pixel(60, 32);
    assert!(
        right.iter().all(|&c| c >= 245),
        "transparent over white: {right:?}"
    );

    let wallpaper = photo(&format!("{ABSTRACT}/Arc-Colors-Transparent-Wallpaper.png"));
    let set = make_derivatives(&wallpaper, &LIMITS).unwrap();
    assert_eq!((set.width, set.height), (2140, 1200));
    let planned = set
        .later
        .iter()
        .find(|p| p.name == "w2048" && p.format == OutputFormat::Webp)
        .unwrap();
    assert_eq!((planned.width, planned.height), (2048, 1148));
    let w2048 = make_on_request(&wallpaper, &LIMITS, "w2048", OutputFormat::Webp)
        .unwrap()
        .unwrap();
    assert_eq!((w2048.width, w2048.height), (2048, 1148));
    assert!(webp_coding(&w2048.bytes).1, "alpha plane kept");
}

#[test]
fn gif_gives_its_first_frame() {
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        for colour in [[200, 30, 30, 255], [30, 30, 200, 255]] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(40, 30, Rgba(colour)),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            encoder.encode_frame(frame).unwrap();
        }
    }
    let decoded = full(&bytes);
    assert_eq!(decoded.format, Format::Gif);
    assert_eq!(decoded.image.dimensions_wh(), (40, 30));
    let px = decoded.image.to_rgb8().get_pixel(20, 15).0;
    assert!(px[0] > 150 && px[2] < 80, "first (red) frame, got {px:?}");

    // GIF out: a still that decodes back to about the same colour.
    let gif = encode(&decoded.image, OutputFormat::Gif, 80).unwrap();
    let back = full(&gif).image.to_rgb8();
    assert!(back.get_pixel(5, 5).0[0] > 150);
    assert!(make_derivatives(&bytes, &LIMITS).is_ok());
}

/// A tiny xorshift, so the corruption is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_and_corrupt_jpegs_give_errors_not_panics() {
    let bytes = storm();
    // Cut in the headers: nothing to show, an error.
    for cut in [3, 20, 200, 2000] {
        let result = decode(&bytes[..cut], &LIMITS, None);
        assert!(
            matches!(result, Err(ImagingError::Decode(_))),
            "cut at {cut}: {result:?}"
        );
    }
    // Cut in the scan: libjpeg pads with grey; an image or an error, never
    // a crash.
    for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 2] {
        match decode(&bytes[..cut], &LIMITS, Some(256)) {
            Ok(d) => assert_eq!((d.full_width, d.full_height), (1920, 1280)),
            Err(e) => assert!(matches!(e, ImagingError::Decode(_)), "{e}"),
        }
        let _ = make_derivatives(&bytes[..cut], &LIMITS);
    }
    // Garbage written over the headers and the scan.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut errors = 0;
    for _ in 0..60 {
        let mut broken = bytes.clone();
        for _ in 0..8 {
            let at = 2 + (rng.next() as usize) % (broken.len() - 2);
            broken[at] = rng.next() as u8;
        }
        // Some flips land in the headers and break it.
        for scale in [None, Some(256)] {
            if decode(&broken, &LIMITS, scale).is_err() {
                errors += 1;
            }
        }
    }
    // Headers only: a frame marker and nothing else.
    let header_only = [
        0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10, 0x03,
    ];
    assert!(decode(&header_only, &LIMITS, None).is_err());
    eprintln!("{errors} of 120 corrupt decodes were errors");
}

#[test]
fn garbage_and_other_broken_files_are_errors() {
    let mut rng = Rng(42);
    let garbage: Vec<u8> = (0..10_000).map(|_| rng.next() as u8).collect();
    assert!(matches!(
        decode(&garbage, &LIMITS, None),
        Err(ImagingError::Unsupported(_))
    ));
    // JPEG magic followed by garbage.
    let mut fake = vec![0xFF, 0xD8, 0xFF, 0xE0];
    fake.extend_from_slice(&garbage);
    assert!(decode(&fake, &LIMITS, None).is_err());
    assert!(make_derivatives(&fake, &LIMITS).is_err());
    assert!(decode(&[], &LIMITS, None).is_err());

    // Truncated PNG, GIF and WebP.
    let png = half_transparent();
    assert!(decode(&png[..png.len() / 2], &LIMITS, None).is_err());
    let webp = encode(&full(&png).image, OutputFormat::Webp, 80).unwrap();
    assert!(decode(&webp[..webp.len() / 2], &LIMITS, None).is_err());
    let gif = encode(&full(&png).image, OutputFormat::Gif, 80).unwrap();
    assert!(decode(&gif[..20], &LIMITS, None).is_err());
}

#[test]
fn too_many_pixels_is_refused() {
    let limits = Limits {
        max_pixels: 1920 * 1280 - 1,
    };
    let result = decode(&storm(), &limits, Some(256));
    let Err(ImagingError::TooManyPixels {
        width,
        height,
        limit,
    }) = result
    else {
        panic!("{result:?}");
    };
    assert_eq!((width, height, limit), (1920, 1280, limits.max_pixels));
    assert!(matches!(
        make_derivatives(&half_transparent(), &Limits { max_pixels: 100 }),
        Err(ImagingError::TooManyPixels { .. })
    ));
    // At the limit it is fine.
    assert!(
        decode(
            &storm(),
            &Limits {
                max_pixels: 1920 * 1280
            },
            Some(256)
        )
        .is_ok()
    );
}

#[test]
fn decoding_memory_is_about_four_bytes_a_pixel_of_the_limit() {
    // 4500x4500 under a 20.25 MP limit: 81 MB may be allocated, what 8-bit
    // RGBA needs. 16-bit RGBA (162 MB as 16 bits) is narrowed to 8 bits as
    // it is decoded, so it fits too; one pixel more is refused.
    let png = |side: u32, sixteen: bool| {
        let img = if sixteen {
            DynamicImage::ImageRgba16(image::ImageBuffer::from_pixel(
                side,
                side,
                Rgba([1000u16, 2000, 3000, 65535]),
            ))
        } else {
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(side, side, Rgba([1, 2, 3, 255])))
        };
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let limits = Limits {
        max_pixels: 4500 * 4500,
    };
    assert!(decode(&png(4500, false), &limits, None).is_ok());
    let deep = decode(&png(4500, true), &limits, None).unwrap().image;
    let DynamicImage::ImageRgba8(deep) = deep else {
        panic!("{:?}", deep.color());
    };
    assert_eq!(deep.dimensions(), (4500, 4500));
    assert_eq!(deep.get_pixel(4499, 4499), &Rgba([3, 7, 11, 255]));
    let over = Limits {
        max_pixels: 4500 * 4500 - 1,
    };
    let refused = decode(&png(4500, true), &over, None);
    assert!(
        matches!(refused, Err(ImagingError::TooManyPixels { .. })),
        "{:?}",
        refused.err()
    );
}

#[test]
fn pngs_of_every_colour_type_decode_to_8_bit_rgb_or_rgba() {
    // One 2x1 image of each kind, written by the `png` crate: samples, the
    // palette and its alpha, and the two pixels expected.
    type Case<'a> = (
        png::ColorType,
        png::BitDepth,
        &'a [u8],
        Option<(&'a [u8], &'a [u8])>,
    );
    let png = |(color, depth, data, palette): Case<'_>| {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, 2, 1);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if let Some((plte, trns)) = palette {
            encoder.set_palette(plte);
            if !trns.is_empty() {
                encoder.set_trns(trns);
            }
        }
        encoder
            .write_header()
            .unwrap()
            .write_image_data(data)
            .unwrap();
        out
    };
    use png::{BitDepth as D, ColorType as C};
    let rgb = |a: [u8; 3], b: [u8; 3]| {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(2, 1, |x, _| {
            Rgb(if x == 0 { a } else { b })
        }))
    };
    let rgba = |a: [u8; 4], b: [u8; 4]| {
        DynamicImage::ImageRgba8(RgbaImage::from_fn(2, 1, |x, _| {
            Rgba(if x == 0 { a } else { b })
        }))
    };
    let cases: [(Case<'_>, DynamicImage); 7] = [
        (
            (C::Grayscale, D::Eight, &[7, 200], None),
            rgb([7; 3], [200; 3]),
        ),
        (
            (C::Grayscale, D::One, &[0b0100_0000], None),
            rgb([0; 3], [255; 3]),
        ),
        (
            (C::Grayscale, D::Sixteen, &[0x12, 0x34, 0xfe, 0xdc], None),
            rgb([0x12; 3], [0xfe; 3]),
        ),
        (
            (C::GrayscaleAlpha, D::Eight, &[7, 255, 200, 50], None),
            rgba([7, 7, 7, 255], [200, 200, 200, 50]),
        ),
        (
            (
                C::Indexed,
                D::Eight,
                &[1, 0],
                Some((&[1, 2, 3, 4, 5, 6], &[])),
            ),
            rgb([4, 5, 6], [1, 2, 3]),
        ),
        (
            (
                C::Indexed,
                D::Two,
                &[0b0001_0000],
                Some((&[1, 2, 3, 4, 5, 6], &[9])),
            ),
            rgba([1, 2, 3, 9], [4, 5, 6, 255]),
        ),
        (
            (
                C::Rgba,
                D::Sixteen,
                &[
                    1, 0, 2, 0, 3, 0, 255, 255, 0xab, 0, 0xcd, 0, 0xef, 0, 0x80, 0,
                ],
                None,
            ),
            rgba([1, 2, 3, 255], [0xab, 0xcd, 0xef, 0x80]),
        ),
    ];
    for (case, expected) in cases {
        let what = format!("{:?} {:?}", case.0, case.1);
        let decoded = full(&png(case)).image;
        assert_eq!(decoded.color(), expected.color(), "{what}");
        assert_eq!(decoded.as_bytes(), expected.as_bytes(), "{what}");
    }
}

#[test]
fn encodes_every_output_format() {
    let img = resize(&full(&storm()).image, 300, 200).unwrap();
    for format in OutputFormat::ALL {
        let bytes = encode(&img, format, 80).unwrap();
        let back = full(&bytes);
        assert_eq!(back.format.as_str(), format.as_str());
        assert_eq!(back.image.dimensions_wh(), (300, 200));
        let db = psnr(&img.to_rgb8(), &back.image.to_rgb8());
        let floor = match format {
            OutputFormat::Png => f64::INFINITY,
            OutputFormat::Gif => 22.0,
            _ => 30.0,
        };
        assert!(db >= floor, "{format:?}: {db:.1} dB");
    }
}
