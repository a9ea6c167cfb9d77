"""benchmarks/heldout.py (the held-out images under --data) and benchmarks/heldout.sh (which
rebuilds them), the latter run offline against stand-ins for apt-get and dpkg."""

import csv
import io
import logging
import os
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import heldout
from style_tf.errors import StyleError

REPO = Path(__file__).resolve().parent.parent


def _sources() -> dict[str, dict]:
    with open(REPO / "data_sources.csv", newline="", encoding="utf-8") as f:
        return {r["file"]: r for r in csv.DictReader(f)}


def test_every_heldout_image_has_a_source_and_licence():
    sources = _sources()
    for name in heldout.names():
        row = sources[name]
        assert row["registry"] in ("Debian", "PyPI") and row["package"] and row["version"], name
        assert row["path_in_package"] and row["licence"], name
    assert {n.split("/")[0] for n in heldout.names()} == {"train_content", "train_style"}


def test_a_missing_or_empty_folder_is_a_user_error(tmp_path):
    with pytest.raises(StyleError, match="no such folder"):
        heldout.require(tmp_path / "nowhere")
    with pytest.raises(StyleError, match="none of the held-out images"):
        heldout.require(tmp_path)
    with pytest.raises(StyleError, match="is not there"):
        heldout.path(tmp_path, heldout.names()[0])
    assert heldout.find(tmp_path / "nowhere") == heldout.HeldOut((), (), tuple(heldout.names()))


def test_a_subset_is_used_and_the_missing_ones_named(tmp_path, caplog):
    photo, artwork = heldout.names()[0], heldout.names()[-1]
    for name in (photo, artwork):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        found = heldout.require(tmp_path)
    assert found.photos == (tmp_path / photo,) and found.artworks == (tmp_path / artwork,)
    assert set(found.missing) == set(heldout.names()) - {photo, artwork}
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f"{len(heldout.names()) - 2} of {len(heldout.names())}" in warning
    assert heldout.names()[1] in warning
    assert heldout.path(tmp_path, photo) == tmp_path / photo


@pytest.mark.parametrize("benchmark", ["quality", "optimize"])
def test_benchmark_without_its_data_says_so_in_one_line(tmp_path, benchmark):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # As a user runs it.
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{benchmark}", f"--data={tmp_path / 'nowhere'}"],
                       capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --data") and "heldout.sh" in lines[0], r.stderr


# --- heldout.sh, offline ------------------------------------------------------------------------


def _rcc(files: dict[str, bytes]) -> bytes:
    """A Qt resource file (format version 2) holding `files`, zlib-compressed as rcc does."""
    tree: dict = {}
    for path, data in files.items():
        node = tree
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = data
    names, blobs, entries = bytearray(), bytearray(), [b""]

    def name(text):
        names.extend(struct.pack(">HI", len(text), 0) + text.encode("utf-16-be"))
        return len(names) - 6 - 2 * len(text)

    queue = [(0, "", tree)]
    while queue:  # Breadth first: a folder's children are consecutive entries.
        index, label, node = queue.pop(0)
        first = len(entries)
        entries[index] = struct.pack(">IHIIQ", name(label) if index else 0, 2, len(node), first, 0)
        entries.extend(b"" for _ in node)
        for i, (child, value) in enumerate(sorted(node.items())):
            if isinstance(value, dict):
                queue.append((first + i, child, value))
            else:
                packed = struct.pack(">I", len(value)) + zlib.compress(value)
                entries[first + i] = struct.pack(">IHHHIQ", name(child), 1, 0, 0, len(blobs), 0)
                blobs.extend(struct.pack(">I", len(packed)) + packed)
    tree_blob = b"".join(entries)
    header = 20
    return (b"qres" + struct.pack(">IIII", 2, header, header + len(tree_blob), header + len(tree_blob)
                                  + len(blobs)) + tree_blob + bytes(blobs) + bytes(names))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _fake_tools(bin_dir: Path, packages: Path) -> None:
    """apt-get download PKG=VER writes PKG_VER.deb; dpkg -x DEB DIR copies packages/PKG into DIR."""
    bin_dir.mkdir()
    tools = {"apt-get": 'shift; for spec in "$@"; do case $spec in -*) ;; *) '
                        'touch "${spec%%=*}_${spec#*=}.deb";; esac; done',
             "dpkg": 'deb=$(basename "$2"); cp -r "' + str(packages) + '/${deb%%_*}/." "$3"'}
    for tool, body in tools.items():
        (bin_dir / tool).write_text(f"#!/usr/bin/env bash\nset -e\n{body}\n")
        (bin_dir / tool).chmod((bin_dir / tool).stat().st_mode | stat.S_IEXEC)


