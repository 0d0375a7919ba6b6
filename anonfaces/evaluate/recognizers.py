"""Face recognizers the attacks use (registry `RECOGNIZERS`).

A recognizer works in two steps, like an encoder, so that the per-photo part
can run in worker processes:

* ``prepare(image, faces)`` -> one crop per face (at the face's landmarks);
* ``embed(crops)`` -> float32 array of shape (n_faces, dim), where the
  Euclidean distance between two rows says how alike two faces are.

``threshold`` is the distance at or below which the recognizer calls two faces
the same person. dlib's is fixed at 0.6 (its documented operating point); the
others are fitted on the original faces (`fit`) and their threshold calibrated
there with `calibrate_threshold` (false-accept rate 1%), so no recognizer sees anonymized faces before
it attacks them.

==============  =========================================================  ===========
name            what                                                       shares dlib?
==============  =========================================================  ===========
``dlib``        dlib's 128-D ResNet descriptor (what the clustering used)   yes
``eigenfaces``  PCA over 64 x 64 aligned greyscale crops, whitened          no
``fisherfaces`` PCA then LDA over the same crops (needs identity labels)    no
``lbp``         uniform LBP histograms on a 7 x 7 grid (Hellinger)          no
``onnx``        a user-supplied ONNX embedding network                     no
``context``     another recognizer (``base``, dlib by default) shown the    as its base
                photo with every face region greyed out: what hair, ears
                and background alone reveal
==============  =========================================================  ===========
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from anonfaces.detect.types import FaceDetection
from anonfaces.errors import BadInputError
from anonfaces.registry import Registry
from anonfaces.utils.distances import SAME_PERSON

RECOGNIZERS: Registry = Registry("recognizer")

#: dlib's documented same-person distance (face_recognition's default tolerance).
DLIB_THRESHOLD = SAME_PERSON

#: The square of the canonical frame (fractions of its side) the greyscale recognizers look at:
#: eyes at y = 0.38 and mouth at 0.70 (`anonfaces.detect.CANONICAL_TEMPLATE`), so brows to chin.
INNER_FACE = (0.2, 0.86)


class Recognizer:
    """Interface (see the module docstring)."""

    registry_name: ClassVar[str]
    #: `fit` needs identity labels.
    needs_identities: ClassVar[bool] = False
    #: `fit` must see the original faces before `embed`.
    needs_fit: ClassVar[bool] = True

    threshold: float | None = None

    def settings(self) -> dict:
        return {"name": self.registry_name}

    def prepare(self, image: np.ndarray, faces: list[FaceDetection]) -> np.ndarray:
        raise NotImplementedError

    def fit(self, crops: np.ndarray, identities=None) -> Recognizer:
        """Fit on the original faces' crops and calibrate `threshold` (when labels allow)."""
        if identities is not None:
            self.threshold = calibrate_threshold(self.embed(crops), identities)
        return self

    def embed(self, crops: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def calibrate_threshold(embeddings, identities, *, far: float = 0.01, max_pairs: int = 200_000, random_state=0) -> float | None:
    """The distance below which only a fraction ``far`` of different-person pairs fall.

    The operating point at a false-accept rate of ``far`` (1% by default) over all
    different-person pairs of the original faces (a random sample of ``max_pairs``
    when there are more): a recognizer calling faces "the same person" at this
    distance mistakes 1 in 100 strangers for each other. None when there is no
    different-person pair.
    """
    from sklearn.utils import check_random_state

    if not 0 < far < 1:
        raise BadInputError(f"far={far!r} must be in (0, 1)")
    X = np.asarray(embeddings, np.float64)
    ids = np.asarray(identities)
    n = len(X)
    if ids.shape != (n,):
        raise BadInputError(f"identities has shape {ids.shape}; expected ({n},)")
    i, j = np.triu_indices(n, 1)
    if i.size > max_pairs:
        pick = check_random_state(random_state).choice(i.size, max_pairs, replace=False)
        i, j = i[pick], j[pick]
    different = ids[i] != ids[j]
    if not different.any():
        return None
    d = np.linalg.norm(X[i[different]] - X[j[different]], axis=1)
    return float(np.quantile(d, far))


@RECOGNIZERS.register("dlib")
class DlibRecognizer(Recognizer):
    """dlib's 128-D descriptor, threshold 0.6 (the network the clustering used)."""

    needs_fit = False

    def __init__(self, *, num_jitters: int = 1, threshold: float = DLIB_THRESHOLD):
        from anonfaces.encode import DlibEncoder

        self._encoder = DlibEncoder(num_jitters=num_jitters)
        self.num_jitters = int(num_jitters)
        self.threshold = float(threshold)

    def settings(self) -> dict:
        return {"name": "dlib", "num_jitters": self.num_jitters, "threshold": self.threshold}

    def prepare(self, image, faces):
        return self._encoder.prepare(image, faces)

    def fit(self, crops, identities=None):
        return self  # fixed threshold: dlib's documented operating point

    def embed(self, crops):
        return self._encoder.embed(crops)


class _GreyRecognizer(Recognizer):
    """Shared part of the recognizers that work on canonical greyscale crops."""

    def __init__(self, *, size: int = 64):
        if not isinstance(size, (int, np.integer)) or not 16 <= size <= 256:
            raise BadInputError(f"size={size!r} must be an integer from 16 to 256")
        self.size = int(size)

    def settings(self) -> dict:
        return {"name": self.registry_name, "size": self.size, "threshold": self.threshold}

    def prepare(self, image, faces):
        """Inner-face greyscale crops (brows to chin, cheek to cheek), shape (n, size, size) uint8.

        Tighter than the canonical crop: hair, ears and background, which no
        method replaces, would otherwise let these pixel-level recognizers match
        the unchanged surroundings instead of the face.
        """
        from anonfaces.encode._pca import grey_crops

        lo, hi = INNER_FACE
        big = round(self.size / (hi - lo))
        crops = grey_crops(image, faces, big)
        a = round(lo * big)
        inner = crops[:, a : a + self.size, a : a + self.size]
        return np.ascontiguousarray(inner)

    def _flat(self, crops) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim != 3 or crops.shape[1:] != (self.size, self.size):
            raise BadInputError(f"expected crops of shape (n, {self.size}, {self.size}); got {crops.shape}")
        X = crops.reshape(len(crops), -1).astype(np.float32) / 255.0
        # per-face contrast normalisation: the attack should not hinge on global brightness
        X -= X.mean(1, keepdims=True)
        X /= np.maximum(X.std(1, keepdims=True), 1e-6)
        return X


@RECOGNIZERS.register("eigenfaces")
class EigenfaceRecognizer(_GreyRecognizer):
    """Eigenfaces (Turk and Pentland): whitened PCA of aligned greyscale crops.

    Parameters
    ----------
    n_components : int, default 100
        Components kept (at most n_faces - 1).
    size : int, default 64
    """

    def __init__(self, *, n_components: int = 100, size: int = 64):
        super().__init__(size=size)
        if not isinstance(n_components, (int, np.integer)) or n_components < 1:
            raise BadInputError(f"n_components={n_components!r} must be an integer >= 1")
        self.n_components = int(n_components)
        self.pca_ = None

    def settings(self):
        return {**super().settings(), "n_components": self.n_components}

    def fit(self, crops, identities=None):
        from sklearn.decomposition import PCA

        X = self._flat(crops)
        if len(X) < 2:
            raise BadInputError(f"eigenfaces need at least 2 faces to fit; got {len(X)}")
        self.pca_ = PCA(n_components=min(self.n_components, len(X) - 1), whiten=True, random_state=0).fit(X)
        return super().fit(crops, identities)

    def embed(self, crops):
        if self.pca_ is None:
            raise BadInputError("fit the eigenfaces recognizer on the original faces first")
        Z = self.pca_.transform(self._flat(crops))
        # cosine geometry (usual for eigenfaces): unit vectors, Euclidean distance
        return (Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@RECOGNIZERS.register("fisherfaces")
class FisherfaceRecognizer(_GreyRecognizer):
    """Fisherfaces (Belhumeur et al.): PCA to n - c dimensions, then LDA; needs identities.

    Parameters
    ----------
    n_components : int or None, default None
        LDA dimensions (at most identities - 1).
    size : int, default 64
    """

    needs_identities = True

    def __init__(self, *, n_components: int | None = None, size: int = 64):
        super().__init__(size=size)
        self.n_components = n_components
        self.pca_ = None
        self.lda_ = None

    def settings(self):
        return {**super().settings(), "n_components": self.n_components}

    def fit(self, crops, identities=None):
        from sklearn.decomposition import PCA
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        if identities is None:
            raise BadInputError("fisherfaces need identity labels to fit (the dataset's folders)")
        X = self._flat(crops)
        ids = np.asarray(identities)
        classes = np.unique(ids)
        if classes.size < 2:
            raise BadInputError(f"fisherfaces need at least 2 identities; got {classes.size}")
        n_pca = max(1, min(len(X) - classes.size, X.shape[1], 200))
        self.pca_ = PCA(n_components=n_pca, random_state=0).fit(X)
        n_lda = classes.size - 1 if self.n_components is None else min(int(self.n_components), classes.size - 1)
        self.lda_ = LinearDiscriminantAnalysis(n_components=min(n_lda, n_pca)).fit(self.pca_.transform(X), ids)
        return super().fit(crops, identities)

    def embed(self, crops):
        if self.lda_ is None:
            raise BadInputError("fit the fisherfaces recognizer on the original faces first")
        Z = self.lda_.transform(self.pca_.transform(self._flat(crops)))
        return (Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@RECOGNIZERS.register("lbp")
class LBPRecognizer(_GreyRecognizer):
    """Local binary patterns (Ahonen et al.): uniform LBP(8, 1) histograms over a grid.

    Rows are the square roots of the normalised histograms, so Euclidean distance
    between rows is the Hellinger distance between the histograms. No training;
    `fit` only calibrates the threshold.

    Parameters
    ----------
    grid : int, default 7
        Cells per side.
    size : int, default 64
    """

    def __init__(self, *, grid: int = 7, size: int = 64):
        super().__init__(size=size)
        if not isinstance(grid, (int, np.integer)) or not 1 <= grid <= size // 4:
            raise BadInputError(f"grid={grid!r} must be an integer from 1 to size // 4 = {size // 4}")
        self.grid = int(grid)

    def settings(self):
        return {**super().settings(), "grid": self.grid}

    def embed(self, crops):
        from skimage.feature import local_binary_pattern

        crops = np.asarray(crops)
        if crops.ndim != 3 or crops.shape[1:] != (self.size, self.size):
            raise BadInputError(f"expected crops of shape (n, {self.size}, {self.size}); got {crops.shape}")
        P = 8
        n_bins = P + 2  # uniform patterns plus one bin for the rest
        edges = np.linspace(0, self.size, self.grid + 1).astype(int)
        out = np.empty((len(crops), self.grid * self.grid * n_bins), np.float32)
        for n, crop in enumerate(crops):
            codes = local_binary_pattern(crop, P, 1, method="uniform").astype(np.int64)
            hists = [
                np.bincount(codes[edges[r] : edges[r + 1], edges[c] : edges[c + 1]].ravel(), minlength=n_bins)
                for r in range(self.grid)
                for c in range(self.grid)
            ]
            h = np.concatenate(hists).astype(np.float64)
            out[n] = np.sqrt(h / h.sum())
        return out


@RECOGNIZERS.register("onnx")
class OnnxRecognizer(Recognizer):
    """A user-supplied ONNX embedding network (see `anonfaces.encode.OnnxEncoder` for the settings).

    The threshold is ``threshold`` when given, else calibrated on the original faces.
    """

    def __init__(self, *, model: str, threshold: float | None = None, **encoder_settings):
        from anonfaces.encode import OnnxEncoder

        self._encoder = OnnxEncoder(model=model, **encoder_settings)
        self._fixed = threshold is not None
        self.threshold = None if threshold is None else float(threshold)

    def settings(self):
        return {**self._encoder.settings(), "threshold": self.threshold}

    def prepare(self, image, faces):
        return self._encoder.prepare(image, faces)

    def fit(self, crops, identities=None):
        return self if self._fixed else super().fit(crops, identities)

    def embed(self, crops):
        return self._encoder.embed(crops)


#: Grey level that replaces the face region for the context attacker.
CONTEXT_FILL = 128


def face_region_polygon(landmarks68, *, forehead: float = 0.5, grow: float = 1.15) -> np.ndarray:
    """The face region of the context attacker, generously: a convex polygon (m, 2) in image pixels.

    The hull of the 68 landmarks and of the eyebrows raised by ``forehead`` times
    the brow-to-chin height (up to the hairline), scaled by ``grow`` about the
    nose bridge (out to the ears, under the chin).
    """
    lm = np.asarray(landmarks68, np.float64)
    if lm.shape != (68, 2):
        raise BadInputError(f"landmarks68 must have shape (68, 2); got {lm.shape}")
    import cv2

    brows, chin = lm[17:27], lm[8]
    up = brows.mean(0) - chin
    points = np.vstack([lm, brows + forehead * up])
    centre = lm[27:31].mean(0)
    points = centre + grow * (points - centre)
    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)


def grey_face_regions(image: np.ndarray, faces, *, forehead: float = 0.5, grow: float = 1.15,
                      fill: int = CONTEXT_FILL) -> np.ndarray:
    """A copy of ``image`` with the face region (`face_region_polygon`) of every face filled with ``fill``."""
    import cv2

    out = np.array(image, copy=True)
    for face in faces:
        poly = np.round(face_region_polygon(face.landmarks68, forehead=forehead, grow=grow)).astype(np.int32)
        cv2.fillConvexPoly(out, poly, (int(fill),) * (out.shape[2] if out.ndim == 3 else 1))
    return out


@RECOGNIZERS.register("context")
class ContextRecognizer(Recognizer):
    """The context attacker: a base recognizer shown only what surrounds the faces.

    `prepare` greys out every face region of the photo (`grey_face_regions`:
    the landmark hull, forehead to the hairline, under the chin, out to the
    ears) and hands the photo to the base recognizer's `prepare`; `fit` and
    `embed` are the base's. A method that replaces only the face leaves these
    pixels as they were, so identity-level re-identification with this attacker
    says how much hair, ears and background alone give away. (Closed-set
    identification and RI compare a photo with itself and are trivially high
    when the surroundings are unchanged.)

    Parameters
    ----------
    base : str, default "dlib"
        The recognizer shown the greyed photo (any registered name but ``context``).
    forehead, grow : float
        The region (`face_region_polygon`).
    threshold : float, optional
        Same-person distance; by default the base's calibrated one when it is fitted,
        else none (dlib's 0.6 is for whole faces, not for their surroundings).
    **base_settings
        Settings of the base recognizer.
    """

    def __init__(self, *, base: str = "dlib", forehead: float = 0.5, grow: float = 1.15, threshold: float | None = None,
                 **base_settings):
        if base == "context":
            raise BadInputError("the context attacker's base must be another recognizer, not 'context'")
        if not 0 <= float(forehead) <= 2:
            raise BadInputError(f"forehead={forehead!r} must be from 0 to 2 (times the brow-to-chin height)")
        if not 1 <= float(grow) <= 2:
            raise BadInputError(f"grow={grow!r} must be from 1 to 2")
        self.base = make_recognizer(base, **base_settings)
        self.base_name = base
        self.forehead, self.grow = float(forehead), float(grow)
        self.needs_fit = self.base.needs_fit
        self.needs_identities = self.base.needs_identities
        self._fixed = threshold is not None
        self.threshold = float(threshold) if threshold is not None else None

    def settings(self) -> dict:
        return {"name": "context", "base": self.base.settings(), "forehead": self.forehead, "grow": self.grow,
                "threshold": self.threshold}

    def prepare(self, image, faces):
        return self.base.prepare(grey_face_regions(image, faces, forehead=self.forehead, grow=self.grow), faces)

    def fit(self, crops, identities=None):
        self.base.fit(crops, identities)
        if not self._fixed:
            self.threshold = self.base.threshold if self.base.needs_fit else None
        return self

    def embed(self, crops):
        return self.base.embed(crops)


def make_recognizer(name: str, **settings) -> Recognizer:
    """A recognizer by registry name (``dlib``, ``eigenfaces``, ``fisherfaces``, ``lbp``, ``onnx``, ``context``)."""
    return RECOGNIZERS.get(name)(**settings)
