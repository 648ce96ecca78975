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

use crate::sampling::Sampling;

/// Packets held at most; past this they are decoded, so memory stays bounded on
/// streams with rare keyframes.
const MAX_HELD_PACKETS: usize = 1200;

/// The caller's side: which frames it could take next.
pub trait FrameDemand {
    /// Whether a frame shown at `time` (seconds) could be the next one taken.
    fn could_take(&self, time: f64) -> bool;
}

/// Wants every frame.
pub struct EveryFrame;

impl FrameDemand for EveryFrame {
    fn could_take(&self, _time: f64) -> bool {
        true
    }
}

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
    held: Vec<P>,
    /// A keyframe was held last: the next packet tells whether its group is open.
    key_pending: bool,
    skipped: u64,
}

impl<P: PacketInfo> Planner<P> {
    pub fn new(mode: Sampling) -> Planner<P> {
        Planner {
            mode,
            held: Vec::new(),
            key_pending: false,
            skipped: 0,
        }
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
            Sampling::Exact => self.push_exact(packet, due, out),
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

    fn push_exact(&mut self, packet: P, due: &dyn FrameDemand, out: &mut Vec<Step<P>>) {
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
        if is_due(&packet, due) || self.held.len() >= MAX_HELD_PACKETS {
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
        let due = demand;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut planner = Planner::new(Sampling::All);
        let packets = [packet(0.0, true), packet(1.0, false)];
        assert_eq!(feed(&mut planner, &packets, Some(5.0)), ["0", "1"]);
    }

    #[test]
    fn holds_until_due_then_sends_in_order() {
        let mut planner = Planner::new(Sampling::Exact);
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
        let mut planner = Planner::new(Sampling::Exact);
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
        let mut planner = Planner::new(Sampling::Exact);
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
        let mut planner = Planner::new(Sampling::Exact);
        let mut b = packet(0.5, false);
        b.disposable = true;
        let packets = [packet(0.0, true), b, packet(1.0, false)];
        assert_eq!(feed(&mut planner, &packets, Some(1.0)), ["0", "1"]);
        assert_eq!(planner.skipped(), 1);
    }

    #[test]
    fn disposable_frames_at_due_are_kept() {
        let mut planner = Planner::new(Sampling::Exact);
        let mut b = packet(1.0, false);
        b.disposable = true;
        assert_eq!(
            feed(&mut planner, &[packet(0.0, true), b], Some(1.0)),
            ["0", "1"]
        );
    }

    #[test]
    fn nothing_due_means_everything_is_sent() {
        let mut planner = Planner::new(Sampling::Exact);
        let packets = [packet(0.0, true), packet(1.0, false)];
        assert_eq!(feed(&mut planner, &packets, None), ["0", "1"]);
    }

    #[test]
    fn finish_drops_what_cannot_be_due() {
        let mut planner = Planner::new(Sampling::Exact);
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
        let mut planner = Planner::new(Sampling::Exact);
        let packets: Vec<Fake> = (0..MAX_HELD_PACKETS + 1)
            .map(|i| packet(i as f64 / 1000.0, i == 0))
            .collect();
        let out = feed(&mut planner, &packets, Some(1e9));
        assert_eq!(out.len(), MAX_HELD_PACKETS + 1);
    }

    #[test]
    fn all_intra_streams_send_each_due_keyframe() {
        let mut planner = Planner::new(Sampling::Exact);
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
        let mut planner = Planner::new(Sampling::Keyframes);
        let packets = [packet(0.0, true), packet(0.5, false), packet(1.0, true)];
        assert_eq!(feed(&mut planner, &packets[..2], Some(0.0)), ["0", "R"]);
        assert_eq!(
            feed(&mut planner, &packets[2..], Some(2.0)),
            Vec::<String>::new()
        );
        assert_eq!(planner.skipped(), 2);
    }
}
