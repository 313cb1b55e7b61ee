"""Train the learners of several candidates as one program (horizontal fusion).

On a GPU a small candidate wastes the device: a learner-epoch of the default tower is dozens
of tiny kernels per batch, and the time goes to launches and Python, not to arithmetic. The
k learners of one candidate already share that cost (trainer.py stacks them); here the
learners of a round's candidates share it too, as HFTA (Wang et al., MLSys 2021) fuses the
models of a hyper-parameter search. On a CPU a learner's step is mostly its own arithmetic
and memory traffic, which stacking does not share: fused rounds measured 0.7 to 1.1 times
as fast there (performance page), so evaluator.fuse auto fuses on a GPU only.

What fused learners must share is their skeleton (`fusion_key`): the layout of fields and
embeddings, the blocks, the number of tower layers, activation, norm, batch size and
optimiser kind. Each learner keeps its own tower widths (zero-padded to the widest: a zero
unit stays zero), cross layers (a missing one is the identity: zero weights, never
updated), dropout rate, learning rate, weight decay, epochs, embedding penalty, feature bag
and numeric transform (standard or log). Every learner's random streams are its own, as
alone, so it gives the predictions it gives alone, to float rounding (tested to 1e-5).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from edas_agent.evaluators.base import CandidateFailed
from edas_agent.evaluators.tabular.data import EncodedDataset, Part
from edas_agent.evaluators.tabular.layout import FeatureBag, Layout
from edas_agent.evaluators.tabular.model import BatchedNet, learner_generator
from edas_agent.evaluators.tabular.optimizer import AdamKernel, update
from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.evaluators.tabular.trainer import (
    _DROPOUT,
    _INIT,
    _ORDER,
    Precision,
    Trained,
    _loss,
    autocast,
    numeric_input,
    predict_rows,
)

FUSABLE_OPTIMIZERS = ("adam", "adamw")  # one kernel for both; sgd and adagrad train alone
_BYTES = 4  # float32
_Statistics = dict[tuple[str, int], torch.Tensor]  # (buffer name, learner) -> its values


@dataclass(frozen=True)
class Member:
    """One candidate of a fused group: its architecture and its learners' seeds."""

    architecture: Architecture
    seeds: list[int]


def fusion_key(architecture: Architecture, pad: bool) -> str | None:
    """What candidates trained together must share; None: this one trains alone. With
    `pad`, tower widths, cross layers and dropout may differ (padded: every learner then
    computes the widest layers); without, only what costs nothing to differ may."""
    if architecture.training.optimizer not in FUSABLE_OPTIMIZERS:
        return None
    document = architecture.model_dump(mode="json")
    tower = document["tower"]
    document["embeddings"].pop("l2")
    document["training"] = {key: document["training"][key] for key in ("optimizer", "batch_size")}
    document.pop("bagging")
    if pad:
        # Padding keeps a narrower layer exact unless a layer norm averages over the
        # padding or a skip connection depends on two widths being equal
        if tower["norm"] != "layer" and not tower["residual"]:
            tower["widths"] = len(tower["widths"])
        tower.pop("dropout")
        document["cross"].pop("layers")
    if document["numeric"]["transform"] != "bucketize":
        document["numeric"] = "values"  # standard or log_standard: each learner its own
    return json.dumps(document, sort_keys=True)


def envelope(architectures: list[Architecture]) -> Architecture:
    """The architecture whose parameter shapes hold every member's: the widest layers, the
    most cross layers, the highest dropout (so the net draws dropout at all)."""
    first = architectures[0]
    widths = [max(ws) for ws in zip(*(a.tower.widths for a in architectures), strict=True)]
    tower = first.tower.model_copy(
        update={"widths": widths, "dropout": max(a.tower.dropout for a in architectures)}
    )
    cross = first.cross.model_copy(update={"layers": max(a.cross.layers for a in architectures)})
    return first.model_copy(update={"tower": tower, "cross": cross})


def learner_bytes(architecture: Architecture, parameters: int, data: EncodedDataset) -> int:
    """Memory one learner holds while training, roughly: parameters, gradients and two
    optimiser moments, and a batch's activations kept for the backward pass."""
    layout = Layout.of(architecture, data)
    batch = architecture.training.batch_size
    per_row = layout.width * (2 + architecture.cross.layers * 3)
    per_row += sum(architecture.tower.widths) * 4 + sum(layout.dims) * 2
    return _BYTES * (4 * parameters + batch * per_row)


def groups(
    keys: list[str | None], sizes: list[int], learners: list[int], limit: int, most: int
) -> tuple[list[list[int]], int]:
    """Indices grouped by key (None alone), each group split where its learners' memory
    (`sizes`, bytes) would pass `limit` or their number `most`; and how many more groups
    the memory limit made."""
    by_key: dict[str, list[int]] = {}
    out: list[list[int]] = []
    for index, key in enumerate(keys):
        if key is None:
            out.append([index])
        else:
            by_key.setdefault(key, []).append(index)
    splits = 0
    for members in by_key.values():
        group: list[int] = []
        held = count = 0
        for index in members:
            over_memory = held + sizes[index] > limit
            if group and (over_memory or count + learners[index] > most):
                out.append(group)
                splits += over_memory
                group, held, count = [], 0, 0
            group.append(index)
            held += sizes[index]
            count += learners[index]
        out.append(group)
    return sorted(out), splits


