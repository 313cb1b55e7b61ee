"""The search: the loop, its state, screening of proposals, gate rounds and ranking, the
records it writes (journal), and the session that wires a run together."""

from edas_agent.search.state import mixture_of

__all__ = ["mixture_of"]
