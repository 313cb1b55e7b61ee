"""OpenAI and Anthropic backends through their real SDKs against local wire-format servers."""

from __future__ import annotations

import json

import pytest

from agent.config import LLMSettings
from agent.proposers.anthropic import AnthropicProposer
from agent.proposers.base import ProposerStopped
from agent.proposers.openai import OpenAIProposer
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


def openai_proposer(url: str, **settings) -> OpenAIProposer:
    llm = LLMSettings(
        provider="openai", model="test-model", base_url=f"{url}/v1", max_retries=0, **settings
    )
    return OpenAIProposer(llm, api_key="sk-test-openai")


def anthropic_proposer(url: str) -> AnthropicProposer:
    llm = LLMSettings(provider="anthropic", model="test-model", base_url=url, max_retries=0)
    return AnthropicProposer(llm, api_key="sk-test-anthropic")


def test_openai_structured_answer_becomes_edits():
    with serve([openai_completion(json.dumps(ANSWER), 321, 45)]) as server:
        proposal = openai_proposer(server.url).propose(context(0.97))
    assert proposal.problem is None
    assert proposal.rationale == ANSWER["rationale"]
    assert [e.operation() for e in proposal.edits] == ANSWER["edits"]
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (321, 45)
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test-openai"
    body = request["body"]
    assert body["model"] == "test-model"
    assert body["response_format"]["type"] == "json_schema"
    assert "edits" in body["response_format"]["json_schema"]["schema"]["properties"]
    user = body["messages"][1]["content"]
    assert "rho = 0.970000" in user and "/bagging/fraction" not in body["messages"][0]["content"]
    assert proposal.transcript["request"]["messages"] == body["messages"]
    assert proposal.transcript["response"]["usage"]["prompt_tokens"] == 321


def test_openai_answer_in_a_code_fence_is_accepted():
    with serve([openai_completion("```json\n" + json.dumps(ANSWER) + "\n```")]) as server:
        proposal = openai_proposer(server.url).propose(context(0.9))
    assert proposal.problem is None and len(proposal.edits) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("I think you should add dropout.", "not valid JSON"),
        (json.dumps({"rationale": "x"}), "edits: Field required"),
        (
            json.dumps({"rationale": "x", "edits": [{"op": "frobnicate", "path": "/a"}]}),
            "edits.0.op",
        ),
        ("", "empty"),
    ],
)
def test_openai_malformed_answers_are_invalid_not_crashes(content, message):
    with serve([openai_completion(content)]) as server:
        proposal = openai_proposer(server.url).propose(context(0.9))
    assert proposal.problem_status == "invalid"
    assert message in proposal.problem
    assert proposal.transcript["response"]["choices"][0]["message"]["content"] == content


def test_openai_bad_key_stops_the_run_naming_the_variable():
    with (
        serve([openai_error(401, "Incorrect API key provided")]) as server,
        pytest.raises(ProposerStopped, match=r"\$OPENAI_API_KEY"),
    ):
        openai_proposer(server.url).propose(context(0.9))


def test_openai_unknown_model_stops_the_run():
    with (
        serve([openai_error(404, "The model `nope` does not exist")]) as server,
        pytest.raises(ProposerStopped, match="test-model"),
    ):
        openai_proposer(server.url).propose(context(0.9))


def test_openai_server_error_is_a_failed_proposal():
    with serve([openai_error(500, "boom")]) as server:
        proposal = openai_proposer(server.url).propose(context(0.9))
    assert proposal.problem_status == "failed" and "InternalServerError" in proposal.problem


def test_openai_sdk_retries_a_500_then_succeeds():
    replies = [openai_error(500, "boom"), openai_completion(json.dumps(ANSWER))]
    with serve(replies) as server:
        llm = LLMSettings(provider="openai", model="m", base_url=f"{server.url}/v1", max_retries=1)
        proposal = OpenAIProposer(llm, api_key="k").propose(context(0.9))
    assert proposal.problem is None and len(server.requests) == 2


def test_anthropic_tool_call_becomes_edits():
    with serve([anthropic_tool_message(ANSWER, 456, 78)]) as server:
        proposal = anthropic_proposer(server.url).propose(context(0.95))
    assert proposal.problem is None
    assert [e.operation() for e in proposal.edits] == ANSWER["edits"]
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (456, 78)
    request = server.requests[0]
    assert request["path"] == "/v1/messages"
    # Older SDKs send x-api-key, newer ones a bearer token: either way the key must arrive.
    headers = request["headers"]
    sent = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
    assert sent == "sk-test-anthropic"
    body = request["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "propose_edits"}
    assert body["tools"][0]["input_schema"]["required"] == ["rationale", "edits"]
    assert "rho = 0.950000" in body["messages"][0]["content"]
    assert "E_M = E - ((M-1)/M) * D" in body["system"]


def test_anthropic_answer_without_tool_call_is_invalid():
    with serve([anthropic_text_message("Sure! Here are my thoughts...")]) as server:
        proposal = anthropic_proposer(server.url).propose(context(0.9))
    assert (
        proposal.problem_status == "invalid" and "no 'propose_edits' tool call" in proposal.problem
    )


def test_anthropic_schema_violation_is_invalid():
    with serve([anthropic_tool_message({"rationale": "x", "edits": "more dropout"})]) as server:
        proposal = anthropic_proposer(server.url).propose(context(0.9))
    assert proposal.problem_status == "invalid" and "edits" in proposal.problem


def test_anthropic_bad_key_stops_the_run():
    with (
        serve([anthropic_error(401, "authentication_error", "invalid x-api-key")]) as server,
        pytest.raises(ProposerStopped, match=r"\$ANTHROPIC_API_KEY"),
    ):
        anthropic_proposer(server.url).propose(context(0.9))


def test_anthropic_overload_is_a_failed_proposal():
    with serve([anthropic_error(529, "overloaded_error", "Overloaded")]) as server:
        proposal = anthropic_proposer(server.url).propose(context(0.9))
    assert proposal.problem_status == "failed"
