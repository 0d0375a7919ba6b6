"""anonfaces: k-anonymity face de-identification.

Stages: `anonfaces.detect` (find and align faces), `anonfaces.encode` (embeddings),
`anonfaces.cluster` (groups of at least k people), `anonfaces.synthesize`
(one surrogate per group, put back into the photos), `anonfaces.evaluate`
(privacy and utility). Heavy back-ends (dlib models, onnxruntime, torch) load
lazily, on first use.
"""

from anonfaces._version import __version__

__all__ = ["__version__", "load_encodings", "load_generator"]


def load_encodings(path):
    """Read an encodings file (``.npz``) or a sharded encodings store folder (see `anonfaces.encode.Encodings`).

    A store is read lazily: each column (embeddings, paths, landmarks, ...) is
    read on first use, so clustering a large store reads only its embeddings.
    """
    from anonfaces.encode.encodings import Encodings

    return Encodings.load(path)


def load_generator(path, **kwargs):
    """Load a StyleGAN network pickle safely as a torch module (needs torch).

    stylegan2-ada-pytorch pickles and StyleGAN v1 TensorFlow pickles (such as
    ``karras2019stylegan-ffhq-1024x1024.pkl``) are told apart by their content;
    no code from the file is run.
    """
    from anonfaces.synthesize.stylegan import load_generator as _load

    return _load(path, **kwargs)
