//! Just enough H.264 bitstream reading to tell frames nothing refers to
//! (`nal_ref_idc` 0 in every slice), in both length-prefixed (MP4) and start-code
//! (MPEG-TS, RTSP) packets. Anything unclear counts as referenced.

/// Whether every coded slice of the packet has `nal_ref_idc` 0.
///
/// The packet's framing is not known here, and some packets read both ways: a 4-byte
/// length of 1 or of 256..511 (`00 00 00 01`, `00 00 01 xx`) looks like a start code.
/// So the packet is read in every framing it fits, and it is disposable only if each
/// reading finds slices and none of them is a reference.
pub fn h264_disposable(packet: &[u8]) -> bool {
    let annex_b = starts_with_start_code(packet)
        .then(|| annex_b_headers(packet))
        .flatten();
    let length_prefixed = [4, 2, 1].map(|size| length_prefixed_headers(packet, size));
    let mut readings = std::iter::once(annex_b)
        .chain(length_prefixed)
        .flatten()
        .peekable();
    readings.peek().is_some() && readings.all(|headers| only_non_reference_slices(&headers))
}

fn only_non_reference_slices(headers: &[u8]) -> bool {
    let mut slices = headers.iter().filter(|h| is_slice(**h)).peekable();
    slices.peek().is_some() && slices.all(|h| h & 0x60 == 0)
}

/// Slice NAL types: non-IDR (1), data partition A (2) and IDR (5).
fn is_slice(header: u8) -> bool {
    matches!(header & 0x1F, 1 | 2 | 5)
}

fn starts_with_start_code(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}

/// NAL header bytes after each `00 00 01`.
fn annex_b_headers(data: &[u8]) -> Option<Vec<u8>> {
    let headers: Vec<u8> = data
        .windows(4)
        .filter(|w| w[0] == 0 && w[1] == 0 && w[2] == 1)
        .map(|w| w[3])
        .collect();
    (!headers.is_empty()).then_some(headers)
}

/// NAL header bytes of a packet of big-endian length-prefixed units, `size` bytes
/// each, if their lengths cover the packet exactly.
fn length_prefixed_headers(data: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut headers = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let prefix = data.get(at..at + size)?;
        let length = prefix
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        if length == 0 {
            return None;
        }
        headers.push(*data.get(at + size)?);
        at += size + length;
    }
    (at == data.len()).then_some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NAL unit with header byte `header` and a few payload bytes.
    fn nal(header: u8) -> Vec<u8> {
        vec![header, 0x88, 0x84, 0x21]
    }

    fn length_prefixed(units: &[Vec<u8>]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| {
                let mut out = (u.len() as u32).to_be_bytes().to_vec();
                out.extend(u);
                out
            })
            .collect()
    }

    fn annex_b(units: &[Vec<u8>]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| {
                let mut out = vec![0, 0, 0, 1];
                out.extend(u);
                out
            })
            .collect()
    }

    #[test]
    fn non_reference_slices_are_disposable() {
        // nal_ref_idc 0, type 1: a non-reference B or P slice.
        assert!(h264_disposable(&length_prefixed(&[nal(0x01)])));
        assert!(h264_disposable(&annex_b(&[
            nal(0x09),
            nal(0x01),
            nal(0x01)
        ])));
    }

    #[test]
    fn reference_slices_are_not() {
        assert!(!h264_disposable(&length_prefixed(&[nal(0x21)])));
        assert!(!h264_disposable(&length_prefixed(&[nal(0x65)])));
        assert!(!h264_disposable(&annex_b(&[nal(0x01), nal(0x41)])));
    }

    #[test]
    fn a_length_that_looks_like_a_start_code_is_read_both_ways() {
        // Found by fuzzing (fuzz/fuzz_targets/nal.rs): a 4-byte length of 1 reads as
        // the start code 00 00 00 01, here before a non-reference slice header, while
        // the packet's second unit is a reference slice.
        let packet = [0, 0, 0, 1, 0x01, 0, 0, 0, 4, 0x21, 0x09, 0x00, 0x80];
        assert!(!h264_disposable(&packet));
        // A first unit of 256..511 bytes: its length 00 00 01 xx reads as a start code
        // followed by the header xx (here 0x01, a non-reference slice).
        let mut reference = vec![0x41];
        reference.resize(257, 0x9a);
        let packet = length_prefixed(&[reference]);
        assert_eq!(&packet[..4], &[0, 0, 1, 1]);
        assert!(!h264_disposable(&packet));
        let mut disposable = vec![0x01];
        disposable.resize(257, 0x9a);
        assert!(h264_disposable(&length_prefixed(&[disposable])));
    }

    #[test]
    fn unclear_packets_count_as_referenced() {
        assert!(!h264_disposable(&[]));
        assert!(!h264_disposable(&[0, 0, 0, 9, 1, 2]));
        // Only an SEI, no slice.
        assert!(!h264_disposable(&length_prefixed(&[nal(0x06)])));
    }
}
