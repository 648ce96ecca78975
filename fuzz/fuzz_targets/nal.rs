//! The H.264 reader that tells non-reference frames (`media/nal.rs`), which lets the
//! planner skip decoding them: skipping a frame others refer to corrupts the picture
//! until the next keyframe.
//!
//! - Any bytes: no panic.
//! - Packets built from NAL units as muxers write them (Annex B start codes, or 4, 2
//!   or 1 byte length prefixes; emulation prevention applied): a packet holding a
//!   reference slice is never called disposable.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use video_pipeline::fuzzing::h264_disposable;

#[derive(Arbitrary, Debug)]
enum Input {
    Bytes(Vec<u8>),
    Units { framing: Framing, units: Vec<Unit> },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Framing {
    AnnexB,
    Length4,
    Length2,
    Length1,
}

#[derive(Arbitrary, Debug)]
struct Unit {
    header: u8,
    payload: Vec<u8>,
    /// Annex B: `00 00 00 01` rather than `00 00 01`.
    long_start_code: bool,
}

/// A unit's bytes as they are sent: no `00 00 0x` (x <= 3) inside, never ending in 00.
fn escaped(unit: &Unit) -> Vec<u8> {
    let mut out = Vec::with_capacity(unit.payload.len() + 2);
    let mut zeros = 0;
    for &b in std::iter::once(&unit.header).chain(&unit.payload) {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    if out.last() == Some(&0) {
        out.push(0x80);
    }
    out
}

fn packet(framing: Framing, units: &[Unit]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for unit in units {
        let nal = escaped(unit);
        match framing {
            Framing::AnnexB if unit.long_start_code => out.extend([0, 0, 0, 1]),
            Framing::AnnexB => out.extend([0, 0, 1]),
            Framing::Length4 => out.extend(u32::try_from(nal.len()).ok()?.to_be_bytes()),
            Framing::Length2 => out.extend(u16::try_from(nal.len()).ok()?.to_be_bytes()),
            Framing::Length1 => out.push(u8::try_from(nal.len()).ok()?),
        }
        out.extend(nal);
    }
    Some(out)
}

/// A coded slice (non-IDR, partition A, IDR) with `nal_ref_idc` > 0.
fn reference_slice(header: u8) -> bool {
    matches!(header & 0x1F, 1 | 2 | 5) && header & 0x60 != 0
}

fuzz_target!(|input: Input| match input {
    Input::Bytes(bytes) => {
        h264_disposable(&bytes);
    }
    Input::Units { framing, units } => {
        let Some(packet) = packet(framing, &units) else {
            return;
        };
        if units.iter().any(|u| reference_slice(u.header)) {
            assert!(
                !h264_disposable(&packet),
                "a reference slice called disposable: {framing:?} {packet:02x?}"
            );
        }
    }
});
