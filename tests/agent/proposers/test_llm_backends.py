"""OpenAI, OpenAI-compatible and Anthropic backends through their real SDKs against local
wire-format servers: answers, repairs, retries, timeouts, fatal errors, tokens and caps."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import ValidationError

from edas_agent.config import LLMSettings
from edas_agent.errors import describe_validation_error
from edas_agent.evaluators.tabular.space import Architecture
from edas_agent.proposers.anthropic import AnthropicProposer
from edas_agent.proposers.base import ProposerStopped
from edas_agent.proposers.edits import apply_edits
from edas_agent.proposers.openai import OpenAICompatibleProposer, OpenAIProposer
from edas_agent.training.costs import BudgetExhausted, LLMBudget
from tests.agent.proposers.fake_servers import (
    anthropic_error,
    anthropic_text_message,
    anthropic_tool_message,
    openai_completion,
    openai_error,
    serve,
)
from tests.agent.proposers.test_builtin import context

ANSWER = {
    "rationale": "rho is high: bag fewer fields for diversity",
    "edits": [{"op": "replace", "path": "/bagging/fraction", "value": 0.8}],
}
OUT_OF_BOUNDS = {
    "rationale": "lots of dropout",
    "edits": [{"op": "replace", "path": "/tower/dropout", "value": 0.95}],
}
FAST = {"max_retries": 0, "backoff_s": 0.01, "max_wait_s": 2.0}


def space_check(items):
    """The loop's check, reduced to the space: apply to the default and validate."""
    problems = []
    for item in items:
        try:
            Architecture.model_validate(apply_edits(Architecture().document(), item.edits))
            problems.append(None)
        except ValidationError as exc:  # the validation message goes back to the model
            problems.append(describe_validation_error(exc))
    return problems


def openai_proposer(url: str, cls=OpenAIProposer, **overrides) -> OpenAIProposer:
    provider = "openai-compatible" if cls is OpenAICompatibleProposer else "openai"
    llm = LLMSettings(
        provider=provider, model="test-model", base_url=f"{url}/v1", **{**FAST, **overrides}
    )
    return cls(llm, LLMBudget(llm), api_key="sk-test-openai")


def anthropic_proposer(url: str, **overrides) -> AnthropicProposer:
    llm = LLMSettings(
        provider="anthropic", model="test-model", base_url=url, **{**FAST, **overrides}
    )
    return AnthropicProposer(llm, LLMBudget(llm), api_key="sk-test-anthropic")


def test_openai_structured_answer_becomes_a_proposal():
    with serve([openai_completion(json.dumps({"proposals": [ANSWER]}), 321, 45)]) as server:
        (proposal,) = openai_proposer(server.url).propose(context(0.97))
    assert proposal.refused is None and proposal.rationale == ANSWER["rationale"]
    assert [e.operation() for e in proposal.edits] == ANSWER["edits"]
    assert (proposal.usage.calls, proposal.usage.input_tokens, proposal.usage.output_tokens) == (
        1,
        321,
        45,
    )
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test-openai"
    assert request["headers"]["x-stainless-retry-count"] == "0"  # the SDK does not retry itself
    body = request["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert "proposals" in body["response_format"]["json_schema"]["schema"]["properties"]
    assert "rho = 0.970000" in body["messages"][1]["content"]
    exchange = proposal.transcript["exchanges"][0]
    assert exchange["request"]["messages"] == body["messages"]
    assert exchange["response"]["usage"]["prompt_tokens"] == 321


def test_several_distinct_proposals_per_round():
    second = {
        "rationale": "capacity",
        "edits": [{"op": "replace", "path": "/tower/widths/0", "value": 128}],
    }
    with serve([openai_completion(json.dumps({"proposals": [ANSWER, second, ANSWER]}))]) as server:
        proposals = openai_proposer(server.url).propose(
            context(0.9).model_copy(update={"proposals": 2})
        )
    assert [p.rationale for p in proposals] == [ANSWER["rationale"], "capacity"]
    assert proposals[0].usage.calls == 1 and proposals[1].usage.calls == 0  # charged once
    assert "Propose 2 distinct proposals" in server.requests[0]["body"]["messages"][1]["content"]


def test_an_answer_in_a_fence_or_with_prose_is_accepted():
    replies = [
        openai_completion("```json\n" + json.dumps(ANSWER) + "\n```"),
        openai_completion("Sure! Here is my proposal: " + json.dumps(ANSWER) + " Good luck."),
    ]
    with serve(replies) as server:
        proposer = openai_proposer(server.url)
        assert proposer.propose(context(0.9))[0].refused is None
        assert proposer.propose(context(0.9))[0].refused is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("I think you should add dropout.", "not valid JSON"),
        (json.dumps({"rationale": "x"}), "proposals: Field required"),
        (
            json.dumps({"rationale": "x", "edits": [{"op": "frobnicate", "path": "/a"}]}),
            "edits.0.op",
        ),
        ("", "empty"),
    ],
)
def test_malformed_answers_without_repairs_are_invalid(content, message):
    with serve([openai_completion(content)]) as server:
        (proposal,) = openai_proposer(server.url, max_repairs=0).propose(context(0.9))
    assert proposal.refused.status == "invalid" and message in proposal.refused.reason
    assert "after 1 attempt" in proposal.refused.reason


