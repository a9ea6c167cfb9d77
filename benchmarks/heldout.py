"""The held-out photos and artworks of heldout.txt, found in a folder the benchmarks are given.

They are kept out of decoder training, so that what the benchmarks measure is not what the
decoder learnt, and out of the repository (data_sources.csv gives each one's package, path
and licence). The
benchmarks' `--data` flag names the folder that holds them under the names heldout.txt lists
(`train_content/...` for photos, `train_style/...` for artworks); by default `data/heldout`
in the repository, which git ignores. `bash benchmarks/heldout.sh data/heldout` rebuilds it
from the package registries; the whole training pool that script can make holds them too.
"""

import dataclasses
from pathlib import Path

from absl import logging

from style_tf.errors import StyleError

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "benchmarks" / "heldout.txt"
DEFAULT_DATA = ROOT / "data" / "heldout"
REBUILD = "bash benchmarks/heldout.sh"  # What a message tells the user to run.


def names() -> list[str]:
    """The held-out images' names, relative to a data folder, in heldout.txt's order."""
    return [line.strip() for line in LIST.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """The held-out images present in a data folder, and the names it lacks."""

    photos: tuple[Path, ...]
    artworks: tuple[Path, ...]
    missing: tuple[str, ...]


def find(data: str | Path) -> HeldOut:
    """The held-out images under `data` (none if it is not a folder); never raises."""
    data = Path(data)
    present = [n for n in names() if (data / n).is_file()]
    return HeldOut(photos=tuple(data / n for n in present if n.startswith("train_content/")),
                   artworks=tuple(data / n for n in present if n.startswith("train_style/")),
                   missing=tuple(n for n in names() if n not in present))


def require(data: str | Path) -> HeldOut:
    """`find(data)` for a benchmark that needs the held-out images; logs a warning naming the
    missing ones when only some are there, so a figure says what it was measured on.

    Raises:
      StyleError: `data` is not a folder, or holds none of the held-out images.
    """
    data = Path(data)
    if not data.is_dir():
        raise StyleError(f"--data {data}: no such folder (`{REBUILD} {data}` makes it)")
    found = find(data)
    if not found.photos and not found.artworks:
        raise StyleError(f"--data {data}: none of the held-out images of benchmarks/heldout.txt are "
                         f"there (`{REBUILD} {data}` makes them)")
    if found.missing:
        logging.warning("%d of %d held-out images not under %s, measured without them: %s",
                        len(found.missing), len(names()), data, ", ".join(found.missing))
    return found


def path(data: str | Path, name: str) -> Path:
    """One held-out image under `data`, which must be there.

    Raises:
      StyleError: `data` is not a folder or lacks the image.
    """
    data = Path(data)
    if not data.is_dir():
        raise StyleError(f"--data {data}: no such folder (`{REBUILD} {data}` makes it)")
    if not (data / name).is_file():
        raise StyleError(f"--data {data}: {name} is not there (`{REBUILD} {data}` makes it)")
    return data / name
