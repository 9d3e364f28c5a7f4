//! HEIF (HEIC and AVIF): ISO-BMFF boxes. The image's size is the `ispe`
//! property of the primary item (`meta`/`pitm`, `iprp`/`ipco`+`ipma`);
//! EXIF and XMP are items (`iinf`/`infe`) whose bytes `iloc` locates.

use std::borrow::Cow;
use std::ops::Range;

use crate::read::{be_u32, be_u64, fourcc, show_fourcc};
use crate::{Format, Header, InspectError, Limits, StripError, exif};

/// More extents than any real image has (a grid of 256 tiles has 256).
const MAX_EXTENTS: usize = 65_536;

/// An XMP packet that says nothing.
const EMPTY_XMP: &[u8] = br#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"/><?xpacket end="w"?>"#;

/// The format named by an `ftyp` brand.
fn brand_format(brand: [u8; 4]) -> Option<Format> {
    match &brand {
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"hevm" | b"hevs" => {
            Some(Format::Heic)
        }
        b"avif" | b"avis" | b"avio" => Some(Format::Avif),
        _ => None,
    }
}

/// HEIC or AVIF from the major brand, else from the compatible brands (as
/// with `mif1`/`msf1` major brands).
pub(crate) fn sniff(head: &[u8]) -> Option<Format> {
    if fourcc(head, 4)? != *b"ftyp" {
        return None;
    }
    let size = be_u32(head, 0)? as usize;
    if size < 16 {
        return None;
    }
    let compatible = head.get(16..size.min(head.len()))?;
    brand_format(fourcc(head, 8)?).or_else(|| {
        compatible
            .chunks_exact(4)
            .find_map(|brand| brand_format(brand.try_into().ok()?))
    })
}

/// A box: its type and where its header, body and end are in the file.
#[derive(Clone, Copy)]
struct Bx {
    kind: [u8; 4],
    body: usize,
    end: usize,
}

impl Bx {
    fn range(&self) -> Range<usize> {
        self.body..self.end
    }
}

/// The boxes that fill `range`. One that runs past the range is `overrun`
/// (truncation at the top level, corruption inside a box).
fn boxes(
    b: &[u8],
    range: Range<usize>,
    overrun: fn() -> InspectError,
) -> Result<Vec<Bx>, InspectError> {
    let mut found = Vec::new();
    let mut pos = range.start;
    while pos < range.end {
        let within = &b[..range.end];
        let (Some(size), Some(kind)) = (be_u32(within, pos), fourcc(within, pos + 4)) else {
            return Err(overrun());
        };
        let (header, size) = match size {
            0 => (8, (range.end - pos) as u64),
            1 => (16, be_u64(within, pos + 8).ok_or_else(overrun)?),
            n => (8, u64::from(n)),
        };
        let header = if &kind == b"uuid" {
            header + 16
        } else {
            header
        };
        if size < header as u64 {
            return Err(InspectError::Corrupt(format!(
                "the {} box at offset {pos} is {size} bytes long",
                show_fourcc(kind)
            )));
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|size| pos.checked_add(size))
            .filter(|end| *end <= range.end)
            .ok_or_else(overrun)?;
        found.push(Bx {
            kind,
            body: pos + header,
            end,
        });
        pos = end;
    }
    Ok(found)
}

fn truncated() -> InspectError {
    InspectError::Truncated
}

fn nested_overrun() -> InspectError {
    InspectError::Corrupt("a box runs past its parent".into())
}

/// Reads the fields of one box body.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    end: usize,
    kind: [u8; 4],
}

impl<'a> Cursor<'a> {
    /// The body of a full box, after its version and flags.
    fn full(b: &'a [u8], bx: &Bx) -> Result<(Cursor<'a>, u8, u32), InspectError> {
        let mut c = Cursor {
            b,
            pos: bx.body,
            end: bx.end,
            kind: bx.kind,
        };
        let word = c.u32()?;
        Ok((c, (word >> 24) as u8, word & 0xFF_FFFF))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], InspectError> {
        if self.end - self.pos < n {
            return Err(InspectError::Corrupt(format!(
                "the {} box is cut short",
                show_fourcc(self.kind)
            )));
        }
        self.pos += n;
        Ok(&self.b[self.pos - n..self.pos])
    }

