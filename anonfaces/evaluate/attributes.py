"""Attribute preservation and downstream utility (CelebA-style attribute labels).

* `attribute_agreement`: logistic regression on embeddings, trained on original
  faces; how often its prediction on the anonymized face agrees with its
  prediction on the original (and with the true label).
* `downstream_utility`: train on anonymized faces, test on original faces of
  other people, against the same classifier trained on the originals (the
  blur/morphology/inpainting work's measure).

Attribute labels come in CelebA's ``list_attr_celeba.txt`` format
(`read_attributes`; CSV files work too). CelebA is for non-commercial research only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from anonfaces.errors import BadInputError
from anonfaces.utils.attributes import read_attribute_file

#: The attributes the evaluation reports by default (CelebA column names).
DEFAULT_ATTRIBUTES = ("Male", "Smiling", "Young", "Eyeglasses")


def read_attributes(path: str | os.PathLike) -> pd.DataFrame:
    """Attribute file (`anonfaces.utils.attributes`: CelebA's format or CSV) -> boolean DataFrame indexed by file."""
    return read_attribute_file(path) > 0.5


def attribute_labels(paths, table: pd.DataFrame, attributes=DEFAULT_ATTRIBUTES) -> pd.DataFrame:
    """Rows of ``table`` for dataset-relative ``paths`` (matched by file name); NaN-free boolean frame.

    Raises when an attribute is unknown or a path has no row.
    """
    missing = [a for a in attributes if a not in table.columns]
    if missing:
        raise BadInputError(f"unknown attribute(s) {missing}; the file has {list(table.columns)}")
    names = [Path(str(p)).name for p in paths]
    absent = [n for n in names if n not in table.index]
    if absent:
        raise BadInputError(f"{len(absent)} photos have no attribute row (first: {absent[0]})")
    return table.loc[names, list(attributes)].reset_index(drop=True)


def _classifier(random_state=0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=random_state))


def _one_class(y) -> bool:
    return np.unique(np.asarray(y)).size < 2


def attribute_agreement(train_X, train_y, original_X, anonymized_X, true_y=None, *, random_state=0) -> dict[str, float]:
    """Agreement of an attribute classifier on original and anonymized faces.

    Parameters
    ----------
    train_X, train_y : arrays of shape (n_train, dim) and (n_train,)
        Original faces the classifier learns from (held apart from the faces it is tested on).
    original_X, anonymized_X : arrays of shape (n, dim)
        The same n faces before and after anonymization (row i to row i).
    true_y : array of shape (n,), optional
        True labels of those faces.

    Returns
    -------
    dict
        ``agreement`` (prediction on anonymized == prediction on original), and with
        ``true_y``: ``accuracy_original`` and ``accuracy_anonymized``.
    """
    Xt = np.asarray(train_X, np.float64)
    yt = np.asarray(train_y)
    A, B = np.asarray(original_X, np.float64), np.asarray(anonymized_X, np.float64)
    if A.shape != B.shape or A.ndim != 2 or Xt.ndim != 2 or Xt.shape[1] != A.shape[1] or yt.shape != (len(Xt),):
        raise BadInputError(f"shapes do not fit: train {Xt.shape}/{yt.shape}, original {A.shape}, anonymized {B.shape}")
    if _one_class(yt):
        raise BadInputError("the training labels hold a single class; pick more photos or another attribute")
    clf = _classifier(random_state).fit(Xt, yt)
    pa, pb = clf.predict(A), clf.predict(B)
    out = {"agreement": float(np.mean(pa == pb))}
    if true_y is not None:
        y = np.asarray(true_y)
        out["accuracy_original"] = float(np.mean(pa == y))
        out["accuracy_anonymized"] = float(np.mean(pb == y))
    return out


def downstream_utility(anonymized_train_X, original_train_X, train_y, test_X, test_y, *, random_state=0) -> dict[str, float]:
    """Accuracy on original test faces of a classifier trained on anonymized vs on original faces.

    ``anonymized_train_X`` and ``original_train_X`` are the same training faces
    after and before anonymization; the test faces should be other people.
    Returns ``accuracy_anonymized_train``, ``accuracy_original_train`` and their
    ``ratio`` (1 = nothing lost).
    """
    An, Or = np.asarray(anonymized_train_X, np.float64), np.asarray(original_train_X, np.float64)
    y, Xs, ys = np.asarray(train_y), np.asarray(test_X, np.float64), np.asarray(test_y)
    if An.shape != Or.shape or An.ndim != 2 or y.shape != (len(An),) or Xs.ndim != 2 or Xs.shape[1] != An.shape[1]:
        raise BadInputError(f"shapes do not fit: anonymized {An.shape}, original {Or.shape}, labels {y.shape}, test {Xs.shape}")
    if _one_class(y):
        raise BadInputError("the training labels hold a single class; pick more photos or another attribute")
    acc_anon = float(np.mean(_classifier(random_state).fit(An, y).predict(Xs) == ys))
    acc_orig = float(np.mean(_classifier(random_state).fit(Or, y).predict(Xs) == ys))
    return {
        "accuracy_anonymized_train": acc_anon,
        "accuracy_original_train": acc_orig,
        "ratio": acc_anon / acc_orig if acc_orig > 0 else float("nan"),
    }


def identity_split(identities, *, test_size: float = 0.5, random_state=0) -> np.ndarray:
    """Boolean mask of the test faces: whole identities drawn at random (no person on both sides)."""
    from sklearn.utils import check_random_state

    ids = np.asarray(identities)
    people = np.unique(ids)
    if people.size < 2:
        raise BadInputError(f"need at least 2 identities to split; got {people.size}")
    rng = check_random_state(random_state)
    n_test = min(max(1, round(test_size * people.size)), people.size - 1)
    test_people = rng.choice(people, n_test, replace=False)
    return np.isin(ids, test_people)
