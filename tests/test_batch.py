"""`python -m style_tf.batch` and its Beam pipeline (style_tf/pipeline.py): a small folder
stylized by two worker processes with the network off, a re-run that writes nothing, a job
killed midway and finished by running it again, the ways of naming photos, and user errors."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from style_tf import pipeline, stylizer
from style_tf.errors import StyleError
from style_tf.paths import EXAMPLES

STYLES = (str(EXAMPLES / "style" / "GreatWave.png"), str(EXAMPLES / "style" / "kandinky.png"))
ENGINE = stylizer.AdainConfig(face_size=0)
TWO_WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def photos(root: Path, names, size=(40, 30)) -> list[Path]:
    """Random photos of `size` (w, h) at `root`/name each."""
    rng = np.random.default_rng(len(names))
    out = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        out.append(path)
    return out


def outputs(folder: Path) -> dict[str, tuple[int, int]]:
    """{image under folder: (inode, mtime)}: what a second write would change."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in folder.rglob("*.png") if not p.name.startswith(".")}


def rows(path: Path) -> list[dict]:
    """The JSON lines of `path`, sorted (the pipeline writes them in no particular order)."""
    return sorted((json.loads(line) for line in path.read_text().splitlines()),
                  key=lambda r: json.dumps(r, sort_keys=True))


@pytest.fixture
def offline(monkeypatch):
    """No connection leaves this machine, and Prism (which downloads its binary) is never run."""
    real_connect = socket.socket.connect
    prism = []

    def connect(self, address):
        local = address[0] in ("127.0.0.1", "::1", "localhost")
        if self.family in (socket.AF_INET, socket.AF_INET6) and not local:
            raise OSError(f"network is off in this test: {address}")
        return real_connect(self, address)

    from apache_beam.runners.portability import prism_runner

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", lambda *a, **k: prism.append(a))
    yield prism


