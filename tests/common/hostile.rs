//! Media that lies or is broken on purpose, made from clips the tests generate: headers
//! claiming huge frames (a Y4M header, an H.264 sequence parameter set rewritten),
//! bytes flipped inside packet data, random bytes.

/// A Y4M stream whose header claims `width` x `height` 4:2:0 frames, followed by the
/// start of one frame (far less than such a frame holds).
pub fn y4m_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut data =
        format!("YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
    data.extend(std::iter::repeat_n(0x80, 100_000));
    data
}

/// `len` bytes of a fixed pseudo-random sequence.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// `data` with 16 bytes inverted every `every` bytes within `range`.
pub fn flip_bytes(data: &[u8], range: std::ops::Range<usize>, every: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    for start in range.step_by(every) {
        for byte in out.iter_mut().skip(start).take(16) {
            *byte = !*byte;
        }
    }
    out
}

/// An H.264 Annex B stream (Baseline or Main profile, as x264 writes them) with every
/// sequence parameter set rewritten to claim `width` x `height` (multiples of 16):
/// the slices still describe the original pictures, so decoding them goes wrong, but
/// a decoder sets itself up for the claimed size first.
pub fn h264_claiming(stream: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(stream.len());
    for nal in nal_units(stream) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        if nal.first().map(|b| b & 0x1F) == Some(7) {
            out.push(nal[0]);
            let sps = rewrite_sps_size(&unescape(&nal[1..]), width / 16, height / 16);
            out.extend(escape(&sps));
        } else {
            out.extend_from_slice(nal);
        }
    }
    out
}

/// The NAL units of an Annex B stream, without start codes.
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let mut end = starts.get(n + 1).map_or(stream.len(), |next| next - 3);
            // The zero of a four-byte start code belongs to no unit.
            while end > start && stream[end - 1] == 0 {
                end -= 1;
            }
            &stream[start..end]
        })
        .collect()
}

/// Without emulation prevention bytes (`00 00 03` → `00 00`).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &byte in data {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// With emulation prevention bytes where two zeros meet a byte up to 3.
fn escape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    let mut zeros = 0;
    for &byte in data {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// A sequence parameter set's payload with its picture size replaced (in macroblocks),
/// every other field copied bit for bit.
fn rewrite_sps_size(sps: &[u8], width_mbs: u32, height_mbs: u32) -> Vec<u8> {
    let mut read = Bits::new(sps);
    let mut write = BitWriter::default();
    let profile = read.bits(8);
    write.bits(8, profile);
    write.bits(16, read.bits(16)); // constraint flags, level
    write.ue(read.ue()); // seq_parameter_set_id
    assert!(
        ![100, 110, 122, 244, 44, 83, 86, 118, 128].contains(&profile),
        "profile {profile}: only Baseline and Main streams are rewritten"
    );
    write.ue(read.ue()); // log2_max_frame_num_minus4
    let order = read.ue();
    write.ue(order); // pic_order_cnt_type
    match order {
        0 => write.ue(read.ue()),
        1 => {
            write.bits(1, read.bits(1));
            write.se(read.se());
            write.se(read.se());
            let cycle = read.ue();
            write.ue(cycle);
            for _ in 0..cycle {
                write.se(read.se());
            }
        }
        _ => {}
    }
    write.ue(read.ue()); // max_num_ref_frames
    write.bits(1, read.bits(1)); // gaps_in_frame_num_value_allowed_flag
    read.ue();
    read.ue();
    write.ue(width_mbs - 1);
    write.ue(height_mbs - 1);
    // The rest (frame_mbs_only_flag onwards, and the trailing bits) as it was.
    while read.position < sps.len() * 8 {
        write.bits(1, read.bits(1));
    }
    write.finish()
}

struct Bits<'a> {
    data: &'a [u8],
    position: usize,
}

impl Bits<'_> {
    fn new(data: &[u8]) -> Bits<'_> {
        Bits { data, position: 0 }
    }

    fn bits(&mut self, count: u32) -> u32 {
        let mut value = 0;
        for _ in 0..count {
            let byte = self.data[self.position / 8];
            value = (value << 1) | u32::from((byte >> (7 - self.position % 8)) & 1);
            self.position += 1;
        }
        value
    }

    fn ue(&mut self) -> u32 {
        let mut zeros = 0;
        while self.bits(1) == 0 {
            zeros += 1;
        }
        (1 << zeros) - 1 + self.bits(zeros)
    }

    fn se(&mut self) -> i32 {
        let code = self.ue() as i32;
        if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -(code / 2)
        }
    }
}

#[derive(Default)]
struct BitWriter {
    bits: Vec<bool>,
}

impl BitWriter {
    fn bits(&mut self, count: u32, value: u32) {
        for i in (0..count).rev() {
            self.bits.push((value >> i) & 1 == 1);
        }
    }

    fn ue(&mut self, value: u32) {
        let coded = value + 1;
        let length = 32 - coded.leading_zeros();
        self.bits(length - 1, 0);
        self.bits(length, coded);
    }

    fn se(&mut self, value: i32) {
        let code = if value > 0 { 2 * value - 1 } else { -2 * value };
        self.ue(code as u32);
    }

    fn finish(mut self) -> Vec<u8> {
        while !self.bits.len().is_multiple_of(8) {
            self.bits.push(false);
        }
        self.bits
            .chunks(8)
            .map(|byte| {
                byte.iter()
                    .fold(0u8, |acc, &bit| (acc << 1) | u8::from(bit))
            })
            .collect()
    }
}
