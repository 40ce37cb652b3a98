"""Minibatch training with a progress bar, and evaluation, for any task.

- :func:`fit`: the training loop (validation split or data, metrics that follow the task,
  callbacks, :class:`EarlyStopping`, a scheduler stepped per epoch or per batch, checkpoints of
  model and optimizer);
- :func:`evaluate`: accuracy (and loss) on class labels, or a dict of loss and metrics for any
  targets;
- :func:`iterate_minibatches`: index batches (see also :class:`matconv.batches.DataLoader`).
"""
from .early_stopping import EarlyStopping
from .loop import fit, iterate_minibatches
from .scoring import evaluate

__all__ = ["EarlyStopping", "evaluate", "fit", "iterate_minibatches"]
