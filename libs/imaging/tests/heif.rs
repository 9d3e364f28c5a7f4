//! HEIC and AVIF made from real camera photos by Debian's heif-enc
//! (`libheif-examples`, with x265 and libaom), decoded by ours and checked
//! against the source photo and against Debian's heif-convert, a decoder
//! built apart from ours. Needs `exiftool` for the orientation case.

#![allow(clippy::unwrap_used)]

#[path = "common/reference.rs"]
mod reference;

use std::path::Path;
use std::process::Command;

use image::{DynamicImage, GenericImageView, ImageEncoder, Rgb, RgbImage};
use pinhole_imaging::{
    Decoded, ImagingError, Limits, OutputFormat, decode, encode, make_derivatives, resize,
};
use pinhole_media::Format;
use reference::psnr;

const NATURE: &str = "/usr/share/backgrounds/mate/nature";
const LIMITS: Limits = Limits {
    max_pixels: 100_000_000,
};

fn photo(name: &str) -> Vec<u8> {
    let path = format!("{NATURE}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (install mate-backgrounds)"))
}

fn full(bytes: &[u8]) -> Decoded {
    decode(bytes, &LIMITS, None).unwrap()
}

fn run(program: &str, args: &[&std::ffi::OsStr]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (install libheif-examples)"));
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// heif-enc on `input` (a file in `dir`) with these options: the file it
/// wrote.
fn heif_enc(dir: &Path, input: &Path, format: Format, options: &[&str]) -> Vec<u8> {
    let out = dir.join(format!(
        "{}-{}.{}",
        input.file_stem().unwrap().to_string_lossy(),
        options.join("").replace(['-', ' ', '='], ""),
        format.extension()
    ));
    let mut args: Vec<&std::ffi::OsStr> = options.iter().map(|o| o.as_ref()).collect();
    if format == Format::Avif {
        args.push("-A".as_ref());
    }
    args.extend(["-o".as_ref(), out.as_os_str(), input.as_os_str()]);
    run("heif-enc", &args);
    std::fs::read(&out).unwrap()
}

/// Debian's heif-convert's decoding of a HEIF (irot and imir applied).
fn heif_convert(dir: &Path, bytes: &[u8]) -> RgbImage {
    let (input, output) = (dir.join("convert.heif"), dir.join("convert.png"));
    std::fs::write(&input, bytes).unwrap();
    run("heif-convert", &[input.as_os_str(), output.as_os_str()]);
    image::open(&output).unwrap().to_rgb8()
}

/// Storm (1920x1280) brought to 960x640 as a JPEG: heif-enc's x265 takes
/// seconds on the full photo.
fn small_storm() -> (Vec<u8>, RgbImage) {
    let img = resize(&full(&photo("Storm.jpg")).image, 960, 640).unwrap();
    let jpeg = encode(&img, OutputFormat::Jpeg, 95).unwrap();
    let decoded = full(&jpeg).image.to_rgb8();
    (jpeg, decoded)
}

/// The position of the first box of this type, at its size field.
fn find_box(bytes: &[u8], kind: &[u8; 4]) -> usize {
    bytes
        .windows(4)
        .position(|w| w == kind)
        .unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(kind)))
        - 4
}

