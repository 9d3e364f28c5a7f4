//! Inspecting and stripping real photos: camera JPEGs from Debian's
//! `mate-backgrounds`, metadata written by exiftool
//! (`libimage-exiftool-perl`), PNG/GIF/WebP made from a photo with the
//! `image` crate, HEIC/AVIF made by heif-enc (`libheif-examples`).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail, ensure};
use image::{AnimationDecoder, DynamicImage, ImageEncoder, RgbaImage};
use pinhole_media::{
    ExifData, Format, Gps, InspectError, Inspected, Limits, StripError, inspect, sniff,
    strip_metadata,
};

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
};

const BACKGROUNDS: &str = "/usr/share/backgrounds/mate";

/// A photo from Debian's mate-backgrounds.
fn photo(name: &str) -> PathBuf {
    let path = Path::new(BACKGROUNDS).join(name);
    assert!(
        path.exists(),
        "{} is missing: install the Debian package mate-backgrounds",
        path.display()
    );
    path
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs a command-line tool, naming the Debian package when it is missing.
fn run(tool: &str, package: &str, args: &[&str]) -> Result<()> {
    let output = match Command::new(tool).args(args).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{tool} is not installed: install the Debian package {package}")
        }
        other => other.with_context(|| format!("run {tool}"))?,
    };
    ensure!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// exiftool on a file in place.
fn exiftool(path: &Path, args: &[&str]) -> Result<()> {
    let path = path.to_str().context("path")?;
    let mut all = vec!["-q", "-q", "-overwrite_original"];
    all.extend(args);
    all.push(path);
    run("exiftool", "libimage-exiftool-perl", &all)
}

/// A copy of a photo in a temporary directory, edited by exiftool.
fn edited(name: &str, args: &[&str]) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("photo.jpg");
    std::fs::copy(photo(name), &path)?;
    exiftool(&path, args)?;
    Ok(read(&path))
}

/// Paris, with the camera facing a quarter turn, an offset and a lens.
const PARIS: &[&str] = &[
    "-GPSLatitude=48.8584",
    "-GPSLatitudeRef=N",
    "-GPSLongitude=2.2945",
    "-GPSLongitudeRef=E",
    "-GPSAltitude=35",
    "-GPSAltitudeRef#=0",
    "-Orientation#=6",
    "-LensModel=EF-S18-55mm f/3.5-5.6",
    "-OffsetTimeOriginal=+02:00",
    "-XMP-dc:Creator=Jane Photographer",
    "-XMP:GPSLatitude=48.8584 N",
    "-XMP:GPSLongitude=2.2945 E",
    "-Comment=shot from the second floor",
];

/// Storm.jpg (Canon EOS 400D) with [`PARIS`].
fn storm_in_paris() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| edited("nature/Storm.jpg", PARIS).expect("edit Storm.jpg"))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn pixels(bytes: &[u8]) -> RgbaImage {
    image::load_from_memory(bytes).expect("decode").to_rgba8()
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "{actual} is not {expected}"
    );
}

#[test]
fn camera_jpegs_give_size_and_exif() -> Result<()> {
    let blinds = inspect(&read(&photo("nature/Blinds.jpg")), &LIMITS)?;
    assert_eq!(
        blinds,
        Inspected {
            format: Format::Jpeg,
            width: 1920,
            height: 1200,
            frames: None,
            exif: Some(ExifData {
                orientation: Some(1),
                camera_make: Some("Canon".into()),
                camera_model: Some("Canon EOS 350D DIGITAL".into()),
                lens: None,
                exposure_time: Some("1/80".into()),
                f_number: Some(5.6),
                iso: Some(400),
                focal_length_mm: Some(107.0),
                taken_at: Some("2008-01-22T03:28:22".into()),
                gps: None,
            }),
            quarter_turn: None,
        }
    );
    assert_eq!(blinds.display_size(), (1920, 1200));

    let storm = inspect(&read(&photo("nature/Storm.jpg")), &LIMITS)?;
    let exif = storm.exif.context("Storm.jpg EXIF")?;
    assert_eq!((storm.width, storm.height), (1920, 1280));
    assert_eq!(exif.camera_model.as_deref(), Some("Canon EOS 400D DIGITAL"));
    assert_eq!(exif.exposure_time.as_deref(), Some("0.4"));
    assert_eq!(exif.taken_at.as_deref(), Some("2008-04-20T19:12:06"));

    let wood = inspect(&read(&photo("nature/Wood.jpg")), &LIMITS)?;
    let exif = wood.exif.context("Wood.jpg EXIF")?;
    assert_eq!((wood.width, wood.height), (2560, 1920));
    assert_eq!(exif.camera_make.as_deref(), Some("KONICA MINOLTA"));
    assert_eq!(exif.camera_model.as_deref(), Some("DiMAGE Z5"));
    assert_eq!(exif.exposure_time.as_deref(), Some("1/1000"));
    assert_eq!(exif.f_number, Some(3.2));
    assert_eq!(exif.focal_length_mm, Some(10.28));
    assert_eq!(exif.iso, Some(50));
    Ok(())
}

