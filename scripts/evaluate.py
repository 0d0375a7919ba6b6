#!/usr/bin/env python
"""Privacy-utility sweep over methods and k (same as `anonfaces evaluate`).

    python scripts/evaluate.py --dataset DIR --methods ksame:morph,ksame:pixel,blur,pixelate,closing,blocking \
        --k 2,3,5,10,20 --out results/
    python scripts/evaluate.py --dataset ../shared/data/lfw --people 60 --photos-per-person 10 --min-photos 10 \
        --k 2,5,10,19 --reid-min-photos 10 --out results/     # a deterministic subset (see anonfaces.evaluate.subset)
"""

from anonfaces.cli.evaluate import command

if __name__ == "__main__":
    command()
