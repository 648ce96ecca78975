//! Sample-aware decoding: packets are held back one group of pictures (keyframe to
//! keyframe) at a time, and the caller says how much of each group it needs. The tail
//! of a group after the last needed frame is never decoded; the decoder is drained and
//! reset before the next keyframe instead.
//!
//! The output stays exact: the caller sees every frame it would have chosen with full
//! decoding. Frames already inside the decoder are part of the question, and a group
//! is cut only when the next one is closed (no leading pictures that would refer back
//! into the part that was not decoded).

use std::collections::VecDeque;

/// Packets held for one group at most; a longer group is decoded in full, so memory
/// stays bounded on streams with rare keyframes.
const MAX_GROUP_PACKETS: usize = 1200;

/// The decode loop asks its caller which frames it still needs.
pub trait FrameDemand {
    /// `pending`: timestamps (seconds) of frames already in the decoder, which will be
    /// offered anyway. `group`: timestamps of the next group's packets in decode order
    /// (`None` when unknown). Returns how many packets of `group`, from its start, must
    /// be decoded so that every frame the caller will choose is decoded.
    fn frames_needed(&self, pending: &[f64], group: &[Option<f64>]) -> usize;
}

/// Decodes everything: for callers that want every frame.
pub struct EveryFrame;

impl FrameDemand for EveryFrame {
    fn frames_needed(&self, _pending: &[f64], group: &[Option<f64>]) -> usize {
        group.len()
    }
}

/// What the planner needs to know of a packet.
pub trait PacketInfo {
    /// Presentation time in seconds.
    fn time(&self) -> Option<f64>;
    fn is_key(&self) -> bool;
}

/// What to do next with the decoder.
#[derive(Debug)]
pub enum Step<P> {
    Send(P),
    /// Drain the decoder (send end-of-stream, take every frame) and reset it.
    Restart,
}

pub struct GopPlanner<P> {
    enabled: bool,
    group: Vec<P>,
    boundary: Option<P>,
    /// The current group grew too long to hold; it is passed through until the next
    /// keyframe.
    passthrough: bool,
    in_flight: Vec<f64>,
    skipped: u64,
}

