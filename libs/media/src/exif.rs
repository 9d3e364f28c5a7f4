//! The EXIF fields we use, from a raw TIFF block, through `kamadak-exif`.

use exif::{Exif, In, Reader, Tag, Value};

use crate::{ExifData, Gps};

/// Reads what it can; `None` when the block is unreadable or holds none of
/// the fields we use.
pub(crate) fn parse(tiff: Vec<u8>) -> Option<ExifData> {
    let mut reader = Reader::new();
    reader.continue_on_error(true);
    let exif = match reader.read_raw(tiff) {
        Ok(exif) => exif,
        // A broken entry loses that entry, not the block.
        Err(error) => error.distill_partial_result(|_| {}).ok()?,
    };
    let data = ExifData {
        orientation: uint(&exif, Tag::Orientation)
            .and_then(|o| u16::try_from(o).ok())
            .filter(|o| (1..=8).contains(o)),
        camera_make: text(&exif, Tag::Make),
        camera_model: text(&exif, Tag::Model),
        lens: lens(&exif),
        exposure_time: rational(&exif, Tag::ExposureTime, 0).and_then(exposure),
        f_number: rational(&exif, Tag::FNumber, 0)
            .filter(|f| *f > 0.0)
            .map(hundredths),
        iso: iso(&exif),
        focal_length_mm: rational(&exif, Tag::FocalLength, 0)
            .filter(|f| *f > 0.0)
            .map(hundredths),
        taken_at: taken_at(&exif),
        gps: gps(&exif),
    };
    (data != ExifData::default()).then_some(data)
}

/// A TIFF block holding only an orientation, for metadata-free copies.
pub(crate) fn orientation_only(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend(1u16.to_be_bytes()); // one entry
    tiff.extend(0x0112u16.to_be_bytes()); // Orientation
    tiff.extend(3u16.to_be_bytes()); // SHORT
    tiff.extend(1u32.to_be_bytes()); // one value
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_be_bytes()); // no next IFD
    tiff
}

/// A TIFF block with an empty IFD.
pub(crate) const EMPTY_TIFF: &[u8] = b"MM\0\x2a\0\0\0\x08\0\0\0\0\0\0";

/// The orientation worth keeping in a stripped copy (2 to 8).
pub(crate) fn orientation_to_keep(tiff: &[u8]) -> Option<u16> {
    parse(tiff.to_vec())
        .and_then(|data| data.orientation)
        .filter(|o| *o != 1)
}

fn uint(exif: &Exif, tag: Tag) -> Option<u32> {
    exif.get_field(tag, In::PRIMARY)?.value.get_uint(0)
}

fn text(exif: &Exif, tag: Tag) -> Option<String> {
    let raw: &[u8] = match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => parts.iter().find(|p| !p.is_empty())?,
        Value::Undefined(bytes, _) | Value::Byte(bytes) => bytes,
        _ => return None,
    };
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.to_owned())
}

fn rational(exif: &Exif, tag: Tag, index: usize) -> Option<f64> {
    let value = match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Rational(v) => {
            let r = v.get(index)?;
            (r.denom != 0).then(|| r.to_f64())?
        }
        Value::SRational(v) => {
            let r = v.get(index)?;
            (r.denom != 0).then(|| r.to_f64())?
        }
        other => f64::from(other.get_uint(index)?),
    };
    value.is_finite().then_some(value)
}

