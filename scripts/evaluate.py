#!/usr/bin/env python
"""Privacy-utility sweep over methods and k (same as `anonfaces evaluate`).

    python scripts/evaluate.py --dataset DIR --methods ksame:morph,ksame:pixel,blur,pixelate,closing,blocking \
        --k 2,3,5,10,20 --out results/
"""

from anonfaces.cli.evaluate import command

if __name__ == "__main__":
    command()
