"""StyleGAN2 (ADA) generator, loaded safely from NVIDIA's network pickles, and latent averaging.

Needs torch (``pip install anonfaces[stylegan]``); this package imports it only
when a generator is built or loaded.
"""

from anonfaces.synthesize.stylegan.loader import load_generator

__all__ = ["load_generator"]
