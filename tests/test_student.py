"""The phone-class student: its network, its engine, its distillation (TensorFlow and JAX,
resumed) and its TFLite pair."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from export import signatures as sig
from export import tflite, verify
from style_tf import adain, distill, images, paths, student, stylize
from style_tf.errors import StyleError
from style_tf.weights import sha256_file

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pruned_file(tmp_path_factory) -> str:
    """A student pruned from the teacher, untrained: a valid weights file for the plumbing."""
    net = student.network()
    student.prune_from_teacher(net, adain.load_decoder(adain.decoder_path()))
    path = tmp_path_factory.mktemp("student") / "pruned.weights.h5"
    net.save_weights(path)
    return str(path)


def test_a_quarter_of_the_channels_and_a_sixteenth_of_the_weights():
    net = student.network()
    enc, dec = student.parts(net)
    feats = enc(np.zeros((1, 64, 48, 3), np.float32))[student.BOTTLENECK]
    assert tuple(feats.shape) == (1, 8, 6, student.CHANNELS) == (1, 8, 6, 128)
    assert tuple(dec(feats).shape) == (1, 64, 48, 3)
    teacher = adain.encoder(weights=None, layers=(adain.BOTTLENECK,)).count_params()
    teacher += adain.decoder().count_params()
    assert net.count_params() < teacher / 14


def test_pruning_keeps_the_strongest_teacher_filters(vgg19_bundled):
    net = student.network()
    student.prune_from_teacher(net, adain.load_decoder(adain.decoder_path()))
    enc, _ = student.parts(net)
    kernel, bias = vgg19_bundled["block1_conv1"]
    kept = np.sort(np.argsort(-np.abs(kernel).sum(axis=(0, 1, 2)))[:16])
    got = enc.get_layer("block1_conv1").get_weights()
    np.testing.assert_array_equal(got[0], kernel[..., kept])
    np.testing.assert_array_equal(got[1], bias[kept])
    k2 = vgg19_bundled["block1_conv2"][0][:, :, kept]  # Reads the channels block1_conv1 kept.
    kept2 = np.sort(np.argsort(-np.abs(k2).sum(axis=(0, 1, 2)))[:16])
    np.testing.assert_array_equal(enc.get_layer("block1_conv2").get_weights()[0], k2[..., kept2])


def test_mobile_is_a_third_engine_with_the_adain_controls(pruned_file, tmp_path):
    out = tmp_path / "out.png"
    config = stylize.StylizeConfig(
        method="mobile", output=str(out), max_dim=64, progress=False,
        styles=(str(paths.EXAMPLE_STYLE), str(sorted((paths.EXAMPLES / "style").glob("*.jpg"))[-1])),
        style_weights=(3.0, 1.0), engine=student.MobileConfig(student_weights=pruned_file, alpha=0.5))
    assert stylize.stylize(config).written == [out]
    image = images.load_image(out)
    assert image.shape == images.load_image(paths.EXAMPLE_CONTENT, max_dim=64).shape
    with pytest.raises(StyleError, match="student weights not found"):
        student.Engine(student.MobileConfig(student_weights=str(tmp_path / "none.weights.h5")))
    (tmp_path / "bad.weights.h5").write_bytes(b"not h5")
    with pytest.raises(StyleError, match="not student network weights"):
        student.load(str(tmp_path / "bad.weights.h5"))


def test_run_refuses_adain_flags_with_mobile(tmp_path):
    result = subprocess.run([sys.executable, "-m", "style_tf.run", "--method", "mobile",
                             "--decoder_weights", "x.h5", "--output", str(tmp_path / "o.png")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --decoder_weights: an option of --method=adain, not of mobile")


@pytest.fixture(scope="module")
def photos_and_paintings(tmp_path_factory) -> tuple[Path, Path]:
    """Two folders of small images (styles in two sources), as a pack is made from."""
    root = tmp_path_factory.mktemp("distill")
    rng = np.random.default_rng(0)
    for folder, count in (("photos/a", 3), ("paintings/a", 2), ("paintings/b", 2)):
        (root / folder).mkdir(parents=True)
        for i in range(count):
            small = rng.uniform(0, 1, (20, 25, 3))
            images.save_image(root / folder / f"{i}.png", images.resize(small, size=(160, 200)))
    (root / "photos" / "a" / "LICENSE").write_text("not an image")
    return root / "photos", root / "paintings"


def _config(root: Path, folders, **kw) -> distill.DistillConfig:
    base = dict(pack=str(folders[0].parent / "pack"), model_dir=str(root / "run"),
                content_dir=str(folders[0]), style_dir=str(folders[1]), pairs=4, crop=32,
                steps_per_epoch=2, batch_size=2)
    return distill.DistillConfig(**{**base, **kw})


def test_pack_then_training_that_stops_and_resumes(photos_and_paintings, tmp_path):
    distill.train(_config(tmp_path, photos_and_paintings, steps=4))
    pack = Path(_config(tmp_path, photos_and_paintings).pack)
    assert sorted(p.name for p in pack.iterdir()) == ["sources.npz", "targets-00000.npz"]
    with np.load(pack / "sources.npz") as f:
        assert len(f["content_ends"]) == 3 and sorted(set(f["style_group"])) == ["a", "b"]
    with np.load(pack / "targets-00000.npz") as f:
        assert f["rows"].shape == (distill.PAIRS_PER_SHARD, 7) and set(f["rows"][:, 6]) == {32}
    run = tmp_path / "run"
    first = student.load(str(run / distill.WEIGHTS))[1].get_weights()
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    distill.train(_config(tmp_path, photos_and_paintings, steps=8))  # Resumes: epochs 3 and 4.
    log = (run / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log if not line.startswith("epoch")] == ["0", "1", "2", "3"]
    later = student.load(str(run / distill.WEIGHTS))[1].get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(first, later))
    with pytest.raises(StyleError, match="32-px crops, not 64"):
        distill.train(_config(tmp_path, photos_and_paintings, steps=8, crop=64, pairs=200))


def test_distillation_fits_the_teacher_on_a_batch(photos_and_paintings, tmp_path):
    """Repeated steps on one batch of the pack bring the student's images to the teacher's
    (a target from another pair, a wrong input order or a broken loss would not)."""
    config = _config(tmp_path, photos_and_paintings, learning_rate=2e-3, edge_weight=0.0)
    distill.make_pack(config)
    (content, style), target = distill.Pairs(config)[0]
    net = student.network()
    student.prune_from_teacher(net, adain.load_decoder(adain.decoder_path()))
    model = distill.distill_model(*student.parts(net), config.crop)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=distill.Objective(config))
    losses = [float(model.train_on_batch([content, style], target)) for _ in range(40)]
    assert losses[-1] < 0.6 * losses[0], losses


def test_feature_terms_are_zero_on_the_target_and_see_a_blur():
    config = distill.DistillConfig(pack="p", model_dir="m", pixel_weight=0.0, edge_weight=0.0,
                                   feature_weight=1.0, style_weight=1.0)
    objective = distill.Objective(config)
    target = np.stack([images.resize(images.load_image(p), size=(64, 64))
                       for p in sorted(paths.EXAMPLES.glob("content/*"))[:2]])
    blurred = (target + np.roll(target, 1, 1) + np.roll(target, -1, 1) + np.roll(target, 1, 2)
               + np.roll(target, -1, 2)) / 5
    assert float(objective(target, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(objective(target, blurred)) > 1e-3


def test_bad_settings_and_missing_pack(tmp_path):
    with pytest.raises(StyleError, match="crop must be a multiple of 8"):
        distill.DistillConfig(pack="p", model_dir="m", crop=30)
    with pytest.raises(StyleError, match="unknown targets"):
        distill.DistillConfig(pack="p", model_dir="m", targets="both")
    with pytest.raises(StyleError, match="every loss weight is 0"):
        distill.DistillConfig(pack="p", model_dir="m", pixel_weight=0.0, edge_weight=0.0)
    with pytest.raises(StyleError, match="no such folder"):
        distill.train(distill.DistillConfig(pack=str(tmp_path / "p"), model_dir=str(tmp_path / "m")))
    assert not (tmp_path / "m").exists()


# A fresh Python in which TensorFlow cannot be imported, as on the lent GPU machines.
NO_TENSORFLOW = """
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("no TensorFlow on this machine")
sys.meta_path.insert(0, NoTensorFlow())
from style_tf import cli, distill
cli.run(distill.main, distill._define_flags)
"""


def test_jax_trains_without_tensorflow_from_a_pack(photos_and_paintings, tmp_path):
    """The GPU path: KERAS_BACKEND=jax, no TensorFlow, stored targets, then the teacher run in
    the step (`--targets teacher`), resuming the same run. The pack is whole (same --pairs), so
    neither run adds targets to it."""
    config = _config(tmp_path, photos_and_paintings, steps=2)
    distill.make_pack(config)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    args = [sys.executable, "-c", NO_TENSORFLOW, "--pack", config.pack, "--model_dir", config.model_dir,
            "--pairs", str(config.pairs), "--crop", "32", "--batch_size", "2", "--steps_per_epoch", "2"]
    for steps, targets in ((2, "pack"), (4, "teacher")):
        result = subprocess.run([*args, "--steps", str(steps), "--targets", targets],
                                capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[:3000]
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 3 and all(np.isfinite(float(line.split(",")[1])) for line in log[1:])
    student.load(str(tmp_path / "run" / distill.WEIGHTS))  # Read back under TensorFlow.


SIZE = 64


def test_export_mobile_pair_runs_in_litert_like_keras(pruned_file, tmp_path):
    out = tmp_path / "exported"
    written = tflite.export(pruned_file, str(out), SIZE, SIZE, ("float32", "int8"), method="mobile")
    assert sorted(p.name for p in written) == sorted(
        sig.model_file(k, v, "mobile") for k in (sig.PREDICT, sig.TRANSFORM) for v in ("float32", "int8"))
    table = sig.signature_table(SIZE, SIZE, "mobile")
    runner = verify.interpreter(out / sig.model_file(sig.TRANSFORM, "int8", "mobile"))
    details = runner.get_signature_runner(sig.TRANSFORM).get_input_details()
    assert {k: list(v["shape"]) for k, v in details.items()} == table[sig.TRANSFORM][0]
    assert table[sig.PREDICT][1][sig.STYLE_VECTOR] == [1, 1, 1, 2 * student.CHANNELS]
    rows, _ = verify.verify(str(out), pruned_file, ("float32",), repeats=1, method="mobile")
    assert rows[0]["psnr"] >= 40, rows
    manifest = json.loads((out / sig.manifest_file("mobile")).read_text())
    assert manifest["decoder_sha256"] == sha256_file(pruned_file)


def test_a_shipped_student_pair_is_small_and_from_the_bundled_weights():
    """models/ ships the student's int8 pair beside the VGG one only with the student it came
    from (a retrained student without a re-export fails here), at most 3 MiB together; with no
    student bundled, no pair either, and --method mobile says so in one line."""
    models = paths.models_dir()
    names = [sig.model_file(k, "int8", "mobile") for k in (sig.PREDICT, sig.TRANSFORM)]
    if not (models / student.WEIGHTS_FILE).is_file():
        assert not [n for n in [*names, sig.manifest_file("mobile")] if (models / n).exists()]
        with pytest.raises(StyleError, match="no student is bundled yet"):
            student.Engine(student.MobileConfig())
        return
    weights = student.weights_path()
    manifest = json.loads((models / sig.manifest_file("mobile")).read_text())
    assert manifest["decoder_sha256"] == sha256_file(weights), "re-run export.tflite --method mobile"
    for name in names:
        assert manifest["files"][name]["sha256"] == sha256_file(models / name)
    assert sum((models / n).stat().st_size for n in names) <= 3 * 2 ** 20
    rows, _ = verify.verify(str(models), None, ("int8",), repeats=1, method="mobile")
    assert rows[0]["ok"], rows