/// Rounded to two decimals: cameras store 10.3 mm as 673536/65536.
fn hundredths(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn lens(exif: &Exif) -> Option<String> {
    let model = text(exif, Tag::LensModel)?;
    match text(exif, Tag::LensMake) {
        Some(make) if !model.to_lowercase().contains(&make.to_lowercase()) => {
            Some(format!("{make} {model}"))
        }
        _ => Some(model),
    }
}

/// `1/250` under a quarter second (as cameras show it), else seconds.
fn exposure(seconds: f64) -> Option<String> {
    if seconds <= 0.0 {
        None
    } else if seconds < 0.25001 {
        Some(format!("1/{}", (1.0 / seconds).round()))
    } else {
        let text = format!("{seconds:.1}");
        Some(text.strip_suffix(".0").map(str::to_owned).unwrap_or(text))
    }
}

fn iso(exif: &Exif) -> Option<u32> {
    let speed = uint(exif, Tag::PhotographicSensitivity).filter(|s| *s > 0);
    match speed {
        Some(s) if s < 65535 => Some(s),
        // 65535 means "this or more": the exact value is in a LONG tag.
        _ => uint(exif, Tag::ISOSpeed)
            .or_else(|| uint(exif, Tag::RecommendedExposureIndex))
            .filter(|s| *s > 0)
            .or(speed),
    }
}

fn taken_at(exif: &Exif) -> Option<String> {
    [
        (Tag::DateTimeOriginal, Tag::OffsetTimeOriginal),
        (Tag::DateTime, Tag::OffsetTime),
    ]
    .into_iter()
    .find_map(|(time, offset)| {
        let mut stamp = date_time(&text(exif, time)?)?;
        if let Some(offset) = text(exif, offset).and_then(|o| utc_offset(&o)) {
            stamp.push_str(&offset);
        }
        Some(stamp)
    })
}

/// `2008:05:30 15:56:01` to `2008-05-30T15:56:01`.
fn date_time(text: &str) -> Option<String> {
    let t = exif::DateTime::from_ascii(text.as_bytes()).ok()?;
    let valid = (1..=9999).contains(&t.year)
        && (1..=12).contains(&t.month)
        && (1..=31).contains(&t.day)
        && t.hour <= 23
        && t.minute <= 59
        && t.second <= 60;
    valid.then(|| {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    })
}

/// `+02:00` as is, when it is a real offset.
fn utc_offset(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| d.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let valid = b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[3] == b':'
        && digits(1..3).is_some_and(|h| h <= 14)
        && digits(4..6).is_some_and(|m| m <= 59);
    valid.then(|| text.to_owned())
}

fn gps(exif: &Exif) -> Option<Gps> {
    let lat = degrees(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'N', b'S')?;
    let lon = degrees(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'E', b'W')?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return None;
    }
    let altitude_m = rational(exif, Tag::GPSAltitude, 0).map(|metres| {
        if uint(exif, Tag::GPSAltitudeRef) == Some(1) {
            -metres
        } else {
            metres
        }
    });
    Some(Gps {
        lat,
        lon,
        altitude_m,
    })
}

/// Degrees, minutes and seconds with their hemisphere, as signed degrees.
fn degrees(exif: &Exif, tag: Tag, reference: Tag, positive: u8, negative: u8) -> Option<f64> {
    let field = exif.get_field(tag, In::PRIMARY)?;
    let parts = match &field.value {
        Value::Rational(v) if !v.is_empty() => v.len().min(3),
        _ => return None,
    };
    let mut value = 0.0;
    for (index, scale) in [1.0, 60.0, 3600.0].into_iter().take(parts).enumerate() {
        value += rational(exif, tag, index)? / scale;
    }
    let sign = match text(exif, reference).map(|r| r.as_bytes()[0].to_ascii_uppercase()) {
        None => 1.0,
        Some(r) if r == positive => 1.0,
        Some(r) if r == negative => -1.0,
        Some(_) => return None,
    };
    Some(sign * value)
}

#[cfg(test)]
mod tests {
    use exif::experimental::Writer;
    use exif::{Field, Rational};

    use super::*;

