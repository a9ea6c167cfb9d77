"""Clips in and out, streamed, and what ties one frame to the next (optical flow, blending).

With `images.py` the one place pixels enter and leave. Clips are read and written with PyAV,
whose wheel carries FFmpeg (H.264, VP9, MJPEG, GIF and more): nothing to install by hand.
Frames are decoded one at a time, so memory stays flat however long the clip. A frame is
`(H, W, 3)` float32 RGB in [0, 1], upright (rotation metadata applied), its sides even
(encoders of 4:2:0 video want even ones).

Written clips keep the source's frame timestamps (so a 26.777 fps clip stays 26.777 fps) and
its audio: packets copied where the container takes the codec, re-encoded where it must be
(AAC in MP4/MOV, Opus in WebM), dropped for GIF. Work goes to `<output>.partial.<ext>`, which
an interruption leaves closed and playable, and which is renamed onto the output only when
the clip is finished.
"""

import dataclasses
import fractions
import hashlib
import os
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
from absl import logging
from PIL import Image, UnidentifiedImageError

from style_tf import images
from style_tf.errors import StyleError

# Output suffix -> (FFmpeg container, video encoder, pixel format, audio encoder or None).
# H.264 in MP4 plays in browsers; the others follow what their containers usually hold.
FORMATS = {
    ".mp4": ("mp4", "libx264", "yuv420p", "aac"),
    ".mov": ("mov", "libx264", "yuv420p", "aac"),
    ".mkv": ("matroska", "libx264", "yuv420p", "aac"),
    ".webm": ("webm", "libvpx-vp9", "yuv420p", "libopus"),
    ".avi": ("avi", "mjpeg", "yuvj420p", "libmp3lame"),
    ".gif": ("gif", "gif", "rgb8", None),
}
# Audio codecs each container takes as they are (copied without re-encoding).
AUDIO_COPY = {".mp4": {"aac", "mp3", "alac", "opus", "ac3"}, ".mov": {"aac", "mp3", "alac", "pcm_s16le"},
              ".mkv": {"aac", "mp3", "opus", "vorbis", "flac", "ac3", "pcm_s16le"},
              ".webm": {"opus", "vorbis"}, ".avi": {"mp3", "pcm_s16le", "ac3"}, ".gif": set()}
# Encoder options: visually lossless enough that a stylized texture is not smeared.
_OPTIONS = {"libx264": {"crf": "18", "preset": "medium"}, "libvpx-vp9": {"crf": "24", "b": "0"},
            "mjpeg": {"q:v": "3"}}
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, IndexError)


@dataclasses.dataclass(frozen=True)
class Info:
    """What a clip holds, as read from its header."""

    width: int  # Upright frame size, before any resizing.
    height: int
    rate: fractions.Fraction  # Average frame rate (frames/s).
    frames: int  # Frame count, from the header or its duration (an estimate for progress).
    duration: float  # Seconds.
    audio: str | None  # The first audio stream's codec name, None without audio.
    time_base: fractions.Fraction  # Of the video stream's timestamps (kept in the output).


def is_clip(path: str | os.PathLike, animated_images: bool = True) -> bool:
    """Whether `path` holds a clip, judged by its contents, not its name.

    Single images are not clips (PIL opens them: a PNG without a suffix stays an image);
    animated GIF, PNG and WebP are if `animated_images`; anything else FFmpeg opens with a
    video stream is.
    """
    try:
        with Image.open(path) as img:
            return animated_images and bool(getattr(img, "is_animated", False))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        pass
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.video)
    except _AV_ERRORS:
        return False


def is_video_name(path: str | os.PathLike) -> bool:
    """Whether an output path names a clip (its suffix is one of FORMATS)."""
    return Path(path).suffix.lower() in FORMATS


def probe(path: str | os.PathLike) -> Info:
    """The clip's `Info` (its first frame is decoded, for its rotation and to know it has one).

    Raises:
      StyleError: not a clip FFmpeg reads, no video stream, no frames, or frames over
        images.MAX_PIXELS (as images are refused).
    """
    with _open(path) as container:
        stream = _video_stream(container, path)
        ctx = stream.codec_context
        if ctx.width * ctx.height > images.MAX_PIXELS:
            raise StyleError(f"{path}: frames are larger than {images.MAX_PIXELS} pixels")
        rate = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
        duration = float(stream.duration * stream.time_base) if stream.duration else (
            container.duration / av.time_base if container.duration else 0.0)
        frames = stream.frames or round(duration * rate)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        _check_whole(container, stream, path)
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as e:
            raise StyleError(f"{path}: cannot decode the clip ({_why(e)})") from None
        if first is None:
            raise StyleError(f"{path}: the clip holds no frames")
        width, height = first.width, first.height
        if round((first.rotation or 0) / 90) % 2:  # Shown turned a quarter: upright sides swap.
            width, height = height, width
    return Info(width, height, fractions.Fraction(rate), max(frames, 1), duration, audio,
                fractions.Fraction(stream.time_base))


