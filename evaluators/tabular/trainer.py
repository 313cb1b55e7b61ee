"""Train k learners of one architecture together, and predict with them.

Everything random about learner j comes from its seed: initialisation, dropout, data order
and its feature bag. Learner j of every architecture gets the same seed, so differences
between architectures are not drowned in data-order noise (common random numbers).
Data stays in tensors on the device; a batch is an index slice per learner.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from edas_agent.evaluators.base import CandidateFailed
from edas_agent.evaluators.tabular.data import EncodedDataset, Part
from edas_agent.evaluators.tabular.layout import FeatureBag, Layout
from edas_agent.evaluators.tabular.model import BatchedNet, learner_generator
from edas_agent.evaluators.tabular.optimizer import make_optimizer
from edas_agent.evaluators.tabular.space import Architecture

_PREDICT_BATCH = 16384
_INIT, _ORDER, _DROPOUT = 0, 1, 2


Precision = str  # "fp32" or "bf16" (evaluator.precision)


@dataclass
class Trained:
    net: BatchedNet
    masks: tuple[torch.Tensor | None, torch.Tensor | None]
    seconds: float
    paused: Paused | None = None  # training stopped at a checkpoint before the schedule's end
    precision: Precision = "fp32"


def autocast(device: torch.device, precision: Precision):
    """bf16: matrix products and the like in bfloat16 (autocast keeps losses, reductions
    and parameters in float32); fp32: nothing changes."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@dataclass
class Paused:
    """Everything training needs to go on where a stage stopped, on the CPU: parameters,
    batch-norm statistics, optimiser moments, each learner's random streams and its place
    in the epoch's data order. Continuing from it gives exactly the learners uninterrupted
    training would, so a promoted candidate pays only for the steps it has not done."""

    seeds: list[int]  # the learners it belongs to
    step: int  # optimiser steps taken
    epoch: int
    position: int  # first row of the next batch in this epoch's order
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    optimizer: dict
    order: list[torch.Tensor]  # generator states
    dropout: list[torch.Tensor]
    permutations: torch.Tensor | None  # this epoch's data order; None at an epoch's end
    epoch_loss: torch.Tensor


def numeric_input(architecture: Architecture, part: Part) -> torch.Tensor:
    """Standardised values, or bucket ids when the architecture bucketises numerics (int32,
    as categorical ids are: the model widens a batch's ids, not the whole split's)."""
    transform = architecture.numeric.transform
    if transform != "bucketize":
        return part.numeric[transform]
    buckets = architecture.numeric.buckets
    return (part.numeric["quantile"] * buckets).to(torch.int32).clamp_(max=buckets - 1)


def train_learners(
    architecture: Architecture,
    data: EncodedDataset,
    seeds: list[int],
    device: torch.device,
    timeout_s: float | None = None,
    checkpoints: Checkpoints | None = None,
    resume: Paused | None = None,
    precision: Precision = "fp32",
) -> Trained:
    """Train one learner per seed, all at once; raises CandidateFailed naming the learner,
    or saying the training ran past `timeout_s`. With `checkpoints`, training stops after
    the last of their steps, calling them at each (multi-fidelity screening), and
    `Trained.paused` holds where it stopped; `resume` continues from such a state."""
    started = time.perf_counter()
    layout = Layout.of(architecture, data)
    bags = [
        FeatureBag.draw(
            len(data.categorical_fields), len(data.numeric_fields), architecture.bagging.fraction, s
        )
        for s in seeds
    ]
    net = BatchedNet(
        architecture,
        layout,
        data.n_outputs,
        [learner_generator(s, _INIT, device) for s in seeds],
        device,
    )
    masks = layout.field_masks(bags, device)
    trained = Trained(net, masks, 0.0, precision=precision)
    _fit(trained, architecture, data, seeds, device, timeout_s, started, checkpoints, resume)
    trained.seconds = time.perf_counter() - started
    return trained


@dataclass
class Checkpoints:
    """Where to look at partly trained learners: after these optimiser steps (increasing),
    `visit(trained, index)` is called with the checkpoint's index."""

    steps: list[int]
    visit: Callable[[Trained, int], None]


def total_steps(architecture: Architecture, rows: int) -> int:
    """Optimiser steps of the full schedule (the batch positions of every epoch)."""
    return architecture.training.epochs * math.ceil(rows / architecture.training.batch_size)


def checkpoint_steps(
    architecture: Architecture, rows: int, fractions: tuple[float, ...]
) -> list[int]:
    """The step at which each fraction of the schedule ends (at least one step)."""
    total = total_steps(architecture, rows)
    return [max(1, min(total, math.ceil(f * total - 1e-9))) for f in fractions]