    fn u8(&mut self) -> Result<u8, InspectError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, InspectError> {
        self.uint(2).map(|n| n as u16)
    }

    fn u32(&mut self) -> Result<u32, InspectError> {
        self.uint(4).map(|n| n as u32)
    }

    /// A big-endian integer of `size` bytes, at most 8 (0 reads as 0).
    fn uint(&mut self, size: usize) -> Result<u64, InspectError> {
        debug_assert!(size <= 8);
        Ok(self
            .take(size)?
            .iter()
            .fold(0, |n, byte| n << 8 | u64::from(*byte)))
    }

    /// Version-dependent item ids: 16 bits, or 32 with `wide`.
    fn id(&mut self, wide: bool) -> Result<u32, InspectError> {
        if wide {
            self.u32()
        } else {
            self.u16().map(u32::from)
        }
    }

    /// A NUL-terminated string (or the rest of the box, if unterminated).
    fn cstr(&mut self) -> &'a [u8] {
        let rest = &self.b[self.pos..self.end];
        let len = memchr::memchr(0, rest).unwrap_or(rest.len());
        self.pos += (len + 1).min(rest.len());
        &rest[..len]
    }
}

struct Item<'a> {
    id: u32,
    kind: [u8; 4],
    content_type: &'a [u8],
}

struct Location {
    id: u32,
    /// 0: file offsets, 1: offsets into `idat`, 2: other items.
    method: u8,
    data_reference: u16,
    /// Offset (base offset added) and length; length 0 runs to the end.
    extents: Vec<(u64, u64)>,
}

/// What `meta` says about the items.
struct Meta<'a> {
    primary: u32,
    items: Vec<Item<'a>>,
    locations: Vec<Location>,
    properties: Vec<Bx>,
    associations: Vec<(u32, Vec<u16>)>,
    idat: Option<Range<usize>>,
}

