"""Clips: reading and writing (timing, audio, rotation, odd sizes), optical flow on known
motion, the warping error, stylize() on clips (both temporal modes, interrupt and resume) and
bad input. Clips are tiny (64-96 px, a dozen frames) and made here, but for the bundled one."""

import fractions
import os
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from style_tf import images, metrics, stylize, stylizer, video
from style_tf.errors import StyleError
from style_tf.paths import EXAMPLES

STYLE = str(EXAMPLES / "style" / "Van_Gogh_The_Night_Cafe_background.jpg")
BUNNY = EXAMPLES / "clips" / "bunny.mp4"
RATE = fractions.Fraction(26777, 1000)  # An odd rate, to be kept exactly.
SHIFT = (2, 1)  # The synthetic pan's motion, (dx, dy) pixels per frame.


def pan_frames(n=12, size=(48, 64), shift=SHIFT) -> list[np.ndarray]:
    """A photo panned: frame t is the window at t * shift of a larger photo, so that the true
    motion of the content between frames is -shift."""
    photo = images.load_image(EXAMPLES / "content" / "chelsea.png", max_dim=160)
    h, w = size
    return [photo[20 + t * shift[1]:20 + t * shift[1] + h, 10 + t * shift[0]:10 + t * shift[0] + w]
            for t in range(n)]


def write_clip(path, frames, rate=RATE, codec="libx264", fmt=None, pix_fmt="yuv420p", audio=True,
               rotation=0) -> None:
    """A clip of `frames` at `rate` (with a 440 Hz tone as audio), encoded near-losslessly."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, options={"crf": "1"} if codec == "libx264" else {})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        tone = out.add_stream("aac", rate=48000) if audio else None  # Before any packet is written.
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.round(image * 255).astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if audio:
            write_tone(out, tone, len(frames) / rate)


def write_tone(out, tone, seconds: float) -> None:
    """A 440 Hz tone into `tone`, an AAC stream at 48 kHz of the output container `out`."""
    samples = round(48000 * seconds)
    wave = 0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000).astype(np.float32)
    for start in range(0, samples, 1024):
        chunk = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 48000, start
        out.mux(tone.encode(chunk))
    out.mux(tone.encode(None))


@pytest.fixture(scope="module")
def pan(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "pan.mp4"
    write_clip(path, pan_frames())
    return path


def streams(path) -> dict:
    """{kind: (codec, frames or packets, seconds)} of a clip's streams, counted by demuxing."""
    out = {}
    with av.open(str(path)) as container:
        for s in container.streams:
            packets = [p for p in container.demux(s) if p.size]
            end = max(float((p.pts + p.duration) * p.time_base) for p in packets)
            out[s.type] = (s.codec_context.name, len(packets), end)
            container.seek(0)
    return out


# --- reading and writing -------------------------------------------------------------------


def test_frames_read_and_written_keep_count_rate_and_audio(pan, tmp_path):
    info = video.probe(pan)
    assert (info.width, info.height, info.rate, info.audio) == (64, 48, RATE, "aac")
    writer = video.Writer(tmp_path / "out.mp4", pan, info, (48, 64))
    frames = list(video.read(pan, (48, 64)))
    for f in frames:
        writer.write(f.image, f.time)
    assert writer.path.exists() and not (tmp_path / "out.mp4").exists()  # Only the partial while working.
    writer.finish()
    assert not writer.path.exists()
    assert len(frames) == 12 and frames[1].time == pytest.approx(1 / float(RATE), abs=1e-3)
    got = streams(tmp_path / "out.mp4")
    assert got["video"][:2] == ("h264", 12) and got["video"][2] == pytest.approx(12 / float(RATE), abs=1e-3)
    assert got["audio"][0] == "aac" and got["audio"][2] == pytest.approx(12 / float(RATE), abs=0.03)
    assert video.probe(tmp_path / "out.mp4").rate == RATE
    again = [f.image for f in video.read(tmp_path / "out.mp4", (48, 64))]
    assert np.abs(again[5] - frames[5].image).mean() < 0.03  # H.264 at crf 18: close.


@pytest.mark.parametrize("suffix,codecs", [(".webm", ("vp9", "opus")), (".gif", ("gif", None)),
                                           (".avi", ("mjpeg", "mp3float"))])
