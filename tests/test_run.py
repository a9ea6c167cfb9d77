"""`python -m style_tf.run` as a user meets it: subprocesses, exit codes, files on disk."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from style_tf.paths import EXAMPLES

STYLE = str(EXAMPLES / "style" / "Van_Gogh_The_Night_Cafe_background.jpg")
FAST = ["--method=optimize", "--max_dim=48", "--steps=2", "--scales=", "--noprogress"]


def run(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "style_tf.run", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


def test_writes_output_and_says_where(tmp_path, photo):
    out = tmp_path / "out.png"
    r = run(f"--content={photo}", f"--style={STYLE}", f"--output={out}", "--plot", "--save_every=1", *FAST)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    assert Image.open(out).size == (48, 34)
    assert (tmp_path / "out_loss.png").is_file() and (tmp_path / "out_00002.png").is_file()


@pytest.mark.parametrize("bad,match", [
    (["--content=/nonexistent.png"], "no such file"),
    (["--style=NOTAFILE"], "no such file"),
    ([f"--style={EXAMPLES / 'style'}"], "style is a folder; --style takes image files"),
    ([f"--style_masks={EXAMPLES / 'style'}"], "style is a folder; --style_masks takes image files"),
    (["--style_weights=1,2"], "style weights"),
    (["--steps=-1"], "steps, video_steps and adam_after must be >= 0"),
    (["--style_layers=block1_conv1,block9_conv9"], "unknown vgg19 layer 'block9_conv9'"),
    (["--output=/nonexistent_dir/x.png"], "does not exist"),
    (["--output=out.gif"], "output must end in"),
    (["--alpha=2"], "alpha must be in 0..1"),
    (["--face_size=-1"], "face_size must be >= 0"),
    (["--face_size=100"], "--face_size: an option of --method=adain, not of optimize"),
    (["--method=adain"], "--steps, --scales: options of --method=optimize, not of adain"),
    (["--adam_after=10", "--optimizer=adam"], "--adam_after: an option of --optimizer=lbfgs, not of adam"),
    (["--style_weight=inf"], "finite number"),
    (["--style_weight=1e30"], "not finite at step 1"),  # Overflows float32 from the start.
    # Flags absl cannot parse take the same user-error path.
    (["--method=fast"], "unknown engine 'fast'"),
    (["--max_dim=big"], "--max_dim: 'big' is not a whole number"),
    (["--foo"], "Unknown command line flag 'foo'"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, photo, bad, match):
    out = tmp_path / "out.png"
    out.write_bytes(b"old result")
    args = [f"--content={photo}", f"--style={STYLE}", f"--output={out}", *FAST]
    r = run(*args, *bad, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and match in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert out.read_bytes() == b"old result"
    assert sorted(os.listdir(tmp_path)) == ["out.png", "photo.png"]


@pytest.mark.parametrize("where", ["content", "style"])
def test_output_never_overwrites_an_input(tmp_path, photo, where):
    before = photo.read_bytes()
    content, style = (photo, STYLE) if where == "content" else (STYLE, photo)
    r = run(f"--content={content}", f"--style={style}", f"--output={photo}", "--max_dim=48")
    assert r.returncode == 2 and "would overwrite an input" in r.stderr, r.stderr
    assert photo.read_bytes() == before


def test_help_exits_0():
    r = run("--help")
    assert r.returncode == 0 and "--content" in r.stdout, r.stderr


def test_folder_run_skips_bad_files(tmp_path, photo):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo.read_bytes())
    (folder / "b.jpg").write_bytes(b"garbage")
    r = run(f"--content={folder}", f"--style={STYLE}", f"--output={tmp_path / 'out'}", *FAST)
    assert r.returncode == 1
    assert (tmp_path / "out" / "a.png").is_file() and not (tmp_path / "out" / "b.png").exists()
    assert r.stderr.count("b.jpg") == 1 and "Traceback" not in r.stderr  # Said once.
    assert "failed: 1 of 2 files" in r.stderr


def test_sigint_saves_current_image(tmp_path, photo):
    import signal
    import time

    out = tmp_path / "out.png"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "style_tf.run", f"--content={photo}",
                             f"--style={STYLE}", f"--output={out}", "--method=optimize",
                             "--max_dim=48", "--scales=", "--steps=100000", "--log_every=1", "--noprogress"],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 240
    for line in proc.stderr:  # Wait until the optimisation is under way.
        if "step 3 loss" in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and "Traceback" not in err
    assert "done in" not in err and "done after" not in err  # Stopped, not done.
    assert Image.open(out).size == (48, 34)


def test_adain_is_the_default_method_with_bundled_decoder(tmp_path, photo):
    out = tmp_path / "a.png"
    r = run(f"--content={photo}", f"--style={STYLE}", f"--output={out}", "--alpha=0.7",
            "--preserve_color=histogram", "--max_dim=48")
    assert "step 50 loss" not in r.stderr  # The optimisation would log it (log_every 50).
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (48, 34)


def test_interrupt_then_resume_equals_straight_run(tmp_path, photo):
    import signal

    args = [f"--content={photo}", f"--style={STYLE}", "--method=optimize", "--max_dim=48",
            "--scales=24", "--steps=20", "--optimizer=adam", "--noprogress"]
    straight = tmp_path / "straight.png"
    assert run(*args, f"--output={straight}").returncode == 0
    out = tmp_path / "out.png"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "style_tf.run", *args, f"--output={out}",
                             "--log_every=1"], stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:
        if "step 3 loss" in line:
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    state = tmp_path / "out.png.resume.npz"
    assert state.is_file()
    with np.load(state) as saved:  # Stopped in the coarse 24 px scale (17 steps before its end),
        assert saved["image"].shape == (17, 24, 3)
        step = int(saved["position"][2])
    assert Image.open(out).size == (48, 34)  # yet the output has the full size.
    r = run(*args, f"--output={out}", "--resume")
    assert r.returncode == 0, r.stderr
    assert f"resuming {out} from step {step} (scale 24x17)" in r.stderr
    assert not state.exists()
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(straight)))
    r = run(*args, f"--output={out}", "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr


def test_non_finite_loss_keeps_the_last_finite_image(tmp_path, photo):
    out = tmp_path / "out.png"
    out.write_bytes(b"old result")
    # Finite at first, then the style term's gradient overflows float32 and the image turns NaN.
    r = run(f"--content={photo}", f"--style={STYLE}", f"--output={out}", "--method=optimize",
            "--max_dim=48", "--scales=", "--steps=20", "--optimizer=adam", "--style_weight=1e24",
            "--noprogress")
    assert r.returncode == 1, r.stderr
    assert "not finite at step" in r.stderr and "saved the last finite image" in r.stderr
    assert "Traceback" not in r.stderr
    saved = np.asarray(Image.open(out))
    assert saved.shape == (34, 48, 3) and saved.std() > 10  # A real picture, not black or blank.
