#!/usr/bin/env python
"""Regenerate ``matconv/data/digits.npz``, the small training set bundled with matconv.

Source
------
The UCI ML hand-written digits: E. Alpaydin and C. Kaynak (1998), "Optical Recognition of
Handwritten Digits", UCI Machine Learning Repository, https://doi.org/10.24432/C50P49,
licensed under Creative Commons Attribution 4.0 International (CC BY 4.0,
https://creativecommons.org/licenses/by/4.0/). The copy used here is the one bundled with
scikit-learn (``sklearn.datasets.load_digits()``, which needs no network access): 1,797 images
of 8x8 pixels, each pixel a count 0..16 of set cells in a 4x4 block of a 32x32 bitmap, labels
0..9. The images are stored unchanged (only cast to uint8); this script adds only the split.

scikit-learn is needed only to run this script; matconv itself never imports it.

The split (fixed and reproducible)
----------------------------------
Stratified per class: for each class ``c = 0, 1, ..., 9`` in turn, the indices of that class
(ascending) are shuffled with ``rng.permutation``, where ``rng = np.random.default_rng(0)`` is
created once and shared by all classes in that order; the first ``floor(0.2 * n_c + 0.5)``
shuffled indices go to the test split and the rest to the training split. Each split then keeps
the original dataset order (indices sorted ascending). With scikit-learn's copy this gives
1,438 training and 359 test images, every class in both.

Output arrays: ``train_images`` / ``test_images`` (uint8, ``(n, 8, 8)``, values 0..16),
``train_labels`` / ``test_labels`` (uint8, ``(n,)``), and ``license`` / ``source`` (0-d unicode
arrays), saved with ``np.savez_compressed`` so that ``np.load(..., allow_pickle=False)`` reads
everything. Running the script twice gives identical arrays (the zip container's timestamps may
differ, the arrays do not).

Usage::

    python tools/make_digits.py [--output PATH]
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

TEST_FRACTION = 0.2
SEED = 0
LICENSE = (
    "Creative Commons Attribution 4.0 International (CC BY 4.0), "
    "https://creativecommons.org/licenses/by/4.0/"
)
SOURCE = (
    "E. Alpaydin and C. Kaynak (1998). Optical Recognition of Handwritten Digits. "
    "UCI Machine Learning Repository. https://doi.org/10.24432/C50P49 . "
    "8x8 version (1,797 images, values 0..16) as bundled with scikit-learn "
    "(sklearn.datasets.load_digits). Train/test split by matconv tools/make_digits.py: "
    "stratified per class, numpy.random.default_rng(0), 20% of each class to test."
)
DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "matconv" / "data" / "digits.npz"


def split_indices(labels, test_fraction: float = TEST_FRACTION, seed: int = SEED):
    """The documented stratified split: ``(train_indices, test_indices)``, both sorted ascending."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):  # ascending class order
        members = np.flatnonzero(labels == c)  # ascending
        shuffled = rng.permutation(members)
        n_test = int(np.floor(test_fraction * members.size + 0.5))
        test.append(shuffled[:n_test])
        train.append(shuffled[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def split_arrays(images, labels, test_fraction: float = TEST_FRACTION, seed: int = SEED) -> dict:
    """Everything stored in ``digits.npz``, given the full images ``(N, 8, 8)`` and labels
    ``(N,)``."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3 or images.shape[0] != labels.shape[0] or labels.ndim != 1:
        raise ValueError(f"expected images (N, H, W) and labels (N,), got {images.shape} and "
                         f"{labels.shape}")
    if not (np.all(images == np.round(images)) and images.min() >= 0 and images.max() <= 16):
        raise ValueError("expected integer pixel values in 0..16")
    if not (np.all(labels == np.round(labels)) and labels.min() >= 0 and labels.max() <= 9):
        raise ValueError("expected integer labels in 0..9")
    images = images.astype(np.uint8)
    labels = labels.astype(np.uint8)
    train, test = split_indices(labels, test_fraction, seed)
    return {
        "train_images": images[train],
        "train_labels": labels[train],
        "test_images": images[test],
        "test_labels": labels[test],
        "license": np.array(LICENSE),
        "source": np.array(SOURCE),
    }


def build_arrays() -> dict:
    """Load scikit-learn's bundled copy (offline) and split it; needs scikit-learn."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    if digits.images.shape != (1797, 8, 8):
        raise RuntimeError(f"unexpected digits shape {digits.images.shape}")
    return split_arrays(digits.images, digits.target)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT,
                        help=f"where to write the .npz (default: {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    arrays = build_arrays()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    n_train, n_test = len(arrays["train_labels"]), len(arrays["test_labels"])
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes): "
          f"{n_train} train / {n_test} test images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
