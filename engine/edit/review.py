"""Reviewing a prediction: accept or reject it per class, and rank items by uncertainty (Qt-free)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from engine.edit.editor import LabelEditor

__all__ = ["accept_class", "reject_class", "entropy_map", "uncertainty_score", "rank_by_uncertainty"]

_logger = logging.getLogger(__name__)


def accept_class(editor: LabelEditor, prediction: np.ndarray, class_id: int, *, only_empty: bool = False) -> bool:
    """Make class ``class_id`` of the map equal to the prediction's (one undo step).

    Pixels the prediction gives to the class get it (only unlabelled ones if ``only_empty``);
    pixels the map gives to the class but the prediction does not are cleared.
    Returns whether anything changed.
    """
    if prediction.shape != editor.data.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from the map {editor.data.shape}")
    pred = prediction == class_id
    with editor.stroke(f"accept class {class_id}"):
        a = editor.set_where((editor.data == class_id) & ~pred, 0)
        b = editor.set_where(pred, class_id, only=0 if only_empty else None)
    return a is not None or b is not None


def reject_class(editor: LabelEditor, prediction: np.ndarray, class_id: int) -> bool:
    """Remove the pixels of ``class_id`` that came from the prediction (manual additions stay); one undo step."""
    if prediction.shape != editor.data.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from the map {editor.data.shape}")
    with editor.stroke(f"reject class {class_id}"):
        atom = editor.set_where((editor.data == class_id) & (prediction == class_id), 0)
    return atom is not None


def entropy_map(probs: np.ndarray) -> np.ndarray:
    """Normalised per-pixel entropy of class probabilities.

    Parameters
    ----------
    probs
        ``(C, ...)`` float probabilities (summing to 1 over axis 0), ``C >= 2``.

    Returns
    -------
    ``(...)`` float32 in ``[0, 1]``: 0 certain, 1 uniform.
    """
    p = np.clip(np.asarray(probs, dtype=np.float32), 1e-8, 1.0)
    h = -(p * np.log(p)).sum(axis=0)
    return (h / np.log(max(p.shape[0], 2))).astype(np.float32)


def uncertainty_score(uncertainty: np.ndarray) -> float:
    """One number per item: the mean of its uncertainty map (higher means "correct me first")."""
    return float(np.mean(uncertainty)) if uncertainty.size else 0.0


def rank_by_uncertainty(scores: Mapping[int, float], *, skip: set[int] | None = None) -> list[int]:
    """Item ids ordered most uncertain first (ties by id), leaving out ``skip`` (e.g. approved items)."""
    skip = skip or set()
    return [i for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])) if i not in skip]
