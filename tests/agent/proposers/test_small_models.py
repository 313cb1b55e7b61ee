"""What small models on local servers need, through the real openai SDK against a local
wire-format server: the grammar mode, answer caps, the context window, repairs that do not
grow, repeated answers named, instructions in the user turn, timeouts that back off."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from edas_agent.config import LLMSettings
from edas_agent.proposers.base import ProposerStopped
from edas_agent.proposers.grammar import gbnf
from edas_agent.proposers.openai import OpenAICompatibleProposer
from edas_agent.proposers.prompts import render
from tests.agent.proposers.fake_servers import openai_completion, serve
from tests.agent.proposers.test_builtin import context
from tests.agent.proposers.test_llm_backends import (
    ANSWER,
    OUT_OF_BOUNDS,
    openai_proposer,
    space_check,
)


def compatible(url: str, **overrides) -> OpenAICompatibleProposer:
    return openai_proposer(url, OpenAICompatibleProposer, **overrides)


def answer(*items) -> tuple:
    return openai_completion(json.dumps({"proposals": list(items)}))


def test_grammar_mode_sends_the_typed_schema_as_gbnf_and_no_response_format():
    with serve([answer(ANSWER)]) as server:
        proposer = compatible(server.url, structured_output="grammar", place="any")
        (proposal,) = proposer.propose(context(0.9))
    body = server.requests[0]["body"]
    assert proposal.refused is None and "response_format" not in body
    assert body["grammar"] == gbnf(proposer.wire.schema)
    assert '"\\"/bagging/fraction\\""' in body["grammar"]  # the paths are in the grammar
    assert proposal.transcript["exchanges"][0]["structured_output"] == "grammar"


def test_a_local_server_is_offered_one_place_per_round_unless_told_otherwise():
    """llm.place auto: rotate for openai-compatible servers (small local models edit the
    same place every round when left free), any for hosted providers."""
    with serve([answer(ANSWER), answer(ANSWER)]) as server:
        compatible(server.url, structured_output="grammar").propose(context(0.9))
        compatible(server.url, structured_output="grammar", place="any").propose(context(0.9))
    rotated, free = (r["body"]["grammar"] for r in server.requests)
    assert rotated.count("path ::=") == free.count("path ::=") == 1
    assert len(rotated) < len(free) / 3  # one place's edits, not every place's
    assert LLMSettings(provider="openai").resolved_place() == "any"
    assert LLMSettings(provider="openai-compatible").resolved_place() == "rotate"


def test_answers_are_capped_near_the_longest_valid_answer():
    with serve([answer(ANSWER), answer(ANSWER)]) as server:
        compatible(server.url, structured_output="json_object").propose(context(0.9))
        compatible(server.url, structured_output="json_object", cap_answer=False).propose(
            context(0.9)
        )
    capped, uncapped = (r["body"]["max_tokens"] for r in server.requests)
    assert uncapped == 2048 and 300 < capped < 1200


def test_the_context_window_bounds_the_answer_and_a_prompt_too_big_stops_with_advice():
    with serve([answer(ANSWER)]) as server:
        compatible(server.url, context_tokens=4096, cap_answer=False).propose(context(0.9))
    prompt_chars = sum(len(m["content"]) for m in server.requests[0]["body"]["messages"])
    assert server.requests[0]["body"]["max_tokens"] < 4096 - prompt_chars / 4
    with serve([]) as server, pytest.raises(ProposerStopped, match=r"llm\.prompt: compact"):
        compatible(server.url, context_tokens=1024).propose(context(0.9))
    assert server.requests == []  # stopped before sending anything


def test_repairs_restart_from_the_prompt_and_name_a_repeated_answer():
    replies = [answer(OUT_OF_BOUNDS)] * 2 + [answer(ANSWER)]
    with serve(replies) as server:
        (proposal,) = compatible(server.url, max_repairs=2).propose(context(0.9), space_check)
    assert proposal.refused is None
    second, third = (r["body"]["messages"] for r in server.requests[1:])
    assert len(second) == len(third) == 4  # system, prompt, last answer, feedback
    assert "same as your attempt" not in second[3]["content"]
    assert "same as your attempt 1" in third[3]["content"]


def test_instructions_can_travel_in_the_user_turn():
    with serve([answer(ANSWER)]) as server:
        compatible(server.url, instructions="user").propose(context(0.9))
    (message,) = server.requests[0]["body"]["messages"]
    assert message["role"] == "user" and message["content"].startswith("You propose")
    assert "Validation statistics of the baseline" in message["content"]


def test_a_timed_out_call_is_retried_with_twice_the_time():
    # The first answer comes after 0.6 s (the client gave up at 0.4 s); the retry gets
    # 0.8 s and the server answers it after 0.5 s.
    replies = [(*answer(ANSWER), {}, 0.6), (*answer(ANSWER), {}, 0.5)]
    with serve(replies) as server:
        started = time.monotonic()
        (proposal,) = compatible(server.url, timeout_s=0.4, max_retries=1).propose(context(0.9))
    assert proposal.refused is None, proposal.refused
    (retry,) = proposal.transcript["exchanges"][0]["retries"]
    assert retry["timed_out"] and time.monotonic() - started < 3
    assert proposal.transcript["exchanges"][0]["seconds"] >= 0.9


def test_the_compact_prompt_is_a_fraction_of_the_full_one_and_keeps_the_statistics():
    full, compact = (render(context(0.9), style=style) for style in ("full", "compact"))
    assert len(compact.system + compact.user) < 0.5 * len(full.system + full.user)
    assert "E_M=" in compact.user and '"tower"' in compact.user
    assert "Editable space" not in compact.user


def test_replay_offers_places_as_the_recorded_run_did(tmp_path):
    from edas_agent.proposers.replay import _recorded_place

    def recorded(llm: dict) -> str:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        (folder / "config.yaml").write_text(yaml.safe_dump({"budget": 3, "llm": llm}))
        return _recorded_place(folder)

    assert recorded({"provider": "openai-compatible", "place": "auto"}) == "rotate"
    assert recorded({"provider": "openai", "place": "auto"}) == "any"
    assert recorded({"provider": "openai-compatible", "place": "any"}) == "any"
    # a run from before llm.place existed offered every place, whatever its provider
    assert recorded({"provider": "openai-compatible"}) == "any"


def test_rotating_places_offer_one_place_per_call_in_turn_through_the_real_sdk():
    """llm.place: rotate: each request's schema allows one place (and one edit), the prompt
    names it, and successive steps offer successive places."""
    answers = [openai_completion(json.dumps({"proposals": [ANSWER]}), 10, 5) for _ in range(3)]
    with serve(answers) as server:
        proposer = compatible(server.url, place="rotate")
        for step in (1, 2, 3):
            proposer.propose(context(0.97, step=step))
    offered = []
    for request in server.requests:
        schema = request["body"]["response_format"]["json_schema"]["schema"]
        edits = schema["properties"]["proposals"]["items"]["properties"]["edits"]
        assert edits["maxItems"] == 1 and len(edits["items"]["anyOf"]) == 1
        (variant,) = edits["items"]["anyOf"]
        place = f"{variant['properties']['op']['const']} {variant['properties']['path']['const']}"
        assert f"edit one place only: {place}." in request["body"]["messages"][-1]["content"]
        offered.append(place)
    assert len(set(offered)) == 3
