"""The search: the loop, its state, the checks of proposed edits, gate rounds and ranking,
the records it makes (recorder), and the interfaces its strategies plug in through
(strategies: the target, multi-fidelity screening, continuous steps)."""

from edas_agent.search.state import mixture_of

__all__ = ["mixture_of"]
