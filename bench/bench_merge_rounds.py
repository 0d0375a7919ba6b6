"""The pseudo-identity merge alone at 100,000 faces: exact 10-NN once, then graph_average_linkage(engine="rounds") timed.

    PYTHONPATH=. python bench/bench_merge_rounds.py   (store path below: bench_scale.py --people gaussian, seed 0)
"""
import json
import resource
import time

import numpy as np

import anonfaces
import anonfaces.cluster._neighbors as nbm
from anonfaces.cluster._people import graph_average_linkage
from anonfaces.cluster.metrics import pairwise_scores

enc = anonfaces.load_encodings('/tmp/anonfaces-scale/stores/synthetic-gaussian-100000')
X = enc.embeddings.astype(np.float64)
c=time.process_time(); res = nbm.knn(X, 10, n_jobs=2); knn_cpu=time.process_time()-c
nbm.knn = lambda *a, **k: res
t=time.perf_counter(); c=time.process_time()
lab = graph_average_linkage(X, threshold=0.55, engine="rounds")
out = {"merge_s": time.perf_counter()-t, "merge_cpu_s": time.process_time()-c, "knn_cpu_s": knn_cpu,
       "pseudo_identities": int(lab.max())+1, **pairwise_scores(lab, enc.identities),
       "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20, "date": time.strftime("%Y-%m-%d %H:%M")}
print(json.dumps(out))