/// The file with the first 2000 bytes of its coded image data zeroed.
fn damaged(bytes: &[u8]) -> Vec<u8> {
    let mut broken = bytes.to_vec();
    let data = find_box(bytes, b"mdat") + 8;
    broken[data..data + 2000].fill(0);
    broken
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn heic_and_avif_decode_like_the_camera_photo() {
    let dir = tempfile::tempdir().unwrap();
    let (jpeg, reference) = small_storm();
    let source = write(dir.path(), "storm.jpg", &jpeg);
    for format in [Format::Heic, Format::Avif] {
        let bytes = heif_enc(dir.path(), &source, format, &["-q", "90"]);
        let decoded = full(&bytes);
        assert_eq!(decoded.format, format);
        assert_eq!(decoded.image.dimensions(), (960, 640), "{format}");
        assert_eq!((decoded.full_width, decoded.full_height), (960, 640));
        let ours = decoded.image.to_rgb8();
        let db = psnr(&reference, &ours);
        assert!(db >= 33.0, "{format}: {db:.1} dB against the JPEG");
        let theirs = heif_convert(dir.path(), &bytes);
        let db = psnr(&theirs, &ours);
        assert!(db >= 45.0, "{format}: {db:.1} dB against heif-convert");

        // The whole derivative set, as for a JPEG.
        let made = make_derivatives(&bytes, &LIMITS).unwrap();
        assert!(!made.made.is_empty(), "{format}");
    }
}

#[test]
fn ten_bit_sources_map_to_eight_bits() {
    let dir = tempfile::tempdir().unwrap();
    let reference = full(&photo("Blinds.jpg")).image;
    let small = resize(&reference, 640, 400).unwrap();
    // A 16-bit PNG makes heif-enc write 10 bits.
    let sixteen = DynamicImage::ImageRgb16(small.to_rgb16());
    let png = dir.path().join("blinds16.png");
    sixteen.save(&png).unwrap();
    // (Debian's heif-enc trips an assertion in libaom for 10-bit 4:2:0.)
    for (format, options) in [
        (Format::Heic, &["-q", "90", "-b", "10"][..]),
        (
            Format::Avif,
            &["-q", "90", "-b", "10", "-p", "chroma=422"][..],
        ),
    ] {
        let bytes = heif_enc(dir.path(), &png, format, options);
        assert_eq!(bit_depth(&bytes), 10, "{format}");
        let decoded = full(&bytes);
        let DynamicImage::ImageRgb8(ours) = &decoded.image else {
            panic!("{format}: {:?}", decoded.image.color());
        };
        let db = psnr(&small.to_rgb8(), ours);
        assert!(db >= 33.0, "{format} 10-bit: {db:.1} dB");
    }
}

/// The bit depth heif-enc wrote, from the primary item's `pixi`.
fn bit_depth(bytes: &[u8]) -> u8 {
    bytes[find_box(bytes, b"pixi") + 13]
}

#[test]
fn orientation_is_applied_once() {
    // As a phone writes it: the pixels as the sensor saw them, an `irot`
    // that turns them upright, and an EXIF orientation in step. heif-enc
    // 1.15 copies the EXIF but writes no irot: its `pixi` property (the
    // last, 16 bytes) becomes an irot of 270 degrees anticlockwise (a
    // quarter clockwise, as EXIF orientation 6), padded to the same size.
    let dir = tempfile::tempdir().unwrap();
    let (jpeg, upright) = small_storm();
    let rotated = write(dir.path(), "storm-6.jpg", &jpeg);
    let status = Command::new("exiftool")
        .args(["-q", "-n", "-Orientation=6", "-overwrite_original"])
        .arg(&rotated)
        .status()
        .expect("exiftool runs (install libimage-exiftool-perl)");
    assert!(status.success());
    let turned = image::imageops::rotate90(&upright);
    for format in [Format::Heic, Format::Avif] {
        let mut bytes = heif_enc(dir.path(), &rotated, format, &["-q", "90"]);
        let pixi = find_box(&bytes, b"pixi");
        bytes[pixi + 4..pixi + 16].copy_from_slice(b"irot\x03\0\0\0\0\0\0\0");
        let inspected = pinhole_media::inspect(
            &bytes,
            &pinhole_media::Limits {
                max_pixels: LIMITS.max_pixels,
            },
        )
        .unwrap();
        assert_eq!(
            inspected.exif.as_ref().and_then(|e| e.orientation),
            Some(6),
            "{format}"
        );
        assert_eq!(inspected.display_size(), (640, 960), "{format}");
        let decoded = full(&bytes);
        assert_eq!(decoded.image.dimensions(), (640, 960), "{format}");
        assert_eq!((decoded.full_width, decoded.full_height), (640, 960));
        // Turned once, not twice (irot and then EXIF again).
        let ours = decoded.image.to_rgb8();
        let db = psnr(&turned, &ours);
        assert!(db >= 33.0, "{format}: {db:.1} dB against the turned JPEG");
        let theirs = heif_convert(dir.path(), &bytes);
        assert_eq!(theirs.dimensions(), (640, 960), "heif-convert");
        assert!(psnr(&theirs, &ours) >= 45.0, "{format}");
    }
}

/// A flat Display P3 orange: (200, 100, 50) in P3 is (215, 92, 31) in
/// sRGB (the P3-to-sRGB matrix of SMPTE EG 432-1, both with the sRGB curve).
const P3_ORANGE: [u8; 3] = [200, 100, 50];
const P3_ORANGE_IN_SRGB: [u8; 3] = [215, 92, 31];

fn assert_near(got: Rgb<u8>, want: [u8; 3], what: &str) {
    assert!(
        got.0.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 4),
        "{what}: {got:?}, want {want:?}"
    );
}

#[test]
fn display_p3_in_nclx_is_made_srgb() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("orange.png");
    RgbImage::from_pixel(256, 256, Rgb(P3_ORANGE))
        .save(&png)
        .unwrap();
    let bytes = heif_enc(dir.path(), &png, Format::Avif, &["-q", "95"]);
    // As written, its nclx says "unspecified" (2): the pixels stay.
    assert_near(
        *full(&bytes).image.to_rgb8().get_pixel(128, 128),
        P3_ORANGE,
        "unspecified",
    );
    // Marked Display P3: primaries 12 (P3 D65), transfer 13 (sRGB).
    let mut p3 = bytes.clone();
    let colr = find_box(&p3, b"colr");
    assert_eq!(&p3[colr + 8..colr + 12], b"nclx");
    p3[colr + 12..colr + 16].copy_from_slice(&[0, 12, 0, 13]);
    assert_near(
        *full(&p3).image.to_rgb8().get_pixel(128, 128),
        P3_ORANGE_IN_SRGB,
        "P3 nclx",
    );
}

