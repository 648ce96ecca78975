//! Sample-aware decoding: which demuxed packets reach the decoder.
//!
//! In `Exact` mode packets are held back, undecoded, while none of them can be the next
//! sample (all are shown before the time it is due). A packet shown at or after that
//! time sends everything held, in order, and decoding goes on until the sample is
//! taken. When a keyframe arrives while packets are held, they were never needed: they
//! are dropped and the decoder is drained and reset. The frames the caller chooses are
//! therefore exactly those full decoding gives, and there is no delay: a packet is
//! decoded as soon as it could matter. Non-reference frames (H.264 `nal_ref_idc` 0)
//! shown before the due time are dropped too; nothing else needs them.
//!
//! A keyframe followed by a leading picture (shown before it) starts an open group
//! that refers back: the held packets are then decoded, and holding stops for the
//! stream. In `Keyframes` mode only keyframes due for a sample are decoded.
//!
//! Packets already sent wait in the decoder's reordering queue, and the caller will
//! take some of them. A packet is judged against the due time that holds once those
//! shown before it have been offered (`InDecoder`): with one sample due at 1 s and
//! the frame for it sent, a frame shown at 1.1 s can only be the sample due at 2 s.
//! The frame waiting for more input to come out of the decoder (the candidate) is
//! handled by the kind of source. For a file it waits: the packets after it are held
//! like any others, and it comes out when the next needed packet arrives or, at the
//! next keyframe, when the decoder is drained; so nothing past the last sample of a
//! group is decoded. A live source's frame should not wait (`low_latency`): reference
//! frames after the candidate are sent at once, and only the non-reference frames
//! that no sample can need are dropped.

use crate::sampling::{FrameDemand, Sampling, EPSILON_SECONDS};

/// Packets held at most; past this they are decoded, so memory stays bounded on
/// streams with rare keyframes.
const MAX_HELD_PACKETS: usize = 1200;

/// What the planner needs to know of a packet.
pub trait PacketInfo {
    /// Presentation time in seconds.
    fn time(&self) -> Option<f64>;
    fn is_key(&self) -> bool;
    /// No other frame refers to this one.
    fn is_disposable(&self) -> bool;
}

/// What to do next with the decoder.
#[derive(Debug)]
pub enum Step<P> {
    Send(P),
    /// Drain the decoder (send end-of-stream, take every frame) and reset it.
    Restart,
}

pub struct Planner<P> {
    mode: Sampling,
    /// A sampled frame must leave the decoder as soon as it can (live sources).
    low_latency: bool,
    held: Vec<P>,
    /// A keyframe was held last: the next packet tells whether its group is open.
    key_pending: bool,
    /// Times of the packets sent since the decoder was last drained that may not have
    /// come out yet (those shown at or after the due time).
    in_decoder: Vec<f64>,
    /// The due time seen at the last packet; a step back is a clock reset.
    last_due: Option<f64>,
    skipped: u64,
}

impl<P: PacketInfo> Planner<P> {
    pub fn new(mode: Sampling, low_latency: bool) -> Planner<P> {
        Planner {
            mode,
            low_latency,
            held: Vec::new(),
            key_pending: false,
            in_decoder: Vec::new(),
            last_due: None,
            skipped: 0,
        }
    }

    pub fn is_low_latency(&self) -> bool {
        self.low_latency
    }

    pub fn mode(&self) -> Sampling {
        self.mode
    }

    /// Packets never decoded so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Whether packets are being held (the stream is alive, nothing is due yet).
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes the next packet from the demuxer; appends what is decided to `out`.
    pub fn push(&mut self, packet: P, demand: &dyn FrameDemand, out: &mut Vec<Step<P>>) {
        let due = demand;
        match self.mode {
            Sampling::All => out.push(Step::Send(packet)),
            Sampling::Keyframes => self.push_keyframes_only(packet, due, out),
            Sampling::Exact => {
                let start = out.len();
                let waiting = self.waiting_in_decoder(due);
                let candidate = waiting.first().copied();
                let in_decoder = InDecoder {
                    demand: due,
                    waiting,
                };
                self.push_exact(packet, &in_decoder, candidate, out);
                self.note_sent(&out[start..]);
            }
        }
    }

