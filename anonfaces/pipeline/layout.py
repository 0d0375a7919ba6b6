"""Where a run writes: every output path in one record, every output file name through one function.

`RunLayout` holds the two folders of a run, never mixed: ``public`` (OUT: what may
be shared: the anonymized photos under neutral names, the surrogates when asked
for, metrics.csv, report.md, plots) and ``private`` (by default ``OUT.private/``
beside OUT, never inside it: mapping.csv, files.csv, privacy.csv, run.json,
encodings, the naming key, the surrogates as made, caches and sweep runs).
`RunLayout.output_names` names the outputs (`anonfaces.release.naming`: a keyed
hash by default, or the dataset's own names).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from anonfaces.errors import BadInputError
from anonfaces.release.layout import (  # noqa: F401  (the names are the release's rules; re-exported for callers)
    ENCODINGS_FILE,
    FILES_FILE,
    KEY_FILE,
    MAPPING_FILE,
    PRIVACY_FILE,
    PRIVATE_SUFFIX,
    RUN_FILE,
    SURROGATES_DIR,
    VIDEOS_DIR,
    check_folders,
    default_private_dir,
)


@dataclass(frozen=True)
class RunLayout:
    """Every path a run writes, and the names of its outputs (see the module docstring).

    ``names``: ``hash`` (keyed hash of the path, ``key`` needed) or ``keep`` (the
    dataset's relative paths); ``keep_folders`` keeps sub-folders that do not name people.
    """

    public: Path
    private: Path
    names: str = "keep"
    key: bytes | None = None
    keep_folders: bool = False

    @classmethod
    def for_out(cls, out, private=None, **naming) -> RunLayout:
        out = Path(out)
        return cls(public=out, private=default_private_dir(out) if private is None else Path(private), **naming)

    def output_names(self, images: list[str]) -> dict[str, str]:
        """Dataset path -> name under OUT of its anonymized copy."""
        if self.names == "keep" and not self.keep_folders:
            return {rel: rel for rel in images}
        from anonfaces.release.naming import output_names

        return output_names(images, names=self.names, key=self.key, keep_folders=self.keep_folders)

    # anonymize ----------------------------------------------------------------------------------
    @property
    def surrogates(self) -> Path:
        """The surrogates as made (private); copied to `shared_surrogates` only when asked for."""
        return self.private / SURROGATES_DIR

    @property
    def shared_surrogates(self) -> Path:
        return self.public / SURROGATES_DIR

    @property
    def mapping(self) -> Path:
        return self.private / MAPPING_FILE

    @property
    def files(self) -> Path:
        return self.private / FILES_FILE

    @property
    def encodings(self) -> Path:
        return self.private / ENCODINGS_FILE

    @property
    def key_file(self) -> Path:
        return self.private / KEY_FILE

    # the names `anonfaces.release` reads them by
    mapping_path = mapping
    files_path = files
    encodings_path = encodings
    key_path = key_file
    work_surrogates = surrogates

    @property
    def out(self) -> Path:
        return self.public

    @property
    def run_path(self) -> Path:
        return self.run_record

    @property
    def privacy(self) -> Path:
        return self.private / PRIVACY_FILE

    @property
    def run_record(self) -> Path:
        return self.private / RUN_FILE

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


def check_layout(out: str | os.PathLike, private: str | os.PathLike | None = None, *,
                 dataset: str | os.PathLike | None = None) -> RunLayout:
    """The run's `RunLayout`; refuses a private folder inside OUT (or OUT inside it) or overlapping the dataset
    (`anonfaces.release.layout.check_folders`)."""
    return RunLayout(*check_folders(out, private, dataset=dataset))


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
