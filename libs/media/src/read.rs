//! Bounds-checked integer reads; `None` when the bytes run out.

fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub(crate) fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_be_bytes)
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_be_bytes)
}

pub(crate) fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_be_bytes)
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_le_bytes)
}

pub(crate) fn le_u24(b: &[u8], at: usize) -> Option<u32> {
    array::<3>(b, at).map(|[x, y, z]| u32::from_le_bytes([x, y, z, 0]))
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_le_bytes)
}

pub(crate) fn fourcc(b: &[u8], at: usize) -> Option<[u8; 4]> {
    array(b, at)
}

/// A four-character code for messages, with odd bytes escaped.
pub(crate) fn show_fourcc(code: [u8; 4]) -> String {
    code.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end() {
        let b = [1, 2, 3, 4, 5];
        assert_eq!(be_u16(&b, 3), Some(0x0405));
        assert_eq!(be_u16(&b, 4), None);
        assert_eq!(be_u32(&b, usize::MAX), None);
        assert_eq!(le_u24(&b, 0), Some(0x030201));
        assert_eq!(le_u32(&b, 1), Some(0x05040302));
        assert_eq!(show_fourcc(*b"a\0b\n"), "a\\x00b\\n");
    }
}
