//! Which decoded frames are clean enough to use: frames the decoder flags as damaged,
//! and every frame after damage until a clean keyframe, are dropped.

use ffmpeg_next::frame;

/// Damaged frames dropped in a row after which one is used anyway.
const MAX_DAMAGED_STREAK: u64 = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// Frames are used as they come.
    Clean,
    /// Damage was seen: frames are dropped until a clean keyframe.
    UntilKeyframe,
}

pub struct DamageFilter {
    name: String,
    state: Damage,
    dropped_in_row: u64,
}

impl DamageFilter {
    /// `name` is the source's, for the log.
    pub fn new(name: String) -> DamageFilter {
        DamageFilter {
            name,
            state: Damage::Clean,
            dropped_in_row: 0,
        }
    }

    /// Damage outside a decoded frame (a packet the demuxer or the decoder could not
    /// read): the frames that follow may refer to what was lost.
    pub fn seen(&mut self) {
        self.state = Damage::UntilKeyframe;
    }

    /// Whether `frame`, just decoded, is used.
    pub fn admit(&mut self, frame: &frame::Video) -> bool {
        self.judge(
            frame.is_corrupt() || frame.has_decode_errors(),
            frame.is_key(),
        )
    }

    /// A source whose every keyframe is damaged would give nothing, so after a long
    /// run of dropped frames one is used whatever it is, and the count starts again.
    fn judge(&mut self, flagged: bool, key: bool) -> bool {
        if self.dropped_in_row >= MAX_DAMAGED_STREAK {
            log::warn!(
                "{}: {MAX_DAMAGED_STREAK} damaged frames in a row; using damaged frames",
                self.name
            );
            self.state = if flagged {
                Damage::UntilKeyframe
            } else {
                Damage::Clean
            };
            self.dropped_in_row = 0;
            return true;
        }
        if flagged {
            self.state = Damage::UntilKeyframe;
        } else if key {
            self.state = Damage::Clean;
        }
        match self.state {
            Damage::Clean => {
                self.dropped_in_row = 0;
                true
            }
            Damage::UntilKeyframe => {
                self.dropped_in_row += 1;
                false
            }
        }
    }

    /// The source starts again from its beginning: nothing before it is referred to.
    pub fn rewind(&mut self) {
        self.state = Damage::Clean;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> DamageFilter {
        DamageFilter::new("cam".into())
    }

    #[test]
    fn damage_drops_frames_until_a_clean_keyframe() {
        let mut damage = filter();
        assert!(damage.judge(false, true));
        assert!(!damage.judge(true, false));
        assert!(!damage.judge(false, false));
        assert!(!damage.judge(true, true), "a damaged keyframe is not clean");
        assert!(damage.judge(false, true));
        assert!(damage.judge(false, false));
        damage.seen();
        assert!(!damage.judge(false, false));
        assert!(damage.judge(false, true));
    }

    #[test]
    fn a_long_run_of_damage_lets_one_frame_through_each_time() {
        let mut damage = filter();
        for _ in 0..2 {
            for _ in 0..MAX_DAMAGED_STREAK {
                assert!(!damage.judge(true, false));
            }
            assert!(damage.judge(true, false));
        }
        assert!(
            !damage.judge(false, false),
            "damage is still being waited out"
        );
        assert!(damage.judge(false, true));
    }

    #[test]
    fn rewinding_forgets_damage_but_not_the_run() {
        let mut damage = filter();
        for _ in 0..MAX_DAMAGED_STREAK - 1 {
            assert!(!damage.judge(true, false));
        }
        damage.rewind();
        assert!(damage.judge(false, false));
        damage.seen();
        assert!(!damage.judge(false, false));
    }
}