def predict(
    trained: Trained, data: EncodedDataset, architecture: Architecture, part: Part
) -> np.ndarray:
    """(k, n) probabilities of the positive class or regression values (standardised, as
    the targets); (k, n, C) classes. Raises CandidateFailed naming a learner whose
    predictions are not finite."""
    device = trained.net.device
    numeric = numeric_input(architecture, part)
    k = next(iter(trained.net.params.values())).shape[0]
    predictions = predict_rows(
        trained, data, part, lambda rows: numeric[rows].to(device).expand(k, -1, -1)
    )
    failure = nonfinite(predictions)
    if failure is not None:
        raise CandidateFailed(failure)
    return predictions


def predict_rows(
    trained: Trained,
    data: EncodedDataset,
    part: Part,
    numeric_of: Callable[[slice], torch.Tensor],
) -> np.ndarray:
    """Every learner's predictions on `part`, a chunk of rows at a time; `numeric_of(rows)`
    gives the learners' (k, rows, numeric fields) input for a slice of the part's rows."""
    net, device = trained.net, trained.net.device
    k = next(iter(net.params.values())).shape[0]
    outputs = []
    with torch.no_grad():
        for start in range(0, len(part), _PREDICT_BATCH):
            rows = slice(start, start + _PREDICT_BATCH)
            cat = part.categorical[rows].to(device).expand(k, -1, -1)
            with autocast(device, trained.precision):
                logits, _ = net.forward(cat, numeric_of(rows), trained.masks, dropout=None)
            outputs.append(_to_prediction(logits.float(), data).cpu())
    return torch.cat(outputs, dim=1).double().numpy()


def nonfinite(predictions: np.ndarray) -> str | None:
    """Why (k, n[, C]) predictions cannot be used: the first learner with NaN or inf."""
    finite = np.isfinite(predictions).reshape(predictions.shape[0], -1).all(axis=1)
    if finite.all():
        return None
    return f"learner {int(np.argmin(finite))}: predictions contain NaN or inf"


def _fit(
    trained: Trained, architecture, data, seeds, device, timeout_s, started, checkpoints, resume
) -> None:
    net, masks = trained.net, trained.masks
    recipe = architecture.training
    train = data.train
    categorical = train.categorical.to(device)
    numeric = numeric_input(architecture, train).to(device)
    y = train.y.to(device)
    order = [learner_generator(s, _ORDER, device) for s in seeds]
    dropout = [learner_generator(s, _DROPOUT, device) for s in seeds]
    streams = (order, dropout)
    optimizer = make_optimizer(list(net.params.values()), architecture)
    n, k = len(train), len(seeds)
    stops = list(checkpoints.steps) if checkpoints else []
    step, first_epoch, position, permutations = 0, 0, 0, None
    epoch_loss = torch.zeros(k, device=device)
    if resume is not None:
        if resume.seeds != list(seeds) or (stops and stops[0] < resume.step):
            raise ValueError(
                f"cannot resume learners {resume.seeds} paused at step {resume.step} as "
                f"learners {list(seeds)} with checkpoints at steps {stops}"
            )
        _restore(resume, net, optimizer, streams)
        step, first_epoch, position = resume.step, resume.epoch, resume.position
        permutations = None if resume.permutations is None else resume.permutations.to(device)
        epoch_loss = resume.epoch_loss.to(device, copy=True)
        _visit_reached(trained, checkpoints, stops, step)  # a stop that ends where it paused
    for epoch in range(first_epoch, recipe.epochs):
        if permutations is None:
            permutations = torch.stack(
                [torch.randperm(n, generator=g, device=device) for g in order]
            )
            epoch_loss = torch.zeros(k, device=device)
        for start in range(position, n, recipe.batch_size):
            if checkpoints and not stops:  # the last checkpoint is behind us: pause here
                where = (step, epoch, start, permutations)
                trained.paused = _pause(seeds, net, optimizer, streams, where, epoch_loss)
                return
            step += 1
            rows = permutations[:, start : start + recipe.batch_size]  # (k, B)
            if rows.shape[1] < 2 and architecture.tower.norm == "batch":
                _visit_reached(trained, checkpoints, stops, step)
                continue  # batch statistics need two rows
            with autocast(device, trained.precision):
                logits, norm = net.forward(categorical[rows], numeric[rows], masks, dropout)
            # The loss in float32 whatever the forward pass ran in
            losses = _loss(logits.float(), y[rows], data)
            if norm is not None:
                losses = losses + architecture.embeddings.l2 * norm.float().mean(dim=1)
            optimizer.zero_grad(set_to_none=True)
            # Summing keeps each learner's gradient its own: learners share no parameter.
            losses.sum().backward()
            optimizer.step()
            epoch_loss += losses.detach()
            if timeout_s is not None and time.perf_counter() - started > timeout_s:
                raise CandidateFailed(
                    f"training ran past evaluator.timeout_s ({timeout_s:g} s) in epoch {epoch + 1}"
                )
            if stops and step == stops[0]:
                _check_finite(epoch_loss, epoch)
                _visit_reached(trained, checkpoints, stops, step)
        # One synchronisation per epoch: a NaN anywhere in the epoch propagates to the sum.
        _check_finite(epoch_loss, epoch)
        position, permutations = 0, None
        if checkpoints and not stops and epoch + 1 < recipe.epochs:
            where = (step, epoch + 1, 0, None)
            trained.paused = _pause(seeds, net, optimizer, streams, where, epoch_loss)
            return