#[test]
fn exiftool_edits_are_read() -> Result<()> {
    let inspected = inspect(storm_in_paris(), &LIMITS)?;
    let exif = inspected.exif.clone().context("EXIF")?;
    assert_eq!(exif.orientation, Some(6));
    assert_eq!(exif.lens.as_deref(), Some("EF-S18-55mm f/3.5-5.6"));
    assert_eq!(exif.taken_at.as_deref(), Some("2008-04-20T19:12:06+02:00"));
    assert_eq!(exif.f_number, Some(3.5));
    assert_eq!(exif.iso, Some(100));
    assert_eq!(exif.focal_length_mm, Some(18.0));
    let gps = exif.gps.context("GPS")?;
    assert_close(gps.lat, 48.8584);
    assert_close(gps.lon, 2.2945);
    assert_eq!(gps.altitude_m, Some(35.0));
    assert_eq!((inspected.width, inspected.height), (1920, 1280));
    assert_eq!(inspected.display_size(), (1280, 1920));

    // The JSON the images service stores.
    let json = serde_json::to_value(&inspected)?;
    assert_eq!(json["format"], "jpeg");
    assert_eq!(json["exif"]["camera_make"], "Canon");
    Ok(())
}

#[test]
fn southern_and_western_positions_are_negative() -> Result<()> {
    // Rio de Janeiro, below sea level, and no DateTimeOriginal: DateTime
    // (exiftool's ModifyDate) stands in.
    let bytes = edited(
        "nature/Wood.jpg",
        &[
            "-GPSLatitude=22.9519",
            "-GPSLatitudeRef=S",
            "-GPSLongitude=43.2105",
            "-GPSLongitudeRef=W",
            "-GPSAltitude=12.5",
            "-GPSAltitudeRef#=1",
            "-DateTimeOriginal=",
            "-ModifyDate=2009:07:01 10:00:00",
            "-Orientation#=8",
        ],
    )?;
    let inspected = inspect(&bytes, &LIMITS)?;
    let exif = inspected.exif.clone().context("EXIF")?;
    let Gps {
        lat,
        lon,
        altitude_m,
    } = exif.gps.context("GPS")?;
    assert_close(lat, -22.9519);
    assert_close(lon, -43.2105);
    assert_eq!(altitude_m, Some(-12.5));
    assert_eq!(exif.taken_at.as_deref(), Some("2009-07-01T10:00:00"));
    assert_eq!(inspected.display_size(), (1920, 2560));
    Ok(())
}

#[test]
fn out_of_range_gps_is_dropped() -> Result<()> {
    // exiftool writes what it is told; a latitude of 95 degrees is no place.
    let bytes = edited(
        "nature/Blinds.jpg",
        &[
            "-GPSLatitude=95",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=2",
            "-GPSLongitudeRef=E",
        ],
    )?;
    let exif = inspect(&bytes, &LIMITS)?.exif.context("EXIF")?;
    assert_eq!(exif.gps, None);
    assert_eq!(exif.camera_make.as_deref(), Some("Canon"));
    Ok(())
}

#[test]
fn broken_exif_does_not_fail_the_upload() -> Result<()> {
    let mut bytes = read(&photo("nature/Blinds.jpg"));
    let exif = bytes
        .windows(6)
        .position(|w| w == b"Exif\0\0")
        .context("the EXIF block")?;
    // Garble the TIFF header and the first IFD.
    bytes[exif + 6..exif + 40].fill(0xEE);
    let inspected = inspect(&bytes, &LIMITS)?;
    assert_eq!((inspected.width, inspected.height), (1920, 1200));
    assert_eq!(inspected.exif, None);
    Ok(())
}

/// An APP2 ICC_PROFILE segment holding a small (header-only) profile.
fn icc_segment() -> Vec<u8> {
    let mut profile = vec![0u8; 132];
    profile[..4].copy_from_slice(&132u32.to_be_bytes());
    profile[12..16].copy_from_slice(b"mntr");
    profile[16..20].copy_from_slice(b"RGB ");
    profile[20..24].copy_from_slice(b"XYZ ");
    profile[36..40].copy_from_slice(b"acsp");
    let mut payload = b"ICC_PROFILE\0\x01\x01".to_vec();
    payload.extend(profile);
    let mut segment = vec![0xFF, 0xE2];
    segment.extend(
        u16::try_from(payload.len() + 2)
            .expect("small")
            .to_be_bytes(),
    );
    segment.extend(payload);
    segment
}

