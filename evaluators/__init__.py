"""Evaluators: what trains a candidate's learners. The protocol is base.py; the built-in
tabular evaluator is .tabular; a plugin, a command or a function are the others."""

from edas_agent.evaluators.base import Request

__all__ = ["Request"]