def _check_whole(container, stream, path) -> None:
    """Raises StyleError if the container's index (MP4, MOV) places frames past the file's end:
    a truncated download or copy, which would otherwise give a shorter clip silently."""
    entries = stream.index_entries
    if not len(entries) or not os.path.isfile(path):
        return
    last = entries[len(entries) - 1]
    if last.pos + last.size > os.path.getsize(path):
        raise StyleError(f"{path}: the clip is truncated (its index holds frames past the file's end)")


def _open(path, mode: str = "r", **kwargs):
    try:
        return av.open(str(path), mode, **kwargs)
    except av.FFmpegError as e:
        raise StyleError(f"{path}: not a clip FFmpeg can read ({_why(e)})") from None


def _why(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e).splitlines()[0]


def _video_stream(container, path):
    if not container.streams.video:
        raise StyleError(f"{path}: holds no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # Decode on several threads (frames come out in order).
    return stream


def frame_size(info: Info, max_dim: int) -> tuple[int, int]:
    """(height, width) of the frames `read` gives: upright, longest side at most `max_dim`
    (never enlarged), both even."""
    h, w = info.height, info.width
    scale = min(1.0, max_dim / max(h, w))
    return max(2, round(h * scale / 2) * 2), max(2, round(w * scale / 2) * 2)


@dataclasses.dataclass
class Frame:
    """One decoded frame."""

    image: np.ndarray  # (H, W, 3) float32 RGB in [0, 1], upright.
    time: float  # Seconds from the start of the source.


def read(path: str | os.PathLike, size: tuple[int, int], start: float = 0.0,
         duration: float | None = None) -> Iterator[Frame]:
    """The clip's frames from `start` for `duration` seconds, decoded one at a time.

    Args:
      path: the clip.
      size: (height, width) of the upright frames (`frame_size`).
      start, duration: the piece wanted, in seconds (None: to the end).

    Raises:
      StyleError: not a clip, no video stream, or data FFmpeg cannot decode.
    """
    end = float("inf") if duration is None else start + duration
    with _open(path) as container:
        stream = _video_stream(container, path)
        if start > 0:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        try:
            for frame in container.decode(stream):
                time = _time(frame)
                if time < start - 1e-6:
                    continue
                if time >= end - 1e-6:
                    break
                yield Frame(_upright(frame, size), time)
        except av.FFmpegError as e:
            raise StyleError(f"{path}: cannot decode the clip ({_why(e)})") from None


def _time(frame) -> float:
    return float(frame.pts * frame.time_base) if frame.pts is not None else 0.0


def _upright(frame, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float32 of a decoded frame, rotated upright and resized to `size`."""
    turns = round((frame.rotation or 0) / 90) % 4  # Counterclockwise quarter turns to display it.
    h, w = size if turns % 2 == 0 else size[::-1]
    rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, turns), np.float32) / 255.0  # (H, W, 3)


def first_frame(path: str | os.PathLike, max_dim: int | None = None) -> np.ndarray:
    """The clip's first frame, upright, longest side at most `max_dim`."""
    info = probe(path)
    size = frame_size(info, max_dim or max(info.width, info.height))
    for frame in read(path, size):
        return frame.image
    raise StyleError(f"{path}: the clip holds no frames")


def note(path: str | os.PathLike) -> str | None:
    """The digest of the note a `Writer` stored in a clip (None where the format keeps none)."""
    with _open(path) as container:
        found = {k.lower(): v for k, v in container.metadata.items()}.get("comment")
    return found


def matches(path: str | os.PathLike, note_text: str) -> bool:
    """Whether the clip at `path` was written with the note `note_text` (True where its format
    keeps no note: GIF)."""
    found = note(path)
    return found is None or found == _digest(note_text)


def _digest(text: str) -> str:
    return "style_tf " + hashlib.sha1(text.encode()).hexdigest()


def partial_path(output: str | os.PathLike) -> Path:
    """Where a clip is written while it is made: `<output>.partial.<ext>`."""
    output = Path(output)
    return output.with_name(f"{output.name}.partial{output.suffix}")


class Writer:
    """Encodes frames into `partial_path(output)`, with the source's timing and audio.

    Frames are given with their time in the source; the written clip starts at the first
    one's (time 0 there), and the source's audio from that time on is copied or re-encoded
    alongside, up to the end of the last frame. `close()` leaves a playable file; `finish()`
    renames it onto the output; `discard()` removes it.
    """

    def __init__(self, output: str | os.PathLike, source: str | os.PathLike, info: Info,
                 size: tuple[int, int], note: str = ""):
        """Opens the partial file (replacing one there) and its streams.

        Args:
          output: the finished clip's path; its suffix picks the format (FORMATS).
          source: the clip whose audio is carried over.
          info: the source's `Info` (its rate).
          size: (height, width) of the frames to be written, even.
          note: what made the clip; its digest goes into the file's comment (`note`), where
            formats keep one (GIF does not).
        """
        self.output, self.path = Path(output), partial_path(output)
        self.source, self.rate = source, info.rate
        fmt, codec, pix_fmt, self._audio_codec = FORMATS[self.output.suffix.lower()]
        try:
            self.container = av.open(str(self.path), "w", format=fmt)
        except (av.FFmpegError, OSError) as e:
            raise StyleError(f"{self.path}: cannot write there ({_why(e)})") from None
        self.container.metadata["comment"] = _digest(note)
        self.stream = self.container.add_stream(codec, rate=info.rate, options=_OPTIONS.get(codec, {}))
        self.stream.height, self.stream.width = size
        self.stream.pix_fmt = pix_fmt
        # AVI counts frames at a constant rate; GIF counts hundredths; the others keep the
        # source's timestamps as they are (so its exact rate).
        self.time_base = (1 / fractions.Fraction(info.rate) if fmt == "avi" else
                          fractions.Fraction(1, 100) if fmt == "gif" else info.time_base)
        self.stream.codec_context.time_base = self.time_base
        if fmt == "mp4":
            self.container.options["movflags"] = "+faststart"  # Browsers start playing at once.
        self.origin = None  # Source time of the first frame written.
        self.last_time, self.frames, self._last_pts = None, 0, -1
        self._audio = _AudioCopy(self, source, info) if info.audio else None

    def write(self, image: np.ndarray, time: float) -> None:
        """Encodes `(H, W, 3)` RGB in [0, 1], shown at `time` seconds of the source."""
        if self.origin is None:
            self.origin = time
        if self._audio is not None:
            self._audio.pump(time)
        pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        pts = max(round((time - self.origin) / self.time_base), self._last_pts + 1)  # Increasing.
        frame.pts, frame.time_base, self._last_pts = pts, self.time_base, pts
        self._mux(self.stream.encode(frame))
        self.last_time, self.frames = time, self.frames + 1

    def _mux(self, packets) -> None:
        try:
            self.container.mux(packets)
        except (av.FFmpegError, OSError) as e:  # A full disk, a removed folder.
            raise StyleError(f"{self.path}: cannot write it ({_why(e)})") from None

    def close(self) -> None:
        """Flushes the encoders and the audio up to the end of the last frame; the file at
        `self.path` is then a playable clip of the frames written."""
        if self.container is None:
            return
        try:
            self._mux(self.stream.encode(None))
            if self._audio is not None and self.last_time is not None:
                self._audio.pump(self.last_time + 1 / float(self.rate), final=True)
        finally:
            self.container.close()
            self.container = None
            if self._audio is not None:
                self._audio.close()

    def finish(self) -> Path:
        """Closes and renames the partial file onto the output (replacing a clip there whole)."""
        self.close()
        os.replace(self.path, self.output)
        return self.output

    def discard(self) -> None:
        """Closes and removes the partial file."""
        try:
            self.close()
        finally:
            self.path.unlink(missing_ok=True)


class _AudioCopy:
    """The source's first audio stream carried into a `Writer`: packets copied where the
    container takes the codec, decoded and re-encoded where it does not, dropped for GIF."""

    def __init__(self, writer: Writer, source, info: Info):
        self.writer, self.out = writer, None
        suffix = writer.output.suffix.lower()
        if writer._audio_codec is None:
            logging.info("%s: %s holds no audio; the clip's is left out", writer.output, suffix)
            self.input = None
            return
        self.input = _open(source)
        self.stream = self.input.streams.audio[0]
        self.copy = info.audio in AUDIO_COPY[suffix]
        if self.copy:
            self.out = writer.container.add_stream_from_template(self.stream)
        else:
            rate = 48000 if writer._audio_codec == "libopus" else self.stream.codec_context.sample_rate
            self.out = writer.container.add_stream(writer._audio_codec, rate=rate)
            self.out.layout = "stereo" if self.stream.codec_context.channels > 1 else "mono"
            logging.info("%s: audio re-encoded from %s to %s (%s does not hold %s)", writer.output,
                         info.audio, writer._audio_codec.removeprefix("lib"), suffix, info.audio)
        self.packets = None
        self.shift = 0

    def pump(self, until: float, final: bool = False) -> None:
        """Muxes the source's audio that starts before `until` seconds of the source (the
        muxer interleaves it with the video)."""
        if self.out is None:
            return
        if self.packets is None:
            origin = self.writer.origin
            if origin > 0:
                self.input.seek(int(origin / self.stream.time_base), stream=self.stream, backward=True)
            self.shift = round(origin / self.stream.time_base)
            self.packets = self.input.demux(self.stream)
            self.pending = None
        while True:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None or packet.pts is None:
                if packet is None:
                    break
                continue
            start = float(packet.pts * self.stream.time_base)
            if start >= until:
                self.pending = packet
                break
            if start + float((packet.duration or 0) * self.stream.time_base) <= self.writer.origin:
                continue  # Before the first frame.
            self._write(packet)
        if final:
            self._flush()

    def _write(self, packet) -> None:
        if self.copy:
            packet.pts -= self.shift
            packet.dts = None if packet.dts is None else packet.dts - self.shift
            if packet.pts < 0:
                return
            packet.stream = self.out
            self.writer._mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # The encoder counts samples.
            self.writer._mux(self.out.encode(frame))

    def _flush(self) -> None:
        if not self.copy:
            self.writer._mux(self.out.encode(None))

    def close(self) -> None:
        if self.input is not None:
            self.input.close()
            self.input = None


# --- from one frame to the next: optical flow, occlusions, the previous result warped ------


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow from `source` to `target` (OpenCV's DIS), such that
    source(x) ~ target(x + flow(x)).

    Args:
      source, target: (H, W, 3) RGB in [0, 1].

    Returns:
      (H, W, 2) float32 displacements (dx, dy) in pixels.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray(source), _gray(target), None)


def _gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luminance of (H, W, 3) RGB in [0, 1]."""
    return np.round(np.asarray(image, np.float32) @ np.float32([0.299, 0.587, 0.114]) * 255).astype(np.uint8)


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """`image` sampled at x + flow(x) (`interpolation`, bilinear by default; edges repeated):
    (H, W, C) float32."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(np.asarray(image, np.float32), gx + flow[..., 0], gy + flow[..., 1],
                    interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def reliable(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Where a backward flow can be trusted: (H, W) float32, 1 or 0.

    The forward-backward check of Sundaram et al. (2010), as Ruder et al. (2016) use it: a
    pixel followed back to the previous frame and forward again must return where it
    started (else it was occluded, or the flow is wrong); pixels on motion boundaries and
    those whose source lies outside the frame are left out too.

    Args:
      backward: (H, W, 2) flow from the current frame to the previous one.
      forward: (H, W, 2) flow from the previous frame to the current one.
    """
    there = warp(forward, backward)  # (H, W, 2) the forward flow where each pixel came from.
    bx, by, tx, ty = backward[..., 0], backward[..., 1], there[..., 0], there[..., 1]
    size = bx * bx + by * by  # (Components, not sums over the last axis: a third of the time.)
    consistent = np.square(bx + tx) + np.square(by + ty) <= 0.01 * (size + tx * tx + ty * ty) + 0.5
    edge = sum(np.square(d) for d in (*np.gradient(bx), *np.gradient(by))) > 0.01 * size + 0.002
    h, w = backward.shape[:2]
    x, y = np.arange(w, dtype=np.float32) + bx, np.arange(h, dtype=np.float32)[:, None] + by
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return (consistent & ~edge & inside).astype(np.float32)


@dataclasses.dataclass
class Prior:
    """The previous stylized frame carried onto the current one."""

    warped: np.ndarray  # (H, W, 3) the previous stylized frame warped by the input frames' flow.
    mask: np.ndarray  # (H, W) 1 where the flow is reliable, 0 where occluded or unsure.
    flow: np.ndarray | None = None  # (H, W, 2) the flow from this frame to the previous one.


@dataclasses.dataclass
class ClipFrame:
    """What an engine is told about a frame of a clip (`stylize.Job.clip`)."""

    index: int  # The frame's number in the piece stylized (0: the first).
    steady: bool  # --temporal=flow: keep the clip steady (the engine's running state, the prior).
    prior: Prior | None  # The previous result warped onto this frame (None: first frame, or not steady).
    state: dict  # The engine's memory across the clip (e.g. AdaIN's running content statistics).


def grid_offset(state: dict, camera: np.ndarray | None, scale: tuple[float, float],
                cell: int) -> tuple[float, float]:
    """Where a clip's frame goes on a network's grid of `cell`-pixel cells: (rows, columns) it
    is moved down and right by, each in [0, cell), that follow the camera.

    A decoder that upsamples by `cell` paints its strokes cell by cell: when the camera pans,
    the picture slides across the cells and each frame gets new strokes, the flicker that
    `blend` can only average away (at a cost in style). Padding each frame by the camera's
    motion so far (the median of the reliable flow, summed over the clip, modulo `cell`) keeps
    the picture where it was on the grid, to a fraction of a pixel (a slow pan moves a fraction
    a frame), so a pan keeps its strokes (benchmarks/RESULTS.md, "Video").

    Args:
      state: the clip's memory across frames (the motion so far is kept in it as "motion").
      camera: the frame's `camera_motion` (None: the first frame, or no reliable flow).
      scale: (rows, columns) of the network's image per pixel of the frame.
      cell: the grid's cell, in pixels of the network's image.
    """
    motion = state.get("motion", np.zeros(2))
    if camera is not None:  # The flow goes back to the previous frame: the picture moved by its opposite.
        motion = motion - camera[::-1] * np.asarray(scale)
    state["motion"] = motion
    return tuple(float(v) for v in (-motion) % cell)


# `blend_strength`: pixels moving with the camera take this share of --temporal_blend; those
# moving more than OWN_MOTION px a frame apart from it take all (benchmarks/RESULTS.md, "Video").
CAMERA_SHARE = 0.4
OWN_MOTION = 1.0


def camera_motion(prior: Prior) -> np.ndarray | None:
    """The flow of `prior` where most of the picture goes with the camera: the median (dx, dy)
    of its reliable pixels (None without a flow or a reliable pixel)."""
    if prior.flow is None or not prior.mask.any():
        return None
    return np.median(prior.flow[prior.mask > 0], axis=0)


def camera_field(prior: Prior) -> np.ndarray:
    """The flow the camera alone makes: (H, W, 2), an affine motion (pan, tilt, zoom, roll) fitted
    by least squares to the reliable flow (every 7th pixel) within 3 OWN_MOTION px of its
    median, then again to that within OWN_MOTION px of the first fit. Starting from the
    median, not from a fit to all of it, keeps a large thing that moves on its own (a bus
    crossing a still street) from bending the camera's motion, which took every pixel for one
    that moves on its own (benchmarks/RESULTS.md, "Video")."""
    h, w = prior.flow.shape[:2]
    sample = np.flatnonzero(prior.mask.ravel() > 0)[::7]
    flow = prior.flow.reshape(-1, 2)[sample]  # (N, 2)
    basis = np.stack([sample % w, sample // w, np.ones_like(sample)], -1).astype(np.float32)  # (N, 3)
    coef = np.zeros((3, 2), np.float32)  # x, y, 1 -> (dx, dy)
    coef[2] = np.median(flow, axis=0) if sample.size else 0.0
    for near in (3.0 * OWN_MOTION, OWN_MOTION):
        use = np.abs(flow - basis @ coef).max(axis=-1) <= near
        if not use.any():
            break
        coef = np.linalg.lstsq(basis[use], flow[use], rcond=None)[0]
    columns, rows = np.arange(w, dtype=np.float32)[:, None], np.arange(h, dtype=np.float32)[:, None, None]
    return (columns * coef[0] + rows * coef[1] + coef[2]).astype(np.float32)


def _apart(flow: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(H, W) the larger of the x and y differences of two (H, W, 2) flows."""
    d = np.abs(flow - other)
    return np.maximum(d[..., 0], d[..., 1])


def blend_strength(prior: Prior, strength: float) -> np.ndarray | float:
    """How much of the warped previous result `blend` takes at each pixel: (H, W) float32, or
    `strength` everywhere without a flow or a reliable pixel.

    Where the picture moves with the camera (`camera_field`), `grid_offset` keeps its strokes
    (all of them in a pan, most in a zoom), and a strong blend would only blur them (the
    previous result is resampled by the warp in every frame): those pixels get CAMERA_SHARE of
    `strength`. Things that move on their own (more than OWN_MOTION px a frame from the
    camera's motion) are painted anew in each frame, and get all of it."""
    if prior.flow is None or not prior.mask.any():
        return strength
    own = (_apart(prior.flow, camera_field(prior)) > OWN_MOTION).astype(np.float32)
    own = cv2.GaussianBlur(own, (0, 0), 4.0)  # No seam round a moving thing.
    return (strength * (CAMERA_SHARE + (1.0 - CAMERA_SHARE) * own)).astype(np.float32)


# How the previous result is warped onto a frame: Lanczos, sharper than bilinear, whose blur the
# blend carried into every later frame (benchmarks/RESULTS.md, "Video").
WARP_INTERP = cv2.INTER_LANCZOS4


class Track:
    """Follows a clip's input frames and results, and gives each new frame its `Prior`."""

    def __init__(self):
        self.frame = None  # (H, W, 3) the previous input frame.
        self.result = None  # (H, W, 3) its stylized result.

    def prior(self, frame: np.ndarray) -> Prior | None:
        """The previous result warped onto `frame` (None for the first frame)."""
        if self.frame is None:
            return None
        backward = optical_flow(frame, self.frame)
        forward = optical_flow(self.frame, frame)
        return Prior(warp(self.result, backward, WARP_INTERP), reliable(backward, forward), backward)

    def update(self, frame: np.ndarray, result: np.ndarray) -> None:
        """Remembers `frame` and its result for the next frame's prior."""
        self.frame, self.result = frame, result


# The bands (Gaussian sigmas, px) whose texture energy `blend` gives back: the decoder's strokes.
DETAIL_SIGMAS = (1.0, 2.0, 4.0)


def blend(image: np.ndarray, prior: Prior, strength) -> np.ndarray:
    """`image` moved toward the warped previous result by `strength` (0..1, or (H, W) of them)
    where the flow is reliable, with the fine detail's contrast of `image` kept: (H, W, 3) float32.

    Averaging two frames' brushwork (and a frame's with every earlier one, since the previous
    result was blended too) washes it out; `keep_detail` gives the texture its strength back
    while it follows the previous frame's placement (benchmarks/RESULTS.md, "Video")."""
    weight = (np.asarray(strength, np.float32) * prior.mask)[..., None]  # (H, W, 1)
    mixed = (image + weight * (prior.warped - image)).astype(np.float32)
    return np.clip(keep_detail(mixed, image, DETAIL_SIGMAS), 0.0, 1.0)


def keep_detail(image: np.ndarray, reference: np.ndarray, sigmas) -> np.ndarray:
    """`image` with each detail band (differences of Gaussians of `sigmas`, px, finest first)
    scaled, per channel, to the energy that band has in `reference`: (H, W, C) float32, C <= 4
    (OpenCV's per-channel scalars). What averaging or resampling took from the texture's
    contrast is given back."""
    image, reference = np.asarray(image, np.float32), np.ascontiguousarray(reference, np.float32)
    out, rest, rest_reference = image, image, reference  # (OpenCV's arithmetic: cheaper than numpy's.)
    for sigma in sigmas:
        low = cv2.GaussianBlur(rest, (0, 0), sigma)
        low_reference = cv2.GaussianBlur(rest_reference, (0, 0), sigma)
        band = cv2.subtract(rest, low)
        gain = _stds(cv2.subtract(rest_reference, low_reference)) / np.maximum(_stds(band), 1e-6) - 1.0
        out = cv2.add(out, cv2.multiply(band, (*gain.tolist(), 0.0)))
        rest, rest_reference = low, low_reference
    return out


def _stds(image: np.ndarray) -> np.ndarray:
    """(C,) float32 standard deviations of an (H, W, C) image's channels (OpenCV's, in float64:
    0.05 ms against numpy's 4 ms over two axes at 512x288)."""
    return cv2.meanStdDev(np.ascontiguousarray(image))[1].ravel().astype(np.float32)
