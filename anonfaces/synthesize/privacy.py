"""Replace the faces of one photo and check, face by face, that the photo keeps the k-anonymity promise.

A surrogate stands for at least k people, but the photo it is blended into can
still give its person away (their head, outline, light). After a face is
replaced, `PrivacyCheck` embeds it (with the ``embed(chips) -> (n, dim)``
callable it is given; this module imports no encoder) and scores it:

* ``leak = d(surrogate, member) - d(anonymized face, member)``: how much closer
  the photo brings the face to its person (the person's mean embedding) than the
  bare surrogate stands;
* ``evenness = min d(face, photos of the cluster's other people)
  - min d(face, photos of the person)``: how much nearer the face stands to its
  own person than to the nearest other member of its cluster (> 0: a
  nearest-neighbour attacker who knows the cluster names the person);
* ``nearest_own = min d(face, the person's original photos)``, this photo's
  original face included (the own-photo term): a face within
  ``own_distance + margin`` (0.5 + 0.05) of one of them is still recognisable as
  its person (issue 13's unprotected face: within 0.5 of its original).

The face passes when ``max(leak, evenness) <= margin`` (either one alone where
the other cannot be computed) and ``nearest_own >= own_distance + margin``.
Otherwise the face is redone, first with each of its cluster's other surrogate
variants (`FaceJob.alternatives`, when the run makes variants), then with the next
step of `escalation_steps` (on the variant that came closest; the cluster's shape, the largest region, colours fully from
the cluster, the region softened); when every step fails, ``on_leak`` decides: ``blur`` the face
region, paste the bare ``surrogate`` crop over the head (the surrogate alone,
for which the 1/k bound holds), or ``keep`` the last step (recorded as
``kept-above-margin``, never silently). `replace_faces` returns one
`PrivacyRecord` per face, the rows of ``privacy.csv``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

import cv2
import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.synthesize.base import Surrogate
from anonfaces.synthesize.blend import (
    REGIONS,
    BlendSettings,
    blend_surrogate,
    place_surrogate,
)
from anonfaces.utils.atomic import atomic_open
from anonfaces.utils.distances import UNPROTECTED

log = logging.getLogger(__name__)

ON_LEAK = ("blur", "surrogate", "keep")
#: Default margin on ``max(leak, evenness)`` (dlib distances; faces of one person lie within about 0.6).
DEFAULT_MARGIN = 0.05
#: dlib distance under which a face still counts as its person's (issue 13's unprotected face; the evaluation's
#: ``anonfaces.evaluate.protocols.UNPROTECTED_DISTANCE``); the own-photo term keeps every face ``margin`` beyond it.
OWN_DISTANCE = UNPROTECTED
OWN_PHOTOS = ("person", "this")
#: The choices of `AnonymizeOptions.own_photos` (``off``: no own-photo term).
OWN_PHOTOS_CHOICES = (*OWN_PHOTOS, "off")
PRIVACY_COLUMNS = ("path", "face", "cluster", "leak_before", "evenness_before", "nearest_own_before", "leak_after",
                   "evenness_after", "nearest_own_after", "step", "outcome", "found")
#: Outcomes: the face passed with the settings asked for, after escalating, or fell back (``on_leak``).
OUTCOMES = ("passed", "escalated", "blurred", "surrogate", "kept-above-margin", "unchecked")
CHIP_SIZE = 150
#: The last escalation steps' blur of the replaced region (share of the face size; `BlendSettings.soften`).
SOFTEN = (0.03, 0.06, 0.1)
#: Where a failing face tries its cluster's other surrogate variants (`PrivacyCheck.reroll_steps`): with the settings
#: asked for only, then the stronger steps on the variant that came closest (``given``), or at every step before
#: the next (``every``).
REROLL_STEPS = ("given", "every")
REROLL_STEPS_DEFAULT = "every"
#: With ``reroll_steps="every"``: how many of the surrogate and its variants each later step tries, the closest to
#: passing first (ranked by `PrivacyCheck.shortfall` with the settings asked for).
REROLL_TOP = 3


@dataclass(frozen=True)
class FaceJob:
    """One face to replace, with what the check needs to know about its person.

    Attributes
    ----------
    landmarks68 : ndarray of shape (68, 2)
        The face's landmarks in the photo.
    surrogate : Surrogate
        Its cluster's surrogate.
    cluster : int
    face : int
        The face's index in its photo.
    member : ndarray of shape (dim,), optional
        The person's mean embedding (None: no leak term).
    own : ndarray of shape (n, dim), optional
        Embeddings of the person's photos (None or empty: no evenness term; with
        ``original``, the own-photo term's faces).
    others : ndarray of shape (m, dim), optional
        Embeddings of the photos of the cluster's other people.
    surrogate_embedding : ndarray of shape (dim,), optional
        The bare surrogate's embedding (computed by the check when None).
    original : ndarray of shape (dim,), optional
        This face's own original embedding (the own-photo term; ``own`` usually holds it already).
    alternatives : tuple of Surrogate
        The cluster's other surrogate variants (``AnonymizeOptions.variants``): the check's
        first escalation tries each with the settings asked for (step ``variant-<j>``, j from
        the surrogate's ``info["variant"]``, else its place in this tuple, from 1), and the
        later steps use the one that came closest to passing.
    fallback : Surrogate, optional
        What ``on_leak="surrogate"`` pastes (None, as the pipeline leaves it: the surrogate
        or variant that came closest to passing).
    box_ltrb : ndarray of shape (4,), optional
        The face's detection box in the photo (the found test, `PrivacyCheck.detector`).
    """

    landmarks68: np.ndarray
    surrogate: Surrogate
    cluster: int = -1
    face: int = 0
    member: np.ndarray | None = None
    own: np.ndarray | None = None
    others: np.ndarray | None = None
    surrogate_embedding: np.ndarray | None = None
    original: np.ndarray | None = None
    alternatives: tuple = ()
    fallback: Surrogate | None = None
    box_ltrb: np.ndarray | None = None


class Scores(NamedTuple):
    """One face's terms (NaN where a term cannot be computed): see the module docstring."""

    leak: float
    evenness: float
    nearest_own: float


@dataclass
class PrivacyRecord:
    """What the check found for one face (one row of ``privacy.csv``); NaN where a term was not computed."""

    path: str
    face: int
    cluster: int
    leak_before: float = float("nan")
    evenness_before: float = float("nan")
    nearest_own_before: float = float("nan")
    leak_after: float = float("nan")
    evenness_after: float = float("nan")
    nearest_own_after: float = float("nan")
    step: str = "given"
    outcome: str = "unchecked"
    found: str = ""

    def row(self) -> list:
        return csv_row(self, PRIVACY_COLUMNS)


def csv_row(record, columns) -> list:
    """``record``'s ``columns`` as one CSV row: floats with 4 decimals, the rest as they are."""
    return [f"{v:.4f}" if isinstance(v, float) else v for v in (getattr(record, key) for key in columns)]


def escalation_steps(settings: BlendSettings, soften: Sequence[float] = SOFTEN) -> list[tuple[str, BlendSettings]]:
    """The settings asked for, then each stronger step: cluster shape (no pose or fine detail from the member),
    largest region, cluster colours, then the region softened by each of ``soften`` (shares of the face size,
    increasing)."""
    steps = [("given", settings)]
    current = settings
    if current.weight < 1.0 or current.pose or current.detail:
        current = current.replace(shape="cluster", pose=0, detail=0.0)
        steps.append(("cluster-shape", current))
    largest = max(REGIONS, key=lambda r: REGIONS[r][0] * REGIONS[r][1] ** 2)
    if current.region != largest or current.forehead is not None:
        current = current.replace(region=largest, forehead=None)
        steps.append(("largest-region", current))
    if current.color != "none":
        current = current.replace(color="none")
        steps.append(("cluster-colour", current))
    for i, sigma in enumerate(soften):
        if current.soften < sigma:
            current = current.replace(soften=sigma)
            steps.append(("softened" if i == 0 else f"softened-{i + 1}", current))
    return steps


#: The overlap at which a detection counts as the face (the evaluation's re-detection rule).
FOUND_IOU = 0.5


def check_soften(soften) -> tuple:
    """The softened steps as a tuple of increasing blurs in (0, 0.2]; a string "0.03,0.06" is read too."""
    if isinstance(soften, str):
        soften = [v for v in soften.replace(";", ",").split(",") if v.strip()]
    try:
        values = tuple(float(v) for v in (soften if isinstance(soften, (list, tuple)) else [soften]))
    except (TypeError, ValueError):
        values = (float("nan"),)
    if any(not (0 < v <= 0.2) for v in values) or list(values) != sorted(set(values)):
        raise BadInputError(f"soften={soften!r} must be increasing numbers in (0, 0.2] (shares of the face size)")
    return values


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.atleast_2d(b) - np.asarray(a)[None, :], axis=1)


