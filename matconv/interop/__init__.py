"""Crossing the border with PyTorch (optional: imported only when used; without it a clear
``ImportError`` says ``pip install torch``).

* ``from_torch(module)``: the matconv equivalent of a ``torch.nn`` layer or ``Sequential``,
  weights, buffers, dtype and train/eval mode copied
* ``to_torch(model)``: the inverse
* ``matrix_of(module, shape)``: the ``scipy.sparse`` matrix of a PyTorch layer, without
  converting anything by hand
* ``to_torch_sparse(A)``: a lowered matrix as a torch sparse tensor (CSR or COO)
* ``from_torch_sparse(t)``: a torch tensor (sparse or dense) as a ``scipy.sparse.csr_array``

``Module.load_state_dict`` accepts torch tensors directly, and :mod:`matconv.checkpoint` reads
and writes ``.safetensors`` files (:mod:`matconv.interop.safetensors_io`).
"""
from .convert import NotConvertible, from_torch, matrix_of, to_torch
from .sparse import from_torch_sparse, to_torch_sparse

__all__ = ["from_torch", "to_torch", "matrix_of", "to_torch_sparse", "from_torch_sparse",
           "NotConvertible"]