/// The bytes with `segment` inserted after SOI and APP0.
fn with_segment(jpeg: &[u8], segment: &[u8]) -> Vec<u8> {
    let app0_end = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
    assert_eq!(&jpeg[2..4], &[0xFF, 0xE0], "APP0 after SOI");
    [&jpeg[..app0_end], segment, &jpeg[app0_end..]].concat()
}

#[test]
fn stripping_a_jpeg_keeps_pixels_icc_and_orientation() -> Result<()> {
    let icc = icc_segment();
    let original = with_segment(storm_in_paris(), &icc);
    for marker in [
        "Canon",
        "Jane Photographer",
        "48,51.504N",
        "http://ns.adobe.com/xap/1.0/",
        "second floor",
    ] {
        assert!(contains(&original, marker), "the fixture has {marker}");
    }
    let stripped = strip_metadata(&original, Format::Jpeg)?;
    for marker in [
        "Canon",
        "EOS",
        "Jane Photographer",
        "48,51",
        "ns.adobe.com",
        "second floor",
        "Exif\0\0II",
    ] {
        assert!(!contains(&stripped, marker), "{marker} survived");
    }
    let inspected = inspect(&stripped, &LIMITS)?;
    // Only the orientation survives, so the photo still shows upright.
    assert_eq!(
        inspected.exif,
        Some(ExifData {
            orientation: Some(6),
            ..ExifData::default()
        })
    );
    assert_eq!(inspected.display_size(), (1280, 1920));
    assert!(
        stripped.windows(icc.len()).any(|w| w == icc.as_slice()),
        "the ICC profile is kept"
    );
    assert!(contains(&stripped, "JFIF"), "JFIF is kept");
    assert_eq!(pixels(&stripped), pixels(&original));
    // Stripping twice changes nothing more.
    assert_eq!(strip_metadata(&stripped, Format::Jpeg)?, stripped);

    // Upright photos lose their EXIF entirely.
    let blinds = read(&photo("nature/Blinds.jpg"));
    let stripped = strip_metadata(&blinds, Format::Jpeg)?;
    assert_eq!(inspect(&stripped, &LIMITS)?.exif, None);
    assert!(!contains(&stripped, "Canon"));
    assert_eq!(pixels(&stripped), pixels(&blinds));
    Ok(())
}

#[test]
fn stripping_a_progressive_jpeg_keeps_every_scan() -> Result<()> {
    // A 16 MB progressive photo from a Sony RX100 IV.
    let original = read(&photo("abstract/Elephants_5640x3172.jpg"));
    let started = std::time::Instant::now();
    let inspected = inspect(&original, &LIMITS)?;
    let took = started.elapsed();
    assert_eq!((inspected.width, inspected.height), (5640, 3172));
    assert!(took.as_millis() < 100, "inspect took {took:?}");
    let stripped = strip_metadata(&original, Format::Jpeg)?;
    assert!(contains(&original, "DSC-RX100M4"));
    assert!(!contains(&stripped, "DSC-RX100M4"));
    assert_eq!(inspect(&stripped, &LIMITS)?.exif, None);
    assert_eq!(pixels(&stripped), pixels(&original));
    Ok(())
}

#[test]
fn data_after_the_jpeg_is_allowed_and_stripped() -> Result<()> {
    // Phones append MPF previews or a motion-photo video after EOI; here a
    // second camera JPEG (with its own EXIF) plays that part.
    let blinds = read(&photo("nature/Blinds.jpg"));
    let wood = read(&photo("nature/Wood.jpg"));
    let combined = [&blinds[..], &wood[..], &[0u8; 100][..]].concat();
    let inspected = inspect(&combined, &LIMITS)?;
    assert_eq!((inspected.width, inspected.height), (1920, 1200));
    let stripped = strip_metadata(&combined, Format::Jpeg)?;
    assert!(
        !contains(&stripped, "KONICA"),
        "the appended image is dropped"
    );
    assert!(stripped.len() < blinds.len());
    assert_eq!(pixels(&stripped), pixels(&blinds));
    assert_eq!(
        inspect(&combined[..blinds.len() / 2], &LIMITS),
        Err(InspectError::Truncated)
    );
    Ok(())
}

/// Storm.jpg scaled down, as the `image` crate decodes it.
fn small_photo() -> &'static DynamicImage {
    static IMAGE: OnceLock<DynamicImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        image::load_from_memory(&read(&photo("nature/Storm.jpg")))
            .expect("decode Storm.jpg")
            .thumbnail(480, 320)
    })
}