def test_two_workers_stylize_each_photo_once_and_a_rerun_writes_nothing(tmp_path, offline):
    names = ["a.jpg", "a.png", "sub/b.png", "sub/deep/c.jpg", "sub/d.png", "e.png", ".hidden.png"]
    photos(tmp_path / "in", names)
    (tmp_path / "in" / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "out"
    config = pipeline.BatchConfig(input=str(tmp_path / "in"), output=str(out), styles=STYLES,
                                  max_dim=32, seed=3, alpha=(0.25, 0.75), batch_size=2)

    start = time.perf_counter()
    summary = pipeline.run(config, ENGINE, TWO_WORKERS)
    print(f"two workers: {time.perf_counter() - start:.1f} s")  # pytest -s shows it.

    assert not offline  # Prism was not tried.
    expected = {"a_jpg.png": "a.jpg", "a_png.png": "a.png", "sub/b.png": "sub/b.png",
                "sub/deep/c.png": "sub/deep/c.jpg", "sub/d.png": "sub/d.png", "e.png": "e.png"}
    written = outputs(out)
    assert sorted(written) == sorted(expected)  # Each once, the tree mirrored, nothing else.
    assert (summary.stylized, summary.skipped, summary.failed) == (6, 0, 1)
    manifest = rows(out / "manifest.jsonl")
    assert sorted(r["output"] for r in manifest) == sorted(str(out / o) for o in expected)
    for row in manifest:
        rel = expected[str(Path(row["output"]).relative_to(out))]
        assert row["photo"] == str(tmp_path / "in" / rel)
        assert (row["style"], row["alpha"]) == pipeline.draw(rel, 3, list(STYLES), (0.25, 0.75))
        assert row["photo_size"] == [40, 30] and row["output_size"] == [32, 24]
        assert Image.open(row["output"]).size == (32, 24)
    assert {r["style"] for r in manifest} == set(STYLES)  # Both drawn (for this seed).
    [failed] = rows(out / "failed.jsonl")
    assert failed["photo"] == str(tmp_path / "in" / "sub" / "broken.jpg")
    assert "not an image" in failed["reason"]

    again = pipeline.run(config, ENGINE)  # One in-process worker: quicker to start.
    assert (again.stylized, again.skipped, again.failed) == (0, 6, 1)
    assert outputs(out) == written  # Not one output written again.
    assert rows(out / "manifest.jsonl") == manifest  # Whole again, read from the outputs' notes.


def test_a_killed_job_is_finished_by_running_it_again(tmp_path):
    names = [f"part{i % 2}/p{i:02d}.png" for i in range(32)]
    photos(tmp_path / "in", names, size=(160, 120))
    out = tmp_path / "out"
    args = [sys.executable, "-m", "style_tf.batch", f"--input={tmp_path / 'in'}", f"--output={out}",
            "--max_dim=128", "--face_size=0", "--batch_size=1", f"--styles={STYLES[0]}",
            "--runner", "DirectRunner", "--direct_num_workers=1"]  # Beam's flags, passed on.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    job = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True)
    deadline = time.time() + 120
    while len(outputs(out) if out.is_dir() else {}) < 3 and job.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # The job and any worker it started.
    job.wait()
    before = outputs(out)
    assert 0 < len(before) < len(names), f"killed after {len(before)} of {len(names)}: not midway"
    assert not (out / "manifest.jsonl").exists()

    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"stylized {len(names) - len(before)}, skipped {len(before)} already done" in r.stdout
    after = outputs(out)
    assert sorted(after) == sorted(n for n in names)  # Each output once ...
    assert {k: after[k] for k in before} == before  # ... and those of the killed run not rewritten.
    assert sorted(r["output"] for r in rows(out / "manifest.jsonl")) == sorted(str(out / n) for n in names)
    assert rows(out / "failed.jsonl") == []
    assert sorted(p.name for p in out.iterdir()) == ["failed.jsonl", "manifest.jsonl", "part0", "part1"]


def test_a_list_file_and_a_glob_name_the_same_outputs(tmp_path):
    paths = photos(tmp_path / "in", ["x/1.png", "x/2.jpg", "y/3.png"])
    listing = tmp_path / "in" / "photos.txt"
    listing.write_text(f"x/1.png\n\n{paths[1]}\nx/1.png\ny/3.png\n{tmp_path / 'elsewhere.png'}\n")
    by_list = pipeline.run(pipeline.BatchConfig(input=str(listing), output=str(tmp_path / "a"),
                                                styles=STYLES[:1], max_dim=24), ENGINE)
    assert (by_list.stylized, by_list.failed) == (3, 1)  # x/1.png listed twice: once.
    assert "outside" in rows(tmp_path / "a" / "failed.jsonl")[0]["reason"]
    assert sorted(outputs(tmp_path / "a")) == ["x/1.png", "x/2.png", "y/3.png"]
    assert pipeline.source(str(tmp_path / "in" / "*" / "*.png")) == pipeline.Source(
        "glob", str(tmp_path / "in"), str(tmp_path / "in" / "*" / "*.png"))
    assert pipeline.source(str(tmp_path / "in")).kind == "folder"


def test_the_draw_depends_on_the_path_and_seed_only():
    styles = [f"s{i}.jpg" for i in range(5)]
    draws = [pipeline.draw(f"n{i:04d}/img.JPEG", 7, styles, (0.0, 1.0)) for i in range(2000)]
    assert draws == [pipeline.draw(f"n{i:04d}/img.JPEG", 7, styles, (0.0, 1.0)) for i in range(2000)]
    counts = np.bincount([styles.index(s) for s, _ in draws])
    assert counts.min() > 300 and 0.45 < np.mean([a for _, a in draws]) < 0.55  # Uniform-ish.
    assert draws != [pipeline.draw(f"n{i:04d}/img.JPEG", 8, styles, (0.0, 1.0)) for i in range(2000)]
    assert pipeline.draw("a.jpg", 7, ["only.jpg"], (0.5,)) == ("only.jpg", 0.5)


@pytest.mark.parametrize("change,match", [
    ({"input": "/nonexistent"}, "no such file or folder"),
    ({"styles": ("/nonexistent.jpg",)}, "--styles: /nonexistent.jpg: no such file"),
    ({"output": "{tmp}/in/out"}, "inside --input's folder"),
    ({"output": "/nonexistent/out"}, "output folder does not exist"),
])
def test_user_errors_before_anything_runs(tmp_path, change, match):
    photos(tmp_path / "in", ["a.png"])
    settings = {"input": str(tmp_path / "in"), "output": str(tmp_path / "out")}
    settings.update({k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in change.items()})
    with pytest.raises(StyleError, match=match):
        pipeline.run(pipeline.BatchConfig(**settings), ENGINE)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("field,value,match", [
    ("alpha", (0.9, 0.1), "--alpha takes a value in 0..1 or a range"),
    ("alpha", (1.5,), "--alpha takes"),
    ("format", "gif", "unknown format"),
])
def test_bad_settings_are_refused(field, value, match):
    with pytest.raises(StyleError, match=match):
        pipeline.BatchConfig(input="in", output="out", **{field: value})


def test_beam_options_pass_through_and_unknown_flags_are_refused():
    options = pipeline.pipeline_options(["--direct_num_workers=3", "--runner", "DirectRunner"])
    assert options.get_all_options()["runner"] == "FnApiRunner"  # Not Prism.
    assert options.get_all_options()["direct_num_workers"] == 3
    dataflow = pipeline.pipeline_options(["--runner=DataflowRunner"])
    assert dataflow.get_all_options()["runner"] == "DataflowRunner"
    with pytest.raises(StyleError, match=r"unknown flag --runnr \(neither style_tf.batch's nor a Beam"):
        pipeline.pipeline_options(["--runnr=FlinkRunner"])
