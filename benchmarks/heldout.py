"""The held-out photos and artworks of heldout.txt, found in ../shared/data beside the repo."""

from pathlib import Path

LIST = Path(__file__).resolve().parent / "heldout.txt"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def heldout_paths() -> tuple[list[Path], list[Path]]:
    """(photos, artworks) that exist on this machine; both empty without ../shared."""
    names = [line.strip() for line in LIST.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    existing = [SHARED / n for n in names if (SHARED / n).is_file()]
    return ([p for p in existing if "train_content" in p.parts],
            [p for p in existing if "train_style" in p.parts])