/// An image encoded by the `image` crate, then edited by exiftool.
fn encoded(
    extension: &str,
    encode: impl FnOnce(&mut Vec<u8>) -> image::ImageResult<()>,
    exiftool_args: &[&str],
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    encode(&mut bytes)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!("photo.{extension}"));
    std::fs::write(&path, &bytes)?;
    exiftool(&path, exiftool_args)?;
    Ok(read(&path))
}

/// Storm's camera EXIF plus a position, for fixtures in other formats.
fn camera_exif_args(storm: &str) -> Vec<String> {
    vec![
        "-tagsFromFile".into(),
        storm.into(),
        "-EXIF:all".into(),
        "-GPSLatitude=48.8584".into(),
        "-GPSLatitudeRef=N".into(),
        "-GPSLongitude=2.2945".into(),
        "-GPSLongitudeRef=E".into(),
        "-XMP-dc:Creator=Jane Photographer".into(),
    ]
}

fn png_fixture() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let storm = photo("nature/Storm.jpg");
        let mut args = camera_exif_args(storm.to_str().expect("path"));
        args.extend([
            "-PNG:Comment=shot from the second floor".into(),
            "-PNG:ModifyDate=2020:01:01 10:00:00".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let image = small_photo().to_rgb8();
        let mut png = encoded(
            "png",
            |out| {
                let mut encoder = image::codecs::png::PngEncoder::new(out);
                encoder
                    .set_icc_profile(icc_segment()[18..].to_vec())
                    .map_err(image::ImageError::Unsupported)?;
                encoder.write_image(
                    &image,
                    image.width(),
                    image.height(),
                    image::ExtendedColorType::Rgb8,
                )
            },
            &args,
        )
        .expect("PNG fixture");
        // exiftool has no zTXt switch: one is added by hand before IEND.
        let iend = png.len() - 12;
        let mut ztxt = b"zTXtAuthor\0\0".to_vec();
        ztxt.extend(compressed(b"Jane Photographer"));
        let mut chunk = u32::try_from(ztxt.len() - 4)
            .expect("small")
            .to_be_bytes()
            .to_vec();
        chunk.extend(&ztxt);
        chunk.extend(crc32fast::hash(&ztxt).to_be_bytes());
        png.splice(iend..iend, chunk);
        png
    })
}

/// A zlib stream of stored blocks (no compression needed for a fixture).
fn compressed(data: &[u8]) -> Vec<u8> {
    let mut z = vec![0x78, 0x01, 0x01];
    let len = u16::try_from(data.len()).expect("small");
    z.extend(len.to_le_bytes());
    z.extend((!len).to_le_bytes());
    z.extend(data);
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65521;
        b = (b + a) % 65521;
    }
    z.extend((b << 16 | a).to_be_bytes());
    z
}

