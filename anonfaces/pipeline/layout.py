"""Where a run writes: every output path in one record, every output file name through one function.

`RunLayout` holds the two folders of a run: ``public`` (what may be shared: the
anonymized photos, the surrogates, metrics.csv, report.md, plots) and ``private``
(what links photos to people or holds the originals' faces: mapping.csv, run.json,
encodings and caches). Today both are OUT; moving the private files elsewhere
(for example ``OUT.private/``) is a change to `RunLayout.for_out` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anonfaces.errors import BadInputError


def output_name(rel: str) -> str:
    """The name under OUT of the anonymized copy of the dataset photo ``rel`` (today: the same relative path)."""
    return rel


@dataclass(frozen=True)
class RunLayout:
    """Every path a run writes (see the module docstring)."""

    public: Path
    private: Path

    @classmethod
    def for_out(cls, out) -> RunLayout:
        out = Path(out)
        return cls(public=out, private=out)

    # anonymize ----------------------------------------------------------------------------------
    def photo(self, rel: str) -> Path:
        return self.public / output_name(rel)

    @property
    def surrogates(self) -> Path:
        return self.public / "surrogates"

    @property
    def mapping(self) -> Path:
        return self.private / "mapping.csv"

    @property
    def run_record(self) -> Path:
        return self.private / "run.json"

    # evaluate -----------------------------------------------------------------------------------
    @property
    def metrics(self) -> Path:
        return self.public / "metrics.csv"

    @property
    def report(self) -> Path:
        return self.public / "report.md"

    @property
    def plots(self) -> Path:
        return self.public / "plots"

    @property
    def cache(self) -> Path:
        return self.private / "cache"

    @property
    def runs(self) -> Path:
        return self.private / "runs"

    def run(self, folder: str, k: int | None) -> Path:
        """The folder of one anonymization of a sweep: ``runs/<method>/k<k>`` (``all`` without k)."""
        return self.runs / folder / (f"k{k}" if k is not None else "all")

    def folders(self) -> set[Path]:
        return {self.public, self.private}


def check_out_dir(dataset: Path, out: Path, *, overwrite: bool) -> None:
    """Refuse an OUT inside the dataset (or holding it), or a non-empty OUT without ``overwrite``."""
    d, o = Path(dataset).resolve(), Path(out).resolve()
    if o == d or d in o.parents:
        raise BadInputError(f"--out {out} is inside the dataset {dataset}; choose a folder outside it (the input is never modified)")
    if o in d.parents:
        raise BadInputError(f"the dataset {dataset} is inside --out {out}; choose an output folder that does not contain it")
    if o.exists() and not o.is_dir():
        raise BadInputError(f"--out {out} exists and is not a folder")
    if o.is_dir() and any(o.iterdir()) and not overwrite:
        raise BadInputError(f"--out {out} is not empty; choose a new folder or pass --overwrite")
