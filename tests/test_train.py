"""Decoder training under a real MirroredStrategy over two logical CPU devices (conftest)."""

import csv
import dataclasses
import logging
import typing

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from style_tf import adain, cli, data, train
from style_tf.errors import StyleError


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    for kind in ("content", "style/a", "style/b"):
        folder = root / kind
        folder.mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg")
    (root / "content" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def _config(folders, model_dir, steps, **kw):
    return train.TrainConfig(content_dir=str(folders / "content"), style_dir=str(folders / "style"),
                             model_dir=str(model_dir), steps=steps, batch_size=2, image_size=32,
                             resize_to=32, strategy="mirrored", save_every=2, log_every=1,
                             learning_rate=1e-3, **kw)


def _log(model_dir):
    with open(model_dir / "log.csv") as f:
        return list(csv.DictReader(f))


def test_mirrored_training_splits_batch_loss_falls_and_resumes(folders, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")  # Other tests may have raised absl's level.
    model_dir = tmp_path / "m"
    keras.utils.set_random_seed(0)
    init = adain.decoder()
    init.save_weights(tmp_path / "init.weights.h5")
    train.train(_config(folders, model_dir, steps=4, init_decoder=str(tmp_path / "init.weights.h5")))
    rows = _log(model_dir)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["batch"]) == 4.0 for r in rows)  # 2 per replica x 2 replicas.
    # The loss of one fixed batch fell (logged losses are of different random batches).
    enc, trained = adain.encoder(), adain.load_decoder(model_dir / "decoder.weights.h5")
    content, style = np.random.default_rng(1).random((2, 2, 32, 32, 3), dtype=np.float32)
    before = float(adain.training_losses(enc, init, content, style)[0])
    assert float(adain.training_losses(enc, trained, content, style)[0]) < before
    last = adain.load_decoder(model_dir / "decoder_last.weights.h5")  # The average's last step.
    assert not np.allclose(last.get_weights()[0], trained.get_weights()[0])
    assert any("2 replicas" in m for m in caplog.messages)
    caplog.clear()
    train.train(_config(folders, model_dir, steps=6, identity_weight=1.0))  # A term added on resume.
    assert any("resumed from step 4" in m for m in caplog.messages)
    rows = _log(model_dir)
    assert [int(r["step"]) for r in rows][-2:] == [5, 6]
    assert all(None not in r and float(r["total"]) > 0 for r in rows)  # One column per name.
    assert [r["identity"] != "" for r in rows] == [False] * 4 + [True] * 2  # The new term kept.
    other = tmp_path / "dropped"  # A run begun with the term and no average, resumed without
    train.train(_config(folders, other, steps=2, identity_weight=1.0, ema_decay=0.0))  # and with.
    assert not (other / "decoder_last.weights.h5").exists()
    caplog.clear()
    train.train(_config(folders, other, steps=3))
    rows = _log(other)
    assert [int(r["step"]) for r in rows] == [1, 2, 3] and rows[2]["identity"] == ""
    assert any("no weight average; it starts here" in m for m in caplog.messages)
    # One step averaged: the average is that step's weights.
    averaged, last = (adain.load_decoder(other / f"decoder{name}.weights.h5").get_weights()[0]
                      for name in ("", "_last"))
    np.testing.assert_allclose(averaged, last, rtol=1e-5, atol=1e-7)


def test_weight_average_is_a_mean_of_the_steps_seen():
    weights = tf.Variable([0.0, 0.0])
    average = train.WeightAverage([weights], decay=0.5)
    for value in ([1.0, 2.0], [3.0, 6.0]):
        weights.assign(value)
        average.update([keras.Variable(weights)])
    # Weights 0.5 and 1 for the two steps: (0.5 * 1 + 3) / 1.5.
    np.testing.assert_allclose(average.values()[0], [7 / 3, 14 / 3], rtol=1e-6)


def test_strategy_choices():
    assert train.make_strategy("mirrored").num_replicas_in_sync == 2
    assert train.make_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(StyleError, match="strategy"):
        train.TrainConfig("a", "b", "c", strategy="gpu")
    with pytest.raises(StyleError, match="multiple of 8"):
        train.TrainConfig("a", "b", "c", image_size=30)
    with pytest.raises(StyleError, match="precision"):
        train.TrainConfig("a", "b", "c", precision="half")
    with pytest.raises(StyleError, match="identity_weight"):
        train.TrainConfig("a", "b", "c", identity_weight=-1)
    with pytest.raises(StyleError, match="identity_feature_weight"):
        train.TrainConfig("a", "b", "c", identity_feature_weight=-0.5)


