//! The packets on their way from the demuxer to the decoder: the planner decides which
//! are sent, held or dropped, and what it decided waits here to be sent in order.

use std::collections::VecDeque;

use ffmpeg_next::Packet;

use crate::media::nal;
use crate::media::planner::{PacketInfo, Planner, Step};
use crate::sampling::FrameDemand;
use crate::sampling::Sampling;

/// A demuxed packet with what the planner needs to know of it.
pub struct TimedPacket {
    pub packet: Packet,
    time: Option<f64>,
    disposable: bool,
}

impl PacketInfo for TimedPacket {
    fn time(&self) -> Option<f64> {
        self.time
    }
    fn is_key(&self) -> bool {
        self.packet.is_key()
    }
    fn is_disposable(&self) -> bool {
        self.disposable
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Demuxer {
    /// More packets may come.
    Reading,
    /// The input has ended; the planner has decided what it still held.
    Ended,
}

pub struct PacketQueue {
    planner: Planner<TimedPacket>,
    ready: VecDeque<Step<TimedPacket>>,
    decided: Vec<Step<TimedPacket>>,
    /// H.264 tells its non-reference frames apart (see `nal`).
    h264: bool,
    demuxer: Demuxer,
}

impl PacketQueue {
    pub fn new(sampling: Sampling, low_latency: bool, h264: bool) -> PacketQueue {
        PacketQueue {
            planner: Planner::new(sampling, low_latency),
            ready: VecDeque::new(),
            decided: Vec::new(),
            h264,
            demuxer: Demuxer::Reading,
        }
    }

    /// The next step for the decoder, when one is decided.
    pub fn next(&mut self) -> Option<Step<TimedPacket>> {
        self.ready.pop_front()
    }

    /// Puts `step` back in front, to be taken again next.
    pub fn put_back(&mut self, step: Step<TimedPacket>) {
        self.ready.push_front(step);
    }

    /// Whether nothing is decided yet: more packets must be read.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// Takes the demuxer's next packet, shown at `time`, for the planner to decide.
    pub fn push(&mut self, packet: Packet, time: Option<f64>, demand: &dyn FrameDemand) {
        let disposable = self.h264 && packet.data().is_some_and(nal::h264_disposable);
        let timed = TimedPacket {
            packet,
            time,
            disposable,
        };
        self.planner.push(timed, demand, &mut self.decided);
        self.ready.extend(self.decided.drain(..));
    }

    /// Whether packets are held back because no frame is due yet.
    pub fn holding(&self) -> bool {
        self.planner.holding()
    }

    /// The demuxer has ended: the planner decides what it still holds.
    pub fn finish(&mut self, demand: &dyn FrameDemand) {
        self.demuxer = Demuxer::Ended;
        self.planner.finish(demand, &mut self.decided);
        self.ready.extend(self.decided.drain(..));
    }

    /// Whether the demuxer has ended (what is decided may still wait here).
    pub fn input_ended(&self) -> bool {
        self.demuxer == Demuxer::Ended
    }

    /// The input starts again: nothing decided so far is sent, and the planner starts
    /// afresh in the same mode.
    pub fn rewind(&mut self) {
        self.planner = Planner::new(self.planner.mode(), self.planner.is_low_latency());
        self.ready.clear();
        self.demuxer = Demuxer::Reading;
    }

    /// Packets left undecoded because no sample needed them, so far.
    pub fn skipped(&self) -> u64 {
        self.planner.skipped()
    }
}