def test_malformed_json_is_sent_back_and_repaired():
    replies = [
        openai_completion("{not json", 100, 10),
        openai_completion(json.dumps(ANSWER), 150, 20),
    ]
    with serve(replies) as server:
        (proposal,) = openai_proposer(server.url, max_repairs=2).propose(context(0.9))
    assert proposal.refused is None and len(server.requests) == 2
    messages = server.requests[1]["body"]["messages"]
    assert messages[2] == {"role": "assistant", "content": "{not json"}
    assert "not valid JSON" in messages[3]["content"] and messages[3]["role"] == "user"
    assert (proposal.usage.calls, proposal.usage.input_tokens, proposal.usage.output_tokens) == (
        2,
        250,
        30,
    )
    assert [a["problems"][0] is None for a in proposal.attempts] == [False, True]


def test_out_of_bounds_edit_is_repaired_on_the_second_attempt():
    replies = [openai_completion(json.dumps(OUT_OF_BOUNDS)), openai_completion(json.dumps(ANSWER))]
    with serve(replies) as server:
        (proposal,) = openai_proposer(server.url).propose(context(0.9), check=space_check)
    assert proposal.refused is None and proposal.edits[0].path == "/bagging/fraction"
    feedback = server.requests[1]["body"]["messages"][3]["content"]
    assert "tower.dropout" in feedback and "0.5" in feedback


def test_repairs_run_out_and_every_attempt_is_kept():
    replies = [openai_completion(json.dumps(OUT_OF_BOUNDS))] * 3
    with serve(replies) as server:
        (proposal,) = openai_proposer(server.url, max_repairs=2).propose(
            context(0.9), check=space_check
        )
    assert proposal.refused.status == "invalid" and "after 3 attempts" in proposal.refused.reason
    assert len(proposal.attempts) == 3 and len(server.requests) == 3


