"""Typed options of the runs, validated on construction and written verbatim into run.json.

`EncodeOptions`, `ClusterOptions`, `AnonymizeOptions` and `EvaluateOptions` are what
the commands parse their flags into and what `anonfaces.pipeline` records
(``run.json["options"]``, `dataclasses.asdict`). The checks here are the only
place the shared settings are validated: `check_k` / `check_ks` for ``--k`` in
every command, `check_names` for every name checked against a registry before
any work starts (``--methods``, ``--recognizers``, ``--algo``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from anonfaces.errors import BadInputError
from anonfaces.synthesize.blend import BlendSettings
from anonfaces.synthesize.privacy import (
    ON_LEAK,
    OWN_PHOTOS_CHOICES,
    REROLL_STEPS,
    REROLL_STEPS_DEFAULT,
    SOFTEN,
    check_soften,
)
from anonfaces.utils.distances import UNPROTECTED
from anonfaces.utils.images import DEFAULT_MAX_PIXELS

KSAME = "ksame"
NONE = "none"
#: The settings of `anonfaces.synthesize.blend.BlendSettings` (how a surrogate is put into a photo), one dict, with
#: its defaults; ``soften`` is the privacy check's (its escalation steps), not a user's.
BLEND_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BlendSettings) if f.name != "soften"}
#: What a ksame run writes: every photo with its faces replaced, or only the surrogate crops.
OUTPUTS = ("photos", "surrogates")
#: Forehead lift of the baselines' face region when ``blend["forehead"]`` is None.
BASELINE_FOREHEAD = 0.15
DEFAULT_METHODS = ("ksame:morph", "ksame:pixel", "blur", "pixelate", "closing", "blocking")
DEFAULT_KS = (2, 3, 5, 10, 20)
DEFAULT_RECOGNIZERS = ("dlib", "eigenfaces", "fisherfaces", "lbp")
DEFAULT_ATTRIBUTES = ("Male", "Smiling", "Young", "Eyeglasses")
UNITS = ("identity", "photo")


# --- the shared checks --------------------------------------------------------------------------
def check_k(k) -> int:
    """One k: an integer >= 2 (k=1 hides no one)."""
    if isinstance(k, str) and k.strip().lstrip("-").isdigit():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise BadInputError(f"k={k!r} must be an integer >= 2 (k=1 hides no one)")
    return int(k)


def check_ks(ks) -> tuple[int, ...]:
    """Several k: ``[2, 5]`` or ``"2,5"`` -> sorted unique ints >= 2."""
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = [ks]
    if isinstance(ks, str):
        ks = [v for v in ks.split(",") if v.strip()]
    try:
        values = sorted({int(v) for v in ks})
    except (TypeError, ValueError):
        raise BadInputError(f"k values {ks!r} must be integers") from None
    if not values or values[0] < 2:
        raise BadInputError(f"k values {values} must be integers >= 2 (k=1 hides no one)")
    return tuple(values)


def split_names(names) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``("a", "b", "c")`` without blanks or repeats, in order."""
    if isinstance(names, str):
        names = [names]
    return tuple(dict.fromkeys(n.strip() for item in names for n in str(item).split(",") if n.strip()))


def check_names(names, registry) -> tuple[str, ...]:
    """Every name in ``registry`` (else `BadInputError` listing the valid ones)."""
    names = split_names(names)
    for name in names:
        registry.get(name)  # refuses unknown names with the valid ones
    return names


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise BadInputError(f"{name}={value!r} must be one of {', '.join(map(str, choices))}")


