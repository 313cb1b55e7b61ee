"""The learners' optimiser: the recipe's kind over the stacked parameters (Adam and AdamW
through torch's kernel, called directly), and the per-learner update fused training gives
each learner's slices."""

from __future__ import annotations

import torch
from torch.optim.adam import adam

from edas_agent.evaluators.tabular.space import Architecture


def make_optimizer(params: list[torch.Tensor], architecture: Architecture):
    """The recipe's optimiser, fused (one pass over each tensor) where torch has it: the
    elementwise update of large embedding tables otherwise costs as much as the model.
    Adam and AdamW run torch's kernel directly (AdamKernel)."""
    recipe = architecture.training
    if recipe.optimizer in ("adam", "adamw"):
        return AdamKernel(params, recipe.optimizer, recipe.lr, recipe.weight_decay)
    common = {"lr": recipe.lr, "weight_decay": recipe.weight_decay}
    kinds = {
        "adagrad": (torch.optim.Adagrad, {}),
        "sgd": (torch.optim.SGD, {"momentum": 0.9}),
    }
    kind, extra = kinds[recipe.optimizer]
    try:
        return kind(params, **common, **extra, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
        return kind(params, **common, **extra)


class AdamKernel:
    """Adam or AdamW (torch's defaults: betas 0.9, 0.999, eps 1e-8) as torch.optim runs
    them, without torch.optim.Optimizer's per-step bookkeeping, which costs a small model
    a tenth of its step: the same kernel on the same tensors, so the same update, bitwise.
    The fused trainer gives it each learner's slices of the stacked parameters."""

    def __init__(self, params: list[torch.Tensor], kind: str, lr: float, weight_decay: float):
        self.params = params
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        self.steps = [torch.tensor(0.0, device=p.device) for p in params]
        self.options = {"amsgrad": False, "beta1": 0.9, "beta2": 0.999, "lr": lr, "eps": 1e-8,
                        "weight_decay": weight_decay, "maximize": False,
                        "decoupled_weight_decay": kind == "adamw"}  # fmt: skip
        self.fused = True  # until the device says it has no fused kernel

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        grads = [p.grad for p in self.params]
        update(self.params, grads, self.exp_avgs, self.exp_avg_sqs, self.steps, self)

    def state_dict(self) -> dict:
        moments = zip(self.steps, self.exp_avgs, self.exp_avg_sqs, strict=True)
        return {"state": {i: {"step": s, "exp_avg": m, "exp_avg_sq": v}
                          for i, (s, m, v) in enumerate(moments)}}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        for i, saved in state["state"].items():
            self.steps[i].copy_(saved["step"])
            self.exp_avgs[i].copy_(saved["exp_avg"])
            self.exp_avg_sqs[i].copy_(saved["exp_avg_sq"])


def update(params, grads, exp_avgs, exp_avg_sqs, steps, kernel: AdamKernel) -> None:
    """One Adam(W) step with `kernel`'s options, fused where the device has it."""
    with torch.no_grad():
        if kernel.fused:
            try:
                adam(params, grads, exp_avgs, exp_avg_sqs, [], steps, fused=True, **kernel.options)
                return
            except (RuntimeError, TypeError, ValueError):  # no fused kernel here
                kernel.fused = False
        adam(params, grads, exp_avgs, exp_avg_sqs, [], steps, foreach=False, **kernel.options)
