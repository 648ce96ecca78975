//! What every written frame says about itself: an Exif APP1 segment with the capture
//! time (UTC, to the millisecond) and a JPEG comment naming the camera, the frame
//! number and its timestamp on the source's timeline. Both go right after the SOI
//! marker, so any Exif reader finds them; the picture data is not touched.

use std::time::SystemTime;

/// One frame's identity, decided when the frame was sampled.
#[derive(Debug, Clone, Copy)]
pub struct FrameMetadata<'a> {
    pub camera: &'a str,
    pub seq: u64,
    /// Seconds on the source's timeline.
    pub pts: f64,
    pub captured_at: SystemTime,
}

impl FrameMetadata<'_> {
    /// The comment segment's text; the pts is written as the `X-Frame-Pts` header is.
    pub fn comment(&self) -> String {
        format!(
            "video-pipeline camera={} seq={} pts={:.6}",
            self.camera, self.seq, self.pts
        )
    }
}

/// `jpeg` with the Exif and comment segments of `meta` after its SOI marker. Bytes
/// that do not start with SOI are not a JPEG this module can annotate: they are
/// returned as they are.
pub fn with_metadata(jpeg: Vec<u8>, meta: &FrameMetadata<'_>) -> Vec<u8> {
    let Some(rest) = jpeg.strip_prefix(&SOI) else {
        return jpeg;
    };
    let exif = exif_segment(meta.captured_at);
    let comment = comment_segment(&meta.comment());
    // One copy of the frame: inserting into `jpeg` would move it, and grow it first.
    let mut out = Vec::with_capacity(jpeg.len() + exif.len() + comment.len());
    out.extend_from_slice(&SOI);
    out.extend_from_slice(&exif);
    out.extend_from_slice(&comment);
    out.extend_from_slice(rest);
    out
}

const SOI: [u8; 2] = [0xFF, 0xD8];
const APP1: [u8; 2] = [0xFF, 0xE1];
const COM: [u8; 2] = [0xFF, 0xFE];

/// TIFF field types.
const ASCII: u16 = 2;
const LONG: u16 = 4;
const UNDEFINED: u16 = 7;

const TAG_EXIF_IFD: u16 = 0x8769;
const TAG_EXIF_VERSION: u16 = 0x9000;
const TAG_DATE_TIME_ORIGINAL: u16 = 0x9003;
const TAG_OFFSET_TIME_ORIGINAL: u16 = 0x9011;
const TAG_SUB_SEC_TIME_ORIGINAL: u16 = 0x9291;

/// Offsets in the TIFF structure: the 8-byte header, IFD0 with one entry, the Exif
/// IFD with four, then the two values too long to fit in an entry.
const IFD0_AT: u32 = 8;
const EXIF_IFD_AT: u32 = IFD0_AT + ifd_len(1);
const DATE_AT: u32 = EXIF_IFD_AT + ifd_len(4);
const DATE_LEN: u32 = 20;
const OFFSET_AT: u32 = DATE_AT + DATE_LEN;
const OFFSET_TIME: &[u8; 7] = b"+00:00\0";

/// An IFD's size: entry count, 12 bytes per entry, the next-IFD offset.
const fn ifd_len(entries: u32) -> u32 {
    2 + 12 * entries + 4
}

/// The APP1 segment: "Exif\0\0" and a big-endian TIFF structure whose IFD0 points to
/// an Exif IFD with the version (2.31, the first with offset times), the capture time
/// in UTC, its offset and its milliseconds.
fn exif_segment(at: SystemTime) -> Vec<u8> {
    let (date, millis) = utc(at);
    let mut tiff = Vec::with_capacity(128);
    tiff.extend_from_slice(b"MM\0\x2A");
    tiff.extend_from_slice(&IFD0_AT.to_be_bytes());

    tiff.extend_from_slice(&1u16.to_be_bytes());
    entry(&mut tiff, TAG_EXIF_IFD, LONG, 1, EXIF_IFD_AT.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());

    let mut sub_sec = [0u8; 4];
    sub_sec[..3].copy_from_slice(format!("{millis:03}").as_bytes());
    tiff.extend_from_slice(&4u16.to_be_bytes());
    entry(&mut tiff, TAG_EXIF_VERSION, UNDEFINED, 4, *b"0231");
    entry(
        &mut tiff,
        TAG_DATE_TIME_ORIGINAL,
        ASCII,
        DATE_LEN,
        DATE_AT.to_be_bytes(),
    );
    entry(
        &mut tiff,
        TAG_OFFSET_TIME_ORIGINAL,
        ASCII,
        OFFSET_TIME.len() as u32,
        OFFSET_AT.to_be_bytes(),
    );
    entry(&mut tiff, TAG_SUB_SEC_TIME_ORIGINAL, ASCII, 4, sub_sec);
    tiff.extend_from_slice(&0u32.to_be_bytes());

    tiff.extend_from_slice(date.as_bytes());
    tiff.push(0);
    tiff.extend_from_slice(OFFSET_TIME);
    debug_assert_eq!(tiff.len() as u32, OFFSET_AT + OFFSET_TIME.len() as u32);

    let mut segment = Vec::with_capacity(tiff.len() + 10);
    segment.extend_from_slice(&APP1);
    segment.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    segment.extend_from_slice(b"Exif\0\0");
    segment.extend_from_slice(&tiff);
    segment
}

/// One IFD entry; `value` holds the value itself when it fits in 4 bytes, else its
/// offset.
fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&value);
}

/// A COM segment; a segment holds at most 65533 bytes of text (camera ids are short).
fn comment_segment(text: &str) -> Vec<u8> {
    let text = &text.as_bytes()[..text.len().min(usize::from(u16::MAX) - 2)];
    let mut segment = Vec::with_capacity(text.len() + 4);
    segment.extend_from_slice(&COM);
    segment.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    segment.extend_from_slice(text);
    segment
}

