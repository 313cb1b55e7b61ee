"""k learners of one architecture as one batched model.

Every parameter has a leading learner dimension, and layers are batched matrix products
(baddbmm), so k learners take one forward pass, one backward pass and one optimiser step.
Adam and SGD update elementwise, so stacking changes nothing about each learner's
trajectory: learner j trained beside others gives the numbers it gives alone (tested).

Each learner's randomness comes from its own seed: initialisation, dropout masks, and its
feature bag, which is a mask over fields here (so all learners keep the same shapes);
how fields are laid out and bagged is layout.py's.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from edas_agent.evaluators.tabular.layout import Layout
from edas_agent.evaluators.tabular.space import Architecture

_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash, spreads ids over buckets


def learner_generator(seed: int, purpose: int, device: torch.device) -> torch.Generator:
    """An independent stream per (learner seed, purpose): init, data order, dropout."""
    state = int(np.random.SeedSequence([seed, purpose]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(state)


class BatchedNet:
    """Parameters (a dict of tensors shaped (k, ...)) and the forward pass."""

    def __init__(
        self,
        architecture: Architecture,
        layout: Layout,
        n_outputs: int,
        generators: list[torch.Generator],
        device: torch.device,
        members: list[Architecture] | None = None,
    ):
        """`architecture` for every learner; or, fused (fused.py), `members` gives each
        learner's own and `architecture` is their envelope (widest layers, most cross
        layers): a learner's parameters are its own, zero-padded to the envelope's shapes."""
        self.arch = architecture
        self.layout = layout
        self.n_outputs = n_outputs
        self.device = device
        members = members or [architecture] * len(generators)
        self.envelope_shapes = None  # None: every learner's parameters have the same shapes
        if any(_shaped(own) != _shaped(architecture) for own in members):
            envelope = self._init(torch.Generator(device=device), architecture)
            self.envelope_shapes = {name: t.shape for name, t in envelope.items()}
        per_learner = [
            self._pad(self._init(g, own)) for g, own in zip(generators, members, strict=True)
        ]
        self.params = {
            name: torch.stack([p[name] for p in per_learner]).requires_grad_()
            for name in per_learner[0]
        }
        self.members = members
        self.penalised = any(own.embeddings.l2 > 0 for own in members)
        rates = [own.tower.dropout for own in members]
        # Per learner where the members differ (the rate, and 1 - rate as alone computes
        # it, in float32); a number, as alone, where they are one architecture
        self.dropout_rates = None
        if self.envelope_shapes is not None or len(set(rates)) > 1:
            self.dropout_rates = tuple(
                torch.tensor(values, device=device)[:, None, None]
                for values in (rates, [1 - r for r in rates])
            )
        k = len(generators)
        self.buffers = {
            f"bn{i}.{stat}": torch.full((k, 1, w), 1.0 if stat == "var" else 0.0, device=device)
            for i, w in enumerate(architecture.tower.widths)
            if architecture.tower.norm == "batch"
            for stat in ("mean", "var")
        }
        group_fields = self.layout.groups()
        self.offsets = {}
        for dim, fields in group_fields.items():
            cards = torch.tensor(
                [0] + [layout.cardinalities[f] for f in fields[:-1]], device=device
            )
            self.offsets[dim] = torch.cumsum(cards, 0)

    # Initialisation, one learner at a time from its own generator (nn.Linear's defaults).

    def _init(self, g: torch.Generator, arch: Architecture) -> dict[str, torch.Tensor]:
        layout, p = self.layout, {}
        for dim, fields in layout.groups().items():
            rows = sum(layout.cardinalities[f] for f in fields)
            p[f"emb{dim}"] = self._randn((rows, dim), g)
        x_width = layout.width
        for i in range(arch.cross.layers):
            if arch.cross.rank and arch.cross.rank < x_width:
                p[f"cross{i}.u"] = self._uniform((x_width, arch.cross.rank), x_width, g)
                p[f"cross{i}.v"] = self._uniform((arch.cross.rank, x_width), arch.cross.rank, g)
            else:
                p[f"cross{i}.w"] = self._uniform((x_width, x_width), x_width, g)
            p[f"cross{i}.b"] = self._uniform((1, x_width), x_width, g)
        width = x_width
        if arch.attention.layers:
            token = layout.dims[0]
            out = arch.attention.heads * arch.attention.dim
            for i in range(arch.attention.layers):
                for name in ("q", "k", "v", "res"):
                    p[f"att{i}.{name}"] = self._uniform((token, out), token, g)
                token = out
            width += layout.tokens * token
        for i, hidden in enumerate(arch.tower.widths):
            p[f"tower{i}.w"] = self._uniform((width, hidden), width, g)
            p[f"tower{i}.b"] = self._uniform((1, hidden), width, g)
            if arch.tower.norm != "none":
                p[f"norm{i}.gamma"] = torch.ones((1, hidden), device=self.device)
                p[f"norm{i}.beta"] = torch.zeros((1, hidden), device=self.device)
            width = hidden
        if arch.fm.enabled:
            width += layout.dims[0]
        p["head.w"] = self._uniform((width, self.n_outputs), width, g)
        p["head.b"] = self._uniform((1, self.n_outputs), width, g)
        return p

    def _pad(self, own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One learner's parameters in the envelope's shapes: zeros where its layers are
        narrower (a unit with zero weights in and out stays zero: its gradients are zero)
        and for the cross layers it lacks (zero weights make a cross layer the identity;
        the fused optimiser never updates them)."""
        if self.envelope_shapes is None:
            return own
        padded = {}
        for name, shape in self.envelope_shapes.items():
            tensor = own.get(name)
            if tensor is None:
                padded[name] = torch.zeros(shape, device=self.device)
            elif name == "head.w" and self.arch.fm.enabled:
                # Rows: the last hidden layer's units, then the FM term's: pad between them
                fm_rows = self.layout.dims[0]
                hidden, fm = tensor[:-fm_rows], tensor[-fm_rows:]
                hidden = F.pad(hidden, (0, 0, 0, shape[0] - fm_rows - hidden.shape[0]))
                padded[name] = torch.cat([hidden, fm])
            else:
                # F.pad counts from the last dimension: zeros after each one's end
                ends = zip(reversed(tensor.shape), reversed(shape), strict=True)
                padded[name] = F.pad(tensor, [n for have, want in ends for n in (0, want - have)])
        return padded

    def _randn(self, shape, g):
        return torch.randn(shape, generator=g, device=self.device)

    def _uniform(self, shape, fan_in, g):
        bound = 1 / math.sqrt(fan_in)
        return (torch.rand(shape, generator=g, device=self.device) * 2 - 1) * bound

    def parameter_count(self) -> int:
        """Trainable parameters of one learner."""
        return sum(p[0].numel() for p in self.params.values())

    # The forward pass, all learners at once.

    def forward(
        self,
        categorical: torch.Tensor,  # (k, B, categorical fields) ids
        numeric: torch.Tensor,  # (k, B, numeric fields): values, or bucket ids when bucketised
        masks: tuple[torch.Tensor | None, torch.Tensor | None],
        dropout: list[torch.Generator] | None = None,  # None: evaluation mode
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (k, B, outputs) and the squared norm of the looked-up embeddings (k, B),
        None where no learner penalises it (embeddings.l2 0)."""
        tokens, numeric_values, embedding_norm = self._inputs(categorical, numeric, masks)
        k, batch = categorical.shape[:2]
        parts = [t.reshape(k, batch, -1) for t in tokens.values()]
        if numeric_values is not None:
            parts.append(numeric_values)
        x0 = torch.cat(parts, dim=-1)
        h = self._cross(x0)
        if self.arch.attention.layers:
            h = torch.cat([h, self._attention(_only(tokens)).reshape(k, batch, -1)], dim=-1)
        h = self._tower(h, dropout)
        if self.arch.fm.enabled:
            e = _only(tokens)
            h = torch.cat([h, 0.5 * (e.sum(dim=2) ** 2 - (e**2).sum(dim=2))], dim=-1)
        logits = torch.baddbmm(self.params["head.b"], h, self.params["head.w"])
        return logits, embedding_norm

    def _inputs(self, categorical, numeric, masks):
        layout, (embedded_mask, numeric_mask) = self.layout, masks
        # Stored as int32 (half the memory of a table of ids); indexing wants int64
        ids = _hash(categorical.long(), layout.hashed, layout.cardinalities)
        numeric_values = None
        if layout.bucketize:
            ids = torch.cat([ids, numeric.long()], dim=-1)
        else:
            numeric_values = numeric if numeric_mask is None else numeric * numeric_mask[:, None, :]
        k, batch = ids.shape[:2]
        learner = torch.arange(k, device=ids.device)[:, None, None]
        # Zeros, not 0.0: a table without categorical columns embeds nothing, and the
        # trainer still averages this per learner.
        tokens, norm = {}, torch.zeros(k, batch, device=ids.device)
        for dim, fields in layout.groups().items():
            table = self.params[f"emb{dim}"]  # (k, rows of every field, dim)
            # One flat lookup: index_select's backward (index_add) is twice as fast as
            # the advanced index's (index_put), and sums the same gradients in the same order
            rows = (ids[..., fields] + self.offsets[dim] + learner * table.shape[1]).reshape(-1)
            looked_up = (
                table.reshape(-1, dim).index_select(0, rows).reshape(k, batch, len(fields), dim)
            )
            if embedded_mask is not None:
                looked_up = looked_up * embedded_mask[:, None, fields, None]
            tokens[dim] = looked_up
            if self.penalised:
                norm = norm + (looked_up**2).sum(dim=(2, 3))
        # Without a penalty the norm is not needed: it would be added times zero
        return tokens, numeric_values, norm if self.penalised else None

    def _cross(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for i in range(self.arch.cross.layers):
            p = self.params
            if f"cross{i}.w" in p:
                xw = torch.baddbmm(p[f"cross{i}.b"], x, p[f"cross{i}.w"])
            else:
                xw = torch.baddbmm(
                    p[f"cross{i}.b"], torch.bmm(x, p[f"cross{i}.u"]), p[f"cross{i}.v"]
                )
            x = x0 * xw + x
        return x

    def _attention(self, tokens: torch.Tensor) -> torch.Tensor:
        """AutoInt: multi-head self-attention over fields, residual, ReLU. (k, B, F, d)."""
        k, batch, fields, _ = tokens.shape
        heads, size = self.arch.attention.heads, self.arch.attention.dim
        x = tokens
        for i in range(self.arch.attention.layers):
            flat = x.reshape(k, batch * fields, -1)

            def project(name, flat=flat, i=i):
                out = torch.bmm(flat, self.params[f"att{i}.{name}"])
                return out.reshape(k, batch, fields, heads, size).transpose(2, 3)

            q, key, v = project("q"), project("k"), project("v")
            weights = torch.softmax(q @ key.transpose(-1, -2) / math.sqrt(size), dim=-1)
            attended = (weights @ v).transpose(2, 3).reshape(k, batch, fields, heads * size)
            residual = torch.bmm(flat, self.params[f"att{i}.res"]).reshape(attended.shape)
            x = torch.relu(attended + residual)
        return x

    def _tower(self, h: torch.Tensor, dropout: list[torch.Generator] | None) -> torch.Tensor:
        tower, p = self.arch.tower, self.params
        for i, _ in enumerate(tower.widths):
            out = torch.baddbmm(p[f"tower{i}.b"], h, p[f"tower{i}.w"])
            if tower.norm == "layer":
                out = F.layer_norm(out, out.shape[-1:]) * p[f"norm{i}.gamma"] + p[f"norm{i}.beta"]
            elif tower.norm == "batch":
                out = self._batch_norm(i, out, training=dropout is not None)
            out = _ACTIVATIONS[tower.activation](out)
            if dropout is not None and tower.dropout > 0:
                out = self._dropout(i, out, dropout)
            h = out + h if tower.residual and out.shape == h.shape else out
        return h

    def _dropout(self, i: int, out: torch.Tensor, generators: list[torch.Generator]):
        if self.dropout_rates is None:
            rate = self.arch.tower.dropout
            keep = torch.stack(
                [torch.rand(out.shape[1:], generator=g, device=out.device) for g in generators]
            )
            return out * (keep >= rate) / (1 - rate)
        # Fused learners with rates of their own: each draws what it draws alone, over its
        # own units (a narrower learner's padded units are zero whatever is kept)
        rates, kept = self.dropout_rates
        draws = []
        for own, g in zip(self.members, generators, strict=True):
            if own.tower.dropout == 0:  # alone it draws nothing
                draws.append(torch.ones(out.shape[1:], device=out.device))
                continue
            width = own.tower.widths[i]
            draw = torch.rand((out.shape[1], width), generator=g, device=out.device)
            draws.append(F.pad(draw, (0, out.shape[2] - width), value=1.0))
        return out * (torch.stack(draws) >= rates) / kept

    def _batch_norm(self, i: int, x: torch.Tensor, training: bool) -> torch.Tensor:
        mean, var = self.buffers[f"bn{i}.mean"], self.buffers[f"bn{i}.var"]
        if training:
            batch_mean = x.mean(dim=1, keepdim=True)
            batch_var = x.var(dim=1, keepdim=True, unbiased=False)
            with torch.no_grad():  # running statistics as nn.BatchNorm1d keeps them
                n = x.shape[1]
                mean.mul_(0.9).add_(0.1 * batch_mean)
                var.mul_(0.9).add_(0.1 * batch_var * n / max(n - 1, 1))
            normalised = (x - batch_mean) / torch.sqrt(batch_var + 1e-5)
        else:
            normalised = (x - mean) / torch.sqrt(var + 1e-5)
        return normalised * self.params[f"norm{i}.gamma"] + self.params[f"norm{i}.beta"]


def tower_input_width(architecture: Architecture, layout: Layout) -> int:
    """The width the tower's first layer sees: the (crossed) input and attention's tokens."""
    width = layout.width
    if architecture.attention.layers:
        width += layout.tokens * architecture.attention.heads * architecture.attention.dim
    return width


def effective_on(architecture: Architecture, layout: Layout, train_rows: int) -> dict:
    """The space's effective document, and the settings this table makes inert: a batch of
    at least every training row (one batch an epoch whatever the size), a cross rank of at
    least the input's width (full rank), and residual connections where no hidden layer
    keeps the width of its input (`_tower` adds one only where the shapes match)."""
    document = architecture.effective_document()
    if architecture.training.batch_size >= train_rows:
        document["training"]["batch_size"] = train_rows
    if architecture.cross.rank >= layout.width:
        document["cross"]["rank"] = 0
    widths = architecture.tower.widths
    inputs = [tower_input_width(architecture, layout), *widths]  # each layer's input first
    if not any(w == width_in for w, width_in in zip(widths, inputs, strict=False)):
        document["tower"]["residual"] = False
    return document


def flops_per_example(architecture: Architecture, layout: Layout, n_outputs: int) -> int:
    """Multiply-adds times two of one learner's forward pass (lookups not counted)."""
    flops, width = 0, layout.width
    for _ in range(architecture.cross.layers):
        rank = architecture.cross.rank
        flops += 4 * width * rank if rank and rank < width else 2 * width * width
        flops += 2 * width
    if architecture.attention.layers:
        att, token = architecture.attention, layout.dims[0]
        for _ in range(att.layers):
            out = att.heads * att.dim
            flops += 2 * layout.tokens * token * out * 4  # q, k, v, residual projections
            flops += 2 * 2 * att.heads * layout.tokens**2 * att.dim  # scores and mixing
            token = out
    tower_in = tower_input_width(architecture, layout)
    for hidden in architecture.tower.widths:
        flops += 2 * tower_in * hidden
        tower_in = hidden
    if architecture.fm.enabled:
        flops += 3 * layout.tokens * layout.dims[0]
        tower_in += layout.dims[0]
    return flops + 2 * tower_in * n_outputs


_ACTIVATIONS = {"relu": torch.relu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh}


def _shaped(architecture: Architecture) -> tuple:
    """What padding can differ in (fused.py): tower widths and cross layers."""
    return tuple(architecture.tower.widths), architecture.cross.layers


def _only(tokens: dict[int, torch.Tensor]) -> torch.Tensor:
    (only,) = tokens.values()  # FM and attention require one embedding dimension
    return only


def _hash(
    ids: torch.Tensor, hashed: tuple[bool, ...], cardinalities: tuple[int, ...]
) -> torch.Tensor:
    if not any(hashed):
        return ids
    ids = ids.clone()
    for field, is_hashed in enumerate(hashed):
        if is_hashed:
            ids[..., field] = (ids[..., field] * _HASH_MULTIPLIER) % cardinalities[field]
    return ids