/// The chunk types of a PNG, in order.
fn png_chunks(png: &[u8]) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut pos = 8;
    while pos + 8 <= png.len() {
        let length = u32::from_be_bytes(png[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        chunks.push(String::from_utf8_lossy(&png[pos + 4..pos + 8]).into_owned());
        pos += 12 + length;
    }
    chunks
}

#[test]
fn png_exif_text_and_stripping() -> Result<()> {
    let png = png_fixture();
    let chunks = png_chunks(png);
    for kind in ["iCCP", "eXIf", "tEXt", "iTXt", "zTXt", "tIME"] {
        assert!(
            chunks.iter().any(|c| c == kind),
            "the fixture has {kind}: {chunks:?}"
        );
    }
    let inspected = inspect(png, &LIMITS)?;
    assert_eq!(
        (inspected.format, inspected.width, inspected.height),
        (Format::Png, 480, 320)
    );
    assert_eq!(inspected.frames, Some(1));
    let exif = inspected.exif.context("EXIF")?;
    assert_eq!(exif.camera_model.as_deref(), Some("Canon EOS 400D DIGITAL"));
    assert_close(exif.gps.context("GPS")?.lon, 2.2945);

    let stripped = strip_metadata(png, Format::Png)?;
    let chunks = png_chunks(&stripped);
    assert_eq!(chunks, ["IHDR", "iCCP", "IDAT", "IEND"], "{chunks:?}");
    assert_eq!(inspect(&stripped, &LIMITS)?.exif, None);
    for marker in ["Canon", "Jane", "second floor"] {
        assert!(!contains(&stripped, marker), "{marker} survived");
    }
    assert_eq!(pixels(&stripped), pixels(png));
    Ok(())
}

#[test]
fn png_orientation_survives_stripping() -> Result<()> {
    let mut bytes = Vec::new();
    let image = small_photo().to_rgb8();
    image::codecs::png::PngEncoder::new(&mut bytes).write_image(
        &image,
        image.width(),
        image.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("photo.png");
    std::fs::write(&path, &bytes)?;
    exiftool(&path, &["-Orientation#=6", "-Make=Canon"])?;
    let stripped = strip_metadata(&read(&path), Format::Png)?;
    let inspected = inspect(&stripped, &LIMITS)?;
    assert_eq!(inspected.display_size(), (320, 480));
    assert_eq!(inspected.exif.and_then(|e| e.camera_make), None);
    assert_eq!(png_chunks(&stripped), ["IHDR", "eXIf", "IDAT", "IEND"]);
    assert_eq!(pixels(&stripped), pixels(&bytes));
    Ok(())
}

#[test]
fn a_flipped_byte_in_a_png_chunk_is_corrupt() {
    let mut png = png_fixture().to_vec();
    let idat = png.windows(4).position(|w| w == b"IDAT").expect("IDAT");
    png[idat + 100] ^= 0x55;
    assert!(matches!(
        inspect(&png, &LIMITS),
        Err(InspectError::Corrupt(_))
    ));
    assert!(matches!(
        strip_metadata(&png, Format::Png),
        Err(StripError::Corrupt(_))
    ));
}

fn webp_fixture() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let storm = photo("nature/Storm.jpg");
        let args = camera_exif_args(storm.to_str().expect("path"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let image = small_photo().to_rgb8();
        encoded(
            "webp",
            |out| {
                image::codecs::webp::WebPEncoder::new_lossless(out).write_image(
                    &image,
                    image.width(),
                    image.height(),
                    image::ExtendedColorType::Rgb8,
                )
            },
            &args,
        )
        .expect("WebP fixture")
    })
}

/// The chunk types of a WebP, and the VP8X flags.
fn webp_chunks(webp: &[u8]) -> (Vec<String>, Option<u8>) {
    let mut chunks = Vec::new();
    let mut flags = None;
    let mut pos = 12;
    while pos + 8 <= webp.len() {
        let length =
            u32::from_le_bytes(webp[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let kind = String::from_utf8_lossy(&webp[pos..pos + 4]).into_owned();
        if kind == "VP8X" {
            flags = Some(webp[pos + 8]);
        }
        chunks.push(kind);
        pos += 8 + length + (length & 1);
    }
    (chunks, flags)
}

#[test]
fn webp_exif_and_stripping() -> Result<()> {
    let webp = webp_fixture();
    let (chunks, flags) = webp_chunks(webp);
    assert_eq!(
        chunks,
        ["VP8X", "VP8L", "EXIF", "XMP "],
        "exiftool's layout"
    );
    assert_eq!(flags, Some(0x0C));
    let inspected = inspect(webp, &LIMITS)?;
    assert_eq!(
        (inspected.format, inspected.width, inspected.height),
        (Format::Webp, 480, 320)
    );
    assert_eq!(inspected.frames, Some(1));
    let exif = inspected.exif.context("EXIF")?;
    assert_eq!(exif.camera_make.as_deref(), Some("Canon"));
    assert_close(exif.gps.context("GPS")?.lat, 48.8584);

    let stripped = strip_metadata(webp, Format::Webp)?;
    assert_eq!(
        webp_chunks(&stripped),
        (vec!["VP8X".into(), "VP8L".into()], Some(0))
    );
    assert_eq!(
        u32::from_le_bytes(stripped[4..8].try_into()?) as usize,
        stripped.len() - 8
    );
    assert_eq!(inspect(&stripped, &LIMITS)?.exif, None);
    assert!(!contains(&stripped, "Canon") && !contains(&stripped, "Jane"));
    assert_eq!(pixels(&stripped), pixels(webp));
    Ok(())
}

/// Three frames cut from the photo.
fn frames() -> Vec<RgbaImage> {
    let photo = small_photo();
    (0..3)
        .map(|i| photo.crop_imm(i * 80, i * 40, 160, 120).to_rgba8())
        .collect()
}

fn gif_fixture() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        encoded(
            "gif",
            |out| {
                let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(out, 30);
                encoder.set_repeat(image::codecs::gif::Repeat::Infinite)?;
                encoder.encode_frames(frames().into_iter().map(image::Frame::new))
            },
            &[
                "-Comment=shot from the second floor",
                "-XMP-dc:Creator=Jane Photographer",
            ],
        )
        .expect("GIF fixture")
    })
}

fn decode_frames<'a>(decoder: impl AnimationDecoder<'a>) -> Vec<RgbaImage> {
    decoder
        .into_frames()
        .collect_frames()
        .expect("decode frames")
        .into_iter()
        .map(image::Frame::into_buffer)
        .collect()
}

