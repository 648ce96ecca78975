//! Just enough H.264 bitstream reading to tell frames nothing refers to
//! (`nal_ref_idc` 0 in every slice), in both length-prefixed (MP4) and start-code
//! (MPEG-TS, RTSP) packets. Anything unclear counts as referenced.

/// Whether every coded slice of the packet has `nal_ref_idc` 0.
pub fn h264_disposable(packet: &[u8]) -> bool {
    let headers = if starts_with_start_code(packet) {
        annex_b_headers(packet)
    } else {
        length_prefixed_headers(packet)
    };
    let Some(headers) = headers else {
        return false;
    };
    let mut slices = headers.into_iter().filter(|h| is_slice(*h)).peekable();
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

/// NAL header bytes of a packet of big-endian length-prefixed units; the prefix
/// size (4, 2 or 1 bytes) is the one whose lengths cover the packet exactly.
fn length_prefixed_headers(data: &[u8]) -> Option<Vec<u8>> {
    [4usize, 2, 1].into_iter().find_map(|size| {
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
    })
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
    fn unclear_packets_count_as_referenced() {
        assert!(!h264_disposable(&[]));
        assert!(!h264_disposable(&[0, 0, 0, 9, 1, 2]));
        // Only an SEI, no slice.
        assert!(!h264_disposable(&length_prefixed(&[nal(0x06)])));
    }
}