    /// Times of the sent packets that may still be taken, in display order.
    fn waiting_in_decoder(&mut self, demand: &dyn FrameDemand) -> Vec<f64> {
        if let Some(due) = demand.next_due() {
            if self.last_due.is_some_and(|last| due < last) {
                // A clock reset: what was sent before belongs to the old timeline.
                self.in_decoder.clear();
            }
            self.last_due = Some(due);
            // Shown before the due time: out already, or never to be taken.
            self.in_decoder
                .retain(|&time| time + EPSILON_SECONDS >= due);
        }
        let mut waiting = self.in_decoder.clone();
        waiting.sort_by(f64::total_cmp);
        waiting
    }

    fn note_sent(&mut self, steps: &[Step<P>]) {
        for step in steps {
            match step {
                Step::Restart => self.in_decoder.clear(),
                Step::Send(packet) => self.in_decoder.extend(packet.time()),
            }
        }
        if self.in_decoder.len() > MAX_HELD_PACKETS {
            // Nothing is due yet (no frame came out): the oldest are long decoded.
            self.in_decoder.drain(..MAX_HELD_PACKETS / 2);
        }
    }

    fn push_keyframes_only(&mut self, packet: P, due: &dyn FrameDemand, out: &mut Vec<Step<P>>) {
        if packet.is_key() && is_due(&packet, due) {
            out.push(Step::Send(packet));
            // Drain at once: the caller wants this frame now, not after the next one.
            out.push(Step::Restart);
        } else {
            self.skipped += 1;
        }
    }

    fn push_exact(
        &mut self,
        packet: P,
        due: &dyn FrameDemand,
        candidate: Option<f64>,
        out: &mut Vec<Step<P>>,
    ) {
        if self.key_pending {
            self.key_pending = false;
            let key_time = self.held.last().and_then(PacketInfo::time);
            let leading = matches!((packet.time(), key_time), (Some(p), Some(k)) if p < k);
            if leading {
                // An open group: what is held may be referred to. Decode everything.
                self.mode = Sampling::All;
                out.extend(self.held.drain(..).map(Step::Send));
                out.push(Step::Send(packet));
                return;
            }
            let key = self.held.pop().expect("a pending keyframe is held");
            let key_due = is_due(&key, due);
            self.drop_held(out);
            self.held.push(key);
            if key_due {
                self.send_held(due, out);
            }
        }
        if packet.is_key() && self.holding() {
            self.key_pending = true;
            self.held.push(packet);
            return;
        }
        // A live source's candidate needs more input to come out: give it the
        // reference frames, which later samples may need anyway.
        let feeds_candidate = self.low_latency
            && !packet.is_disposable()
            && candidate.is_some_and(|c| packet.time().is_some_and(|t| t > c));
        if is_due(&packet, due) || feeds_candidate || self.held.len() >= MAX_HELD_PACKETS {
            self.held.push(packet);
            self.send_held(due, out);
            return;
        }
        if self.holding() || !packet.is_disposable() {
            self.held.push(packet);
        } else {
            // Not shown late enough to be sampled, and nothing refers to it.
            self.skipped += 1;
        }
    }

    /// The demuxer has ended: decides what is still held.
    pub fn finish(&mut self, demand: &dyn FrameDemand, out: &mut Vec<Step<P>>) {
        let in_decoder = InDecoder {
            demand,
            waiting: self.waiting_in_decoder(demand),
        };
        let due = &in_decoder;
        if self.held.iter().any(|p| is_due(p, due)) {
            self.send_held(due, out);
        } else {
            self.skipped += self.held.len() as u64;
            self.held.clear();
        }
        self.key_pending = false;
    }

    /// Everything held goes to the decoder, except non-reference frames shown before
    /// the due time.
    fn send_held(&mut self, due: &dyn FrameDemand, out: &mut Vec<Step<P>>) {
        for packet in self.held.drain(..) {
            if packet.is_disposable() && !is_due(&packet, due) {
                self.skipped += 1;
            } else {
                out.push(Step::Send(packet));
            }
        }
    }

    /// Held packets were never needed: drop them and start the decoder afresh.
    fn drop_held(&mut self, out: &mut Vec<Step<P>>) {
        if self.held.is_empty() {
            return;
        }
        self.skipped += self.held.len() as u64;
        self.held.clear();
        out.push(Step::Restart);
    }
}

/// Whether the packet's frame may be the next sample (unknown times always may).
fn is_due<P: PacketInfo>(packet: &P, demand: &dyn FrameDemand) -> bool {
    packet.time().is_none_or(|time| demand.could_take(time))
}

/// The caller's demand once the frames waiting in the decoder have been offered: a
/// frame shown after some of them is due only if it is once those were offered. (Were
/// one of those frames damaged and dropped, a later one could have been taken instead;
/// damaged streams are not decoded exactly like full decoding in any case.)
struct InDecoder<'a> {
    demand: &'a dyn FrameDemand,
    /// In display order.
    waiting: Vec<f64>,
}