#[test]
fn gif_frames_and_stripping() -> Result<()> {
    let gif = gif_fixture();
    for marker in ["NETSCAPE2.0", "XMP DataXMP", "second floor", "Jane"] {
        assert!(contains(gif, marker), "the fixture has {marker}");
    }
    let inspected = inspect(gif, &LIMITS)?;
    assert_eq!(
        (
            inspected.format,
            inspected.width,
            inspected.height,
            inspected.frames
        ),
        (Format::Gif, 160, 120, Some(3))
    );
    assert_eq!(inspected.exif, None);

    let stripped = strip_metadata(gif, Format::Gif)?;
    assert!(contains(&stripped, "NETSCAPE2.0"), "looping is kept");
    for marker in ["XMP DataXMP", "second floor", "Jane"] {
        assert!(!contains(&stripped, marker), "{marker} survived");
    }
    assert_eq!(inspect(&stripped, &LIMITS)?.frames, Some(3));
    let decode = |bytes: &[u8]| {
        decode_frames(
            image::codecs::gif::GifDecoder::new(Cursor::new(bytes.to_vec())).expect("GIF"),
        )
    };
    let before = decode(gif);
    assert_eq!(before.len(), 3);
    assert_eq!(decode(&stripped), before);
    Ok(())
}

/// An animated WebP: lossless frames from the `image` crate in ANMF chunks,
/// with EXIF and XMP chunks after them.
fn animated_webp() -> Result<Vec<u8>> {
    let frames = frames();
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut c = kind.to_vec();
        c.extend(u32::try_from(data.len()).expect("small").to_le_bytes());
        c.extend(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let u24 = |n: u32| n.to_le_bytes()[..3].to_vec();
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02 | 0x08 | 0x04, 0, 0, 0];
    vp8x.extend(u24(159));
    vp8x.extend(u24(119));
    body.extend(chunk(b"VP8X", &vp8x));
    body.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for frame in &frames {
        let mut still = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut still).write_image(
            frame,
            frame.width(),
            frame.height(),
            image::ExtendedColorType::Rgba8,
        )?;
        ensure!(&still[12..16] == b"VP8L", "a simple lossless WebP");
        let mut anmf = [u24(0), u24(0), u24(159), u24(119), u24(100)].concat();
        anmf.push(0x02); // no blending
        anmf.extend(&still[12..]);
        body.extend(chunk(b"ANMF", &anmf));
    }
    body.extend(chunk(b"EXIF", &read_exif_block()?));
    body.extend(chunk(
        b"XMP ",
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>Jane</x:xmpmeta>",
    ));
    let mut webp = b"RIFF".to_vec();
    webp.extend(u32::try_from(body.len())?.to_le_bytes());
    webp.extend(body);
    Ok(webp)
}

/// The TIFF block of Storm.jpg.
fn read_exif_block() -> Result<Vec<u8>> {
    let storm = read(&photo("nature/Storm.jpg"));
    let at = storm
        .windows(6)
        .position(|w| w == b"Exif\0\0")
        .context("EXIF")?;
    let length = usize::from(u16::from_be_bytes([storm[at - 2], storm[at - 1]]));
    Ok(storm[at + 6..at - 2 + length].to_vec())
}

#[test]
fn animated_webp_frames_and_stripping() -> Result<()> {
    let webp = animated_webp()?;
    let inspected = inspect(&webp, &LIMITS)?;
    assert_eq!(
        (
            inspected.format,
            inspected.width,
            inspected.height,
            inspected.frames
        ),
        (Format::Webp, 160, 120, Some(3))
    );
    assert_eq!(
        inspected.exif.and_then(|e| e.camera_model).as_deref(),
        Some("Canon EOS 400D DIGITAL")
    );
    let stripped = strip_metadata(&webp, Format::Webp)?;
    let (chunks, flags) = webp_chunks(&stripped);
    assert_eq!(chunks, ["VP8X", "ANIM", "ANMF", "ANMF", "ANMF"]);
    assert_eq!(flags, Some(0x02));
    let decode = |bytes: &[u8]| {
        decode_frames(
            image::codecs::webp::WebPDecoder::new(Cursor::new(bytes.to_vec())).expect("WebP"),
        )
    };
    let before = decode(&webp);
    assert_eq!(before, frames());
    assert_eq!(decode(&stripped), before);
    Ok(())
}