def test_heldout_sh_rebuilds_names_from_package_files(tmp_path):
    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    shutil.copy(REPO / "benchmarks" / "heldout.sh", repo / "benchmarks")
    rcc = "usr/share/game/res.rcc"
    rows = [("train_content/wall/big.jpg", 1024, 512, "wallpapers", "usr/share/wall/big.png"),
            ("train_content/wall/gone.jpg", 10, 10, "wallpapers", "usr/share/wall/gone.png"),
            ("train_style/game/plain.png", 6, 4, "game-data", f"{rcc}:res/image/plain.png"),
            ("train_style/game/puzzle.png", 20, 8, "game-data", f"{rcc}:res/board/board1.qml")]
    with open(repo / "data_sources.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "width", "height", "kind", "registry", "package", "version", "path_in_package",
                      "licence", "attribution"])
        for name, w, h, package, path in rows:
            out.writerow([name, w, h, "photo", "Debian", package, "1.0-1", path, "CC0-1.0", ""])
    names = tmp_path / "names.txt"
    names.write_text("# a comment\n" + "\n".join(r[0] for r in rows) + "\nnot/listed.jpg\n")

    packages = tmp_path / "packages"
    wall = packages / "wallpapers" / "usr/share/wall"
    wall.mkdir(parents=True)
    big = np.zeros((1024, 2048, 4), np.uint8)
    big[..., 0], big[:, :1024, 3] = 200, 255  # Right half transparent.
    Image.fromarray(big, "RGBA").save(wall / "big.png")
    red, blue = Image.new("RGB", (10, 8), (255, 0, 0)), Image.new("RGB", (10, 8), (0, 0, 255))
    board = ('"pixmapfile" : "image/bg.svg", "type" : "SHAPE_BACKGROUND_IMAGE", "width": 40, "height": 20 },'
             '{ "pixmapfile" : "image/p_2.png", "x" : "0.375", "y" : "0.2" },'
             '{ "pixmapfile" : "image/p_1.png", "x" : "0.125", "y" : "0.2" }')
    (packages / "game-data" / rcc).parent.mkdir(parents=True)
    (packages / "game-data" / rcc).write_bytes(_rcc({
        "res/image/plain.png": _png(Image.new("RGB", (6, 4), (0, 255, 0))),
        "res/image/p_1.png": _png(red), "res/image/p_2.png": _png(blue),
        "res/board/board1.qml": board.encode()}))
    _fake_tools(tmp_path / "bin", packages)

    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", PYTHON=sys.executable)
    dest = tmp_path / "out"
    r = subprocess.run(["bash", str(repo / "benchmarks" / "heldout.sh"), str(dest), str(names)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr  # Two names could not be made.
    assert "wrote 3 of 5 images" in r.stdout, r.stdout
    assert "skipped train_content/wall/gone.jpg" in r.stderr and "skipped not/listed.jpg" in r.stderr
    assert "warning" not in r.stderr, r.stderr  # Sizes as data_sources.csv says.

    big = np.asarray(Image.open(dest / "train_content/wall/big.jpg"))
    assert big.shape == (512, 1024, 3)  # Longest side 1024.
    assert np.abs(big[256, 256].astype(int) - (200, 0, 0)).max() <= 3
    assert np.abs(big[256, 768].astype(int) - (0x28, 0x28, 0x28)).max() <= 3  # Alpha flattened.
    assert np.asarray(Image.open(dest / "train_style/game/plain.png"))[0, 0].tolist() == [0, 255, 0]
    puzzle = np.asarray(Image.open(dest / "train_style/game/puzzle.png"))
    assert puzzle.shape == (8, 20, 3)  # The pieces, side by side, cropped to them.
    assert (puzzle[:, :10] == (255, 0, 0)).all() and (puzzle[:, 10:] == (0, 0, 255)).all()


def test_heldout_sh_refuses_a_missing_names_file(tmp_path):
    r = subprocess.run(["bash", str(REPO / "benchmarks" / "heldout.sh"), str(tmp_path / "out"),
                        str(tmp_path / "nothing.txt")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nothing.txt: no such file" in r.stderr
    assert not (tmp_path / "out").exists()
