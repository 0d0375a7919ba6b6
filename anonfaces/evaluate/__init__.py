"""Evaluation stage: how well identities are hidden, and how much usefulness survives.

============================ ========================================== =====================
what                         public names                               module
============================ ========================================== =====================
attackers (registry)         `RECOGNIZERS`, `make_recognizer`           ``recognizers.py``
privacy protocols            `reidentification_rate`,                   ``protocols.py``
                             `closed_set_identification`,
                             `identity_reidentification`,
                             `parrot_reidentification`, `k_bound`,
                             `tpr_at_far`, `method_aware_identification`,
                             `unprotected_faces`, `matches_any_original`
intervals over people        `bootstrap_people`                         ``intervals.py``
image quality                `ssim`, `psnr`, `bucket_means`             ``quality.py``
detectability                `match_faces`, `landmark_displacement`     ``detectability.py``
attributes, downstream       `attribute_agreement`, `downstream_utility` ``attributes.py``
one pass over photos         `measure_photos`                           ``measure.py``
scoring one anonymization    `privacy_rows`, `utility_rows`             ``scoring.py``
a deterministic subset       `DatasetSubset`, `link_subset`             ``subset.py``
table, plots, report         `read_table`, `plot_all`, `write_report`   ``table.py`` ...
============================ ========================================== =====================
"""

from anonfaces.evaluate.attributes import (
    attribute_agreement,
    downstream_utility,
    read_attributes,
)
from anonfaces.evaluate.detectability import landmark_displacement, match_faces
from anonfaces.evaluate.intervals import bootstrap_people
from anonfaces.evaluate.measure import Measurements, measure_photos
from anonfaces.evaluate.protocols import (
    closed_set_identification,
    identity_reidentification,
    information_loss,
    k_bound,
    matches_any_original,
    method_aware_identification,
    parrot_reidentification,
    reidentification_rate,
    tpr_at_far,
    unprotected_faces,
)
from anonfaces.evaluate.quality import (
    AREA_BUCKETS,
    bucket_means,
    face_area_share,
    psnr,
    ssim,
)
from anonfaces.evaluate.recognizers import (
    RECOGNIZERS,
    Recognizer,
    calibrate_threshold,
    make_recognizer,
)
from anonfaces.evaluate.scoring import privacy_rows, utility_rows
from anonfaces.evaluate.subset import DatasetSubset, link_subset
from anonfaces.evaluate.table import COLUMNS, METRICS, read_table

__all__ = [
    "AREA_BUCKETS",
    "COLUMNS",
    "METRICS",
    "RECOGNIZERS",
    "DatasetSubset",
    "Measurements",
    "Recognizer",
    "attribute_agreement",
    "bootstrap_people",
    "bucket_means",
    "calibrate_threshold",
    "closed_set_identification",
    "downstream_utility",
    "face_area_share",
    "identity_reidentification",
    "information_loss",
    "k_bound",
    "landmark_displacement",
    "link_subset",
    "make_recognizer",
    "match_faces",
    "matches_any_original",
    "measure_photos",
    "method_aware_identification",
    "parrot_reidentification",
    "privacy_rows",
    "psnr",
    "read_attributes",
    "read_table",
    "reidentification_rate",
    "ssim",
    "tpr_at_far",
    "unprotected_faces",
    "utility_rows",
]