impl FrameDemand for InDecoder<'_> {
    fn could_take(&self, time: f64) -> bool {
        let before = self
            .waiting
            .iter()
            .take_while(|&&shown| shown + EPSILON_SECONDS < time)
            .count();
        self.demand.could_take_after(&self.waiting[..before], time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::sampler::Sampler;
    use crate::sampling::Fps;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    #[derive(Debug, Clone, PartialEq)]
    struct Fake {
        time: f64,
        key: bool,
        disposable: bool,
    }

    impl PacketInfo for Fake {
        fn time(&self) -> Option<f64> {
            Some(self.time)
        }
        fn is_key(&self) -> bool {
            self.key
        }
        fn is_disposable(&self) -> bool {
            self.disposable
        }
    }

    struct Due(Option<f64>);

    impl FrameDemand for Due {
        fn could_take(&self, time: f64) -> bool {
            self.0.is_none_or(|due| time >= due)
        }
    }

    fn packet(time: f64, key: bool) -> Fake {
        Fake {
            time,
            key,
            disposable: false,
        }
    }

    fn steps(out: Vec<Step<Fake>>) -> Vec<String> {
        out.into_iter()
            .map(|s| match s {
                Step::Send(p) => format!("{}", p.time),
                Step::Restart => "R".to_owned(),
            })
            .collect()
    }

    fn feed(planner: &mut Planner<Fake>, packets: &[Fake], due: Option<f64>) -> Vec<String> {
        let mut out = Vec::new();
        for p in packets {
            planner.push(p.clone(), &Due(due), &mut out);
        }
        steps(out)
    }

    #[test]
    fn all_sends_everything() {
        let mut planner = Planner::new(Sampling::All, false);
        let packets = [packet(0.0, true), packet(1.0, false)];
        assert_eq!(feed(&mut planner, &packets, Some(5.0)), ["0", "1"]);
    }

    #[test]
    fn holds_until_due_then_sends_in_order() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let packets = [packet(0.0, true), packet(1.0, false), packet(2.0, false)];
        assert_eq!(
            feed(&mut planner, &packets[..2], Some(2.0)),
            Vec::<String>::new()
        );
        assert!(planner.holding());
        assert_eq!(
            feed(&mut planner, &packets[2..], Some(2.0)),
            ["0", "1", "2"]
        );
        assert!(!planner.holding());
    }

    #[test]
    fn a_keyframe_drops_what_was_held() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let packets = [
            packet(0.0, true),
            packet(1.0, false),
            packet(2.0, true),
            packet(3.0, false),
        ];
        // Due at 2.5: 0 and 1 are never needed; 2 is held until 3 arrives.
        assert_eq!(feed(&mut planner, &packets, Some(2.5)), ["R", "2", "3"]);
        assert_eq!(planner.skipped(), 2);
    }

    #[test]
    fn an_open_group_decodes_what_was_held_and_stops_holding() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let packets = [
            packet(0.0, true),
            packet(1.0, false),
            packet(3.0, true),
            packet(2.0, false),
            packet(4.0, false),
        ];
        assert_eq!(
            feed(&mut planner, &packets, Some(10.0)),
            ["0", "1", "3", "2", "4"]
        );
        assert_eq!(planner.mode(), Sampling::All);
    }

    #[test]
    fn disposable_frames_before_due_are_dropped() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let mut b = packet(0.5, false);
        b.disposable = true;
        let packets = [packet(0.0, true), b, packet(1.0, false)];
        assert_eq!(feed(&mut planner, &packets, Some(1.0)), ["0", "1"]);
        assert_eq!(planner.skipped(), 1);
    }

    #[test]
    fn disposable_frames_at_due_are_kept() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let mut b = packet(1.0, false);
        b.disposable = true;
        assert_eq!(
            feed(&mut planner, &[packet(0.0, true), b], Some(1.0)),
            ["0", "1"]
        );
    }

    #[test]
    fn nothing_due_means_everything_is_sent() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let packets = [packet(0.0, true), packet(1.0, false)];
        assert_eq!(feed(&mut planner, &packets, None), ["0", "1"]);
    }

    #[test]
    fn finish_drops_what_cannot_be_due() {
        let mut planner = Planner::new(Sampling::Exact, false);
        feed(
            &mut planner,
            &[packet(0.0, true), packet(1.0, false)],
            Some(5.0),
        );
        let mut out = Vec::new();
        planner.finish(&Due(Some(5.0)), &mut out);
        assert!(out.is_empty());
        assert_eq!(planner.skipped(), 2);
    }

    #[test]
    fn long_holds_are_decoded() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let packets: Vec<Fake> = (0..MAX_HELD_PACKETS + 1)
            .map(|i| packet(i as f64 / 1000.0, i == 0))
            .collect();
        let out = feed(&mut planner, &packets, Some(1e9));
        assert_eq!(out.len(), MAX_HELD_PACKETS + 1);
    }

    #[test]
    fn all_intra_streams_send_each_due_keyframe() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let packets: Vec<Fake> = (0..6).map(|i| packet(f64::from(i), true)).collect();
        let mut out = Vec::new();
        // Due at 2: keyframes 0 and 1 are dropped, 2 is sent once 3 shows the group is
        // closed.
        for p in &packets[..4] {
            planner.push(p.clone(), &Due(Some(2.0)), &mut out);
        }
        assert!(steps(out).contains(&"2".to_owned()));
    }

    #[test]
    fn keyframes_mode_sends_due_keyframes_only() {
        let mut planner = Planner::new(Sampling::Keyframes, false);
        let packets = [packet(0.0, true), packet(0.5, false), packet(1.0, true)];
        assert_eq!(feed(&mut planner, &packets[..2], Some(0.0)), ["0", "R"]);
        assert_eq!(
            feed(&mut planner, &packets[2..], Some(2.0)),
            Vec::<String>::new()
        );
        assert_eq!(planner.skipped(), 2);
    }

    /// A sampler at one frame every `every` seconds whose next sample is due at `due`.
    struct Sampled {
        due: f64,
        every: f64,
    }

    impl FrameDemand for Sampled {
        fn could_take(&self, time: f64) -> bool {
            time >= self.due
        }
        fn next_due(&self) -> Option<f64> {
            Some(self.due)
        }
        fn could_take_after(&self, earlier: &[f64], time: f64) -> bool {
            let mut due = self.due;
            for &shown in earlier {
                if shown >= due {
                    due = ((shown / self.every).floor() + 1.0) * self.every;
                }
            }
            time >= due
        }
    }

    fn disposable(time: f64) -> Fake {
        Fake {
            time,
            key: false,
            disposable: true,
        }
    }

    /// Decode order of a group where the sample due at 1 s is a P-frame followed by
    /// frames shown before and after it, then the next group.
    fn group_with_a_sample_inside() -> Vec<Fake> {
        vec![
            packet(0.0, true),
            packet(1.0, false),
            disposable(0.9),
            packet(1.1, false),
            disposable(1.05),
            packet(2.0, true),
            packet(2.1, false),
        ]
    }

    fn feed_sampled(
        planner: &mut Planner<Fake>,
        packets: &[Fake],
        demand: &Sampled,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for p in packets {
            planner.push(p.clone(), demand, &mut out);
        }
        steps(out)
    }

    #[test]
    fn in_a_file_nothing_past_the_candidate_is_decoded_before_the_next_group() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let demand = Sampled {
            due: 1.0,
            every: 1.0,
        };
        let out = feed_sampled(&mut planner, &group_with_a_sample_inside(), &demand);
        // 1.1 and 1.05 can only be the sample due at 2 s, which the keyframe is: they
        // are dropped, and the restart drains the candidate out of the decoder.
        assert_eq!(out, ["0", "1", "R", "2", "2.1"]);
        assert_eq!(planner.skipped(), 3);
    }

    #[test]
    fn a_live_candidate_gets_the_reference_frames_at_once() {
        let mut planner = Planner::new(Sampling::Exact, true);
        let demand = Sampled {
            due: 1.0,
            every: 1.0,
        };
        let out = feed_sampled(&mut planner, &group_with_a_sample_inside(), &demand);
        // 1.1 is sent so that 1.0 comes out now; the non-reference 1.05 is not needed.
        assert_eq!(out, ["0", "1", "1.1", "2", "2.1"]);
        assert_eq!(planner.skipped(), 2);
    }

    #[test]
    fn a_frame_shown_between_the_due_time_and_the_candidate_is_sent() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let demand = Sampled {
            due: 1.0,
            every: 1.0,
        };
        let packets = [packet(0.0, true), packet(1.1, false), disposable(1.05)];
        // 1.05 is shown before the candidate 1.1: it is the sample.
        assert_eq!(
            feed_sampled(&mut planner, &packets, &demand),
            ["0", "1.1", "1.05"]
        );
    }

    #[test]
    fn a_frame_due_for_the_following_sample_is_sent() {
        let mut planner = Planner::new(Sampling::Exact, false);
        let demand = Sampled {
            due: 1.0,
            every: 0.5,
        };
        let packets = [packet(0.0, true), packet(1.0, false), disposable(1.5)];
        // The sample after 1.0 is due at 1.5.
        assert_eq!(
            feed_sampled(&mut planner, &packets, &demand),
            ["0", "1", "1.5"]
        );
    }

    /// Frames of a stream in decode order, x264-like: groups of `group` frames, each
    /// a keyframe then mini-groups of a P-frame and the B-frames shown before it (the
    /// middle one of three a reference, the others disposable).
    fn stream(groups: usize, group: usize, rng: &mut StdRng) -> Vec<Fake> {
        let mut packets = Vec::new();
        for g in 0..groups {
            let first = g * group;
            packets.push(packet(first as f64 / 30.0, true));
            let mut shown = first + 1;
            while shown < first + group {
                let bs = rng.gen_range(0..=3).min(first + group - 1 - shown);
                let p = shown + bs;
                packets.push(packet(p as f64 / 30.0, false));
                for b in shown..p {
                    let reference = bs == 3 && b == shown + 1;
                    packets.push(Fake {
                        time: b as f64 / 30.0,
                        key: false,
                        disposable: !reference,
                    });
                }
                shown = p + 1;
            }
        }
        packets
    }

    /// A decoder that returns frames in display order once `delay` later frames
    /// were sent, or later: how much later changes at random, as it does with
    /// frame threading and a loaded machine.
    struct FakeDecoder {
        delay: usize,
        waiting: Vec<f64>,
    }

    impl FakeDecoder {
        fn send(&mut self, time: f64) {
            self.waiting.push(time);
            self.waiting.sort_by(f64::total_cmp);
        }

        fn ready(&mut self, rng: &mut StdRng) -> Vec<f64> {
            let available = self.waiting.len().saturating_sub(self.delay);
            let count = rng.gen_range(0..=available);
            self.waiting.drain(..count).collect()
        }

        fn drain(&mut self) -> Vec<f64> {
            self.waiting.drain(..).collect()
        }
    }

    /// The timestamps the sampler takes when the planner chooses what is decoded.
    fn sampled_with_planner(packets: &[Fake], fps: f64, low_latency: bool, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut planner = Planner::new(Sampling::Exact, low_latency);
        let mut sampler = Sampler::new(Fps::new(fps).unwrap());
        let mut decoder = FakeDecoder {
            delay: 2,
            waiting: Vec::new(),
        };
        let mut taken = Vec::new();
        let mut offer = |frames: Vec<f64>, sampler: &mut Sampler| {
            for time in frames {
                if sampler.offer(time) {
                    taken.push(time);
                }
            }
        };
        let mut steps = Vec::new();
        for packet in packets {
            planner.push(packet.clone(), &sampler, &mut steps);
            for step in steps.drain(..) {
                match step {
                    Step::Send(p) => {
                        decoder.send(p.time);
                        let frames = decoder.ready(&mut rng);
                        offer(frames, &mut sampler);
                    }
                    Step::Restart => offer(decoder.drain(), &mut sampler),
                }
            }
        }
        planner.finish(&sampler, &mut steps);
        for step in steps {
            if let Step::Send(p) = step {
                decoder.send(p.time);
            }
        }
        offer(decoder.drain(), &mut sampler);
        taken
    }

    #[test]
    fn any_decoder_timing_gives_the_samples_of_full_decoding() {
        for seed in 0..300 {
            let mut rng = StdRng::seed_from_u64(seed);
            let group = [1, 12, 30, 60, 90][rng.gen_range(0..5)];
            let packets = stream(4, group, &mut rng);
            let mut shown: Vec<f64> = packets.iter().map(|p| p.time).collect();
            shown.sort_by(f64::total_cmp);
            for fps in [0.3, 1.0, 2.5, 7.0, 14.0, 29.0, 30.0] {
                let mut full = Sampler::new(Fps::new(fps).unwrap());
                let expected: Vec<f64> = shown.iter().copied().filter(|&t| full.offer(t)).collect();
                for low_latency in [false, true] {
                    let got = sampled_with_planner(&packets, fps, low_latency, seed);
                    assert_eq!(
                        got, expected,
                        "seed {seed}, group {group}, fps {fps}, low latency {low_latency}"
                    );
                }
            }
        }
    }
}