impl Meta<'_> {
    fn read(b: &[u8]) -> Result<Meta<'_>, InspectError> {
        let top = boxes(b, 0..b.len(), truncated)?;
        let meta = top
            .iter()
            .find(|bx| &bx.kind == b"meta")
            .ok_or_else(|| InspectError::Corrupt("there is no meta box".into()))?;
        let (body, _, _) = Cursor::full(b, meta)?;
        let mut parsed = Meta {
            primary: 0,
            items: Vec::new(),
            locations: Vec::new(),
            properties: Vec::new(),
            associations: Vec::new(),
            idat: None,
        };
        let mut primary = None;
        for child in boxes(b, body.pos..meta.end, nested_overrun)? {
            match &child.kind {
                b"pitm" => {
                    let (mut c, version, _) = Cursor::full(b, &child)?;
                    primary = Some(c.id(version > 0)?);
                }
                b"iinf" => {
                    let (mut c, version, _) = Cursor::full(b, &child)?;
                    c.id(version > 0)?; // entry count
                    for infe in boxes(b, c.pos..child.end, nested_overrun)? {
                        if &infe.kind == b"infe" {
                            parsed.items.push(item(b, &infe)?);
                        }
                    }
                }
                b"iloc" => parsed.locations = locations(b, &child)?,
                b"iprp" => {
                    for part in boxes(b, child.range(), nested_overrun)? {
                        match &part.kind {
                            b"ipco" => parsed.properties = boxes(b, part.range(), nested_overrun)?,
                            b"ipma" => parsed.associations.extend(associations(b, &part)?),
                            _ => {}
                        }
                    }
                }
                b"idat" => parsed.idat = Some(child.range()),
                _ => {}
            }
        }
        parsed.primary =
            primary.ok_or_else(|| InspectError::Corrupt("there is no primary item".into()))?;
        Ok(parsed)
    }

    /// The primary item's property of this type.
    fn primary_property(&self, kind: &[u8; 4]) -> Option<&Bx> {
        self.associations
            .iter()
            .filter(|(id, _)| *id == self.primary)
            .flat_map(|(_, indexes)| indexes)
            .filter_map(|index| self.properties.get(usize::from(*index).checked_sub(1)?))
            .find(|property| &property.kind == kind)
    }

    /// The primary item's `ispe`: the size of the image as coded.
    fn primary_size(&self, b: &[u8]) -> Result<(u32, u32), InspectError> {
        let ispe = self
            .primary_property(b"ispe")
            .ok_or_else(|| InspectError::Corrupt("the primary item has no ispe".into()))?;
        let (mut c, _, _) = Cursor::full(b, ispe)?;
        let (width, height) = (c.u32()?, c.u32()?);
        if width == 0 || height == 0 {
            return Err(InspectError::Corrupt(format!(
                "the primary item is {width}x{height}"
            )));
        }
        Ok((width, height))
    }

    /// Whether the primary item's `irot` turns it a quarter (90 or 270
    /// degrees), which swaps its shown width and height.
    fn primary_quarter_turn(&self, b: &[u8]) -> bool {
        self.primary_property(b"irot")
            .and_then(|irot| b.get(irot.body))
            .is_some_and(|angle| angle & 1 == 1)
    }

    fn location(&self, id: u32) -> Option<&Location> {
        self.locations.iter().find(|l| l.id == id)
    }

    /// Where an item's bytes are in the file, extent by extent. `Ok(None)`
    /// when they are not simply in this file or its `idat`.
    fn ranges(
        &self,
        b: &[u8],
        location: &Location,
    ) -> Result<Option<Vec<Range<usize>>>, InspectError> {
        let base = match (location.method, location.data_reference) {
            (0, 0) => 0..b.len(),
            (1, 0) => self
                .idat
                .clone()
                .ok_or_else(|| InspectError::Corrupt("an item lies in a missing idat".into()))?,
            _ => return Ok(None),
        };
        let mut ranges = Vec::new();
        for &(offset, length) in &location.extents {
            let available = (base.len() as u64).checked_sub(offset);
            let length = if length == 0 { available } else { Some(length) };
            match (length, available) {
                (Some(length), Some(available)) if length <= available => {
                    let start = base.start + offset as usize;
                    ranges.push(start..start + length as usize);
                }
                // Past the end of the file: cut short. Past idat: broken.
                _ if location.method == 0 => return Err(InspectError::Truncated),
                _ => {
                    return Err(InspectError::Corrupt(format!(
                        "item {} lies outside idat",
                        location.id
                    )));
                }
            }
        }
        Ok(Some(ranges))
    }

    /// Items whose bytes are metadata: Exif, and XMP (`mime` items of type
    /// `application/rdf+xml`).
    fn metadata_items(&self) -> impl Iterator<Item = &Item<'_>> {
        self.items.iter().filter(|item| {
            &item.kind == b"Exif"
                || (&item.kind == b"mime" && item.content_type == b"application/rdf+xml")
        })
    }
}

fn item<'a>(b: &'a [u8], infe: &Bx) -> Result<Item<'a>, InspectError> {
    let (mut c, version, _) = Cursor::full(b, infe)?;
    if version >= 2 {
        let id = c.id(version > 2)?;
        c.u16()?; // protection index
        let kind: [u8; 4] = c.take(4)?.try_into().unwrap_or_default();
        c.cstr(); // name
        let content_type = if &kind == b"mime" { c.cstr() } else { &[] };
        Ok(Item {
            id,
            kind,
            content_type,
        })
    } else {
        // Versions 0 and 1 describe every item by a content type.
        let id = c.id(false)?;
        c.u16()?;
        c.cstr();
        Ok(Item {
            id,
            kind: *b"mime",
            content_type: c.cstr(),
        })
    }
}

