"""Local HTTP servers on 127.0.0.1 that speak the OpenAI and Anthropic wire formats.

Each server answers from a script of (status, body, headers) replies and records every
request, so tests can drive the real SDKs and inspect what they sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, Any]]


class ScriptedServer:
    """Replies are (status, body) or (status, body, headers) or (status, body, headers,
    delay_seconds); a delay longer than the client's timeout simulates a hung server."""

    def __init__(self, replies: list[tuple]):
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append({"path": self.path, "headers": headers, "body": body})
                exhausted = (500, {"error": "script exhausted"})
                reply = server.replies.pop(0) if server.replies else exhausted
                status, payload = reply[:2]
                extra_headers = reply[2] if len(reply) > 2 else {}
                delay = reply[3] if len(reply) > 3 else 0
                time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in extra_headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(replies: list[tuple]) -> Iterator[ScriptedServer]:
    server = ScriptedServer(replies)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def openai_completion(content: str, prompt_tokens: int = 120, completion_tokens: int = 30) -> Reply:
    return 200, {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def anthropic_tool_message(
    tool_input: Any, input_tokens: int = 200, output_tokens: int = 40
) -> Reply:
    return 200, {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "test-model",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "propose_edits", "input": tool_input}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def anthropic_text_message(text: str) -> Reply:
    return 200, {
        "id": "msg_text",
        "type": "message",
        "role": "assistant",
        "model": "test-model",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def openai_error(status: int, message: str) -> Reply:
    return status, {"error": {"message": message, "type": "test_error", "code": None}}


def anthropic_error(status: int, kind: str, message: str) -> Reply:
    return status, {"type": "error", "error": {"type": kind, "message": message}}