def test_429_waits_as_long_as_retry_after_says():
    replies = [
        (429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after": "1"}),
        openai_completion(json.dumps(ANSWER)),
    ]
    with serve(replies) as server:
        started = time.monotonic()
        (proposal,) = openai_proposer(server.url, max_retries=2).propose(context(0.9))
        elapsed = time.monotonic() - started
    assert proposal.refused is None and len(server.requests) == 2 and elapsed >= 0.95
    (retry,) = proposal.transcript["exchanges"][0]["retries"]
    assert retry["status"] == 429 and retry["wait_s"] == 1.0


def test_500_then_success_is_retried_with_backoff():
    replies = [
        openai_error(500, "boom"),
        openai_error(503, "busy"),
        openai_completion(json.dumps(ANSWER)),
    ]
    with serve(replies) as server:
        (proposal,) = openai_proposer(server.url, max_retries=3).propose(context(0.9))
    assert proposal.refused is None and len(server.requests) == 3
    assert [r["status"] for r in proposal.transcript["exchanges"][0]["retries"]] == [500, 503]


def test_a_hung_server_times_out_and_the_round_fails():
    replies = [(200, {}, {}, 3.0), (200, {}, {}, 3.0)]  # answers after the client gave up
    with serve(replies) as server:
        started = time.monotonic()
        (proposal,) = openai_proposer(server.url, timeout_s=0.3, max_retries=1).propose(
            context(0.9)
        )
        elapsed = time.monotonic() - started
    assert proposal.refused.status == "failed" and "Timeout" in proposal.refused.reason
    assert len(proposal.transcript["exchanges"][0]["retries"]) == 1 and elapsed < 2.5


def test_bad_key_stops_the_run_naming_the_variable():
    with (
        serve([openai_error(401, "Incorrect API key provided")]) as server,
        pytest.raises(ProposerStopped, match=r"\$OPENAI_API_KEY"),
    ):
        openai_proposer(server.url, max_retries=3).propose(context(0.9))
    assert len(server.requests) == 1  # never retried


def test_unknown_model_stops_the_run():
    with (
        serve([openai_error(404, "The model `nope` does not exist")]) as server,
        pytest.raises(ProposerStopped, match="test-model"),
    ):
        openai_proposer(server.url).propose(context(0.9))


def test_a_call_cap_stops_before_the_call():
    with serve([openai_completion(json.dumps(ANSWER))] * 2) as server:
        proposer = openai_proposer(server.url, max_calls=1)
        proposer.propose(context(0.9))
        with pytest.raises(BudgetExhausted, match="max_calls"):
            proposer.propose(context(0.9))
    assert len(server.requests) == 1


def test_the_cost_cap_counts_money_from_the_price_table():
    prices = {"test-model": {"input": 1000.0, "output": 2000.0}}  # $ per million tokens
    with serve([openai_completion(json.dumps(ANSWER), 1000, 500)] * 2) as server:
        proposer = openai_proposer(server.url, prices=prices, max_cost=1.5)
        (proposal,) = proposer.propose(context(0.9))
        assert proposal.usage.cost == pytest.approx(1.0 + 1.0)  # 1000 * 1e-3 + 500 * 2e-3
        assert proposer.budget.spend.cost == pytest.approx(2.0)
        with pytest.raises(BudgetExhausted, match="max_cost"):
            proposer.propose(context(0.9))
    assert len(server.requests) == 1


def test_a_dated_snapshot_is_priced_by_its_family():
    llm = LLMSettings(provider="openai", model="gpt-4.1-mini-2025-04-14", max_cost=1.0)
    budget = LLMBudget(llm)
    budget.require_price("gpt-4.1-mini-2025-04-14")
    with pytest.raises(ValueError, match=r"llm\.prices"):
        budget.require_price("mystery-model")


def test_compatible_server_without_json_schema_falls_back_and_remembers():
    unsupported = openai_error(400, "response_format json_schema is not supported by this server")
    replies = [
        unsupported,
        openai_completion(json.dumps(ANSWER)),
        openai_completion(json.dumps(ANSWER)),
    ]
    with serve(replies) as server:
        proposer = openai_proposer(server.url, cls=OpenAICompatibleProposer)
        (first,) = proposer.propose(context(0.9))
        (second,) = proposer.propose(context(0.9))
    formats = [r["body"].get("response_format", {}).get("type") for r in server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    assert first.refused is None and second.refused is None
    assert first.transcript["exchanges"][0]["request"]["response_format"]["type"] == "json_object"


def test_compatible_server_with_no_json_mode_at_all_gets_plain_extraction():
    replies = [
        openai_error(400, "unknown field response_format"),
        openai_error(400, "json mode unavailable"),
        openai_completion("My proposal:\n" + json.dumps(ANSWER)),
    ]
    with serve(replies) as server:
        (proposal,) = openai_proposer(server.url, cls=OpenAICompatibleProposer).propose(
            context(0.9)
        )
    assert proposal.refused is None and "response_format" not in server.requests[2]["body"]


def test_anthropic_tool_call_becomes_a_proposal():
    with serve([anthropic_tool_message({"proposals": [ANSWER]}, 456, 78)]) as server:
        (proposal,) = anthropic_proposer(server.url).propose(context(0.95))
    assert proposal.refused is None and [e.operation() for e in proposal.edits] == ANSWER["edits"]
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (456, 78)
    request = server.requests[0]
    assert request["path"] == "/v1/messages"
    # Older SDKs send x-api-key, newer ones a bearer token: either way the key must arrive.
    headers = request["headers"]
    sent = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
    assert sent == "sk-test-anthropic"
    body = request["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "propose_edits"}
    assert body["tools"][0]["input_schema"]["required"] == ["proposals"]
    assert "rho = 0.950000" in body["messages"][0]["content"]
    assert "E_M = E - ((M-1)/M) * D" in body["system"]


def test_anthropic_repair_answers_the_tool_call_with_an_error_result():
    replies = [anthropic_tool_message(OUT_OF_BOUNDS), anthropic_tool_message(ANSWER)]
    with serve(replies) as server:
        (proposal,) = anthropic_proposer(server.url).propose(context(0.9), check=space_check)
    assert proposal.refused is None
    assistant, feedback = server.requests[1]["body"]["messages"][1:]
    assert assistant["role"] == "assistant" and assistant["content"][0]["type"] == "tool_use"
    result = feedback["content"][0]
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert result["tool_use_id"] == "toolu_1" and "tower.dropout" in result["content"]


def test_anthropic_answer_without_tool_call_is_invalid():
    with serve([anthropic_text_message("Sure! Here are my thoughts...")]) as server:
        (proposal,) = anthropic_proposer(server.url, max_repairs=0).propose(context(0.9))
    refused = proposal.refused
    assert refused.status == "invalid" and "no 'propose_edits' tool call" in refused.reason


def test_anthropic_bad_key_stops_the_run():
    with (
        serve([anthropic_error(401, "authentication_error", "invalid x-api-key")]) as server,
        pytest.raises(ProposerStopped, match=r"\$ANTHROPIC_API_KEY"),
    ):
        anthropic_proposer(server.url).propose(context(0.9))


def test_anthropic_overload_is_retried_then_fails_the_round():
    overloaded = anthropic_error(529, "overloaded_error", "Overloaded")
    with serve([overloaded, overloaded]) as server:
        (proposal,) = anthropic_proposer(server.url, max_retries=1).propose(context(0.9))
    assert proposal.refused.status == "failed" and len(server.requests) == 2


def test_a_500_that_names_the_response_format_steps_down_at_once_without_retries():
    """llama-cpp-python answers an unsupported json_schema with HTTP 500 and a validation
    message about response_format.type: not a transient fault, so no retry is spent."""
    reason = "1 validation error: response_format.type\n  Input should be 'text' or 'json_object'"
    refusal = openai_error(500, reason)
    with serve([refusal, openai_completion(json.dumps(ANSWER))]) as server:
        proposer = openai_proposer(server.url, cls=OpenAICompatibleProposer)
        with pytest.warns(UserWarning, match="refused structured output 'json_schema'") as said:
            (proposal,) = proposer.propose(context(0.9))
    assert proposal.refused is None and len(server.requests) == 2
    # The whole reason, on one line; the refused request logged and counted as a call
    assert "Input should be 'text' or 'json_object'" in str(said[0].message)
    assert "\n" not in str(said[0].message) and proposal.usage.calls == 2
    exchange = proposal.transcript["exchanges"][0]
    assert exchange["retries"] == [] and exchange["structured_output"] == "json_object"
    (refused,) = exchange["refused"]
    assert refused["structured_output"] == "json_schema" and refused["status"] == 500
    assert "json_object" in refused["error"]
    # json_object carries the schema, which llama-cpp-python's server enforces.
    sent = server.requests[1]["body"]["response_format"]
    assert sent["type"] == "json_object" and "proposals" in sent["schema"]["properties"]


def test_a_500_about_something_else_is_still_retried():
    replies = [
        openai_error(500, "CUDA error: out of memory"),
        openai_completion(json.dumps(ANSWER)),
    ]
    with serve(replies) as server:
        proposer = openai_proposer(server.url, cls=OpenAICompatibleProposer, max_retries=2)
        (proposal,) = proposer.propose(context(0.9))
    exchange = proposal.transcript["exchanges"][0]
    assert [r["status"] for r in exchange["retries"]] == [500]
    assert exchange["structured_output"] == "json_schema"


def test_a_configured_seed_changes_with_every_call_so_repairs_resample():
    replies = [openai_completion(json.dumps(OUT_OF_BOUNDS)), openai_completion(json.dumps(ANSWER))]
    with serve(replies) as server:
        proposer = openai_proposer(server.url, cls=OpenAICompatibleProposer, seed=7, max_repairs=1)
        (proposal,) = proposer.propose(context(0.9), check=space_check)
    assert proposal.refused is None
    assert [r["body"]["seed"] for r in server.requests] == [7, 8]
    with serve([openai_completion(json.dumps(ANSWER))]) as server:
        openai_proposer(server.url).propose(context(0.9))
    assert "seed" not in server.requests[0]["body"]  # unset: not sent


def test_an_answer_cut_off_at_the_length_limit_is_repaired_as_truncated():
    status, cut = openai_completion('{"proposals": [{"rationale": "a very long', 200, 2048)
    cut["choices"][0]["finish_reason"] = "length"
    with serve([(status, cut), openai_completion(json.dumps(ANSWER))]) as server:
        (proposal,) = openai_proposer(server.url, max_repairs=1).propose(context(0.9))
    assert proposal.refused is None
    (problem,) = proposal.attempts[0]["problems"]
    assert "cut off at the length limit (2048 tokens)" in problem
    assert "cut off at the length limit" in server.requests[1]["body"]["messages"][-1]["content"]
