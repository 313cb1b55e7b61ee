"""Answer from a previous run's llm/ transcripts, in order: no network, no key.

With the same config and seed, `edas-agent run --llm replay --replay-from RUN_DIR`
reproduces that run's trajectory exactly: each round's recorded answers go through the
same parsing, checks and repairs as they did the first time. If the prompt this run renders
differs from the recorded one, the runs have diverged and replay stops, naming the step.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edas_agent.config import LLMSettings
from edas_agent.errors import UserError
from edas_agent.proposers.base import Check, Proposal, ProposalContext, ProposerStopped
from edas_agent.proposers.edits import ProposedEdits
from edas_agent.proposers.llm import LLMProposer, MalformedAnswer, Reply, parse_object, parse_text
from edas_agent.proposers.prompts import RenderedPrompt
from edas_agent.training.costs import LLMBudget


class ReplayedFailure(Exception):
    """A call that failed in the recorded run fails again, with the recorded message."""


class ReplayWire:
    """Sends nothing: each call answers with the next recorded exchange of the round."""

    provider = "replay"
    label = "replay"
    fatal_errors = ()
    not_found_errors = ()
    api_error = ReplayedFailure

    def __init__(self, folder: Path, model: str):
        self.folder = folder
        self.model = model
        self.exchanges: deque[dict[str, Any]] = deque()

    def play(self, recorded: dict[str, Any]) -> None:
        """Answer the next round from this recorded one, as the provider it came from, so
        the two trajectories are identical."""
        self.exchanges = deque(recorded["exchanges"])
        self.provider, self.model = recorded["provider"], recorded["model"]

    def describe_failure(self, exc: Exception) -> str:
        return str(exc)  # the recorded description, word for word

    def start(self, prompt: RenderedPrompt) -> None:
        return None

    def request(self, conversation: Any) -> dict[str, Any]:
        return {"replay": str(self.folder)}

    def send(self, request: dict[str, Any]) -> Reply:
        if not self.exchanges:
            raise ProposerStopped("replay diverged: the recorded round has no more answers")
        exchange = self.exchanges.popleft()
        if "error" in exchange:
            raise ReplayedFailure(exchange["error"])
        usage = exchange.get("usage", {})
        return Reply(
            raw=exchange.get("response", {}),
            input_tokens=usage.get("input_tokens", 0),
            output_tokens=usage.get("output_tokens", 0),
            answer=exchange.get("answer"),
        )

    def parse(self, answer: Any) -> list[ProposedEdits]:
        if answer is None:
            raise MalformedAnswer("the answer has no 'propose_edits' tool call")
        return parse_text(answer) if isinstance(answer, str) else parse_object(answer)

    def follow_up(self, conversation: Any, reply: Reply, feedback: str) -> None:
        return None


class ReplayProposer(LLMProposer):
    replays_deterministically = True  # its position in the recorded transcripts

    def __init__(self, settings: LLMSettings, budget: LLMBudget, folder: Path):
        if not (folder / "trajectory.jsonl").is_file():
            raise UserError(f"--replay-from {folder}: not a run folder")
        self.replay = ReplayWire(folder, settings.resolved_model())
        # Prompts and answer schemas as the recorded run built them: its llm.place
        settings = settings.model_copy(update={"place": _recorded_place(folder)})
        super().__init__(self.replay, settings, budget)
        self.rounds = deque(sorted((folder / "llm").glob("step-*.json")))

    def propose(self, context: ProposalContext, check: Check | None = None) -> list[Proposal]:
        if not self.rounds:
            raise ProposerStopped(
                f"replay: {self.replay.folder} has no recorded answer for step {context.step}"
            )
        path = self.rounds.popleft()
        recorded = json.loads(path.read_text())
        prompt = self.prompt(context, check)  # with the place the recorded run offered
        if recorded.get("prompt") != {"system": prompt.system, "user": prompt.user}:
            raise ProposerStopped(
                f"replay diverged at step {context.step}: the prompt differs from {path.name} "
                "(same config and seed as the recorded run?)"
            )
        self.replay.play(recorded)
        return self.ask(prompt, context, check)


def _recorded_place(folder: Path) -> str:
    """llm.place as the recorded run resolved it (auto depends on its provider); runs
    from before llm.place offered every place."""
    try:
        recorded = yaml.safe_load((folder / "config.yaml").read_text()).get("llm", {})
        if "place" not in recorded:
            return "any"
        return LLMSettings.model_validate(recorded).resolved_place()
    except (OSError, AttributeError, yaml.YAMLError, ValidationError):
        return "any"
