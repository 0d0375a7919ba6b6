"""StyleGAN2 (ADA) and StyleGAN v1 generators, loaded safely from NVIDIA's network pickles, and latent averaging.

Public names:

* `load_generator` (also ``anonfaces.load_generator``): a stylegan2-ada-pytorch
  ``.pkl`` -> our torch `Generator`, or a StyleGAN v1 TensorFlow ``.pkl`` -> our
  torch `GeneratorV1` (no TensorFlow needed), without running code from the pickle.
* `read_network_pickle` / `write_network_pickle`: the pickle format as data.
* `load_latent`, `load_latents`, `latent_path_for`: per-image W / W+ ``.npy`` files
  (``<image stem>_01.npy``).
* `average_latents`, `privacy_adjusted_average`: the averaging options.
* `project`: optimise W or W+ to reconstruct an aligned face.
* `StyleGANSynthesizer`: the ``stylegan`` synthesizer of the synthesis stage.

Needs torch (``pip install anonfaces[stylegan]``) to build, load or run a
generator; importing this package does not import torch.
"""

from anonfaces.synthesize.stylegan.latents import (
    AdjustedAverage,
    average_latents,
    latent_path_for,
    load_latent,
    load_latents,
    privacy_adjusted_average,
    scale_latent,
    to_wplus,
)
from anonfaces.synthesize.stylegan.loader import generator_from_record, load_generator
from anonfaces.synthesize.stylegan.pickle import (
    PersistentObject,
    read_network_pickle,
    write_network_pickle,
)
from anonfaces.synthesize.stylegan.synthesizer import StyleGANSynthesizer, ffhq_matrix

__all__ = [
    "AdjustedAverage",
    "PersistentObject",
    "StyleGANSynthesizer",
    "average_latents",
    "ffhq_matrix",
    "generator_from_record",
    "latent_path_for",
    "load_generator",
    "load_latent",
    "load_latents",
    "privacy_adjusted_average",
    "project",
    "read_network_pickle",
    "scale_latent",
    "to_wplus",
    "write_network_pickle",
]


def __getattr__(name):  # torch-dependent names, imported on first use
    if name == "project":
        from anonfaces.synthesize.stylegan.projector import project

        return project
    if name == "Generator":
        from anonfaces.synthesize.stylegan.networks import Generator

        return Generator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