fn locations(b: &[u8], iloc: &Bx) -> Result<Vec<Location>, InspectError> {
    let (mut c, version, _) = Cursor::full(b, iloc)?;
    if version > 2 {
        return Err(InspectError::Corrupt(format!("iloc version {version}")));
    }
    let sizes = c.u8()?;
    let (offset_size, length_size) = (usize::from(sizes >> 4), usize::from(sizes & 15));
    let sizes = c.u8()?;
    let base_offset_size = usize::from(sizes >> 4);
    let index_size = if version > 0 {
        usize::from(sizes & 15)
    } else {
        0
    };
    if [offset_size, length_size, base_offset_size, index_size]
        .iter()
        .any(|size| ![0, 4, 8].contains(size))
    {
        return Err(InspectError::Corrupt(
            "iloc uses a field size other than 0, 4 or 8".into(),
        ));
    }
    let count = c.id(version == 2)?;
    let mut locations = Vec::new();
    let mut total_extents = 0usize;
    for _ in 0..count {
        let id = c.id(version == 2)?;
        let method = if version > 0 {
            (c.u16()? & 15) as u8
        } else {
            0
        };
        let data_reference = c.u16()?;
        let base = c.uint(base_offset_size)?;
        let extent_count = c.u16()?;
        // Extents can take no bytes at all: bound the work they cause.
        total_extents += usize::from(extent_count);
        if total_extents > MAX_EXTENTS {
            return Err(InspectError::Corrupt("iloc lists too many extents".into()));
        }
        let mut extents = Vec::new();
        for _ in 0..extent_count {
            c.uint(index_size)?;
            let offset = c.uint(offset_size)?;
            let length = c.uint(length_size)?;
            let offset = base
                .checked_add(offset)
                .ok_or_else(|| InspectError::Corrupt("an iloc offset overflows".into()))?;
            extents.push((offset, length));
        }
        locations.push(Location {
            id,
            method,
            data_reference,
            extents,
        });
    }
    Ok(locations)
}

fn associations(b: &[u8], ipma: &Bx) -> Result<Vec<(u32, Vec<u16>)>, InspectError> {
    let (mut c, version, flags) = Cursor::full(b, ipma)?;
    let count = c.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let id = c.id(version > 0)?;
        let n = c.u8()?;
        let mut indexes = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            indexes.push(if flags & 1 == 1 {
                c.u16()? & 0x7FFF
            } else {
                u16::from(c.u8()? & 0x7F)
            });
        }
        entries.push((id, indexes));
    }
    Ok(entries)
}

fn concat<'a>(b: &'a [u8], ranges: &[Range<usize>]) -> Cow<'a, [u8]> {
    match ranges {
        [one] => Cow::Borrowed(&b[one.clone()]),
        many => Cow::Owned(many.iter().flat_map(|r| &b[r.clone()]).copied().collect()),
    }
}

/// The TIFF block of an Exif item: a 4-byte offset to the TIFF header, then
/// (sometimes) the JPEG `Exif\0\0` prefix.
fn exif_block(item: Cow<'_, [u8]>) -> Option<Cow<'_, [u8]>> {
    let skip = 4usize.checked_add(be_u32(&item, 0)? as usize)?;
    let tiff = item.get(skip..)?;
    let skip = skip + if tiff.starts_with(b"Exif\0\0") { 6 } else { 0 };
    match item {
        Cow::Borrowed(all) => all.get(skip..).map(Cow::Borrowed),
        Cow::Owned(mut all) => {
            all.drain(..skip);
            Some(Cow::Owned(all))
        }
    }
}

pub(crate) fn inspect<'a>(b: &'a [u8], limits: &Limits) -> Result<Header<'a>, InspectError> {
    let meta = Meta::read(b)?;
    let (width, height) = meta.primary_size(b)?;
    limits.check(width, height)?;
    // Every item's bytes must be there (a cut mdat shows here).
    let mut exif = None;
    for location in &meta.locations {
        let Some(ranges) = meta.ranges(b, location)? else {
            continue;
        };
        let is_exif = meta
            .items
            .iter()
            .any(|item| item.id == location.id && &item.kind == b"Exif");
        if is_exif && exif.is_none() {
            exif = exif_block(concat(b, &ranges));
        }
    }
    if !meta.items.iter().any(|item| item.id == meta.primary) {
        return Err(InspectError::Corrupt(
            "the primary item is not in iinf".into(),
        ));
    }
    Ok(Header {
        width,
        height,
        frames: None,
        exif,
        quarter_turn: Some(meta.primary_quarter_turn(b)),
    })
}