def _check_int(name: str, value, low: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise BadInputError(f"{name}={value!r} must be {'None or ' if optional else ''}an integer >= {low}")


def parse_value(text: str):
    """A setting's value written on a command line: int, float, true/false, none, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text.strip())
        except ValueError:
            pass
    return text.strip()


@dataclass(frozen=True)
class MethodSpec:
    """A method of the sweep: ``ksame:<synth>`` (uses k), a baseline name, or ``none``.

    A baseline may carry settings (``params``, name-value pairs), written
    ``d2gan:detail=true:region=inner``; the whole spec is then its name (the
    ``method`` column of metrics.csv), so one sweep compares settings of a method.
    """

    name: str
    method: str
    synth: str | None = None
    params: tuple = ()

    @property
    def uses_k(self) -> bool:
        return self.method == KSAME

    @property
    def folder(self) -> str:
        """The spec as one folder name: ``:`` and every character other than a letter, digit or
        ``._=-`` become ``-``; where more than ``:`` changed (``weights=/path/to.npz``), a short
        digest of the spec keeps two specs apart."""
        plain = self.name.replace(":", "-")
        safe = re.sub(r"[^A-Za-z0-9._=-]", "-", plain)
        if safe == plain:
            return safe
        return f"{safe[:60]}-{hashlib.sha256(self.name.encode()).hexdigest()[:8]}"


def parse_methods(specs) -> list[MethodSpec]:
    """``["ksame:morph", "blur", "d2gan:detail=true", ...]`` (or one comma-separated string) -> `MethodSpec` list, validated.

    A baseline's settings follow its name, each ``:NAME=VALUE`` (values as `parse_value` reads them);
    they are checked with the method's own checks when the sweep builds its options.
    """
    from anonfaces.synthesize import SYNTHESIZERS, load_optional_synthesizers
    from anonfaces.synthesize.baselines import BASELINES

    out = []
    for spec in split_names(specs):
        if spec == NONE:
            out.append(MethodSpec(NONE, NONE))
        elif spec == KSAME or spec.startswith(KSAME + ":"):
            synth = spec.partition(":")[2] or "morph"
            if synth not in SYNTHESIZERS:
                load_optional_synthesizers()
            SYNTHESIZERS.get(synth)  # refuses unknown names with the valid ones
            out.append(MethodSpec(f"{KSAME}:{synth}", KSAME, synth))
        elif spec.partition(":")[0] in BASELINES:
            method, _, rest = spec.partition(":")
            params = {}
            for item in filter(None, rest.split(":")):
                key, sep, value = item.partition("=")
                if not sep or not key.strip():
                    raise BadInputError(f"method {spec!r}: {item!r} is not a setting NAME=VALUE (write {method}:NAME=VALUE:NAME=VALUE)")
                params[key.strip()] = parse_value(value)
            name = ":".join([method, *(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items())])
            out.append(MethodSpec(name, method, params=tuple(params.items())))
        else:
            valid = [f"{KSAME}:<synth>", *BASELINES.names(), NONE]
            raise BadInputError(f"unknown method {spec!r}; valid: {', '.join(valid)} (synthesizers: {', '.join(SYNTHESIZERS.names())})")
    if not out:
        raise BadInputError("no method given")
    # one spec per name (ksame and ksame:morph are the same method)
    return list({s.name: s for s in out}.values())


# --- the options records ------------------------------------------------------------------------
@dataclass(frozen=True)
class EncodeOptions:
    """How the originals are encoded (`anonfaces.pipeline.encode_dataset`)."""

    encoder: str = "dlib"
    detector: str = "hog"
    upsample: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self):
        from anonfaces.detect import DETECTORS
        from anonfaces.encode import ENCODERS

        if isinstance(self.encoder, str):
            ENCODERS.get(self.encoder)
        DETECTORS.get(self.detector)
        _check_int("upsample", self.upsample, 0)
        _check_int("max_pixels", self.max_pixels, 1)

    def detector_settings(self) -> dict:
        return {"name": self.detector, "upsample": int(self.upsample)}


@dataclass(frozen=True)
class ClusterOptions:
    """How faces are grouped (`anonfaces.cluster.cluster_encodings`)."""

    algo: str = "fixed-kmeans"
    k: int = 5
    unit: str = "identity"
    outliers: str = "nearest"
    params: dict = field(default_factory=dict)
    random_state: int = 0

    def __post_init__(self):
        from anonfaces.cluster import CLUSTERERS

        CLUSTERERS.get(self.algo)
        object.__setattr__(self, "k", check_k(self.k))
        check_choice("unit", self.unit, UNITS)
        check_choice("outliers", self.outliers, ("nearest", "group", "none"))


#: Surrogate variants per cluster by default (``ksame`` with ``morph``): on the LFW sweep they take the
#: parrot and method-aware attackers from 0.607 / 0.599 to 0.457 / 0.414 at k = 5 (docs/results.md).
DEFAULT_VARIANTS = 8


@dataclass(frozen=True)
class AnonymizeOptions:
    """How faces are replaced (`anonfaces.pipeline.anonymize`).

    ``method`` is ``ksame`` (every face replaced by its cluster's surrogate, made by
    ``synth`` with ``synth_params``) or a baseline in `BASELINES` (``method_params``).
    ``blend`` holds the fields of `anonfaces.synthesize.blend.BlendSettings` (``shape``,
    ``region``, ``blend``, ``color``, ``feather``, ``forehead``; ``forehead`` also sets
    the baselines' region, `BASELINE_FOREHEAD` when None).
    ``privacy_check``: embed every replaced face and escalate the ones whose
    ``max(leak, evenness)`` exceeds ``privacy_margin`` or that stands nearer than
    `OWN_DISTANCE` + margin to an original photo of its person (``own_photos``: ``person``,
    every photo of the person; ``this``, this photo's original only; ``off``); ``on_leak`` (``blur``,
    ``surrogate``, ``keep``) is the last resort (`anonfaces.synthesize.privacy`; ksame
    with dlib encodings only). ``variants`` (0: one surrogate per cluster; None: `DEFAULT_VARIANTS`
    for ``ksame`` with the ``morph`` synthesizer, where it was measured, else 0): each face
    gets one of this many surrogates of its cluster, each made from one random photo
    of every member, chosen per photo independently of the person
    (`anonfaces.synthesize.surrogates.make_variants`); ``reroll``: with variants, a face
    the check fails tries its cluster's other variants before the stronger steps (``reroll_steps``:
    ``given``, with the settings asked for only; ``every``, at every step); ``soften``: the
    softened steps' blurs; ``check_found``: the check also asks whether the detector that found
    the face still finds it, and keeps the first try that passes and is found;
    ``variant_photos``: photos of every member in each variant (1: the most variation). ``output``: ``photos`` (every photo rewritten) or
    ``surrogates`` (only the surrogate crops; ksame only).
    Release (`anonfaces.release`): ``names`` (``hash``: keyed-hash output names, or
    ``keep``), ``keep_folders``, ``no_face`` (photos with no face found, or a face left
    recognisable: ``skip`` = held back, ``copy``, ``blur``), ``second_pass`` (dlib's CNN
    detector where HOG found nothing), ``safety_net`` (the sensitive detector on every
    output; faces within ``match_threshold`` of an original follow ``no_face``),
    ``sensitive_upsample``, ``net_scan`` (the safety net's look: ``full``, or ``fast``: the replaced faces
    plus a cheap whole-photo pass, less recall; `anonfaces.release.nofaces.net_detector`),
    ``share_surrogates`` (also put the surrogates into OUT).
    ``size``: side of the canonical crops (None: `auto_crop_size`).
    """

    method: str = KSAME
    k: int | None = 5
    synth: object = "morph"
    synth_params: dict = field(default_factory=dict)
    method_params: dict = field(default_factory=dict)
    blend: dict = field(default_factory=lambda: dict(BLEND_DEFAULTS))
    privacy_check: bool = True
    privacy_margin: float = 0.05
    own_photos: str = "person"
    on_leak: str = "blur"
    variants: int | None = None
    reroll: bool = True
    reroll_steps: str = REROLL_STEPS_DEFAULT
    soften: tuple = SOFTEN
    check_found: bool = False
    variant_photos: int = 1
    output: str = "photos"
    names: str = "hash"
    keep_folders: bool = False
    no_face: str = "skip"
    second_pass: bool = True
    safety_net: bool = True
    sensitive_upsample: int = 1
    net_scan: str = "full"
    match_threshold: float = UNPROTECTED
    share_surrogates: bool = False
    allow_small_clusters: bool = False
    size: int | None = None
    quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS
    random_state: int = 0

    def __post_init__(self):
        from anonfaces.release.naming import NAMING_MODES
        from anonfaces.release.nofaces import NET_SCANS, NO_FACE_POLICIES
        from anonfaces.synthesize.baselines import BASELINES, check_baseline_params

        unknown = sorted(set(dict(self.blend or {})) - set(BLEND_DEFAULTS))
        if unknown:
            raise BadInputError(f"unknown blend settings {unknown}; valid: {', '.join(BLEND_DEFAULTS)}")
        object.__setattr__(self, "blend", {**BLEND_DEFAULTS, **dict(self.blend or {})})
        object.__setattr__(self, "synth_params", dict(self.synth_params or {}))
        object.__setattr__(self, "method_params", dict(self.method_params or {}))
        check_choice("output", self.output, OUTPUTS)
        if not isinstance(self.privacy_check, (bool, np.bool_)):
            raise BadInputError(f"privacy_check={self.privacy_check!r} must be true or false")
        if isinstance(self.privacy_margin, bool) or not isinstance(self.privacy_margin, (int, float, np.floating)) \
                or not np.isfinite(self.privacy_margin):
            raise BadInputError(f"privacy_margin={self.privacy_margin!r} must be a finite number")
        object.__setattr__(self, "privacy_margin", float(self.privacy_margin))
        check_choice("on_leak", self.on_leak, ON_LEAK)
        if self.variants is None:
            measured = self.method == KSAME and isinstance(self.synth, str) and self.synth == "morph"
            object.__setattr__(self, "variants", DEFAULT_VARIANTS if measured else 0)
        _check_int("variants", self.variants, 0)
        _check_int("variant_photos", self.variant_photos, 1)
        if not isinstance(self.reroll, (bool, np.bool_)):
            raise BadInputError(f"reroll={self.reroll!r} must be true or false")
        check_choice("own_photos", self.own_photos, OWN_PHOTOS_CHOICES)
        check_choice("reroll_steps", self.reroll_steps, REROLL_STEPS)
        object.__setattr__(self, "soften", check_soften(self.soften))
        if not isinstance(self.check_found, (bool, np.bool_)):
            raise BadInputError(f"check_found={self.check_found!r} must be true or false")
        check_choice("names", self.names, NAMING_MODES)
        check_choice("no_face", self.no_face, NO_FACE_POLICIES)
        _check_int("sensitive_upsample", self.sensitive_upsample, 0)
        check_choice("net_scan", self.net_scan, NET_SCANS)
        if self.method == KSAME:
            object.__setattr__(self, "k", check_k(self.k))
            self.blend_settings()  # refuses a bad shape, region, blend, colour, feather or forehead
        else:
            if self.output != "photos":
                raise BadInputError(f"output={self.output!r} needs method='ksame' (the baseline {self.method!r} makes no surrogates)")
            BASELINES.get(self.method)  # unknown names are refused with the valid ones
            check_baseline_params(self.method, self.method_params)
            object.__setattr__(self, "k", None)
        _check_int("size", self.size, 64, optional=True)
        if isinstance(self.quality, bool) or not isinstance(self.quality, (int, np.integer)) or not 1 <= self.quality <= 100:
            raise BadInputError(f"quality={self.quality!r} must be an integer from 1 to 100")
        _check_int("max_pixels", self.max_pixels, 1)

    @property
    def is_ksame(self) -> bool:
        return self.method == KSAME

    def blend_settings(self):
        """``blend`` as the `anonfaces.synthesize.blend.BlendSettings` record."""
        from anonfaces.synthesize.blend import BlendSettings

        return BlendSettings(**self.blend)

    @property
    def baseline_forehead(self) -> float:
        forehead = self.blend.get("forehead")
        return BASELINE_FOREHEAD if forehead is None else float(forehead)

    @classmethod
    def from_flat(cls, **settings) -> AnonymizeOptions:
        """The options from flat keywords: the `BLEND_DEFAULTS` names (``shape=``, ``color=``, ...) go into ``blend``."""
        blend = dict(settings.pop("blend", None) or {}) if isinstance(settings.get("blend"), dict) else {}
        if isinstance(settings.get("blend"), str):
            blend["blend"] = settings.pop("blend")
        for name in BLEND_DEFAULTS:
            if name in settings:
                blend[name] = settings.pop(name)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise BadInputError(f"unknown anonymize settings {unknown}; valid: {', '.join(sorted(names | set(BLEND_DEFAULTS)))}")
        return cls(blend=blend, **settings)


@dataclass(frozen=True)
class EvaluateOptions:
    """How an anonymization is scored (`anonfaces.pipeline.evaluate_run`, and every run of a sweep).

    ``recognizers``: attackers (names in `RECOGNIZERS`), ``recognizer_settings`` maps a
    name to its settings. ``detect``: re-run the detector (``detector``, ``upsample``) on
    the anonymized photos. ``measure_quality``: SSIM and PSNR. ``attributes``: a
    CelebA-format attribute file (``attribute_names`` scored).
    """

    recognizers: tuple = DEFAULT_RECOGNIZERS
    recognizer_settings: dict = field(default_factory=dict)
    reid_min_photos: int = 2
    attributes: str | None = None
    attribute_names: tuple = DEFAULT_ATTRIBUTES
    detect: bool = True
    measure_quality: bool = True
    detector: str = "hog"
    upsample: int = 1
    random_state: int = 0

    def __post_init__(self):
        from anonfaces.evaluate.recognizers import RECOGNIZERS

        object.__setattr__(self, "recognizers", check_names(self.recognizers, RECOGNIZERS))
        if not self.recognizers:
            raise BadInputError("no recognizer given")
        object.__setattr__(self, "attribute_names", split_names(self.attribute_names))
        object.__setattr__(self, "attributes", None if self.attributes is None else str(self.attributes))
        if isinstance(self.reid_min_photos, bool) or not isinstance(self.reid_min_photos, (int, np.integer)) \
                or self.reid_min_photos < 2:
            raise BadInputError(f"reid_min_photos={self.reid_min_photos!r} must be an integer >= 2")
        if self.attributes is not None and "dlib" not in self.recognizers:
            raise BadInputError("attribute metrics use dlib embeddings: add 'dlib' to the recognizers")

    def detector_settings(self) -> dict:
        return {"name": self.detector, "upsample": int(self.upsample)}


def as_record(options) -> dict:
    """An options record as the dict written into run.json."""
    from anonfaces.utils.jsonable import jsonable

    plain = (str, int, float, bool, type(None), dict, list, tuple)
    out = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        out[f.name] = value if isinstance(value, plain) else jsonable(value)  # a synthesizer instance: its repr
    return out
