"""The run record, at the ground floor: what a run logs (schema), its folder's reading and
writing (folder), and what is read back from its records (pooling). Imports theory's value
types and nothing above them, so every reader of a run reads it without the search."""

from edas_agent.record.folder import (
    BEST,
    CONFIG,
    LOCK,
    TRAJECTORY,
    Journal,
    read_records,
    require_run_folder,
    utc_now,
)
from edas_agent.record.pooling import (
    measured_selection,
    pooled_seed_noise,
    selected_learners,
    split_learners,
)
from edas_agent.record.schema import (
    BaselineRef,
    Cost,
    CurvePrediction,
    FreshCheck,
    GateRound,
    LLMUsage,
    Record,
    ScreeningTrace,
    Shrinkage,
    StagePoint,
    StageResult,
    Status,
    TestReport,
)

__all__ = [
    "BEST",
    "CONFIG",
    "LOCK",
    "TRAJECTORY",
    "BaselineRef",
    "Cost",
    "CurvePrediction",
    "FreshCheck",
    "GateRound",
    "Journal",
    "LLMUsage",
    "Record",
    "ScreeningTrace",
    "Shrinkage",
    "StagePoint",
    "StageResult",
    "Status",
    "TestReport",
    "measured_selection",
    "pooled_seed_noise",
    "read_records",
    "require_run_folder",
    "selected_learners",
    "split_learners",
    "utc_now",
]