impl<P: PacketInfo> GopPlanner<P> {
    pub fn new(enabled: bool) -> GopPlanner<P> {
        GopPlanner {
            enabled,
            group: Vec::new(),
            boundary: None,
            passthrough: false,
            in_flight: Vec::new(),
            skipped: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Packets never decoded so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Takes the next packet from the demuxer; appends what can be decided to `out`.
    pub fn push(&mut self, packet: P, demand: &dyn FrameDemand, out: &mut VecDeque<Step<P>>) {
        if !self.enabled {
            out.push_back(Step::Send(packet));
            return;
        }
        if let Some(key) = self.boundary.take() {
            // Leading pictures (shown before the keyframe, decoded after it) may refer
            // to the group before: that group must then be decoded whole.
            let next_is_open = matches!((packet.time(), key.time()), (Some(p), Some(k)) if p < k);
            self.decide(demand, !next_is_open, out);
            self.passthrough = false;
            self.group.push(key);
        }
        if packet.is_key() && !self.group.is_empty() {
            self.boundary = Some(packet);
            return;
        }
        if self.passthrough {
            out.push_back(Step::Send(packet));
            return;
        }
        self.group.push(packet);
        if self.group.len() >= MAX_GROUP_PACKETS {
            self.decide(demand, false, out);
            self.passthrough = true;
        }
    }

    /// The demuxer has ended: decides what is still held.
    pub fn finish(&mut self, demand: &dyn FrameDemand, out: &mut VecDeque<Step<P>>) {
        if let Some(key) = self.boundary.take() {
            self.decide(demand, true, out);
            self.group.push(key);
        }
        self.decide(demand, true, out);
    }

    /// Bookkeeping of frames inside the decoder: a packet was sent.
    pub fn sent(&mut self, time: Option<f64>) {
        if let Some(time) = time {
            self.in_flight.push(time);
        }
    }

    /// A frame came out. Frames come out in presentation order, so anything earlier
    /// still listed was dropped by the decoder.
    pub fn output(&mut self, time: f64) {
        self.in_flight.retain(|&t| t > time + 1e-9);
    }

    /// The decoder was drained and reset.
    pub fn drained(&mut self) {
        self.in_flight.clear();
    }

    fn decide(&mut self, demand: &dyn FrameDemand, may_cut: bool, out: &mut VecDeque<Step<P>>) {
        if self.group.is_empty() {
            return;
        }
        let times: Vec<Option<f64>> = self.group.iter().map(PacketInfo::time).collect();
        let needed = if may_cut {
            demand
                .frames_needed(&self.in_flight, &times)
                .min(self.group.len())
        } else {
            self.group.len()
        };
        let total = self.group.len();
        out.extend(self.group.drain(..needed).map(Step::Send));
        if needed < total {
            self.skipped += (total - needed) as u64;
            self.group.clear();
            out.push_back(Step::Restart);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Fake {
        time: f64,
        key: bool,
    }

    impl PacketInfo for Fake {
        fn time(&self) -> Option<f64> {
            Some(self.time)
        }
        fn is_key(&self) -> bool {
            self.key
        }
    }

    /// Needs every packet up to and including the one at `upto` seconds.
    struct Upto(f64);

    impl FrameDemand for Upto {
        fn frames_needed(&self, _pending: &[f64], group: &[Option<f64>]) -> usize {
            group
                .iter()
                .rposition(|t| t.is_some_and(|t| t <= self.0))
                .map_or(0, |i| i + 1)
        }
    }

    fn stream(gop: usize, frames: usize) -> Vec<Fake> {
        (0..frames)
            .map(|i| Fake {
                time: i as f64,
                key: i % gop == 0,
            })
            .collect()
    }

    fn run(
        planner: &mut GopPlanner<Fake>,
        packets: Vec<Fake>,
        demand: &dyn FrameDemand,
    ) -> Vec<String> {
        let mut out = VecDeque::new();
        for p in packets {
            planner.push(p, demand, &mut out);
        }
        planner.finish(demand, &mut out);
        out.into_iter()
            .map(|s| match s {
                Step::Send(p) => format!("{}", p.time),
                Step::Restart => "R".to_owned(),
            })
            .collect()
    }

    #[test]
    fn disabled_passes_everything_through() {
        let mut planner = GopPlanner::new(false);
        let steps = run(&mut planner, stream(3, 6), &Upto(0.0));
        assert_eq!(steps, ["0", "1", "2", "3", "4", "5"]);
    }

    #[test]
    fn cuts_each_group_after_the_needed_frame() {
        let mut planner = GopPlanner::new(true);
        let steps = run(&mut planner, stream(4, 8), &Upto(1.0));
        // Group 0..3: needs 0 and 1. Group 4..7: needs nothing.
        assert_eq!(steps, ["0", "1", "R", "R"]);
        assert_eq!(planner.skipped(), 6);
    }

    #[test]
    fn whole_groups_need_no_restart() {
        let mut planner = GopPlanner::new(true);
        let steps = run(&mut planner, stream(3, 6), &EveryFrame);
        assert_eq!(steps, ["0", "1", "2", "3", "4", "5"]);
    }

    #[test]
    fn an_open_next_group_keeps_the_group_whole() {
        let mut packets = stream(4, 4);
        packets.push(Fake {
            time: 5.0,
            key: true,
        });
        // A leading picture: decoded after the keyframe, shown before it.
        packets.push(Fake {
            time: 4.0,
            key: false,
        });
        let mut planner = GopPlanner::new(true);
        let steps = run(&mut planner, packets, &Upto(0.0));
        assert_eq!(steps[..4], ["0", "1", "2", "3"]);
    }

    #[test]
    fn overlong_groups_pass_through() {
        let mut planner = GopPlanner::new(true);
        let steps = run(
            &mut planner,
            stream(MAX_GROUP_PACKETS * 2, MAX_GROUP_PACKETS + 5),
            &Upto(0.0),
        );
        assert_eq!(steps.len(), MAX_GROUP_PACKETS + 5);
        assert!(!steps.contains(&"R".to_owned()));
    }

    #[test]
    fn in_flight_frames_are_tracked() {
        let mut planner: GopPlanner<Fake> = GopPlanner::new(true);
        planner.sent(Some(1.0));
        planner.sent(Some(2.0));
        planner.sent(Some(3.0));
        planner.output(2.0);
        assert_eq!(planner.in_flight, vec![3.0]);
        planner.drained();
        assert!(planner.in_flight.is_empty());
    }
}
