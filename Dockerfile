# syntax=docker/dockerfile:1
#
# video-pipeline on Debian 12 (bookworm): built against Debian's FFmpeg 5.1 libraries
# and run with the same libraries, without build tools.
#
#   docker build -t video-pipeline .
#   docker run -p 8002:8002 -v frames:/app/frames -v state:/app/state video-pipeline
#
# docker-compose.yml runs it with a sample camera and a frame consumer; deploy/k8s/
# runs several replicas sharing the cameras (docs/scaling.md).
#
# Hardware decoding (docs/hwaccel.md): NVIDIA through the NVIDIA container runtime
# (`--gpus all`), Intel and AMD through /dev/dri (`--device /dev/dri --group-add <gid of
# the host's render group>`).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build

# Debian's security updates replace package versions in place, so exact pins would
# break the build a few weeks later; the release (bookworm) is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        pkg-config clang libclang-dev cmake nasm \
        libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
        libavfilter-dev libavdevice-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The version shown by health/ and --version; .git is not in the build context.
ARG VIDEO_PIPELINE_VERSION=""
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/video-pipeline /usr/local/bin/video-pipeline

FROM debian:bookworm-slim

ARG VIDEO_PIPELINE_VERSION=""
LABEL org.opencontainers.image.title="video-pipeline" \
      org.opencontainers.image.description="Turns camera streams and video files into JPEG frames for AI inference" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VIDEO_PIPELINE_VERSION}" \
      org.opencontainers.image.base.name="debian:bookworm-slim"

# Only the libav libraries the binary links (they bring libavfilter, libswresample, the
# codec libraries and the VAAPI, VDPAU and QSV client libraries; libjpeg-turbo is linked
# in statically), certificates for HTTPS/RTSPS sources, and tini as PID 1.
# The user-space video drivers: Mesa's VAAPI driver (AMD) everywhere, and on amd64
# Intel's media driver (Broadwell and newer), the older i965 driver, and the QSV
# runtimes (libmfx1 up to Ice Lake, libmfx-gen1.2 for Tiger Lake and newer); vainfo
# checks a node from inside the container. NVIDIA's libraries (libcuda, libnvcuvid)
# come from the host through the NVIDIA container runtime.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libavcodec59 libavformat59 libavutil57 libswscale6 libavdevice59 \
        ca-certificates tini \
        mesa-va-drivers vainfo \
    && if [ "$(dpkg --print-architecture)" = amd64 ]; then \
        apt-get install -y --no-install-recommends \
            intel-media-va-driver i965-va-driver libmfx1 libmfx-gen1.2; \
    fi \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid so that shared volumes can be prepared on the host. The process is never
# root: group video gives access to /dev/dri card nodes on most hosts, and render nodes
# belong to the host's render group, whose number differs between hosts: add it with
# --group-add (compose: group_add, Kubernetes: supplementalGroups).
RUN useradd --system --uid 10001 --gid video --home-dir /app --shell /usr/sbin/nologin \
        video-pipeline \
    && mkdir -p /app/frames /app/videos /app/state \
    && chown -R 10001:video /app \
    && chmod 0755 /app/frames /app/videos /app/state

COPY --from=build /usr/local/bin/video-pipeline /usr/local/bin/video-pipeline

ENV HOST=0.0.0.0 \
    PORT=8002 \
    OUTPUT_FOLDER=/app/frames \
    UPLOAD_FOLDER=/app/videos \
    STATE_FILE=/app/state/state.json \
    RUST_LOG=info \
    VAAPI_DEVICE=/dev/dri/renderD128 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,video,utility

WORKDIR /app
USER 10001:video
# The frames are what consumers read; the state file lists the cameras to resume.
VOLUME ["/app/frames", "/app/state"]
EXPOSE 8002

# No curl in the image: bash asks health/ over /dev/tcp.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\"${PORT:-8002}\" && printf 'GET /api/v1/video-pipeline/health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '\"healthy\"' <&3"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/video-pipeline"]
CMD ["serve"]