    fn field(tag: Tag, value: Value) -> Field {
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value,
        }
    }

    fn ascii(s: &str) -> Value {
        Value::Ascii(vec![s.as_bytes().to_vec()])
    }

    fn rationals(values: &[(u32, u32)]) -> Value {
        Value::Rational(
            values
                .iter()
                .map(|&(num, denom)| Rational { num, denom })
                .collect(),
        )
    }

    fn tiff(fields: &[Field]) -> Vec<u8> {
        let mut writer = Writer::new();
        for f in fields {
            writer.push_field(f);
        }
        let mut out = std::io::Cursor::new(Vec::new());
        writer.write(&mut out, false).expect("write TIFF");
        out.into_inner()
    }

    #[test]
    fn reads_camera_fields() {
        let block = tiff(&[
            field(Tag::Orientation, Value::Short(vec![6])),
            field(Tag::Make, ascii("Canon")),
            field(Tag::Model, ascii("Canon EOS 400D DIGITAL ")),
            field(Tag::LensMake, ascii("Sigma")),
            field(Tag::LensModel, ascii("17-70mm F2.8-4 DC MACRO OS HSM")),
            field(Tag::ExposureTime, rationals(&[(1, 250)])),
            field(Tag::FNumber, rationals(&[(28, 10)])),
            field(Tag::PhotographicSensitivity, Value::Short(vec![800])),
            field(Tag::FocalLength, rationals(&[(50, 1)])),
            field(Tag::DateTime, ascii("2010:01:01 00:00:00")),
            field(Tag::DateTimeOriginal, ascii("2008:05:30 15:56:01")),
            field(Tag::OffsetTimeOriginal, ascii("-07:00")),
        ]);
        let data = parse(block).expect("EXIF");
        assert_eq!(
            data,
            ExifData {
                orientation: Some(6),
                camera_make: Some("Canon".into()),
                camera_model: Some("Canon EOS 400D DIGITAL".into()),
                lens: Some("Sigma 17-70mm F2.8-4 DC MACRO OS HSM".into()),
                exposure_time: Some("1/250".into()),
                f_number: Some(2.8),
                iso: Some(800),
                focal_length_mm: Some(50.0),
                taken_at: Some("2008-05-30T15:56:01-07:00".into()),
                gps: None,
            }
        );
    }

    #[test]
    fn falls_back_to_date_time_and_drops_blank_dates() {
        let block = tiff(&[
            field(Tag::DateTimeOriginal, ascii("0000:00:00 00:00:00")),
            field(Tag::DateTime, ascii("2021:12:10 08:09:10")),
            field(Tag::OffsetTimeOriginal, ascii("+02:00")),
        ]);
        let data = parse(block).expect("EXIF");
        assert_eq!(data.taken_at.as_deref(), Some("2021-12-10T08:09:10"));

        let block = tiff(&[
            field(Tag::DateTime, ascii("    :  :     :  :  ")),
            field(Tag::OffsetTime, ascii("+25:00")),
        ]);
        assert_eq!(parse(block), None);
    }

    #[test]
    fn formats_exposure_like_cameras() {
        let cases = [
            (1.0 / 8000.0, "1/8000"),
            (10.0 / 2500.0, "1/250"),
            (0.25, "1/4"),
            (1.0 / 3.0, "0.3"),
            (0.4, "0.4"),
            (2.5, "2.5"),
            (30.0, "30"),
        ];
        for (seconds, text) in cases {
            assert_eq!(exposure(seconds).as_deref(), Some(text), "{seconds}");
        }
        assert_eq!(exposure(0.0), None);
    }

    #[test]
    fn iso_reads_the_long_tag_when_the_short_one_saturates() {
        let block = tiff(&[
            field(Tag::PhotographicSensitivity, Value::Short(vec![65535])),
            field(Tag::ISOSpeed, Value::Long(vec![102400])),
        ]);
        assert_eq!(parse(block).and_then(|d| d.iso), Some(102400));
    }

    #[test]
    fn gps_is_signed_and_range_checked() {
        let position = |lat: &[(u32, u32)], lat_ref: &str, lon: &[(u32, u32)], lon_ref: &str| {
            parse(tiff(&[
                field(Tag::Make, ascii("Test")),
                field(Tag::GPSLatitudeRef, ascii(lat_ref)),
                field(Tag::GPSLatitude, rationals(lat)),
                field(Tag::GPSLongitudeRef, ascii(lon_ref)),
                field(Tag::GPSLongitude, rationals(lon)),
                field(Tag::GPSAltitudeRef, Value::Byte(vec![1])),
                field(Tag::GPSAltitude, rationals(&[(125, 10)])),
            ]))
            .expect("EXIF")
            .gps
        };
        let gps = position(
            &[(33, 1), (51, 1), (2448, 100)],
            "S",
            &[(151, 1), (12, 1), (5508, 100)],
            "E",
        )
        .expect("GPS");
        assert!((gps.lat - -33.856_8).abs() < 1e-6, "{gps:?}");
        assert!((gps.lon - 151.215_3).abs() < 1e-6, "{gps:?}");
        assert_eq!(gps.altitude_m, Some(-12.5));

        let west = position(
            &[(40, 1), (41, 1), (0, 1)],
            "N",
            &[(74, 1), (2, 1), (0, 1)],
            "W",
        )
        .expect("GPS");
        assert!(west.lat > 40.0 && west.lon < -74.0, "{west:?}");

        assert_eq!(
            position(
                &[(95, 1), (0, 1), (0, 1)],
                "N",
                &[(2, 1), (0, 1), (0, 1)],
                "E"
            ),
            None
        );
        assert_eq!(
            position(
                &[(45, 1), (0, 1), (0, 1)],
                "N",
                &[(181, 1), (0, 1), (0, 1)],
                "W"
            ),
            None
        );
        assert_eq!(
            position(
                &[(45, 0), (0, 1), (0, 1)],
                "N",
                &[(2, 1), (0, 1), (0, 1)],
                "E"
            ),
            None
        );
        assert_eq!(
            position(
                &[(45, 1), (0, 1), (0, 1)],
                "X",
                &[(2, 1), (0, 1), (0, 1)],
                "E"
            ),
            None
        );
    }

    #[test]
    fn broken_blocks_are_none() {
        assert_eq!(parse(Vec::new()), None);
        assert_eq!(parse(b"MM\0\x2a\xff\xff\xff\xff".to_vec()), None);
        assert_eq!(parse(EMPTY_TIFF.to_vec()), None);
        let mut block = tiff(&[field(Tag::Make, ascii("Canon"))]);
        block.truncate(block.len() - 4);
        assert_eq!(parse(block), None);
    }

    #[test]
    fn orientation_only_block_reads_back() {
        let data = parse(orientation_only(8)).expect("EXIF");
        assert_eq!(
            data,
            ExifData {
                orientation: Some(8),
                ..ExifData::default()
            }
        );
        assert_eq!(orientation_to_keep(&orientation_only(1)), None);
        assert_eq!(orientation_to_keep(&orientation_only(6)), Some(6));
    }
}