@dataclass
class FusedTrained:
    """The trained group: the stacked net (learners in member order) and, per member, why
    it failed (None: it trained)."""

    trained: Trained
    members: list[Member]
    failures: list[str | None]
    numeric: _NumericInput

    def spans(self) -> list[slice]:
        """Each member's learners in the stacked net."""
        spans, start = [], 0
        for member in self.members:
            spans.append(slice(start, start + len(member.seeds)))
            start += len(member.seeds)
        return spans


def train_fused(
    members: list[Member],
    data: EncodedDataset,
    device: torch.device,
    timeout_s: float | None = None,
    precision: Precision = "fp32",
) -> FusedTrained:
    """Train every member's learners together. A member whose loss becomes NaN or inf fails
    alone (the others go on); `timeout_s` is for the whole group (the members' limits
    added up), past which every member fails."""
    started = time.perf_counter()
    learners = [(m, own.architecture, seed) for m, own in enumerate(members) for seed in own.seeds]
    architectures = [architecture for _, architecture, _ in learners]
    seeds = [seed for _, _, seed in learners]
    shape = envelope(architectures)
    layout = Layout.of(shape, data)
    n_cat, n_num = len(data.categorical_fields), len(data.numeric_fields)
    bags = [FeatureBag.draw(n_cat, n_num, architecture.bagging.fraction, seed)
            for _, architecture, seed in learners]  # fmt: skip
    inits = [learner_generator(s, _INIT, device) for s in seeds]
    net = BatchedNet(shape, layout, data.n_outputs, inits, device, members=architectures)
    trained = Trained(net, layout.field_masks(bags, device), 0.0, precision=precision)
    numeric = _NumericInput(architectures, device)
    fused = FusedTrained(trained, members, [None] * len(members), numeric)
    _fit(fused, learners, data, seeds, device, started, timeout_s)
    trained.seconds = time.perf_counter() - started
    return fused


def _fit(fused: FusedTrained, learners, data, seeds, device, started, timeout_s) -> None:
    net, masks = fused.trained.net, fused.trained.masks
    architectures = [a for _, a, _ in learners]
    member_of = [m for m, _, _ in learners]
    train = data.train
    categorical = train.categorical.to(device)
    numeric = fused.numeric.of(train)
    y = train.y.to(device)
    order = [learner_generator(s, _ORDER, device) for s in seeds]
    dropout = [learner_generator(s, _DROPOUT, device) for s in seeds]
    epochs = [a.training.epochs for a in architectures]
    l2 = _per_learner([a.embeddings.l2 for a in architectures], device)
    optimizer = FusedAdam(net.params, architectures)
    bn = fused.trained.net.arch.tower.norm == "batch"
    batch_size = architectures[0].training.batch_size
    n, k = len(train), len(learners)
    permutations = torch.empty(k, n, dtype=torch.long, device=device)
    finished: _Statistics = {}  # batch-norm statistics of learners that are done
    for epoch in range(max(epochs)):
        active = [j for j in range(k) if epoch < epochs[j] and fused.failures[member_of[j]] is None]
        if not active:
            break
        for j in active:  # each learner's data order, as alone; the others' rows are unused
            permutations[j] = torch.randperm(n, generator=order[j], device=device)
        chosen = torch.tensor(active, device=device) if len(active) < k else None
        epoch_loss = torch.zeros(k, device=device)
        for start in range(0, n, batch_size):
            rows = permutations[:, start : start + batch_size]
            if rows.shape[1] < 2 and bn:
                continue  # batch statistics need two rows
            with autocast(device, fused.trained.precision):
                logits, norm = net.forward(categorical[rows], numeric(rows), masks, dropout)
            losses = _loss(logits.float(), y[rows], data)
            if norm is not None:
                losses = losses + l2 * norm.float().mean(dim=1)
            total = losses.sum() if chosen is None else losses.index_select(0, chosen).sum()
            grads = torch.autograd.grad(total, list(net.params.values()))
            optimizer.step(grads, active)
            epoch_loss += losses.detach()
            if timeout_s is not None and time.perf_counter() - started > timeout_s:
                reason = f"the fused round ran past its time ({timeout_s:g} s) in epoch {epoch + 1}"
                raise CandidateFailed(reason)
        _fail_nonfinite(fused, epoch_loss, active, member_of, epoch)
        if bn:  # what learners ending now hold is theirs: later batches must not move it
            ending = [j for j in active if epochs[j] == epoch + 1]
            _keep_statistics(net, finished, ending)
    _restore_statistics(net, finished)


