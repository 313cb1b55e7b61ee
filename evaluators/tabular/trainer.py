"""Train one learner and predict with it.

Everything random about learner j comes from its seed: parameter initialisation, dropout,
data order and (in `model.FeatureBag`) the feature bag. Learner j of every architecture
gets the same seed, so differences between architectures are not drowned in data-order
noise (common random numbers, DESIGN.md).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from evaluators.base import CandidateFailed
from evaluators.tabular.data import EncodedDataset, Part
from evaluators.tabular.model import FeatureBag, TabularNet
from evaluators.tabular.space import Architecture

_PREDICT_BATCH = 16384


def train_learner(
    architecture: Architecture, data: EncodedDataset, seed: int, device: torch.device
) -> tuple[TabularNet, float]:
    """Train one learner; returns the model and its training seconds."""
    bag = FeatureBag.draw(
        len(data.categorical_fields), len(data.numeric_fields), architecture.bagging.fraction, seed
    )
    started = time.perf_counter()
    # fork_rng keeps the global RNG untouched, so learners do not depend on each other.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TabularNet(
            architecture, data.categorical_fields, data.cardinalities, bag, data.n_outputs
        ).to(device)
        _fit(model, architecture, data, seed, device)
    return model, time.perf_counter() - started


def predict(
    model: TabularNet, architecture: Architecture, data: EncodedDataset, part: Part
) -> np.ndarray:
    """Probabilities (binary: positive class; multiclass: (n, C)) or regression values."""
    model.eval()
    device = next(model.parameters()).device
    numeric = part.numeric[architecture.numeric.transform]
    outputs = []
    with torch.no_grad():
        for start in range(0, len(part), _PREDICT_BATCH):
            rows = slice(start, start + _PREDICT_BATCH)
            logits = model(part.categorical[rows].to(device), numeric[rows].to(device)).float()
            outputs.append(_to_prediction(logits, data).cpu())
    predictions = torch.cat(outputs).double().numpy()
    if not np.isfinite(predictions).all():
        raise CandidateFailed("predictions contain NaN or inf")
    if data.task == "regression":
        predictions = predictions * data.target_std + data.target_mean
    return predictions


def _fit(
    model: TabularNet,
    architecture: Architecture,
    data: EncodedDataset,
    seed: int,
    device: torch.device,
) -> None:
    recipe = architecture.training
    train = data.train
    categorical = train.categorical.to(device)
    numeric = train.numeric[architecture.numeric.transform].to(device)
    y = train.y.to(device)
    loss_fn = _loss(data)
    optimizer = _optimizer(model, architecture)
    order = torch.Generator().manual_seed(seed)
    n = len(train)
    model.train()
    for epoch in range(recipe.epochs):
        permutation = torch.randperm(n, generator=order).to(device)
        epoch_loss = torch.zeros((), device=device)
        for start in range(0, n, recipe.batch_size):
            rows = permutation[start : start + recipe.batch_size]
            if rows.numel() < 2 and architecture.tower.norm == "batch":
                continue  # BatchNorm cannot train on a single row
            loss = loss_fn(model(categorical[rows], numeric[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            epoch_loss += loss.detach()
        # One synchronisation per epoch: a NaN anywhere in the epoch propagates to the sum.
        value = float(epoch_loss)
        if not math.isfinite(value):
            raise CandidateFailed(f"training loss became {value} in epoch {epoch + 1}")


def _loss(data: EncodedDataset) -> nn.Module:
    if data.task == "binary":
        return nn.BCEWithLogitsLoss()
    if data.task == "multiclass":
        return nn.CrossEntropyLoss()
    return nn.MSELoss()


def _optimizer(model: nn.Module, architecture: Architecture) -> torch.optim.Optimizer:
    recipe = architecture.training
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay
    )


def _to_prediction(logits: torch.Tensor, data: EncodedDataset) -> torch.Tensor:
    if data.task == "binary":
        return torch.sigmoid(logits)
    if data.task == "multiclass":
        return torch.softmax(logits, dim=-1)
    return logits
