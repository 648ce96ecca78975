//! An MPEG-TS generator for sources that must never decode: valid tables, a declared
//! H.264 stream, and access units of random bytes.

use std::time::Duration;

pub const TS_PACKET: usize = 188;
const VIDEO_PID: u16 = 0x100;
const PMT_PID: u16 = 0x1000;
const NULL_PID: u16 = 0x1FFF;
/// 90 kHz ticks per frame at 25 fps.
const PTS_STEP: u64 = 3600;
/// The time between frames that those timestamps stand for.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(40);

/// Makes MPEG-TS packets: tables now and then, and per frame one PES packet whose
/// H.264 payload is an access unit delimiter and an IDR slice of random bytes.
#[derive(Default)]
pub struct GarbageMuxer {
    continuity: [u8; 3],
    random: u64,
}

impl GarbageMuxer {
    pub fn frame(&mut self, index: u64) -> Vec<u8> {
        let mut out = Vec::new();
        if index.is_multiple_of(25) {
            let pat = section(
                0x00,
                &[0x00, 0x01, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8],
            );
            out.extend(self.packet(0, 0, &pat));
            let pmt = section(
                0x02,
                &[
                    0xE0 | (VIDEO_PID >> 8) as u8,
                    VIDEO_PID as u8,
                    0xF0,
                    0x00,
                    0x1B, // H.264
                    0xE0 | (VIDEO_PID >> 8) as u8,
                    VIDEO_PID as u8,
                    0xF0,
                    0x00,
                ],
            );
            out.extend(self.packet(PMT_PID, 1, &pmt));
        }
        let pts = index * PTS_STEP;
        let mut pes = vec![0x00, 0x00, 0x01, 0xE0, 0x00, 0x00, 0x80, 0x80, 0x05];
        pes.extend([
            0x21 | ((pts >> 29) & 0x0E) as u8,
            (pts >> 22) as u8,
            0x01 | ((pts >> 14) & 0xFE) as u8,
            (pts >> 7) as u8,
            0x01 | ((pts << 1) & 0xFE) as u8,
        ]);
        pes.extend([0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x65]);
        while pes.len() < TS_PACKET - 4 {
            // Never zero, so the garbage holds no start code.
            pes.push(self.next_random() | 1);
        }
        out.extend(self.packet(VIDEO_PID, 2, &pes));
        out.extend(self.packet(NULL_PID, usize::MAX, &[]));
        out
    }

    /// One 188-byte packet starting a payload unit (`slot` indexes its continuity
    /// counter; `usize::MAX` for null packets, which have none).
    fn packet(&mut self, pid: u16, slot: usize, payload: &[u8]) -> Vec<u8> {
        let counter = match self.continuity.get_mut(slot) {
            Some(counter) => {
                let now = *counter;
                *counter = (now + 1) % 16;
                now
            }
            None => 0,
        };
        let start = if pid == NULL_PID { 0x00 } else { 0x40 };
        let mut packet = vec![0x47, start | (pid >> 8) as u8, pid as u8, 0x10 | counter];
        packet.extend_from_slice(payload);
        packet.resize(TS_PACKET, 0xFF);
        packet
    }

    fn next_random(&mut self) -> u8 {
        // xorshift64*, seeded on first use.
        if self.random == 0 {
            self.random = 0x9E37_79B9_7F4A_7C15;
        }
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        (self.random.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
    }
}

/// A PSI section (pointer field first) with program number 1 and its CRC.
fn section(table_id: u8, body: &[u8]) -> Vec<u8> {
    let length = 5 + body.len() + 4;
    let mut section = vec![
        table_id,
        0xB0 | (length >> 8) as u8,
        length as u8,
        0x00,
        0x01,
        0xC1,
        0x00,
        0x00,
    ];
    section.extend_from_slice(body);
    let crc = mpeg_crc32(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    let mut out = vec![0x00];
    out.extend(section);
    out
}

fn mpeg_crc32(data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}
