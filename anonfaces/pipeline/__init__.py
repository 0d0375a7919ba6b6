"""The pipeline layer: the runs, above the stages.

The stages each do one thing and hand typed records down one way::

    detect -> encode --Encodings--> cluster --Clustering--> synthesize --Mapping, surrogates--> evaluate --metrics.csv

This package owns the runs that join them (docs/design.md has the diagram):

================================== ==================================================== ================
what                               public names                                         module
================================== ==================================================== ================
the encode stage, photos + videos   `encode_dataset`                                     ``encode.py``
options records (run.json)         `EncodeOptions`, `ClusterOptions`,                   ``options.py``
                                   `AnonymizeOptions`, `EvaluateOptions`, `check_k`
one anonymization                  `anonymize`, `anonymize_dataset`, `AnonymizeRun`     ``anonymize.py``
scoring what exists                `evaluate_run`, `Evaluation`                         ``evaluate.py``
the sweep                          `evaluate_dataset`                                   ``sweep.py``
where a run writes                 `RunLayout`, `check_layout`                         ``layout.py``
the one content-keyed cache        `cached`, `content_key`                              ``cache.py``
run.json                           `header`, `write_record`, `read_record`              ``record.py``
================================== ==================================================== ================

Every command starts one `anonfaces.utils.parallel.WorkerPool` and passes it down.
"""

from anonfaces.pipeline.anonymize import (
    AnonymizeReport,
    AnonymizeRun,
    anonymize,
    anonymize_dataset,
    check_min_size,
)
from anonfaces.pipeline.cache import cached, content_key, encodings_digest, files_digest
from anonfaces.pipeline.encode import encode_dataset
from anonfaces.pipeline.evaluate import Evaluation, EvaluationReport, evaluate_run
from anonfaces.pipeline.layout import (
    RunLayout,
    check_layout,
    check_out_dir,
    default_private_dir,
)
from anonfaces.pipeline.options import (
    DEFAULT_KS,
    DEFAULT_METHODS,
    DEFAULT_RECOGNIZERS,
    KSAME,
    AnonymizeOptions,
    ClusterOptions,
    EncodeOptions,
    EvaluateOptions,
    MethodSpec,
    check_k,
    check_ks,
    check_names,
    parse_methods,
)
from anonfaces.pipeline.sweep import cached_encodings, evaluate_dataset

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_METHODS",
    "DEFAULT_RECOGNIZERS",
    "KSAME",
    "AnonymizeOptions",
    "AnonymizeReport",
    "AnonymizeRun",
    "ClusterOptions",
    "EncodeOptions",
    "EvaluateOptions",
    "Evaluation",
    "EvaluationReport",
    "MethodSpec",
    "RunLayout",
    "anonymize",
    "anonymize_dataset",
    "cached",
    "cached_encodings",
    "check_k",
    "check_ks",
    "check_layout",
    "check_min_size",
    "check_names",
    "check_out_dir",
    "content_key",
    "default_private_dir",
    "encode_dataset",
    "encodings_digest",
    "evaluate_dataset",
    "evaluate_run",
    "files_digest",
    "parse_methods",
]