pub(crate) fn strip(b: &[u8], format: Format) -> Result<Vec<u8>, StripError> {
    let meta = Meta::read(b).map_err(StripError::from_walk)?;
    let mut out = b.to_vec();
    for item in meta.metadata_items() {
        let Some(location) = meta.location(item.id) else {
            continue;
        };
        let ranges = meta
            .ranges(b, location)
            .map_err(StripError::from_walk)?
            .ok_or(StripError::Unsupported(format))?;
        // Readers should find empty metadata rather than broken metadata:
        // Exif becomes offset 0 and an empty IFD, then zeros; XMP an empty
        // packet, then whitespace. Items too small for that become zeros.
        let empty_exif: Vec<u8> = [&[0u8; 4][..], exif::EMPTY_TIFF].concat();
        let (head, fill) = if &item.kind == b"Exif" {
            (&empty_exif[..], 0)
        } else {
            (EMPTY_XMP, b' ')
        };
        let total: usize = ranges.iter().map(Range::len).sum();
        let (mut head, fill) = if total < head.len() {
            (&[][..], 0)
        } else {
            (head, fill)
        };
        for range in ranges {
            let target = &mut out[range];
            let n = head.len().min(target.len());
            target[..n].copy_from_slice(&head[..n]);
            target[n..].fill(fill);
            head = &head[n..];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend(kind);
        b.extend(body);
        b
    }

    fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut b = (u32::from(version) << 24 | flags).to_be_bytes().to_vec();
        b.extend(body);
        bx(kind, &b)
    }

    #[test]
    fn sniffs_brands() {
        let ftyp = |major: &[u8; 4], compatible: &[&[u8; 4]]| {
            let mut body = major.to_vec();
            body.extend([0; 4]);
            for brand in compatible {
                body.extend(*brand);
            }
            bx(b"ftyp", &body)
        };
        assert_eq!(
            sniff(&ftyp(b"heic", &[b"mif1", b"heic"])),
            Some(Format::Heic)
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1", b"heic"])),
            Some(Format::Heic)
        );
        assert_eq!(
            sniff(&ftyp(b"avif", &[b"avif", b"mif1"])),
            Some(Format::Avif)
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"miaf", b"avif"])),
            Some(Format::Avif)
        );
        assert_eq!(sniff(&ftyp(b"avis", &[])), Some(Format::Avif));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"mif1", b"jpeg"])), None);
        assert_eq!(sniff(&ftyp(b"isom", &[b"isom", b"mp41"])), None);
        assert_eq!(sniff(b"\0\0\0\x18ftyp"), None);
    }

    /// A HEIF with a primary item (id 1, 64x48) in mdat and an Exif item
    /// (id 2) in idat.
    fn heif(exif: &[u8]) -> Vec<u8> {
        heif_turned(exif, None)
    }

    /// [`heif`], with an `irot` property of this angle on the primary item.
    fn heif_turned(exif: &[u8], irot: Option<u8>) -> Vec<u8> {
        let build = |mdat_at: u32| {
            let mut infe1 = vec![0, 1, 0, 0];
            infe1.extend(b"hvc1\0");
            let mut infe2 = vec![0, 2, 0, 0];
            infe2.extend(b"Exif\0");
            let mut iinf = vec![0, 2];
            iinf.extend(full(b"infe", 2, 0, &infe1));
            iinf.extend(full(b"infe", 2, 0, &infe2));
            let mut ispe = 64u32.to_be_bytes().to_vec();
            ispe.extend(48u32.to_be_bytes());
            let mut ipco = full(b"ispe", 0, 0, &ispe);
            let mut ipma = vec![0, 0, 0, 1, 0, 1, 1, 0x81];
            if let Some(angle) = irot {
                ipco.extend(bx(b"irot", &[angle]));
                ipma[6] = 2;
                ipma.push(0x82);
            }
            let mut iprp = bx(b"ipco", &ipco);
            iprp.extend(full(b"ipma", 0, 0, &ipma));
            // iloc v1, 4-byte offsets and lengths: item 1 in the file, item 2 in idat.
            let mut iloc = vec![0x44, 0x00, 0, 2];
            for (id, method, offset, length) in
                [(1u16, 0u16, mdat_at, 10u32), (2, 1, 0, exif.len() as u32)]
            {
                iloc.extend(id.to_be_bytes());
                iloc.extend(method.to_be_bytes());
                iloc.extend([0, 0, 0, 1]);
                iloc.extend(offset.to_be_bytes());
                iloc.extend(length.to_be_bytes());
            }
            let mut meta = full(b"pitm", 0, 0, &[0, 1]);
            meta.extend(full(b"iloc", 1, 0, &iloc));
            meta.extend(full(b"iinf", 0, 0, &iinf));
            meta.extend(bx(b"iprp", &iprp));
            meta.extend(bx(b"idat", exif));
            let mut file = bx(b"ftyp", b"heic\0\0\0\0mif1heic");
            file.extend(full(b"meta", 0, 0, &meta));
            file.extend(bx(b"mdat", &[7; 10]));
            file
        };
        let draft = build(0);
        build((draft.len() - 10) as u32)
    }

    const LIMITS: Limits = Limits {
        max_pixels: 1 << 30,
    };

    #[test]
    fn reads_ispe_and_the_exif_item() {
        let mut exif_item = vec![0, 0, 0, 6];
        exif_item.extend(b"Exif\0\0");
        exif_item.extend(exif::orientation_only(6));
        let file = heif(&exif_item);
        assert_eq!(sniff(&file), Some(Format::Heic));
        let header = inspect(&file, &LIMITS).expect("inspect");
        assert_eq!((header.width, header.height), (64, 48));
        assert_eq!(header.exif.as_deref(), Some(&exif::orientation_only(6)[..]));

        let stripped = strip(&file, Format::Heic).expect("strip");
        assert_eq!(stripped.len(), file.len());
        let header = inspect(&stripped, &LIMITS).expect("inspect");
        let block = header.exif.expect("the emptied Exif item");
        assert!(block.starts_with(exif::EMPTY_TIFF), "{block:?}");
        assert!(block[exif::EMPTY_TIFF.len()..].iter().all(|&x| x == 0));
        assert_eq!(crate::exif::parse(exif::EMPTY_TIFF.to_vec()), None);
    }

    #[test]
    fn irot_says_whether_the_image_is_turned() {
        for (irot, turned) in [
            (None, false),
            (Some(0), false),
            (Some(1), true),
            (Some(2), false),
            (Some(3), true),
        ] {
            let file = heif_turned(&[0, 0, 0, 0], irot);
            let header = inspect(&file, &LIMITS).expect("inspect");
            assert_eq!((header.width, header.height), (64, 48), "irot {irot:?}");
            assert_eq!(header.quarter_turn, Some(turned), "irot {irot:?}");
        }
    }

    #[test]
    fn a_cut_file_is_truncated() {
        let file = heif(&[0, 0, 0, 0]);
        for cut in [file.len() - 1, file.len() - 10, file.len() / 2, 30] {
            assert_eq!(
                inspect(&file[..cut], &LIMITS).err(),
                Some(InspectError::Truncated),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn the_limit_applies_to_ispe() {
        let file = heif(&[0, 0, 0, 0]);
        let limits = Limits {
            max_pixels: 64 * 48 - 1,
        };
        assert!(matches!(
            inspect(&file, &limits),
            Err(InspectError::TooManyPixels { .. })
        ));
    }
}