def test_other_containers_follow_the_suffix_audio_reencoded_or_dropped(pan, tmp_path, suffix, codecs):
    info = video.probe(pan)
    writer = video.Writer(tmp_path / f"out{suffix}", pan, info, (48, 64))
    for f in video.read(pan, (48, 64), start=0.1, duration=0.2):  # Frames 3..8.
        writer.write(f.image, f.time)
    writer.finish()
    got = streams(tmp_path / f"out{suffix}")
    assert got["video"][0] == codecs[0] and got["video"][1] == 6
    assert (got["audio"][0] if "audio" in got else None) == codecs[1]


def test_rotation_is_applied_and_odd_sizes_become_even(tmp_path):
    frames = [np.zeros((31, 45, 3), np.float32) for _ in range(3)]
    for f in frames:
        f[:10, :10] = 1.0  # A white corner, top left as stored.
    path = tmp_path / "odd.mkv"
    write_clip(path, frames, codec="ffv1", fmt="matroska", pix_fmt="yuv444p", audio=False, rotation=90)
    info = video.probe(path)
    assert (info.width, info.height) == (31, 45)  # Shown a quarter turn counterclockwise.
    size = video.frame_size(info, 512)
    assert size == (44, 32)  # Each side to an even one.
    upright = next(video.read(path, size)).image
    assert upright.shape == (44, 32, 3)
    assert upright[-6:, :6].mean() > 0.9 and upright[:6, :6].mean() < 0.1  # Top left went bottom left.


def test_clips_are_recognised_by_content_not_name(pan, tmp_path):
    (tmp_path / "clip").write_bytes(pan.read_bytes())
    Image.new("RGB", (8, 8)).save(tmp_path / "photo", format="PNG")
    gif = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    gif[0].save(tmp_path / "anim.gif", save_all=True, append_images=gif[1:], duration=100)
    assert video.is_clip(tmp_path / "clip")
    assert not video.is_clip(tmp_path / "photo")
    assert video.is_clip(tmp_path / "anim.gif")
    assert not video.is_clip(tmp_path / "anim.gif", animated_images=False)
    assert not video.is_clip(tmp_path / "missing.mp4")


# --- optical flow, warping error ------------------------------------------------------------


def test_flow_finds_the_pan_and_warping_matches_the_next_frame():
    a, b = pan_frames(2, size=(64, 80))
    backward = video.optical_flow(b, a)  # b(x) ~ a(x + backward(x)): the window moved by SHIFT.
    mask = video.reliable(backward, video.optical_flow(a, b))
    assert np.median(backward[..., 0]) == pytest.approx(SHIFT[0], abs=0.25)
    assert np.median(backward[..., 1]) == pytest.approx(SHIFT[1], abs=0.25)
    assert 0.7 < mask.mean() < 1.0  # The strip entering the window at the right has no source.
    assert mask[:, -1].mean() < 0.5
    warped = video.warp(a, backward)
    assert np.abs(warped - b)[mask > 0].mean() < 0.02 < np.abs(a - b).mean()


def test_warping_error_is_small_for_a_steady_clip_large_for_flicker():
    frames = pan_frames()
    rng = np.random.default_rng(0)
    flicker = [np.clip(f + rng.normal(0, 0.05, f.shape), 0, 1).astype(np.float32) for f in frames]
    pumping = [np.clip(f * (0.8 + 0.4 * (i % 2)), 0, 1) for i, f in enumerate(frames)]
    steady = metrics.warping_error(frames, frames)
    assert steady < 0.002
    assert metrics.warping_error(frames, flicker) > 5 * steady
    assert metrics.warping_error(frames, pumping) > 5 * steady
    assert np.isnan(metrics.warping_error(frames[:1], frames[:1]))


def test_blend_follows_the_previous_frame_without_washing_out_its_texture():
    rng = np.random.default_rng(0)
    smooth = np.linspace(0.3, 0.7, 96, dtype=np.float32)[None, :, None] * np.ones((64, 96, 3), np.float32)
    new, old = (np.clip(smooth + rng.normal(0, 0.1, smooth.shape), 0, 1).astype(np.float32) for _ in range(2))
    prior = video.Prior(old, np.ones((64, 96), np.float32))
    out = video.blend(new, prior, 0.5)
    detail = lambda x: x - cv2.GaussianBlur(x, (0, 0), 4.0)  # noqa: E731
    plain = new + 0.5 * (old - new)  # The average alone: its texture about 0.7x as strong.
    assert detail(plain).std() < 0.75 * detail(new).std()
    assert detail(out).std() == pytest.approx(detail(new).std(), rel=0.05)  # Kept.
    assert np.corrcoef(detail(out).ravel(), detail(old).ravel())[0, 1] > 0.6  # Half of it the old.
    assert np.abs(cv2.GaussianBlur(out - smooth, (0, 0), 8.0)).max() < 0.03  # Same picture.
    unsure = video.Prior(old, np.zeros((64, 96), np.float32))
    np.testing.assert_allclose(video.blend(new, unsure, 0.5), new, atol=1e-5)  # No flow: the new frame.


