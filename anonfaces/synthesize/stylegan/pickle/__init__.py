"""NVIDIA's ``stylegan2-ada-pytorch`` network pickles, read without running their code.

Format (as written by NVIDIA's training loop with ``pickle.dump``): a dict with
``G``, ``D``, ``G_ema`` (networks), ``augment_pipe`` (network or None) and
``training_set_kwargs`` (dict). Each network is stored by NVIDIA's
``torch_utils.persistence`` wrapper as a call
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` where ``meta``
holds ``type='class'``, ``version``, ``class_name``, the Python source of the
module that defined it (``module_src``, which NVIDIA's loader executes) and
``state``: the module's ``__dict__`` (``_parameters``, ``_buffers``,
``_modules``, plain settings, ``_init_kwargs``). Tensors are
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``,
parameters ``torch._utils._rebuild_parameter(tensor, ...)``, and each storage
``torch.storage._load_from_bytes(b)`` with ``b`` in torch's legacy
(non-zip) ``torch.save`` layout: magic number, protocol version, system
info, a pickle whose persistent id names the storage type, the list of
storage keys, then per key an int64 element count and the raw bytes.
Settings dicts are ``dnnlib.util.EasyDict``.

`read_network_pickle` reads this with a restricted unpickler that maps exactly
those globals onto inert stand-ins: no stored source is executed and no other
global (``os.system``, ``builtins.eval``, ...) is ever imported; anything else
raises `UnsafeFileError`. The same reader admits NVIDIA's StyleGAN (v1)
TensorFlow pickles, a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network``
objects, whose one extra global it maps onto `tf.TFNetwork`
(see that module; their stored source is not executed either). PyTorch
networks come back as `PersistentObject` records holding numpy arrays;
`load_generator` checks the generator's settings and shapes and loads them into
this project's `Generator` (TensorFlow ones: `loader_v1`, `GeneratorV1`). `write_network_pickle`
writes the same structure (the same opcodes and global names) from our modules,
for tests and for exchanging generators; its ``module_src`` is a placeholder,
so NVIDIA's own loader cannot rebuild our files, only ours can.
"""

from anonfaces.synthesize.stylegan.pickle.reader import (
           NetworkUnpickler,
           read_network_pickle,
)
from anonfaces.synthesize.stylegan.pickle.records import (
           PICKLE_KEYS,
           STORAGE_DTYPES,
           EasyDict,
           PersistentObject,
)
from anonfaces.synthesize.stylegan.pickle.tf import TFNetwork, is_tf_pickle
from anonfaces.synthesize.stylegan.pickle.writer import (
           record_from_module,
           write_network_pickle,
)

__all__ = ["PICKLE_KEYS", "STORAGE_DTYPES", "EasyDict", "NetworkUnpickler", "PersistentObject", "TFNetwork", "is_tf_pickle",
           "read_network_pickle", "record_from_module", "write_network_pickle"]
