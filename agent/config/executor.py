"""Where learners are trained."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edas_agent.config.section import Section


class ExecutorSettings(Section):
    """Where learners train: in this process, in worker processes on this machine
    (agent/training/processes.py), or as Ray tasks (agent/training/executors.py)."""

    kind: Literal["local", "processes", "ray"] = Field(
        "local",
        description="local: in this process. processes: a batch of two or more requests (a "
        "round's candidates, verify's members) side by side in worker processes on this "
        "machine, one torch thread each; a single request in this process. ray: Ray tasks.",
    )
    workers: int | None = Field(
        None, ge=1, le=1024, description="Worker processes of kind processes; unset: the cores."
    )
    address: str | None = Field(
        None, description="Ray cluster address ('auto' to join a running one); local Ray if unset."
    )
    cpus_per_candidate: float = Field(1.0, gt=0, le=256)
    gpus_per_candidate: float = Field(0.0, ge=0, le=16)
    retries: int = Field(
        0, ge=0, le=5, description="Retries of a task whose worker died (not of a failure)."
    )