def test_a_pan_keeps_its_strokes_on_the_decoder_grid():
    photo = images.load_image(EXAMPLES / "content" / "chelsea.png", max_dim=256)
    first, second = photo[40:136, 40:168], photo[40:136, 37:165]  # The picture moved 3 px right.
    flow = np.zeros((96, 128, 2), np.float32)
    flow[..., 0] = -3.0  # From the second frame back to the first.
    state = {}
    assert video.grid_offset(state, None, (1.0, 1.0), 8) == (0, 0)
    prior = video.Prior(None, np.ones((96, 128), np.float32), flow)
    camera = video.camera_motion(prior)
    np.testing.assert_allclose(camera, (-3.0, 0.0))
    assert video.grid_offset(state, camera, (1.0, 1.0), 8) == (0, 5)  # 3 + 5: a whole cell.
    assert video.grid_offset(state, camera, (1.0, 1.0), 8) == (0, 2)  # 6 + 2.
    run = stylizer.Stylizer.load(precision="float32")
    before = run(first, [images.load_image(STYLE, max_dim=128)])
    inside = np.s_[24:-24, 32:-32]  # Away from the borders, which the pan changes.
    moved = {offset: np.abs(run(second, [images.load_image(STYLE, max_dim=128)], offset=offset)[:, 3:][inside]
                            - before[:, :-3][inside]).mean() for offset in ((0, 0), (0, 5))}
    assert moved[(0, 5)] < 0.5 * moved[(0, 0)], moved  # The same strokes, moved with the picture.


def test_a_pan_by_a_fraction_of_a_pixel_keeps_its_strokes_too():
    photo = images.load_image(EXAMPLES / "content" / "chelsea.png", max_dim=256)
    moved = cv2.warpAffine(photo, np.float32([[1, 0, 1.5], [0, 1, 0]]), photo.shape[1::-1],
                           flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT_101)  # 1.5 px right.
    first, second = photo[40:136, 40:168], np.clip(moved[40:136, 40:168], 0.0, 1.0)
    flow = np.zeros((96, 128, 2), np.float32)
    flow[..., 0] = -1.5
    state = {}
    video.grid_offset(state, None, (1.0, 1.0), 8)
    offset = video.grid_offset(state, video.camera_motion(video.Prior(None, np.ones((96, 128)), flow)),
                               (1.0, 1.0), 8)
    assert offset == pytest.approx((0.0, 6.5))
    style = [images.load_image(STYLE, max_dim=128)]
    run = stylizer.Stylizer.load(precision="float32")
    before = cv2.warpAffine(run(first, style), np.float32([[1, 0, 1.5], [0, 1, 0]]), (128, 96),
                            flags=cv2.INTER_LANCZOS4)  # Where the first frame's strokes go.
    inside = np.s_[24:-24, 32:-32]
    change = {o: np.abs(run(second, style, offset=o)[inside] - before[inside]).mean()
              for o in ((0, 0), (0, 6), (0, 7), offset)}
    assert change[offset] < 0.65 * min(change[(0, 6)], change[(0, 7)]), change  # Not the nearest whole pixel.