/// A HEIC or AVIF made by heif-enc from the small photo, carrying Storm's
/// EXIF with a position and XMP.
fn heif_fixture(format: Format) -> &'static [u8] {
    static HEIC: OnceLock<Vec<u8>> = OnceLock::new();
    static AVIF: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if format == Format::Heic { &HEIC } else { &AVIF };
    cell.get_or_init(|| make_heif(format).expect("HEIF fixture"))
}

fn make_heif(format: Format) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let jpeg = dir.path().join("small.jpg");
    small_photo().to_rgb8().save(&jpeg)?;
    let storm = photo("nature/Storm.jpg");
    let args = camera_exif_args(storm.to_str().context("path")?);
    exiftool(&jpeg, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let out = dir.path().join(format!("photo.{}", format.extension()));
    let (jpeg, out_str) = (
        jpeg.to_str().context("path")?,
        out.to_str().context("path")?,
    );
    let mut args = vec!["-q", "50", "-o", out_str, jpeg];
    if format == Format::Avif {
        args.insert(0, "-A");
    }
    run("heif-enc", "libheif-examples", &args)?;
    Ok(read(&out))
}

/// Decodes a HEIF with heif-convert, to compare pixels.
fn heif_pixels(bytes: &[u8]) -> Result<RgbaImage> {
    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.heif"), dir.path().join("out.png"));
    std::fs::write(&input, bytes)?;
    run(
        "heif-convert",
        "libheif-examples",
        &[
            input.to_str().context("path")?,
            output.to_str().context("path")?,
        ],
    )?;
    Ok(image::open(&output)?.to_rgba8())
}

#[test]
fn heic_and_avif_from_heif_enc() -> Result<()> {
    for format in [Format::Heic, Format::Avif] {
        let bytes = heif_fixture(format);
        assert_eq!(sniff(&bytes[..32]), Some(format));
        let inspected = inspect(bytes, &LIMITS)?;
        assert_eq!(
            (inspected.format, inspected.width, inspected.height),
            (format, 480, 320)
        );
        assert_eq!(inspected.frames, None);
        let exif = inspected.exif.with_context(|| format!("{format} EXIF"))?;
        assert_eq!(exif.camera_model.as_deref(), Some("Canon EOS 400D DIGITAL"));
        assert_eq!(exif.taken_at.as_deref(), Some("2008-04-20T19:12:06"));
        assert_close(exif.gps.context("GPS")?.lat, 48.8584);
        assert!(contains(bytes, "Jane Photographer"), "heif-enc copies XMP");

        let stripped = strip_metadata(bytes, format)?;
        assert_eq!(stripped.len(), bytes.len());
        assert_eq!(inspect(&stripped, &LIMITS)?.exif, None);
        for marker in ["Canon", "Jane", "ns.adobe.com/exif"] {
            assert!(
                !contains(&stripped, marker),
                "{marker} survived in {format}"
            );
        }
        assert_eq!(
            heif_pixels(&stripped)?,
            heif_pixels(bytes)?,
            "{format} pixels"
        );
        // Nothing left to strip: the same bytes back.
        assert_eq!(strip_metadata(&stripped, format)?, stripped);
    }
    Ok(())
}

#[test]
fn truncated_files_are_truncated() -> Result<()> {
    let storm = read(&photo("nature/Storm.jpg"));
    let cases: [(&str, &[u8]); 7] = [
        ("jpeg", &storm),
        ("png", png_fixture()),
        ("gif", gif_fixture()),
        ("webp", webp_fixture()),
        ("animated webp", &animated_webp()?),
        ("heic", heif_fixture(Format::Heic)),
        ("avif", heif_fixture(Format::Avif)),
    ];
    for (name, bytes) in cases {
        inspect(bytes, &LIMITS).with_context(|| format!("the whole {name}"))?;
        for cut in [bytes.len() / 2, bytes.len() - 1, bytes.len() / 10] {
            assert_eq!(
                inspect(&bytes[..cut], &LIMITS),
                Err(InspectError::Truncated),
                "{name} cut at {cut} of {}",
                bytes.len()
            );
        }
    }
    // A JPEG cut right after its last scan's data, before EOI.
    assert_eq!(
        inspect(&storm[..storm.len() - 2], &LIMITS),
        Err(InspectError::Truncated)
    );
    Ok(())
}

#[test]
fn other_files_are_unsupported() {
    let cases: [&[u8]; 6] = [
        b"",
        b"just some text\n",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0",
        b"\0\0\0\x18ftypisom\0\0\0\0isommp41",
        b"\xFF\xD8",
    ];
    for bytes in cases {
        assert_eq!(sniff(bytes), None);
        assert_eq!(
            inspect(bytes, &LIMITS),
            Err(InspectError::Unsupported),
            "{bytes:?}"
        );
        assert!(matches!(
            strip_metadata(bytes, Format::Jpeg),
            Err(StripError::Corrupt(_))
        ));
    }
    assert!(matches!(
        strip_metadata(png_fixture(), Format::Jpeg),
        Err(StripError::Corrupt(_))
    ));
}

