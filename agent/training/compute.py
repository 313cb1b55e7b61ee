"""Training compute as users pay it: FLOPs and hours, and the caps that stop a run.

Every record's `cost` carries what its learners' training took: `train_seconds` (measured,
summed over learners trained in parallel, so GPU- or core-hours rather than wall time) and
`train_flops` (reported by the evaluator: the tabular one counts 3 x forward FLOPs per
example x the examples each learner trained on). `max_train_hours` and `max_train_tflop`
stop a run after the round that reaches them, like `--budget` counts proposals; whichever
comes first ends the run.
"""

from __future__ import annotations

from edas_agent.errors import UserError
from edas_agent.record import Cost

TERA = 1e12


class ComputeBudget:
    def __init__(self, max_train_hours: float | None, max_train_tflop: float | None):
        self.max_train_hours = max_train_hours
        self.max_train_tflop = max_train_tflop
        self.spent = Cost()

    def charge(self, cost: Cost) -> None:
        """Add a record's cost. A FLOP cap needs an evaluator that reports FLOPs: learners
        trained with none reported is a configuration error, not a free lunch."""
        if self.max_train_tflop is not None and cost.learners_trained and not cost.train_flops:
            raise UserError(
                "max_train_tflop needs an evaluator that reports training FLOPs (the tabular "
                "one does; a plugin or a command does not): cap the run with "
                "max_train_hours instead"
            )
        self.spent += cost

    def exhausted(self) -> str | None:
        """Why the run must stop now (a cap reached), or None."""
        hours, cap = self.spent.train_seconds / 3600, self.max_train_hours
        if cap is not None and hours >= cap:
            return f"training took {hours:.3g} h, reaching max_train_hours ({cap:g})"
        tflop, cap = self.spent.train_flops / TERA, self.max_train_tflop
        if cap is not None and tflop >= cap:
            return f"training cost {tflop:.3g} TFLOP, reaching max_train_tflop ({cap:g})"
        return None


def describe(cost: Cost) -> str:
    """A run's training compute in a few words, e.g. '0.041 TFLOP, 0.02 h of training'."""
    flops = f"{cost.train_flops / TERA:.3g} TFLOP, " if cost.train_flops else ""
    return f"{flops}{cost.train_seconds / 3600:.2g} h of training"
