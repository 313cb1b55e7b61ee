"""After a run, no search: replay its decisions, verify them with real M-member ensembles,
calibrate the gate, build the deployable ensemble, re-judge stopped candidates, report,
list runs. The names below are the public API for scripts (bench/ uses them)."""

from edas_agent.analysis.ensemble import best_counts, load_candidates
from edas_agent.analysis.rejudge import rejudge
from edas_agent.analysis.replay import replay
from edas_agent.analysis.verify import realised_error, sided_with, verify

__all__ = [
    "best_counts",
    "load_candidates",
    "realised_error",
    "rejudge",
    "replay",
    "sided_with",
    "verify",
]