fn too_many(width: u32, height: u32) -> InspectError {
    InspectError::TooManyPixels {
        width,
        height,
        limit: LIMITS.max_pixels,
    }
}

/// The offset of the primary image's SOF0 marker: the last one, since the
/// EXIF thumbnail has its own and entropy-coded data cannot hold one.
fn main_frame_header(jpeg: &[u8]) -> Result<usize> {
    jpeg.windows(2)
        .rposition(|w| w == [0xFF, 0xC0])
        .context("SOF0")
}

/// Overwrites big-endian or little-endian fields in a copy.
fn patched(bytes: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut copy = bytes.to_vec();
    copy[at..at + with.len()].copy_from_slice(with);
    copy
}

#[test]
fn huge_headers_are_refused_before_anything_else() -> Result<()> {
    // PNG: a valid IHDR claiming 100000x100000, and nothing after it.
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
    png.extend(&ihdr);
    png.extend(crc32fast::hash(&ihdr).to_be_bytes());
    assert_eq!(inspect(&png, &LIMITS), Err(too_many(100_000, 100_000)));

    // JPEG: the frame header of a real photo says 65535x65535.
    let storm = read(&photo("nature/Storm.jpg"));
    let sof = main_frame_header(&storm)?;
    let jpeg = patched(&storm, sof + 5, &[0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(inspect(&jpeg, &LIMITS), Err(too_many(65535, 65535)));

    // GIF: the logical screen.
    let gif = patched(gif_fixture(), 6, &[0xFF, 0xFF, 0xFF, 0xFF]);
    assert_eq!(inspect(&gif, &LIMITS), Err(too_many(65535, 65535)));

    // WebP: the VP8X canvas, 100000x100000.
    let webp = webp_fixture();
    let size = (100_000u32 - 1).to_le_bytes();
    let webp = patched(
        webp,
        24,
        &[size[0], size[1], size[2], size[0], size[1], size[2]],
    );
    assert_eq!(inspect(&webp, &LIMITS), Err(too_many(100_000, 100_000)));

    // HEIC and AVIF: the primary item's ispe.
    for format in [Format::Heic, Format::Avif] {
        let bytes = heif_fixture(format);
        let ispe = bytes
            .windows(4)
            .position(|w| w == b"ispe")
            .context("ispe")?;
        let size = [100_000u32.to_be_bytes(), 100_000u32.to_be_bytes()].concat();
        let huge = patched(bytes, ispe + 8, &size);
        assert_eq!(
            inspect(&huge, &LIMITS),
            Err(too_many(100_000, 100_000)),
            "{format}"
        );
    }
    Ok(())
}

#[test]
fn zero_sizes_are_corrupt() -> Result<()> {
    let storm = read(&photo("nature/Storm.jpg"));
    let sof = main_frame_header(&storm)?;
    let jpeg = patched(&storm, sof + 5, &[0, 0]);
    match inspect(&jpeg, &LIMITS) {
        Err(InspectError::Corrupt(why)) => assert!(why.contains("1920x0"), "{why}"),
        other => bail!("expected Corrupt, got {other:?}"),
    }
    Ok(())
}

#[test]
fn damaged_files_never_panic() -> Result<()> {
    let storm = read(&photo("nature/Storm.jpg"));
    let fixtures: [(Format, &[u8]); 7] = [
        (Format::Jpeg, storm_in_paris()),
        (Format::Jpeg, &storm),
        (Format::Png, png_fixture()),
        (Format::Gif, gif_fixture()),
        (Format::Webp, &animated_webp()?),
        (Format::Heic, heif_fixture(Format::Heic)),
        (Format::Avif, heif_fixture(Format::Avif)),
    ];
    // xorshift: the same "random" damage on every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (format, bytes) in fixtures {
        for round in 0..400 {
            let mut damaged = bytes.to_vec();
            // Mostly in the headers, where the structure is.
            let span = if round % 4 == 0 {
                damaged.len()
            } else {
                damaged.len().min(4096)
            };
            for _ in 0..1 + next() % 4 {
                let at = (next() % span as u64) as usize;
                damaged[at] = next() as u8;
            }
            if round % 3 == 0 {
                damaged.truncate((next() % damaged.len() as u64) as usize);
            }
            // Any answer will do, as long as it is an answer.
            let _ = inspect(&damaged, &LIMITS);
            let _ = strip_metadata(&damaged, format);
        }
    }
    Ok(())
}