def test_the_blend_holds_what_moves_on_its_own_harder_than_what_moves_with_the_camera():
    flow = np.zeros((64, 96, 2), np.float32)
    flow[..., 0] = -3.0  # The camera pans.
    flow[16:48, 24:56] = (2.0, 1.0)  # Something moves the other way.
    prior = video.Prior(None, np.ones((64, 96), np.float32), flow)
    strength = video.blend_strength(prior, 0.5)
    assert strength[32, 40] == pytest.approx(0.5, abs=0.01)
    assert strength[5, 90] == pytest.approx(0.5 * video.CAMERA_SHARE, abs=0.01)
    gy, gx = np.mgrid[0:64, 0:96].astype(np.float32)
    zoom = np.stack([0.05 * (gx - 48), 0.05 * (gy - 32)], -1)  # The camera zooms: 2.4 px at the sides.
    zoom[16:48, 24:56] += (2.0, 1.0)  # The thing still moves on its own.
    strength = video.blend_strength(video.Prior(None, np.ones((64, 96), np.float32), zoom), 0.5)
    assert strength[32, 40] == pytest.approx(0.5, abs=0.01)
    assert strength[5, 90] == pytest.approx(0.5 * video.CAMERA_SHARE, abs=0.01)  # Not moving on its own.
    unsure = video.Prior(None, np.zeros((64, 96), np.float32), flow)
    assert video.camera_motion(unsure) is None and video.blend_strength(unsure, 0.5) == 0.5


def test_a_large_thing_moving_fast_does_not_bend_the_cameras_motion():
    flow = np.zeros((64, 96, 2), np.float32)  # A still camera.
    flow[:, 40:80] = (-18.0, 0.0)  # A bus crossing: 40% of the frame, fast.
    prior = video.Prior(None, np.ones((64, 96), np.float32), flow)
    np.testing.assert_allclose(video.camera_field(prior), 0.0, atol=1e-3)
    strength = video.blend_strength(prior, 0.5)
    assert strength[32, 10] == pytest.approx(0.5 * video.CAMERA_SHARE, abs=0.01)  # The street.
    assert strength[32, 60] == pytest.approx(0.5, abs=0.01)  # The bus.


# --- stylize() on clips ---------------------------------------------------------------------


def config(content, output, **kw):
    return stylize.StylizeConfig(content=str(content), styles=(STYLE,), output=str(output),
                                 **{"max_dim": 64, "progress": False, **kw})


def test_stylized_clip_keeps_timing_and_audio_and_flow_flickers_less(pan, tmp_path):
    results = {}
    for mode in ("none", "flow"):
        out = tmp_path / f"{mode}.mp4"
        result = stylize.stylize(config(pan, out, temporal=mode))
        assert result.written == [out] and not video.partial_path(out).exists()
        got = streams(out)
        assert got["video"][1] == 12 and got["video"][2] == pytest.approx(12 / float(RATE), abs=1e-3)
        assert got["audio"][0] == "aac"
        assert video.probe(out).rate == RATE
        results[mode] = metrics.warping_error([f.image for f in video.read(pan, (48, 64))],
                                              [f.image for f in video.read(out, (48, 64))])
    assert results["flow"] < 0.7 * results["none"], results


def test_interrupt_leaves_a_playable_partial_and_resume_finishes_it(pan, tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"a finished clip from before")
    engine = stylize.ENGINES["adain"]
    calls = []

    class Stopping(engine):
        def __call__(self, content, styles, weights, masks, job):
            calls.append(job.clip.index)
            if len(calls) == 6:
                job.stop.requested = True  # As Ctrl-C does, during the sixth frame.
            return super().__call__(content, styles, weights, masks, job)

    monkeypatch.setitem(stylize.ENGINES, "adain", Stopping)
    result = stylize.stylize(config(pan, out))
    assert result.interrupted and result.written == []
    assert out.read_bytes() == b"a finished clip from before"  # Replaced only by a finished clip.
    partial = video.partial_path(out)
    assert partial.name == "out.mp4.partial.mp4" and streams(partial)["video"][1] == 5
    first = [f.image for f in video.read(partial, (48, 64))]

    calls.clear()
    monkeypatch.setitem(stylize.ENGINES, "adain", engine)
    with pytest.raises(StyleError, match="other styles or settings"):
        stylize.stylize(config(pan, out, resume=True, max_dim=48))
    result = stylize.stylize(config(pan, out, resume=True))
    assert result.written == [out] and not partial.exists()
    assert streams(out)["video"][1] == 12 and "audio" in streams(out)
    resumed = [f.image for f in video.read(out, (48, 64))]
    assert np.abs(resumed[2] - first[2]).mean() < 0.02  # The partial's frames, kept.
    assert not list(tmp_path.glob(".*resumed*"))


