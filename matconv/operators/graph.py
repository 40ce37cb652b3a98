"""A network as an operator: the operators a forward applied, wired by the arrays they read and
wrote. Its ``rmatmat`` is backpropagation — each recorded operator's ``.T`` applied in reverse
order, gradients summed where paths join — and its ``matrix()`` the network's Jacobian, the sums
and products of the recorded sparse matrices.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..memory import check_memory
from .base import Operator, _common

__all__ = ["Graph"]


class Graph(Operator):
    """The map from a recorded span's inputs to its outputs.

    Parameters
    ----------
    records : sequence
        In the order they ran; each has ``op`` (an :class:`Operator` from its inputs, stacked by
        rows, to its output), ``inputs`` (nodes) and ``output`` (a node).
    inputs, outputs : sequence of nodes
        Nodes are hashable objects with ``size``, the entries of one example. Inputs and outputs
        are stacked by rows in ``matmat`` and ``rmatmat``.

    Examples
    --------
    ``y = A x + x``, a residual connection:

    >>> from matconv.operators import Dense, Identity, BlockRow
    >>> class Node:
    ...     def __init__(self, size): self.size = size
    >>> class Record:
    ...     def __init__(self, op, inputs, output):
    ...         self.op, self.inputs, self.output = op, inputs, output
    >>> x, h, y = Node(2), Node(2), Node(2)
    >>> A = Dense(np.array([[0.0, 1.0], [2.0, 0.0]]))
    >>> g = Graph([Record(A, (x,), h), Record(BlockRow(Identity(2), Identity(2)), (h, x), y)],
    ...           [x], [y])
    >>> g.matrix().toarray()
    array([[1., 1.],
           [2., 1.]])
    """

    def __init__(self, records, inputs, outputs):
        self.records, self.inputs, self.outputs = list(records), list(inputs), list(outputs)
        self.shape = (sum(n.size for n in self.outputs), sum(n.size for n in self.inputs))
        ops = [r.op for r in self.records]
        if ops:
            self.batch, self.fixed, self.dtype = _common(ops, "wire")

    # ---- which nodes depend on the inputs
    def _reached(self) -> set:
        reached = set(self.inputs)
        for rec in self.records:
            if any(node in reached for node in rec.inputs):
                reached.add(rec.output)
        return reached

    @staticmethod
    def _stack(parts):
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @staticmethod
    def _split(value, nodes):
        if len(nodes) == 1:
            return [value]
        return np.split(value, np.cumsum([n.size for n in nodes])[:-1])

    # ---- products
    def _matmat(self, X):
        values = dict(zip(self.inputs, self._split(X, self.inputs)))
        n = X.shape[1]
        for rec in self.records:
            if any(node in values for node in rec.inputs):
                parts = [values[node] if node in values else np.zeros((node.size, n), X.dtype)
                         for node in rec.inputs]
                values[rec.output] = rec.op.matmat(self._stack(parts))
        return self._stack([values[node] if node in values else np.zeros((node.size, n), X.dtype)
                            for node in self.outputs])

    def _rmatmat(self, Y):
        seeds = {}
        for node, part in zip(self.outputs, self._split(Y, self.outputs)):
            seeds[node] = part if node not in seeds else seeds[node] + part
        grads = self.backward(seeds)
        return self._stack([grads[node] if grads[node] is not None
                            else np.zeros((node.size, Y.shape[1]), Y.dtype)
                            for node in self.inputs])

    def backward(self, seeds: dict, on_record=None, input_grads: bool = True) -> dict:
        """Backpropagate ``seeds`` (``{node: gradient}``, batch-last) through the records.

        Each record whose output received a gradient ``dY`` first calls ``on_record(record,
        dY)`` (parameter gradients), then sends ``record.op.T.matmat(dY)`` to its inputs;
        gradients meeting at a node are summed. Returns ``{input node: gradient or None}``.
        Without ``input_grads`` the inputs' own gradients are not formed (every one is
        ``None``): a record that reads only inputs skips its transposed product, as PyTorch
        skips it for inputs that do not require a gradient.
        """
        grads = dict(seeds)
        reached = self._reached()
        if not input_grads:
            reached.difference_update(self.inputs)
        for rec in reversed(self.records):
            dY = grads.pop(rec.output, None)
            if dY is None:
                continue
            if on_record is not None:
                on_record(rec, dY)
            if not any(node in reached for node in rec.inputs):
                continue
            for node, part in zip(rec.inputs, self._split(rec.op.T.matmat(dY), rec.inputs)):
                if node in reached:
                    # out of place: a part may be a view of another node's gradient
                    grads[node] = part if node not in grads else grads[node] + part
        return {node: grads.get(node) for node in self.inputs}

    # ---- matrices
    def _propagate(self, step) -> sp.csr_array:
        n_in = self.shape[1]
        J, offset = {}, 0
        for node in self.inputs:
            J[node] = sp.csr_array((np.ones(node.size), (np.arange(node.size),
                                    offset + np.arange(node.size))), shape=(node.size, n_in))
            offset += node.size
        for rec in self.records:
            if any(node in J for node in rec.inputs):
                stacked = sp.vstack([J.get(node, sp.csr_array((node.size, n_in)))
                                     for node in rec.inputs], format="csr")
                M = sp.csr_array(step(rec.op))
                widest = int(np.diff(stacked.indptr).max()) if stacked.nnz else 0
                bound = min(M.shape[0] * n_in, M.nnz * widest)  # nonzeros of the product, at most
                check_memory(3 * bound * 16, f"the {M.shape[0]} x {n_in} sparse product of a "
                             f"network's operators", "use a smaller input_shape")
                J[rec.output] = sp.csr_array(M @ stacked)
        return sp.vstack([J.get(node, sp.csr_array((node.size, n_in))) for node in self.outputs],
                         format="csr")

    def _matrix(self, example):
        return self._propagate(lambda op: op.matrix(example if op.batch is not None else None))

    def _pattern(self):
        return self._propagate(lambda op: op.pattern())