def _fail_nonfinite(fused: FusedTrained, epoch_loss, active, member_of, epoch) -> None:
    values = epoch_loss.tolist()
    for j in active:
        member = member_of[j]
        if not math.isfinite(values[j]) and fused.failures[member] is None:
            within = j - fused.spans()[member].start
            reason = f"learner {within}: training loss became {values[j]} in epoch {epoch + 1}"
            fused.failures[member] = reason


def _keep_statistics(net: BatchedNet, finished: _Statistics, learners: list[int]) -> None:
    for j in learners:
        for name, buffer in net.buffers.items():
            finished[name, j] = buffer[j].clone()


def _restore_statistics(net: BatchedNet, finished: _Statistics) -> None:
    for (name, j), values in finished.items():
        net.buffers[name][j].copy_(values)


def _per_learner(values: list[float], device: torch.device) -> float | torch.Tensor:
    """A number where the learners agree (as alone), else one per learner."""
    if len(set(values)) == 1:
        return values[0]
    return torch.tensor(values, device=device)


class _NumericInput:
    """Each learner's numeric input: its own transform's values (or bucket ids)."""

    def __init__(self, architectures: list[Architecture], device: torch.device):
        self.architectures = architectures
        self.device = device
        self.transforms = sorted({a.numeric.transform for a in architectures})
        index = [self.transforms.index(a.numeric.transform) for a in architectures]
        self.index = torch.tensor(index, device=device)[:, None]

    def of(self, part: Part):
        """rows (k, B) -> (k, B, numeric fields), for this part of the data."""
        if len(self.transforms) == 1:
            values = numeric_input(self.architectures[0], part).to(self.device)
            return lambda rows: values[rows]
        firsts = [next(a for a in self.architectures if a.numeric.transform == t)
                  for t in self.transforms]  # fmt: skip
        stacked = torch.stack([numeric_input(a, part) for a in firsts]).to(self.device)
        return lambda rows: stacked[self.index, rows]


class FusedAdam:
    """Adam or AdamW for each learner over its slices of the stacked parameters, with its
    own learning rate and weight decay: trainer.py's kernel given each learner's views, so
    a learner's update is the one it gets alone. A learner's cross layers beyond its own
    are left out: they stay zero."""

    def __init__(self, params: dict[str, torch.Tensor], architectures: list[Architecture]):
        names = list(params)
        moments = [{n: torch.zeros_like(p) for n, p in params.items()} for _ in range(2)]
        views = [{n: p.detach().unbind(0) for n, p in params.items()}]
        views += [{n: m.unbind(0) for n, m in moment.items()} for moment in moments]
        device = next(iter(params.values())).device
        self.owned: list[list[int]] = []  # per learner: indices of its own parameters
        self.state: list[tuple[list, list, list, list]] = []  # per learner: p, m, v, steps
        for j, own in enumerate(architectures):
            mine = [n for n in names if _owns(own, n)]
            steps = [torch.tensor(0.0, device=device) for _ in mine]
            self.owned.append([names.index(n) for n in mine])
            p, m, v = ([view[n][j] for n in mine] for view in views)
            self.state.append((p, m, v, steps))
        self.kernels: dict[tuple, AdamKernel] = {}  # options (and fused or not) per recipe
        self.recipe = []
        for a in architectures:
            recipe = (a.training.optimizer, a.training.lr, a.training.weight_decay)
            self.kernels.setdefault(recipe, AdamKernel([], *recipe))
            self.recipe.append(recipe)

    def step(self, grads: tuple[torch.Tensor, ...], learners: list[int]) -> None:
        """One update of `learners` from the stacked gradients."""
        slices = [g.unbind(0) for g in grads]
        by_recipe: dict[tuple, list[int]] = {}
        for j in learners:
            by_recipe.setdefault(self.recipe[j], []).append(j)
        for recipe, group in by_recipe.items():
            params, exp_avgs, exp_avg_sqs, steps, own_grads = [], [], [], [], []
            for j in group:
                p, m, v, s = self.state[j]
                params += p
                exp_avgs += m
                exp_avg_sqs += v
                steps += s
                own_grads += [slices[i][j] for i in self.owned[j]]
            update(params, own_grads, exp_avgs, exp_avg_sqs, steps, self.kernels[recipe])


def _owns(architecture: Architecture, name: str) -> bool:
    """Whether `name` is one of this learner's own parameters (not a padded cross layer)."""
    if not name.startswith("cross"):
        return True
    return int(name[len("cross") :].split(".")[0]) < architecture.cross.layers


def predict_fused(fused: FusedTrained, data: EncodedDataset, part: Part) -> np.ndarray:
    """(K, n) or (K, n, C) predictions of every learner of the group, members in order."""
    numeric, device = fused.numeric.of(part), fused.trained.net.device
    k = sum(len(m.seeds) for m in fused.members)

    def numeric_of(rows: slice) -> torch.Tensor:
        indices = torch.arange(rows.start, min(rows.stop, len(part)), device=device)
        return numeric(indices.expand(k, -1))

    return predict_rows(fused.trained, data, part, numeric_of)