/// `at` in UTC as Exif writes a date ("YYYY:MM:DD HH:MM:SS") and its milliseconds.
/// Times before 1970 are not capture times: they read as the epoch.
fn utc(at: SystemTime) -> (String, u32) {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let date = format!(
        "{year:04}:{month:02}:{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    (date, since.subsec_millis())
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A reader written from the Exif layout, independent of the writer above.
    struct Tiff<'a>(&'a [u8]);

    impl Tiff<'_> {
        fn u16(&self, at: usize) -> u16 {
            u16::from_be_bytes([self.0[at], self.0[at + 1]])
        }

        fn u32(&self, at: usize) -> u32 {
            u32::from_be_bytes(self.0[at..at + 4].try_into().unwrap())
        }

        /// (tag, type, count, value bytes) of each entry of the IFD at `at`.
        fn ifd(&self, at: usize) -> Vec<(u16, u16, u32, Vec<u8>)> {
            (0..usize::from(self.u16(at)))
                .map(|n| {
                    let e = at + 2 + 12 * n;
                    let (kind, count) = (self.u16(e + 2), self.u32(e + 4));
                    let len = count as usize * if kind == LONG { 4 } else { 1 };
                    let value = if len <= 4 {
                        self.0[e + 8..e + 8 + len].to_vec()
                    } else {
                        let off = self.u32(e + 8) as usize;
                        self.0[off..off + len].to_vec()
                    };
                    (self.u16(e), kind, count, value)
                })
                .collect()
        }
    }

    /// The segments before the image data: (marker, payload).
    fn segments(jpeg: &[u8]) -> Vec<(u8, &[u8])> {
        assert_eq!(&jpeg[..2], &SOI);
        let mut at = 2;
        let mut out = Vec::new();
        while jpeg[at] == 0xFF && jpeg[at + 1] != 0xDA {
            let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
            out.push((jpeg[at + 1], &jpeg[at + 4..at + 2 + len]));
            at += 2 + len;
        }
        out
    }

    fn encoded() -> Vec<u8> {
        let picture = crate::picture::OwnedYuv420::gray(32, 16);
        crate::output::jpeg::JpegEncoder::new(90)
            .unwrap()
            .encode(&picture.view())
            .unwrap()
    }

    fn meta(captured_at: SystemTime) -> FrameMetadata<'static> {
        FrameMetadata {
            camera: "front-door",
            seq: 42,
            pts: 12.345678,
            captured_at,
        }
    }

    #[test]
    fn exif_and_comment_come_first_and_read_back() {
        // 2026-12-01T23:56:07.089Z
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_169_367_089);
        let plain = encoded();
        let jpeg = with_metadata(plain.clone(), &meta(at));
        let segments = segments(&jpeg);
        assert_eq!(segments[0].0, 0xE1);
        assert_eq!(segments[1].0, 0xFE);
        assert_eq!(
            segments[1].1,
            b"video-pipeline camera=front-door seq=42 pts=12.345678"
        );
        assert!(jpeg.ends_with(&plain[2..]), "the picture is untouched");

        let exif = segments[0].1.strip_prefix(b"Exif\0\0").unwrap();
        let tiff = Tiff(exif);
        assert_eq!(&exif[..4], b"MM\0\x2A");
        let ifd0 = tiff.ifd(tiff.u32(4) as usize);
        assert_eq!(ifd0.len(), 1);
        let (tag, kind, _, pointer) = &ifd0[0];
        assert_eq!((*tag, *kind), (TAG_EXIF_IFD, LONG));
        let exif_ifd = tiff.ifd(u32::from_be_bytes(pointer[..].try_into().unwrap()) as usize);
        let tags: Vec<u16> = exif_ifd.iter().map(|e| e.0).collect();
        assert!(tags.is_sorted(), "{tags:x?}");
        let value = |tag| exif_ifd.iter().find(|e| e.0 == tag).unwrap().3.clone();
        assert_eq!(value(TAG_EXIF_VERSION), b"0231");
        assert_eq!(value(TAG_DATE_TIME_ORIGINAL), b"2026:12:01 23:56:07\0");
        assert_eq!(value(TAG_OFFSET_TIME_ORIGINAL), b"+00:00\0");
        assert_eq!(value(TAG_SUB_SEC_TIME_ORIGINAL), b"089\0");
    }

    #[test]
    fn the_annotated_frame_still_decodes_and_its_exif_is_found() {
        use image::ImageDecoder;
        let jpeg = with_metadata(encoded(), &meta(SystemTime::now()));
        let mut decoder =
            image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&jpeg)).expect("a JPEG");
        let exif = decoder.exif_metadata().unwrap().expect("Exif found");
        assert!(exif.starts_with(b"MM\0\x2A"));
        let picture = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((picture.width(), picture.height()), (32, 16));
    }

    #[test]
    fn dates_agree_with_rfc3339() {
        let mut seconds: u64 = 0;
        while seconds < 9_000_000_000 {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(seconds * 1000 + 7);
            let (date, millis) = utc(at);
            let rfc = humantime::format_rfc3339_millis(at).to_string();
            let expected = format!("{} {}", &rfc[..10].replace('-', ":"), &rfc[11..19]);
            assert_eq!(date, expected, "{rfc}");
            assert_eq!(millis, 7);
            seconds += 3_999_999;
        }
    }

    #[test]
    fn what_is_not_a_jpeg_is_left_alone() {
        let bytes = b"not a jpeg".to_vec();
        assert_eq!(
            with_metadata(bytes.clone(), &meta(SystemTime::now())),
            bytes
        );
    }
}
