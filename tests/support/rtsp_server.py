#!/usr/bin/env python3
"""A small real RTSP server for the integration tests, built on GStreamer's RTSP server.

Debian packages it needs:
    gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
    gstreamer1.0-tools

Usage:
    rtsp_server.py --port 8554 [--path /stream] [--mounts N] [--file clip.mp4]
                   [--user U --password P]

Without --file it serves a live 320x240 25 fps H.264 test pattern. With --file it serves
the file's H.264 video (any container), looping forever at the file's frame rate; the
file is read once at start and its access units are replayed with fresh timestamps.
With --mounts N (N > 1) it serves N independent streams at PATH1 ... PATHN instead of
one at PATH, so one process can stand in for several cameras.
With --user and --password, clients must authenticate (basic auth).

Prints "READY" on stdout once the port is listening; exits with 0 on SIGTERM or SIGINT.
"""

import argparse
import os
import signal
import sys

# python3-gi is packaged for the distribution's interpreter only; when another python3
# comes first on PATH (pyenv, a virtualenv), run again under the distribution's one.
SYSTEM_PYTHON = "/usr/bin/python3"
try:
    import gi
except ImportError:
    if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) and os.access(
        SYSTEM_PYTHON, os.X_OK
    ):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    sys.exit("rtsp_server.py: python3-gi is missing (apt-get install python3-gi)")

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# No `config-interval` on rtph264pay: with it, libav's receiver splits each multi-slice
# keyframe of x264's zerolatency mode into two access units and decodes both halves
# with concealed errors.
TEST_PATTERN = (
    "( videotestsrc is-live=true"
    " ! video/x-raw,width=320,height=240,framerate=25/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25"
    " ! rtph264pay name=pay0 pt=96 )"
)

REPLAY = (
    "( appsrc name=src is-live=true format=time do-timestamp=true"
    " ! h264parse ! rtph264pay name=pay0 pt=96 )"
)

# Frames kept waiting in a replay source before the timer stops adding more (the
# pipeline does not consume while it is being prepared or paused).
MAX_QUEUED_FRAMES = 25
DEFAULT_FRAME_RATE = 25.0


def read_access_units(path):
    """Every H.264 access unit of the file, in byte-stream form, and the frame rate."""
    pipeline = Gst.parse_launch(
        "filesrc name=file ! parsebin ! h264parse config-interval=-1"
        " ! video/x-h264,stream-format=byte-stream,alignment=au"
        " ! appsink name=sink sync=false"
    )
    pipeline.get_by_name("file").set_property("location", path)
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    units = []
    caps = None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        caps = sample.get_caps()
        buffer = sample.get_buffer()
        units.append(buffer.extract_dup(0, buffer.get_size()))
    bus = pipeline.get_bus()
    error = bus.pop_filtered(Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if error is not None:
        err, debug = error.parse_error()
        sys.exit(f"rtsp_server.py: cannot read {path}: {err.message} ({debug})")
    if not units:
        sys.exit(f"rtsp_server.py: no H.264 video in {path}")
    rate = DEFAULT_FRAME_RATE
    ok, num, den = caps.get_structure(0).get_fraction("framerate")
    if ok and num > 0 and den > 0:
        rate = num / den
    return units, caps, rate


class Replay:
    """Feeds one media's appsrc with the file's access units at the file's frame rate,
    from the first (a key frame) to the last and around again."""

    def __init__(self, appsrc, units, rate):
        self.appsrc = appsrc
        self.units = units
        self.next = 0
        self.timer = GLib.timeout_add(max(1, round(1000 / rate)), self.push)

    def push(self):
        if self.appsrc.get_property("current-level-buffers") >= MAX_QUEUED_FRAMES:
            return GLib.SOURCE_CONTINUE
        buffer = Gst.Buffer.new_wrapped(self.units[self.next])
        if self.appsrc.emit("push-buffer", buffer) != Gst.FlowReturn.OK:
            self.timer = None
            return GLib.SOURCE_REMOVE
        self.next = (self.next + 1) % len(self.units)
        return GLib.SOURCE_CONTINUE

    def stop(self, *_):
        if self.timer is not None:
            GLib.source_remove(self.timer)
            self.timer = None


def make_factory(replayed):
    """A factory for one mount; `replayed` is (units, caps, rate) of a file, or None for
    the test pattern."""
    factory = GstRtspServer.RTSPMediaFactory()
    # Each client gets its own pipeline, so every stream starts on a key frame.
    factory.set_shared(False)
    if replayed is None:
        factory.set_launch(TEST_PATTERN)
        return factory
    units, caps, rate = replayed
    factory.set_launch(REPLAY)

    def configure(_factory, media):
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", caps)
        replay = Replay(appsrc, units, rate)
        media.connect("unprepared", replay.stop)

    factory.connect("media-configure", configure)
    return factory


USER_ROLE = "user"


def basic_auth(user, password):
    """Server-wide basic authentication that knows one user."""
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, USER_ROLE)
    auth = GstRtspServer.RTSPAuth()
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    return auth


def allow_user_role(factory):
    permissions = Gst.Structure.new_empty(USER_ROLE)
    permissions.set_value(GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    permissions.set_value(GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.add_role_from_structure(permissions)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--path", default="/stream")
    parser.add_argument("--mounts", type=int, default=1, help="serve N streams: PATH1..PATHN")
    parser.add_argument("--file", help="stream this file's H.264 video in a loop")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    if not args.path.startswith("/"):
        parser.error("--path must start with /")
    if args.mounts < 1:
        parser.error("--mounts must be at least 1")

    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    if args.user is not None:
        server.set_auth(basic_auth(args.user, args.password))
    replayed = None if args.file is None else read_access_units(args.file)
    if args.mounts == 1:
        paths = [args.path]
    else:
        paths = [f"{args.path}{number}" for number in range(1, args.mounts + 1)]
    for path in paths:
        factory = make_factory(replayed)
        if args.user is not None:
            allow_user_role(factory)
        server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp_server.py: cannot listen on {args.host}:{args.port}")

    for number in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, number, loop.quit)
    print("READY", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
