"""The synthesizer interface, its registry and the `Surrogate` record.

A synthesizer turns one cluster's faces into one surrogate face that stands for
all of them. Everything happens in the canonical frame of
`anonfaces.detect.align_face` (eyes and mouth at fixed places in a square crop
of S pixels)::

    @SYNTHESIZERS.register("pixel")
    class PixelSynthesizer(Synthesizer):
        def synthesize(self, faces, landmarks, embeddings=None) -> Surrogate: ...

    synth = make_synthesizer("morph")
    synth.fit(all_faces, all_landmarks)          # optional hook (eigen fits its basis here)
    surrogate = synth.synthesize(faces, landmarks, embeddings)

* ``faces``: uint8 ndarray of shape (m, S, S, 3), the members' canonical RGB crops;
* ``landmarks``: float32 ndarray of shape (m, 68, 2), their 68 points in crop pixels;
* ``embeddings``: optional float32 ndarray of shape (m, dim).

A synthesizer that can use the members' identity labels declares
``uses_identities = True`` and takes them as a keyword::

    surrogate = synth.synthesize(faces, landmarks, embeddings, identities=["Tony_Blair", ""])

* ``identities``: optional sequence of m str, each member's identity label
  (`anonfaces.encode.Encodings.identities`: the first folder level of the
  dataset, or a labels file); ``""`` where a member's identity is unknown.

The pipeline (`call_synthesize`) passes ``identities`` only to synthesizers that
declare ``uses_identities``; the others, including user objects with just
``synthesize(faces, landmarks, embeddings)``, are called exactly as before.
The ``gnn`` synthesizer uses the labels to map members to its training
identities (k-Same-Net, where the GNN is trained on the people being anonymised).

Learned generators (``stylegan``, ``gnn``) implement the same ``synthesize``;
they need not subclass `Synthesizer` (``fit`` and ``settings`` are optional).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.registry import Registry

SYNTHESIZERS: Registry = Registry("synthesizer")


@dataclass(frozen=True)
class Surrogate:
    """One cluster's surrogate face in the canonical frame.

    Attributes
    ----------
    image : ndarray of shape (S, S, 3), uint8
        RGB crop, the face where `anonfaces.detect.CANONICAL_TEMPLATE` puts it.
    landmarks : ndarray of shape (68, 2), float32
        The surrogate's 68 landmarks in crop pixels.
    info : dict
        Optional notes from the synthesizer (JSON-serialisable).
    """

    image: np.ndarray
    landmarks: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        image = np.asarray(self.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1] or image.dtype != np.uint8:
            raise BadInputError(f"a surrogate image must be uint8 of shape (S, S, 3); got {image.dtype} {image.shape}")
        landmarks = np.asarray(self.landmarks, dtype=np.float32)
        if landmarks.shape != (68, 2):
            raise BadInputError(f"surrogate landmarks must have shape (68, 2); got {landmarks.shape}")
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "landmarks", landmarks)

    @property
    def size(self) -> int:
        return int(self.image.shape[0])


class Synthesizer:
    """Base class of the built-in synthesizers (settings as keyword-only ``__init__`` arguments)."""

    registry_name: str
    #: True when an instance is small and picklable, so that clusters can be synthesized in
    #: the worker processes (a synthesizer holding a large model keeps this False).
    parallel: bool = False
    #: True when ``synthesize`` takes the keyword ``identities`` (the members' labels; see the module docstring).
    uses_identities: bool = False

    def fit(self, faces: np.ndarray, landmarks: np.ndarray) -> Synthesizer:
        """See every face of the dataset before synthesizing (no-op unless a method needs it)."""
        return self

    def synthesize(self, faces: np.ndarray, landmarks: np.ndarray, embeddings: np.ndarray | None = None) -> Surrogate:
        raise NotImplementedError

    def settings(self) -> dict:
        """JSON-serialisable name and settings (recorded in ``run.json``)."""
        params = {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}
        return {"name": getattr(self, "registry_name", type(self).__name__), **params}


def check_cluster(faces, landmarks, embeddings=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate a synthesizer's inputs and return them as arrays of the documented types."""
    faces = np.asarray(faces)
    if faces.ndim != 4 or faces.shape[3] != 3 or faces.shape[1] != faces.shape[2] or faces.dtype != np.uint8:
        raise BadInputError(f"faces must be uint8 of shape (m, S, S, 3); got {faces.dtype} {faces.shape}")
    m = len(faces)
    if m == 0:
        raise BadInputError("a cluster needs at least one face")
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if landmarks.shape != (m, 68, 2):
        raise BadInputError(f"landmarks must have shape ({m}, 68, 2); got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise BadInputError("landmarks hold NaN or inf (faces imported without landmarks cannot be synthesized)")
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != m:
            raise BadInputError(f"embeddings must have shape ({m}, dim); got {embeddings.shape}")
    return faces, landmarks, embeddings


def check_identities(identities, m: int) -> list[str] | None:
    """Validate a cluster's identity labels: None, or a list of ``m`` str (``""`` = unknown)."""
    if identities is None:
        return None
    if isinstance(identities, str):
        raise BadInputError(f"identities must be a sequence of {m} labels, not one string ({identities!r})")
    labels = list(identities)
    if len(labels) != m:
        raise BadInputError(f"identities must have one label per face ({m}); got {len(labels)}")
    bad = [v for v in labels if not isinstance(v, (str, np.str_))]
    if bad:
        raise BadInputError(f"identity labels must be str; got {bad[0]!r} ({type(bad[0]).__name__})")
    return [str(v) for v in labels]


def call_synthesize(synth, faces, landmarks, embeddings=None, identities=None):
    """``synth.synthesize(...)``, with ``identities=`` only when the synthesizer declares ``uses_identities``."""
    if identities is not None and getattr(synth, "uses_identities", False):
        return synth.synthesize(faces, landmarks, embeddings, identities=identities)
    return synth.synthesize(faces, landmarks, embeddings)


def make_synthesizer(name, **settings):
    """A synthesizer instance by registry name (or an instance, returned unchanged)."""
    if not isinstance(name, str):
        if settings:
            raise BadInputError("pass settings to the synthesizer's constructor, not with an instance")
        if not callable(getattr(name, "synthesize", None)):
            raise BadInputError(f"{name!r} has no synthesize(faces, landmarks, embeddings) method")
        return name
    from anonfaces.synthesize import load_optional_synthesizers

    load_optional_synthesizers()
    cls = SYNTHESIZERS.get(name)
    try:
        return cls(**settings)
    except TypeError as exc:
        raise BadInputError(f"bad settings for synthesizer {name!r}: {exc}") from None


def synthesizer_settings(synth) -> dict:
    """``synth.settings()`` when it has one, else its registry name."""
    if callable(getattr(synth, "settings", None)):
        return synth.settings()
    return {"name": getattr(synth, "registry_name", type(synth).__name__)}
