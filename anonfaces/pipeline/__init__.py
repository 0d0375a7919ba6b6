"""The pipeline layer: the runs, above the stages.

The stages each do one thing and hand typed records down one way::

    detect -> encode --Encodings--> cluster --Clustering--> synthesize --Mapping, surrogates--> evaluate --metrics.csv

This package owns the runs that join them (docs/design.md has the diagram):

================================== ==================================================== ================
what                               public names                                         module
================================== ==================================================== ================
options records (run.json)         `EncodeOptions`, `ClusterOptions`,                   ``options.py``
                                   `AnonymizeOptions`, `EvaluateOptions`, `check_k`
one anonymization                  `anonymize`, `anonymize_dataset`, `AnonymizeRun`     ``anonymize.py``
scoring what exists                `evaluate_run`, `Evaluation`                         ``evaluate.py``
the sweep                          `evaluate_dataset`                                   ``sweep.py``
where a run writes                 `RunLayout`, `output_name`                           ``layout.py``
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
from anonfaces.pipeline.evaluate import Evaluation, EvaluationReport, evaluate_run
from anonfaces.pipeline.layout import RunLayout, check_out_dir, output_name
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
    "check_min_size",
    "check_names",
    "check_out_dir",
    "content_key",
    "encodings_digest",
    "evaluate_dataset",
    "evaluate_run",
    "files_digest",
    "output_name",
    "parse_methods",
]
