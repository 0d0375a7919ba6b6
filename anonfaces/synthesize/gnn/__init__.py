"""The GNN (k-Same-Net style FaceGen network): an identity-conditioned face generator.

Public names: `FaceGenNet` (the network; needs torch), `GNNConfig`, `train_gnn`,
`load_gnn`, `load_face_set` / `FaceSet` / `add_embeddings` (training faces and
their embeddings), `GNNSynthesizer` (the ``gnn`` synthesizer) and `parse_attributes`.
Training from the command line: ``python GNN/train.py``.
Importing this package does not import torch.
"""

from anonfaces.synthesize.gnn.data import FaceSet, add_embeddings, load_face_set
from anonfaces.synthesize.gnn.synthesizer import GNNSynthesizer, parse_attributes
from anonfaces.synthesize.gnn.training import (
    GNNConfig,
    load_gnn,
    read_checkpoint,
    save_checkpoint,
    train_gnn,
)

__all__ = ["FaceGenNet", "FaceSet", "GNNConfig", "GNNSynthesizer", "add_embeddings", "load_face_set", "load_gnn",
           "multi_hot", "parse_attributes", "read_checkpoint", "save_checkpoint", "train_gnn"]


def __getattr__(name):  # torch-dependent names, imported on first use
    if name in ("FaceGenNet", "multi_hot"):
        from anonfaces.synthesize.gnn import network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
