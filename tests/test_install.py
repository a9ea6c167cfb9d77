"""A user's install, not a developer's: the checkout built into a wheel offline, installed (not
editable) into a folder of its own, and run from another folder: the quick start and training."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import pip_env
from PIL import Image


def python(*args, env, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def installed(clean_source, tmp_path_factory):
    """(environment, empty work folder) with the wheel of the checkout installed in a target."""
    root = tmp_path_factory.mktemp("install")
    env = pip_env(root / "site")
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(root / "wheel"), str(clean_source)], capture_output=True, text=True,
                           env={k: v for k, v in env.items() if k != "PIP_TARGET"}, timeout=600)
    assert wheel.returncode == 0, wheel.stderr
    (whl,) = (root / "wheel").glob("style_tf-*.whl")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", str(whl)], capture_output=True,
                       text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    work = root / "work"
    work.mkdir()
    return env, work


def test_the_wheel_holds_the_package_and_its_data_and_nothing_else(installed):
    env, _ = installed
    site = env["PIP_TARGET"]
    tops = {p.name for p in Path(site).iterdir() if not p.name.endswith(".dist-info")}
    assert tops == {"style_tf"}  # No top-level export/ or benchmarks/ in a user's site-packages.
    for part in ("models/vgg19_notop_q8.npz", "models/adain_decoder.weights.h5",
                 "examples/content/chelsea.png", "examples/style/Van_Gogh_The_Night_Cafe_background.jpg"):
        assert (Path(site) / "style_tf" / part).is_file(), part


def test_quick_start_runs_from_another_folder(installed):
    env, work = installed
    where = python("-c", "import style_tf.paths as p; print(p.__file__, p.models_dir(), p.EXAMPLES)",
                   env=env, cwd=work)
    assert where.stdout.split() and all(w.startswith(env["PIP_TARGET"]) for w in where.stdout.split()), where
    r = python("-m", "style_tf.run", env=env, cwd=work)
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(work / "stylized.png"))
    assert out.ndim == 3 and out.std() > 10


def test_training_runs_and_resumes_from_the_installed_package(installed):
    env, work = installed
    rng = np.random.default_rng(0)
    for kind in ("content", "style"):
        (work / kind).mkdir(exist_ok=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(work / kind / f"{i}.png")
    args = ["-m", "style_tf.train", "--content_dir=content", "--style_dir=style", "--model_dir=m",
            "--batch_size=1", "--image_size=32", "--resize_to=32", "--save_every=2", "--strategy=default"]
    first = python(*args, "--steps=2", env=env, cwd=work)
    assert first.returncode == 0, first.stderr
    second = python(*args, "--steps=4", env=env, cwd=work)
    assert second.returncode == 0, second.stderr
    assert "resumed from step 2" in second.stderr
    assert (work / "m" / "decoder.weights.h5").is_file()