def _pause(seeds, net, optimizer, streams, where, epoch_loss) -> Paused:
    """The training state at `where`, (step, epoch, position, the epoch's data order);
    `streams` are the learners' (data order, dropout) generators."""

    def cpu(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().to("cpu", copy=True)

    moments = optimizer.state_dict()
    moments["state"] = {
        index: {name: cpu(v) if torch.is_tensor(v) else v for name, v in state.items()}
        for index, state in moments["state"].items()
    }
    step, epoch, position, permutations = where
    return Paused(
        seeds=list(seeds),
        step=step,
        epoch=epoch,
        position=position,
        params={name: cpu(p) for name, p in net.params.items()},
        buffers={name: cpu(b) for name, b in net.buffers.items()},
        optimizer=moments,
        order=[g.get_state() for g in streams[0]],
        dropout=[g.get_state() for g in streams[1]],
        permutations=None if permutations is None else cpu(permutations),
        epoch_loss=cpu(epoch_loss),
    )


def _restore(paused: Paused, net: BatchedNet, optimizer, streams) -> None:
    with torch.no_grad():
        for name, p in net.params.items():
            p.copy_(paused.params[name])
        for name, b in net.buffers.items():
            b.copy_(paused.buffers[name])
    # A copy: loading may keep the very tensors given, and training updates them in place
    optimizer.load_state_dict(copy.deepcopy(paused.optimizer))
    generators = [*streams[0], *streams[1]]
    for generator, state in zip(generators, paused.order + paused.dropout, strict=True):
        generator.set_state(state)


def _check_finite(epoch_loss: torch.Tensor, epoch: int) -> None:
    for j, value in enumerate(epoch_loss.tolist()):
        if not math.isfinite(value):
            raise CandidateFailed(f"learner {j}: training loss became {value} in epoch {epoch + 1}")


def _visit_reached(trained: Trained, checkpoints: Checkpoints | None, stops: list[int], step: int):
    """Call the checkpoints at `step` (several fractions may end on the same step)."""
    while checkpoints and stops and stops[0] <= step:
        stops.pop(0)
        checkpoints.visit(trained, len(checkpoints.steps) - len(stops) - 1)


def _loss(logits: torch.Tensor, y: torch.Tensor, data: EncodedDataset) -> torch.Tensor:
    """Mean loss per learner, shape (k,)."""
    if data.task == "binary":
        per_row = F.binary_cross_entropy_with_logits(logits[..., 0], y, reduction="none")
    elif data.task == "multiclass":
        k, batch, classes = logits.shape
        per_row = F.cross_entropy(logits.reshape(-1, classes), y.reshape(-1), reduction="none")
        per_row = per_row.reshape(k, batch)
    else:
        per_row = (logits[..., 0] - y) ** 2
    return per_row.mean(dim=1)


def _to_prediction(logits: torch.Tensor, data: EncodedDataset) -> torch.Tensor:
    if data.task == "binary":
        return torch.sigmoid(logits[..., 0])
    if data.task == "multiclass":
        return torch.softmax(logits, dim=-1)
    return logits[..., 0]


def gradient_norm_at_init(
    architecture: Architecture, data: EncodedDataset, seed: int, device: torch.device
) -> float:
    """log10 of the loss gradient's norm at initialisation on the first batch of one
    learner's data order: a zero-cost proxy (no optimiser step is taken)."""
    layout = Layout.of(architecture, data)
    bag = FeatureBag.draw(
        len(data.categorical_fields), len(data.numeric_fields), architecture.bagging.fraction, seed
    )
    net = BatchedNet(
        architecture, layout, data.n_outputs, [learner_generator(seed, _INIT, device)], device
    )
    masks = layout.field_masks([bag], device)
    train = data.train
    order = learner_generator(seed, _ORDER, device)
    batch = max(2, min(architecture.training.batch_size, len(train)))
    rows = torch.randperm(len(train), generator=order, device=device)[:batch].unsqueeze(0)
    categorical = train.categorical.to(device)[rows]
    numeric = numeric_input(architecture, train).to(device)[rows]
    logits, _ = net.forward(
        categorical, numeric, masks, [learner_generator(seed, _DROPOUT, device)]
    )
    loss = _loss(logits, train.y.to(device)[rows], data).sum()
    params = [p for p in net.params.values() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    norm = math.sqrt(sum(float((g.float() ** 2).sum()) for g in grads if g is not None))
    return math.log10(norm + 1e-12)
