"""A frame consumer, as an AI container reads video-pipeline's shared volume.

Every INTERVAL seconds it looks at each camera folder under FRAMES
(OUTPUT_FOLDER/<camera_id>/), reads the camera's newest frame and hands it to
`infer`, which here prints one JSON line per frame. Standard library only.

The newest frame is found in one of the ways the integration guide shows:

- latest: `latest.jpg`, which always holds the newest complete frame (the default);
- mtime:  the `frame_*.jpg` with the newest modification time;
- sorted: the last `frame_*.jpg` in name order (breaks past frame_9999.jpg, which
  sorts before frame_10000.jpg: prefer latest).

A frame is written under a temporary name that does not end in `.jpg` and renamed
into place, so whatever the glob finds is complete; a frame may be deleted by the
retention limits between finding and opening it, which counts as no frame this time.

    python3 consumer.py --frames /shared/frames [--style latest] [--interval 0.5]
"""

import argparse
import glob
import hashlib
import json
import os
import sys
import time


def newest_frame(camera_dir, style):
    """The path of the camera's newest frame, or None."""
    if style == "latest":
        path = os.path.join(camera_dir, "latest.jpg")
        return path if os.path.exists(path) else None
    frames = glob.glob(os.path.join(camera_dir, "frame_*.jpg"))
    if style == "sorted":
        return sorted(frames)[-1] if frames else None
    return max(frames, key=modified, default=None)


def modified(path):
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:
        return 0.0


def read_frame(path):
    """The file's bytes, or None when it was deleted since it was found."""
    try:
        with open(path, "rb") as frame:
            return frame.read()
    except FileNotFoundError:
        return None


def complete(jpeg):
    """Starts with SOI and ends with EOI, as every whole JPEG does."""
    return jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")


def infer(camera, path, jpeg):
    """Where a model would run; here one line per frame."""
    print(
        json.dumps(
            {
                "camera": camera,
                "file": os.path.basename(path),
                "bytes": len(jpeg),
                "sha256": hashlib.sha256(jpeg).hexdigest()[:16],
                "complete": complete(jpeg),
            }
        ),
        flush=True,
    )


def poll(frames_dir, style):
    """One look at every camera folder; returns how many frames were read."""
    read = 0
    try:
        cameras = sorted(os.listdir(frames_dir))
    except FileNotFoundError:
        return 0
    for camera in cameras:
        camera_dir = os.path.join(frames_dir, camera)
        if camera.startswith(".") or not os.path.isdir(camera_dir):
            continue
        path = newest_frame(camera_dir, style)
        jpeg = read_frame(path) if path else None
        if jpeg is not None:
            infer(camera, path, jpeg)
            read += 1
    return read


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="/shared/frames", help="OUTPUT_FOLDER, mounted read-only")
    parser.add_argument("--style", choices=["latest", "mtime", "sorted"], default="latest")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between looks")
    parser.add_argument("--iterations", type=int, default=0, help="looks before exiting; 0: forever")
    args = parser.parse_args()
    done = 0
    while args.iterations == 0 or done < args.iterations:
        poll(args.frames, args.style)
        done += 1
        time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
