#!/usr/bin/env python
"""Cluster face encodings into groups of at least k people (same as `anonfaces cluster`).

    python scripts/cluster_faces.py --encodings encodings.npz --algo hdbscan --k 5 --out clusters.csv
"""

from anonfaces.cli.cluster import command

if __name__ == "__main__":
    command()