def test_folder_of_clips_and_photos(pan, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(pan.read_bytes())
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / "photo.png")
    result = stylize.stylize(config(folder, tmp_path / "out", duration=0.2))
    assert sorted(p.name for p in result.written) == ["clip.mp4", "photo.png"]
    assert streams(tmp_path / "out" / "clip.mp4")["video"][1] == 6


def test_a_clip_to_an_image_is_its_first_frame(tmp_path):
    result = stylize.stylize(config(BUNNY, tmp_path / "first.png"))
    assert result.written and Image.open(tmp_path / "first.png").size == (64, 36)


def empty_clip(path):
    """An MP4 whose video stream holds no frame (its audio some)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        write_tone(out, out.add_stream("aac", rate=48000), 0.2)


def audio_only(path):
    with av.open(str(path), "w", format="mp4") as out:
        write_tone(out, out.add_stream("aac", rate=48000), 0.2)


@pytest.mark.parametrize("make,match", [
    (lambda p: p.write_text("not a clip"), "not a clip FFmpeg can read"),
    (lambda p: p.write_bytes(BUNNY.read_bytes()[:40000]), "truncated"),  # Its index first.
    (lambda p: p.write_bytes(BUNNY.read_bytes()[-150000:]), "not a clip FFmpeg can read"),  # Its start lost.
    (lambda p: p.write_bytes((p.parent / "whole.webm").read_bytes()[:2000]), "truncated"),  # No index.
    (audio_only, "no video stream"),
    (empty_clip, "no frames|no video stream"),
])
def test_bad_clips_fail_before_anything_is_written(tmp_path, make, match):
    bad = tmp_path / "bad.mp4"
    write_clip(tmp_path / "whole.webm", pan_frames(60, shift=(1, 0)), codec="libvpx-vp9", audio=False)
    make(bad)
    (tmp_path / "whole.webm").unlink()
    out = tmp_path / "out.mp4"
    with pytest.raises(StyleError, match=match):
        stylize.stylize(config(bad, out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


def test_a_piece_past_the_end_and_huge_frames_are_refused(pan, tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    with pytest.raises(StyleError, match="no frames from 9 s"):
        stylize.stylize(config(pan, out, start=9))
    monkeypatch.setattr(images, "MAX_PIXELS", 64 * 47)
    with pytest.raises(StyleError, match="larger than 3008 pixels"):
        stylize.stylize(config(pan, out))
    assert not out.exists() and not video.partial_path(out).exists()


def test_cli_one_line_exit_2_and_resume_is_a_flag_of_both_engines(pan, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = tmp_path / "out.mp4"
    (tmp_path / "file").write_text("")
    r = subprocess.run([sys.executable, "-m", "style_tf.run", f"--content={pan}", f"--style={STYLE}",
                        f"--output={tmp_path / 'file' / 'out.mp4'}", "--resume", "--max_dim=48"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "does not exist" in r.stderr
    r = subprocess.run([sys.executable, "-m", "style_tf.run", f"--content={pan}", f"--style={STYLE}",
                        f"--output={out}", "--resume", "--max_dim=48"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and "nothing to resume" in r.stderr and not out.exists(), r.stderr


def test_temporal_loss_counts_only_reliable_pixels():
    from style_tf import losses

    image, warped = np.zeros((1, 4, 4, 3), np.float32), np.ones((1, 4, 4, 3), np.float32)
    mask = np.zeros((1, 4, 4, 1), np.float32)
    mask[:, :2] = 1.0
    assert float(losses.temporal_loss(image, warped, mask)) == pytest.approx(0.5)
    assert float(losses.temporal_loss(image, warped, 0 * mask)) == 0.0


def test_optimize_frames_after_the_first_start_from_the_warped_result(pan, tmp_path, monkeypatch):
    from style_tf import optimize

    seen = []
    real = optimize.optimize

    def spy(content, styles, config, *args, **kw):
        seen.append((config.steps, config.scales, kw["init_image"] is not None, kw["temporal"] is not None))
        return real(content, styles, config, *args, **kw)

    monkeypatch.setattr(optimize, "optimize", spy)
    engine = optimize.OptimizeConfig(steps=3, video_steps=2, scales=(24,), log_every=0)
    result = stylize.stylize(config(pan, tmp_path / "out.mp4", method="optimize", engine=engine,
                                    max_dim=32, duration=0.12))
    assert result.written and streams(tmp_path / "out.mp4")["video"][1] == 4
    assert seen == [(3, (24,), False, False)] + [(2, (), True, True)] * 3