def test_pipeline_skips_unreadable_and_refuses_empty(folders, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    kept, skipped = data.readable_images(data.list_files(str(folders / "content")))
    assert len(kept) == 3 and skipped == [str(folders / "content" / "broken.jpg")]
    data.image_dataset(str(folders / "content"), 2)
    assert "skipped 1 unreadable or unsupported file: broken.jpg" in caplog.text  # Named.
    batch = next(iter(data.image_dataset(str(folders / "style"), 4, size=16, resize_to=24,
                                         balance=True)))
    assert batch.shape == (4, 16, 16, 3) and 0.0 <= float(tf.reduce_min(batch))
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleError, match="no files"):
        data.image_dataset(str(tmp_path / "empty"), 2)


def test_bad_training_data_is_refused_before_model_dir_is_made(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in "abcde":
        (notes / f"{name}.txt").write_text("not an image")
    bad = {"missing": "no files found", "empty": "no files found",
           "notes": "no readable images, only 5 unreadable or unsupported files: a.txt, b.txt, c.txt "
                    "and 2 more"}
    for name, match in bad.items():
        config = dataclasses.replace(_config(folders, tmp_path / "m", steps=1),
                                     style_dir=str(tmp_path / name))
        with pytest.raises(StyleError, match=match):
            train.train(config)
        assert not (tmp_path / "m").exists(), name


def test_upweight_multiplies_a_sources_share_and_refuses_unknown_sources(tmp_path):
    for name, level in (("dark", 0), ("light", 255)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((20, 20, 3), level, np.uint8)).save(tmp_path / name / f"{i}.png")
    def light_share(**kw):
        batch = next(iter(data.image_dataset(str(tmp_path), 400, size=8, resize_to=8, seed=1, **kw)))
        return float(np.mean(batch.numpy().mean(axis=(1, 2, 3)) > 0.5))
    assert 0.4 < light_share() < 0.6  # Same counts: even.
    assert 0.75 < light_share(upweight={"light": 4}) < 0.85  # 4:1.
    with pytest.raises(StyleError, match="no source folder lihgt"):
        data.image_dataset(str(tmp_path), 2, upweight={"lihgt": 4})
    with pytest.raises(StyleError, match="must be > 0"):  # 0 made the sampling weights NaN.
        data.image_dataset(str(tmp_path), 2, upweight={"light": 0})
    kind = typing.get_type_hints(train.TrainConfig)["content_upweight"]  # Parsed as its flag is.
    assert cli.parse_value(kind, "a=2,b=0.5", "content_upweight") == (("a", 2.0), ("b", 0.5))
    with pytest.raises(StyleError, match="--content_upweight: 'a=x' is not a list of name:weight"):
        cli.parse_value(kind, "a=x", "content_upweight")


def test_tfrecord_shards_round_trip(folders, tmp_path):
    paths, skipped = data.write_tfrecords(str(folders / "content"), str(tmp_path / "c"), shards=2)
    assert len(paths) == 2 and skipped == 1
    batch = next(iter(data.image_dataset(str(tmp_path / "c-*.tfrecord"), 3, size=16, resize_to=16)))
    assert batch.shape == (3, 16, 16, 3)


def test_kill_9_loses_at_most_one_save_interval(folders, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    model_dir = tmp_path / "k"
    args = [sys.executable, "-m", "style_tf.train", f"--content_dir={folders / 'content'}",
            f"--style_dir={folders / 'style'}", f"--model_dir={model_dir}", "--batch_size=1",
            "--image_size=32", "--resize_to=32", "--save_every=2", "--log_every=1", "--strategy=default"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(args + ["--steps=1000"], stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:
        if "step 5:" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    r = subprocess.run(args + ["--steps=7"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    resumed = [int(line.rsplit(" ", 1)[1]) for line in r.stderr.splitlines() if "resumed from step" in line]
    assert resumed and 5 - 2 <= resumed[0] <= 5
