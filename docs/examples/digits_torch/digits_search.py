"""Search the architecture of your own PyTorch model: a small classifier of scikit-learn's
8x8 digits, through the Python plugin (evaluator.plugin: "digits_search:make_evaluator").

Three things make a plugin: a pydantic space with bounds (its defaults are the starting
architecture), a function that trains one learner with a given seed and returns its
predictions on the validation and test rows, and the targets. Everything else (the gate,
the journal, replay, resume, verify, report) is edas-agent's.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from sklearn.datasets import load_digits

from edas_agent import FunctionEvaluator


class DigitsNet(BaseModel):
    """The search space. Bounds matter: the LLM's answer schema and the builtin mutations
    are drawn from them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    widths: list[Annotated[int, Field(ge=16, le=256)]] = Field([64], min_length=1, max_length=3)
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    dropout: float = Field(0.0, ge=0.0, le=0.5)
    lr: float = Field(3e-3, ge=1e-4, le=3e-2)
    weight_decay: float = Field(0.0, ge=0.0, le=1e-2)
    epochs: int = Field(10, ge=2, le=30)
    batch_size: Literal[32, 64, 128] = 64


def split(seed: int = 0):
    """Train / validation / test rows, fixed for the whole run."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    a, b = int(0.6 * len(y)), int(0.8 * len(y))
    return (x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:])


def make_evaluator(seed: int = 0, threads: int = 1) -> FunctionEvaluator:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = split()
    torch.set_num_threads(threads)

    def train(net: DigitsNet, learner_seed: int):
        torch.manual_seed(learner_seed)
        model = _network(net)
        optimiser = torch.optim.AdamW(model.parameters(), net.lr, weight_decay=net.weight_decay)
        x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
        order = torch.Generator().manual_seed(learner_seed)
        for _ in range(net.epochs):
            model.train()
            for rows in torch.randperm(len(y), generator=order).split(net.batch_size):
                optimiser.zero_grad()
                torch.nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
                optimiser.step()
        model.eval()
        with torch.no_grad():
            val, test = (model(torch.from_numpy(rows)).softmax(-1) for rows in (x_val, x_test))
        return val.numpy(), test.numpy()

    def size(net: DigitsNet) -> tuple[int, int]:
        parameters = sum(p.numel() for p in _network(net).parameters())
        return parameters, 2 * parameters  # a dense network: about two FLOPs a weight

    return FunctionEvaluator(
        DigitsNet, train, y_val, y_test, task="multiclass", size=size, name="digits 8x8",
        seed=seed,
    )  # fmt: skip


def _network(net: DigitsNet) -> torch.nn.Sequential:
    activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}
    layers: list[torch.nn.Module] = []
    inputs = 64
    for width in net.widths:
        layers += [torch.nn.Linear(inputs, width), activation[net.activation]()]
        layers.append(torch.nn.Dropout(net.dropout))
        inputs = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(inputs, 10))