@dataclass
class PrivacyCheck:
    """The per-face check (see the module docstring).

    Parameters
    ----------
    embed : callable
        ``embed(chips)`` with chips a uint8 array of shape (n, 150, 150, 3) (dlib's
        aligned face chips, `anonfaces.detect.face_chip`) -> ndarray of shape (n, dim).
    margin : float
        Largest accepted ``max(leak, evenness)``; also how far beyond ``own_distance`` the face must stand from
        every original photo of its person.
    on_leak : {"blur", "surrogate", "keep"}
        What to do with a face still above the margin after every step.
    evenness : bool
        Score the evenness term (else the leak alone).
    own_distance : float or None
        The own-photo term: a face nearer than ``own_distance + margin`` to an
        original photo of its person fails (None: no own-photo term).
    own_photos : {"person", "this"}
        The own-photo term's originals: every photo of the person (``own`` and
        ``original``; the release safety net's rule) or this photo's own
        original only (issue 13's unprotected face).
    soften : sequence of float
        The softened steps' blur (shares of the face size; `escalation_steps`).
    reroll_steps : {"given", "every"}
        Where the cluster's other variants (`FaceJob.alternatives`) are tried: with the
        settings asked for only (then the stronger steps on the one that came closest),
        or, ``every``, also at every later step on the `REROLL_TOP` (3) closest to passing
        with the settings asked for (steps ``<step>/variant-<j>``) before the next step.
    detector : object, optional
        A face detector (``detect(image) -> [FaceDetection]``, `anonfaces.detect`): a face
        that passes but that it no longer finds near ``FaceJob.box_ltrb`` (IoU >= 0.5)
        is redone with the next tries, and the first that passes and is found is kept
        (none: the first that passed). This serves the detection figure (a usable face),
        not privacy: every face written still passes the same terms. None: not tested.
    """

    embed: Callable[[np.ndarray], np.ndarray]
    margin: float = DEFAULT_MARGIN
    on_leak: str = "blur"
    evenness: bool = True
    own_distance: float | None = OWN_DISTANCE
    own_photos: str = "person"
    soften: tuple = SOFTEN
    reroll_steps: str = REROLL_STEPS_DEFAULT
    detector: object | None = None
    _surrogate_cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not callable(self.embed):
            raise BadInputError("embed must be a callable chips -> (n, dim) embeddings")
        if self.on_leak not in ON_LEAK:
            raise BadInputError(f"on_leak={self.on_leak!r} must be one of {', '.join(ON_LEAK)}")
        if not np.isfinite(self.margin):
            raise BadInputError(f"margin={self.margin!r} must be a finite number")
        if self.own_distance is not None and not (np.isfinite(self.own_distance) and self.own_distance >= 0):
            raise BadInputError(f"own_distance={self.own_distance!r} must be None or a distance >= 0")
        if self.own_photos not in OWN_PHOTOS:
            raise BadInputError(f"own_photos={self.own_photos!r} must be one of {', '.join(OWN_PHOTOS)}")
        self.soften = check_soften(self.soften)
        if self.reroll_steps not in REROLL_STEPS:
            raise BadInputError(f"reroll_steps={self.reroll_steps!r} must be one of {', '.join(REROLL_STEPS)}")
        if self.detector is not None and not callable(getattr(self.detector, "detect", None)):
            raise BadInputError("detector must have a detect(image) method (an anonfaces.detect detector)")

    def _embed_one(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        from anonfaces.detect import face_chip

        chip = face_chip(image, np.asarray(landmarks68, dtype=np.float64), size=CHIP_SIZE)
        out = np.asarray(self.embed(chip[None]), dtype=np.float64)
        if out.ndim != 2 or len(out) != 1:
            raise BadInputError(f"embed must return an array of shape (1, dim) for one chip; got {out.shape}")
        return out[0]

    def surrogate_embedding(self, job: FaceJob) -> np.ndarray:
        if job.surrogate_embedding is not None:
            return np.asarray(job.surrogate_embedding, dtype=np.float64)
        key = id(job.surrogate)
        if key not in self._surrogate_cache:
            self._surrogate_cache[key] = (job.surrogate, self._embed_one(job.surrogate.image, job.surrogate.landmarks))
        return self._surrogate_cache[key][1]

    def scores(self, image: np.ndarray, job: FaceJob) -> Scores:
        """`Scores` of the face with ``job.landmarks68`` in ``image``; NaN for a term that cannot be computed."""
        a = self._embed_one(image, job.landmarks68)
        leak = evenness = nearest = float("nan")
        if job.member is not None:
            m = np.asarray(job.member, dtype=np.float64)
            leak = float(_distance(self.surrogate_embedding(job), m)[0] - _distance(a, m)[0])
        has_own = job.own is not None and len(job.own) > 0
        if self.evenness and has_own and job.others is not None and len(job.others):
            evenness = float(_distance(a, job.others).min() - _distance(a, job.own).min())
        sources = (job.original,) if self.own_photos == "this" else (job.own, job.original)
        mine = [np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in sources if x is not None and len(x)]
        if self.own_distance is not None and mine:
            nearest = float(_distance(a, np.concatenate(mine)).min())
        return Scores(leak, evenness, nearest)

    def found(self, image: np.ndarray, job: FaceJob) -> bool | None:
        """Whether ``detector`` finds the face of ``job`` in ``image`` (IoU >= 0.5 with ``job.box_ltrb``, searched
        in the box widened by its size on every side); None without a detector or a box."""
        if self.detector is None or job.box_ltrb is None:
            return None
        box = np.asarray(job.box_ltrb, dtype=np.float64)
        h, w = image.shape[:2]
        side = max(box[2] - box[0], box[3] - box[1])
        x0, y0 = (max(0, int(np.floor(v - side))) for v in box[:2])
        x1, y1 = min(w, int(np.ceil(box[2] + side))), min(h, int(np.ceil(box[3] + side)))
        try:
            found = self.detector.detect(np.ascontiguousarray(image[y0:y1, x0:x1]))
        except (RuntimeError, ValueError) as exc:
            log.warning("found test failed: %s", exc)
            return False
        from anonfaces.detect.sensitive import box_iou

        return any(box_iou(np.asarray(f.box_ltrb, np.float64) + [x0, y0, x0, y0], box) >= FOUND_IOU for f in found)

    def shortfall(self, scores: Scores | tuple[float, float, float]) -> float:
        """How far a face with these scores is from passing (<= 0: it passes): the largest excess of a term."""
        leak, evenness, near = scores
        worst = [v - self.margin for v in (leak, evenness) if np.isfinite(v)]
        if self.own_distance is not None and np.isfinite(near):
            worst.append(self.own_distance + self.margin - near)
        return max(worst, default=float("-inf"))

    def passes(self, scores: Scores | tuple[float, float, float]) -> bool:
        """Whether a face with these (leak, evenness, nearest_own) passes (the module docstring's rule)."""
        leak, evenness, near = scores
        terms = [v for v in (leak, evenness) if np.isfinite(v)]
        if terms and max(terms) > self.margin:
            return False
        return not (self.own_distance is not None and np.isfinite(near) and near < self.own_distance + self.margin)


def replace_faces(image: np.ndarray, faces: Sequence[FaceJob], *, settings: BlendSettings | None = None,
                  check: PrivacyCheck | None = None, path: str = "") -> tuple[np.ndarray, list[PrivacyRecord]]:
    """Replace every face of one photo by its surrogate; with ``check``, check and escalate each face.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The photo (not modified).
    faces : sequence of FaceJob
    settings : BlendSettings, optional
        How to blend (default: `BlendSettings()`).
    check : PrivacyCheck, optional
        None: every face is blended with ``settings`` and recorded as ``unchecked``.
    path : str
        The photo's path, copied into the records.

    Returns
    -------
    (ndarray of shape (H, W, 3), uint8, list of PrivacyRecord, one per face in order)
    """
    settings = settings or BlendSettings()
    result = np.asarray(image).copy()
    records = []
    for job in faces:
        record = PrivacyRecord(path=path, face=int(job.face), cluster=int(job.cluster))
        if check is None:
            blend_surrogate(result, job.surrogate, job.landmarks68, settings=settings, out=result)
            records.append(record)
            continue
        before = result.copy()
        candidate, passed_unfound, ranked = None, None, []
        best, best_shortfall = job.surrogate, float("inf")  # the surrogate or variant closest to passing so far
        for i, (name, step, surrogate) in enumerate(_tries(job, settings, check)):
            if isinstance(surrogate, int):  # the r-th closest of the surrogate and its variants (reroll_steps="every")
                if surrogate >= len(ranked):
                    continue
                surrogate = ranked[surrogate][1]
                if surrogate is not job.surrogate:
                    name = f"{name}/variant-{surrogate.info.get('variant', '?')}"
            surrogate = best if surrogate is None else surrogate
            candidate = blend_surrogate(before, surrogate, job.landmarks68, settings=step)
            scores = check.scores(candidate, job if surrogate is job.surrogate else replace(job, surrogate=surrogate, surrogate_embedding=None))
            if i == 0:
                record.leak_before, record.evenness_before, record.nearest_own_before = scores
            record.leak_after, record.evenness_after, record.nearest_own_after = scores
            record.step = name
            if check.passes(scores):
                record.outcome = "passed" if i == 0 else "escalated"
                found = check.found(candidate, job)
                if found is not False:
                    record.found = "" if found is None else "yes"
                    break
                if passed_unfound is None:  # passes, but the detector lost the face: look on for one it finds
                    passed_unfound = (candidate, scores, name, record.outcome)
                continue
            shortfall = check.shortfall(scores)
            if step is settings and not any(sur is surrogate for _, sur in ranked):
                ranked = sorted([*ranked, (shortfall, surrogate)], key=lambda pair: pair[0])
            if shortfall < best_shortfall:
                best, best_shortfall = surrogate, shortfall
        else:
            if passed_unfound is not None:  # nothing both passed and was found: the first that passed
                candidate, scores, record.step, record.outcome = passed_unfound
                record.leak_after, record.evenness_after, record.nearest_own_after = scores
                record.found = "no"
            else:
                candidate = _fall_back(before, candidate, job, best, check, record)
                found = check.found(candidate, job)
                record.found = "" if found is None else ("yes" if found else "no")
        result = candidate
        records.append(record)
    return result, records


def _tries(job: FaceJob, settings: BlendSettings, check: PrivacyCheck):
    """``(step name, settings, surrogate)`` in the order the check tries them; the surrogate may also be None (the
    surrogate or variant that came closest to passing so far) or an int r (the r-th closest with the settings asked
    for)."""
    steps = escalation_steps(settings, check.soften)
    alternatives = [(f"variant-{alt.info.get('variant', j + 1)}", alt) for j, alt in enumerate(job.alternatives)]
    yield steps[0][0], steps[0][1], job.surrogate
    for name, alt in alternatives:
        yield name, settings, alt
    for name, step in steps[1:]:
        if check.reroll_steps == "every" and alternatives:
            for r in range(min(REROLL_TOP, len(alternatives) + 1)):
                yield name, step, r
        else:
            yield name, step, None


def _fall_back(before: np.ndarray, last: np.ndarray, job: FaceJob, best: Surrogate, check: PrivacyCheck,
               record: PrivacyRecord) -> np.ndarray:
    """The photo after every step failed: ``check.on_leak`` applied to ``before`` (``last``, the last step's
    photo, with ``keep``); ``record`` completed."""
    if check.on_leak == "blur":
        candidate = blur_face(before, job.landmarks68)
        record.outcome = "blurred"
    elif check.on_leak == "surrogate":
        best = job.fallback if job.fallback is not None else best
        candidate = paste_surrogate(before, best, job.landmarks68)
        record.outcome = "surrogate"
    else:
        record.outcome = "kept-above-margin"
        log.warning("%s face %d: above the privacy margin after every step (kept: on_leak=keep)", record.path,
                    record.face)
        return last
    record.step = f"on_leak={check.on_leak}"
    final = job if best is job.surrogate else replace(job, surrogate=best, surrogate_embedding=None)
    record.leak_after, record.evenness_after, record.nearest_own_after = check.scores(candidate, final)
    return candidate


def blur_face(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with the face's largest region blurred (the ``blur`` baseline)."""
    from anonfaces.synthesize.baselines import apply_baseline

    forehead = max(REGIONS.values())[0]
    return apply_baseline(image, "blur", [np.asarray(landmarks68, dtype=np.float64)], forehead=forehead)


def paste_surrogate(image: np.ndarray, surrogate: Surrogate, landmarks68: np.ndarray, *, feather: float = 0.08
                    ) -> np.ndarray:
    """A copy of ``image`` with the whole surrogate crop placed on the face (similarity transform), edges feathered."""
    matrix, _ = place_surrogate(surrogate, landmarks68)
    h, w = image.shape[:2]
    warped = cv2.warpAffine(surrogate.image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    square = np.zeros((surrogate.size, surrogate.size), np.float32)
    edge = max(1, round(feather * surrogate.size))
    square[edge:-edge, edge:-edge] = 1.0
    square = cv2.GaussianBlur(square, (0, 0), sigmaX=edge / 2.0)
    alpha = cv2.warpAffine(square, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    return np.clip(np.rint(warped * alpha + image * (1.0 - alpha)), 0, 255).astype(np.uint8)


def write_outcomes_csv(path, columns: Sequence[str], records: Sequence, key) -> None:
    """A privacy csv (atomic): ``columns``, then each record's ``row()``, sorted by ``key``."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in sorted(records, key=key):
            w.writerow(r.row())


def outcome_counts(records: Sequence, unit: str) -> dict:
    """``{unit: how many records, outcome: how many}`` for every `OUTCOMES` key (records with ``.outcome``)."""
    counts = {o: 0 for o in OUTCOMES}
    for r in records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return {unit: len(records), **counts}


def write_privacy_csv(path, records: Sequence[PrivacyRecord]) -> None:
    """``privacy.csv``: one row per face, sorted by path and face (`PRIVACY_COLUMNS`)."""
    write_outcomes_csv(path, PRIVACY_COLUMNS, records, key=lambda r: (r.path, r.face))


def privacy_summary(records: Sequence[PrivacyRecord]) -> dict:
    """Counts by outcome (every `OUTCOMES` key) and the number of faces."""
    return outcome_counts(records, "faces")


def record_dicts(records: Sequence[PrivacyRecord]) -> list[dict]:
    return [asdict(r) for r in records]
