"""Multi-fidelity screening: stopping weak candidates early from partial training, and
the predictors of full-training quality it decides with."""

from edas_agent.fidelity.audit import predictor_track, spearman

__all__ = ["predictor_track", "spearman"]