#[test]
fn an_icc_profile_is_made_srgb() {
    // An AVIF carrying a Display P3 ICC profile, as iPhones tag their HEICs,
    // written with libheif itself (Debian's heif-enc drops PNG profiles).
    use libheif_rs::{
        Channel, ColorProfileRaw, ColorSpace, CompressionFormat, EncoderQuality, HeifContext,
        Image, LibHeif, RgbChroma, color_profile_types,
    };
    let icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let mut image = Image::new(256, 256, ColorSpace::Rgb(RgbChroma::Rgb)).unwrap();
    image
        .create_plane(Channel::Interleaved, 256, 256, 8)
        .unwrap();
    {
        let planes = image.planes_mut();
        let plane = planes.interleaved.unwrap();
        for y in 0..256 {
            for x in 0..256 {
                let at = y * plane.stride + x * 3;
                plane.data[at..at + 3].copy_from_slice(&P3_ORANGE);
            }
        }
    }
    image
        .set_color_profile_raw(&ColorProfileRaw::new(color_profile_types::PROF, icc))
        .unwrap();
    let lib = LibHeif::new();
    let mut encoder = lib.encoder_for_format(CompressionFormat::Av1).unwrap();
    encoder.set_quality(EncoderQuality::Lossy(95)).unwrap();
    let mut context = HeifContext::new().unwrap();
    context.encode_image(&image, &mut encoder, None).unwrap();
    let bytes = context.write_to_bytes().unwrap();
    assert_near(
        *full(&bytes).image.to_rgb8().get_pixel(128, 128),
        P3_ORANGE_IN_SRGB,
        "P3 ICC",
    );
}

#[test]
fn alpha_survives_avif() {
    let dir = tempfile::tempdir().unwrap();
    let mut rgba = image::RgbaImage::from_pixel(64, 48, image::Rgba([30, 120, 220, 255]));
    for x in 0..32 {
        for y in 0..48 {
            rgba.put_pixel(x, y, image::Rgba([30, 120, 220, 0]));
        }
    }
    let png = dir.path().join("half.png");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&png).unwrap());
    image::codecs::png::PngEncoder::new(&mut file)
        .write_image(rgba.as_raw(), 64, 48, image::ExtendedColorType::Rgba8)
        .unwrap();
    drop(file);
    let bytes = heif_enc(dir.path(), &png, Format::Avif, &["-q", "90"]);
    let decoded = full(&bytes);
    let DynamicImage::ImageRgba8(back) = &decoded.image else {
        panic!("{:?}", decoded.image.color());
    };
    assert!(back.get_pixel(8, 24)[3] < 16, "transparent half");
    assert!(back.get_pixel(56, 24)[3] > 240, "opaque half");
}

#[test]
fn the_primary_image_of_a_multi_image_file_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "storm.jpg", &small_storm().0);
    let blinds = resize(&full(&photo("Blinds.jpg")).image, 320, 200).unwrap();
    let second = write(
        dir.path(),
        "blinds.jpg",
        &encode(&blinds, OutputFormat::Jpeg, 90).unwrap(),
    );
    let out = dir.path().join("burst.heic");
    run(
        "heif-enc",
        &[
            "-q".as_ref(),
            "50".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            first.as_os_str(),
            second.as_os_str(),
        ],
    );
    let decoded = full(&std::fs::read(&out).unwrap());
    // heif-enc makes the first image the primary one.
    assert_eq!(decoded.image.dimensions(), (960, 640));
}

#[test]
fn damaged_files_fail_cleanly_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let source = write(dir.path(), "storm.jpg", &small_storm().0);
    for format in [Format::Heic, Format::Avif] {
        let bytes = heif_enc(dir.path(), &source, format, &["-q", "50"]);
        for cut in [bytes.len() / 2, bytes.len() - 1, 100] {
            match decode(&bytes[..cut], &LIMITS, None) {
                Err(error) => assert!(
                    error.to_string().contains("truncated"),
                    "{format} cut at {cut}: {error}"
                ),
                Ok(_) => panic!("{format} cut at {cut} decoded"),
            }
        }
        // The container whole, the coded image broken.
        match decode(&damaged(&bytes), &LIMITS, None) {
            Err(error @ ImagingError::Decode(_)) => {
                assert!(error.to_string().contains("libheif"), "{error}")
            }
            Err(other) => panic!("{format}: {other:?}"),
            Ok(_) => panic!("{format}: damaged data decoded"),
        }
    }
}

#[test]
fn avif_is_written_and_read_back() {
    let img = resize(&full(&photo("Storm.jpg")).image, 1080, 720).unwrap();
    let bytes = encode(&img, OutputFormat::Avif, 60).unwrap();
    assert_eq!(&bytes[4..12], b"ftypavif");
    let dir = tempfile::tempdir().unwrap();
    let theirs = heif_convert(dir.path(), &bytes);
    assert_eq!(theirs.dimensions(), (1080, 720));
    let db = psnr(&img.to_rgb8(), &theirs);
    assert!(db >= 32.0, "AVIF at quality 60: {db:.1} dB");
    // Smaller than a WebP of the same quality.
    let webp = encode(&img, OutputFormat::Webp, 60).unwrap();
    assert!(bytes.len() < webp.len(), "{} ≥ {}", bytes.len(), webp.len());
}
