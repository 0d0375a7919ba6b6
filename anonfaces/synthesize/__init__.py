"""Synthesis stage: one surrogate face per cluster, put back into the photos.

Synthesizers (registry `SYNTHESIZERS`, ``--synth NAME``):

========= ============================================ ==================
name      what                                         module
========= ============================================ ==================
pixel     k-Same-Pixel: mean of the aligned crops      ``_pixel.py``
morph     shape-normalised average (default)           ``_morph.py``
eigen     k-Same-Eigen: mean in a PCA face space       ``_eigen.py``
stylegan  StyleGAN latent averaging (needs torch)      ``stylegan/``
gnn       identity-conditioned generator (needs torch) ``gnn*``
========= ============================================ ==================

The stage makes surrogates and puts them into photos; it imports neither the
encoding nor the clustering stage (the run that joins them is `anonfaces.pipeline`):
`align_faces` and `make_surrogates` (``surrogates.py``: canonical crops, one
surrogate per cluster), `replace_faces` (``replace.py``: every photo rewritten,
through `blend_surrogate` or a classic obfuscation baseline, `BASELINES`), the
`Mapping` record (``mapping.py``: which face became which surrogate).
(The before/after grid of a run is `anonfaces.pipeline.contact_sheet`.) `blend_surrogate` puts one surrogate onto
one face (`BlendSettings`: the cluster's or the member's shape, the region,
colours, blend); ``privacy.py`` replaces the faces of one photo and, with a
`PrivacyCheck`, checks each face and escalates the ones that still point at their
person (`PrivacyRecord`, the rows of ``privacy.csv``). The learned generators register on first use of the
registry (`load_optional_synthesizers`), so importing this package never
imports torch.
"""

from __future__ import annotations

import importlib
import logging

from anonfaces.synthesize import _eigen, _morph, _pixel  # noqa: F401  (register the built-in synthesizers)
from anonfaces.synthesize._eigen import EigenSynthesizer
from anonfaces.synthesize._morph import MorphSynthesizer
from anonfaces.synthesize._pixel import PixelSynthesizer
from anonfaces.synthesize.base import (
    SYNTHESIZERS,
    Surrogate,
    Synthesizer,
    make_synthesizer,
)

log = logging.getLogger(__name__)

__all__ = [
    "BASELINES",
    "SYNTHESIZERS",
    "BlendSettings",
    "EigenSynthesizer",
    "FaceJob",
    "Mapping",
    "MorphSynthesizer",
    "PixelSynthesizer",
    "PrivacyCheck",
    "PrivacyRecord",
    "Surrogate",
    "Synthesizer",
    "align_faces",
    "apply_baseline",
    "auto_crop_size",
    "blend_surrogate",
    "load_optional_synthesizers",
    "make_surrogates",
    "make_synthesizer",
    "replace_faces",
]

#: Synthesizers that live in optional modules: registry name -> (module, class name).
#: A module may also register itself with ``@SYNTHESIZERS.register(name)``; the class
#: name is the fallback when it does not.
OPTIONAL_SYNTHESIZERS = {
    "stylegan": ("anonfaces.synthesize.stylegan", "StyleGANSynthesizer"),
    "gnn": ("anonfaces.synthesize.gnn", "GNNSynthesizer"),
}

_optional_loaded = False


def load_optional_synthesizers() -> list[str]:
    """Register the learned generators whose modules import (torch itself is imported only when used).

    Returns the names of the synthesizers registered now or before. A module
    that is missing or fails to import is skipped with a log message.
    """
    global _optional_loaded
    if not _optional_loaded:
        _optional_loaded = True
        for name, (module, attr) in OPTIONAL_SYNTHESIZERS.items():
            if name in SYNTHESIZERS:
                continue
            try:
                mod = importlib.import_module(module)
            except ImportError as exc:
                log.debug("synthesizer %r not available: %s", name, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a half-finished optional module must not break the built-in ones
                log.warning("synthesizer %r could not be loaded: %s: %s", name, type(exc).__name__, exc)
                continue
            if name not in SYNTHESIZERS and hasattr(mod, attr):
                SYNTHESIZERS.register(name)(getattr(mod, attr))
    return SYNTHESIZERS.names()


def __getattr__(name):  # the heavier parts, imported on first use
    if name in ("align_faces", "make_surrogates", "auto_crop_size"):
        from anonfaces.synthesize import surrogates

        return getattr(surrogates, name)
    if name == "replace_faces":
        from anonfaces.synthesize.replace import replace_faces

        return replace_faces
    if name == "Mapping":
        from anonfaces.synthesize.mapping import Mapping

        return Mapping
    if name in ("BASELINES", "apply_baseline"):
        from anonfaces.synthesize import baselines

        return getattr(baselines, name)
    if name in ("blend_surrogate", "BlendSettings"):
        from anonfaces.synthesize import blend

        return getattr(blend, name)
    if name in ("FaceJob", "PrivacyCheck", "PrivacyRecord"):
        from anonfaces.synthesize import privacy

        return getattr(privacy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
