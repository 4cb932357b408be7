#!/usr/bin/env python3
"""The official SDKs judge the sandbox (issue #28, "Independent judges in CI").

Starts `singularis-tui sandbox`, then calls every system through the official SDK of its
service (openai, anthropic, google-genai, pinned in requirements.txt): a call, a stream, an
error and a truncated answer each. Every object the SDK hands back is validated again,
strictly, against the SDK's own pydantic type (the SDKs build their objects leniently, so a
missing or mistyped field would otherwise pass unseen). The sandbox's wire shapes are ours;
the types they must fit are the SDK authors'.

    python tests/sdk/conformance.py target/release/singularis-tui

Exit 0 when every check passed, 1 when one failed (each failure is printed with its system
and check), 2 when the sandbox could not be started.
"""

from __future__ import annotations

import re
import subprocess
import sys
import traceback
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

import anthropic
import openai
import pydantic
from anthropic.types import Message, RawMessageStreamEvent
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

# A key is required by each SDK and checked for presence by the sandbox, like the services.
KEY = "sk-conformance-not-a-real-key"
PROMPT = "The scene: a cave mouth at dusk. Choose one action and say why in a sentence."


@dataclass
class System:
    name: str
    url: str = ""
    protocol: str = ""
    model: str = ""
    cap: int = 256
    effort: str | None = None
    token_field: str | None = None


@dataclass
class Tally:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def check(self, label: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception as e:  # the check's own failure, whatever raised it
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            self.failed.append(f"{label}: {detail}")
            print(f"FAIL {label}: {detail}", flush=True)
        else:
            self.passed.append(label)
            print(f"ok   {label}", flush=True)


def strict(obj: pydantic.BaseModel) -> None:
    """Validate an SDK object against its own type, strictly: required fields present,
    every field of its declared type (the SDK itself builds objects without validation)."""
    data = obj.model_dump(mode="json", by_alias=True, exclude_unset=True)
    type(obj).model_validate(data)


def strict_union(adapter: pydantic.TypeAdapter, obj: pydantic.BaseModel) -> None:
    """As `strict`, for a stream event: it must also be one of the union's members."""
    adapter.validate_python(obj.model_dump(mode="json", by_alias=True, exclude_unset=True))
    strict(obj)


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def read_config(binary: str) -> dict[str, System]:
    """The effective settings of each system, from `check-config` (the same defaults the
    sandbox judges by)."""
    out = subprocess.run(
        [binary, "check-config"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    systems: dict[str, System] = {}
    current: System | None = None
    for line in out.splitlines():
        head = re.match(r"^\[systems\.([a-z0-9_]+)\]", line)
        if head:
            current = systems.setdefault(head.group(1), System(head.group(1)))
            continue
        if line.startswith("["):
            current = None
            continue
        kv = re.match(r'^(\w+) = "?([^"]*)"?', line)
        if current is None or not kv:
            continue
        key, value = kv.groups()
        if key == "protocol":
            current.protocol = value
        elif key == "model":
            current.model = value
        elif key == "max_output_tokens":
            current.cap = int(value)
        elif key == "reasoning_effort" and value:
            current.effort = value
        elif key == "token_field":
            current.token_field = value
    return systems


class Sandbox:
    """`singularis-tui sandbox` as a child process; prints `NAME BASE_URL` per system."""

    def __init__(self, binary: str, faults: list[str], systems: dict[str, System]):
        args = [binary, "sandbox"]
        for f in faults:
            args += ["--fault", f]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.urls: dict[str, str] = {}
        wired = [s for s in systems.values() if s.protocol != "moe"]
        assert self.proc.stdout is not None
        while len(self.urls) < len(wired):
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"sandbox exited before listing its systems: {err}")
            name, url = line.split()
            self.urls[name] = url

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------------------------------
# OpenAI Chat Completions (openai_client, hyperbolic_client, lmstudio_client, meta_rl)


def chat_args(s: System) -> dict:
    args: dict = {
        "model": s.model,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    field_name = s.token_field or "max_completion_tokens"
    args[field_name] = s.cap
    if s.effort:
        args["reasoning_effort"] = s.effort
    return args


def openai_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=url, max_retries=0, timeout=20)


def chat_call(s: System, url: str) -> None:
    c = openai_client(url).chat.completions.create(**chat_args(s))
    strict(c)
    expect(isinstance(c, ChatCompletion), "not a ChatCompletion")
    choice = c.choices[0]
    expect(bool(choice.message.content), "empty content")
    expect(choice.finish_reason == "stop", f"finish_reason {choice.finish_reason!r}")
    expect(c.usage is not None and c.usage.completion_tokens > 0, "no usage")


def chat_stream(s: System, url: str) -> None:
    stream = openai_client(url).chat.completions.create(
        **chat_args(s), stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        strict(chunk)
        expect(isinstance(chunk, ChatCompletionChunk), "not a ChatCompletionChunk")
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
        usage = chunk.usage or usage
    expect(bool(text), "no text streamed")
    expect(finish == "stop", f"finish_reason {finish!r}")
    expect(usage is not None, "include_usage asked, no usage chunk")


def chat_truncated(s: System, url: str) -> None:
    c = openai_client(url).chat.completions.create(**chat_args(s))
    strict(c)
    expect(c.choices[0].finish_reason == "length", f"finish_reason {c.choices[0].finish_reason!r}")


def chat_error(s: System, url: str, status: int, kind: type[Exception]) -> None:
    try:
        openai_client(url).chat.completions.create(**chat_args(s))
    except kind as e:
        expect(getattr(e, "status_code", status) == status, f"status {e}")
        expect(isinstance(getattr(e, "body", None), dict), "error body is not the service's JSON")
        expect(bool(e.message), "no message")
        return
    raise AssertionError(f"expected {kind.__name__}")


# ---------------------------------------------------------------------------------------
# OpenAI Responses (orchestrator)

STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


def responses_args(s: System) -> dict:
    args: dict = {"model": s.model, "input": PROMPT, "max_output_tokens": s.cap}
    if s.effort:
        args["reasoning"] = {"effort": s.effort}
    return args


def responses_call(s: System, url: str) -> None:
    r = openai_client(url).responses.create(**responses_args(s))
    strict(r)
    expect(isinstance(r, Response), "not a Response")
    expect(r.status == "completed", f"status {r.status!r}")
    expect(bool(r.output_text), "empty output_text")
    expect(r.usage is not None and r.usage.output_tokens > 0, "no usage")


def responses_stream(s: System, url: str) -> None:
    events = openai_client(url).responses.create(**responses_args(s), stream=True)
    text, done = "", None
    for ev in events:
        strict_union(STREAM_EVENT, ev)
        if ev.type == "response.output_text.delta":
            text += ev.delta
        if ev.type == "response.completed":
            done = ev.response
    expect(bool(text), "no output_text deltas")
    expect(done is not None and done.status == "completed", "no response.completed")


def responses_truncated(s: System, url: str) -> None:
    r = openai_client(url).responses.create(**responses_args(s))
    strict(r)
    expect(r.status == "incomplete", f"status {r.status!r}")
    expect(
        r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens",
        f"incomplete_details {r.incomplete_details!r}",
    )


def responses_error(s: System, url: str, status: int, kind: type[Exception]) -> None:
    try:
        openai_client(url).responses.create(**responses_args(s))
    except kind as e:
        expect(getattr(e, "status_code", status) == status, f"status {e}")
        expect(isinstance(getattr(e, "body", None), dict), "error body is not the service's JSON")
        return
    raise AssertionError(f"expected {kind.__name__}")


# ---------------------------------------------------------------------------------------
# Anthropic Messages (claude_client)

ANTHROPIC_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def claude(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=url, max_retries=0, timeout=20)


def messages_args(s: System) -> dict:
    return {
        "model": s.model,
        "max_tokens": s.cap,
        "messages": [{"role": "user", "content": PROMPT}],
    }


def messages_call(s: System, url: str) -> None:
    m = claude(url).messages.create(**messages_args(s))
    strict(m)
    expect(isinstance(m, Message), "not a Message")
    expect(m.stop_reason == "end_turn", f"stop_reason {m.stop_reason!r}")
    expect(any(b.type == "text" and b.text for b in m.content), "no text block")
    expect(m.usage.output_tokens > 0, "no usage")


def messages_stream(s: System, url: str) -> None:
    with claude(url).messages.stream(**messages_args(s)) as stream:
        for ev in stream:
            # The helper adds its own convenience events (`text`, ...); the wire's are raw.
            if ev.type in {
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            }:
                ANTHROPIC_EVENT.validate_python(
                    ev.model_dump(mode="json", by_alias=True, exclude_unset=True)
                )
        final = stream.get_final_message()
    strict(final)
    expect(final.stop_reason == "end_turn", f"stop_reason {final.stop_reason!r}")
    expect(bool(final.content and final.content[0].text), "no text accumulated")


def messages_truncated(s: System, url: str) -> None:
    m = claude(url).messages.create(**messages_args(s))
    strict(m)
    expect(m.stop_reason == "max_tokens", f"stop_reason {m.stop_reason!r}")


def messages_error(s: System, url: str, status: int, kind: type[Exception]) -> None:
    try:
        claude(url).messages.create(**messages_args(s))
    except kind as e:
        expect(e.status_code == status, f"status {e.status_code}")
        body = e.body if isinstance(e.body, dict) else {}
        expect(body.get("type") == "error", f"error body {e.body!r}")
        expect(bool(body.get("error", {}).get("type")), "no error.type")
        return
    raise AssertionError(f"expected {kind.__name__}")


# ---------------------------------------------------------------------------------------
# Gemini (gemini_client, video_interpreter, voice_system)


def gemini(url: str) -> genai.Client:
    # Callers keep the client in a variable: a dropped genai.Client closes its HTTP client,
    # even under a stream still being read.
    return genai.Client(
        api_key=KEY,
        http_options=gtypes.HttpOptions(
            base_url=url, timeout=20_000, retry_options=gtypes.HttpRetryOptions(attempts=1)
        ),
    )


def gemini_config(s: System) -> gtypes.GenerateContentConfig:
    return gtypes.GenerateContentConfig(max_output_tokens=s.cap)


def generate_call(s: System, url: str) -> None:
    client = gemini(url)
    r = client.models.generate_content(model=s.model, contents=PROMPT, config=gemini_config(s))
    strict(r)
    expect(bool(r.text), "no text")
    expect(r.candidates[0].finish_reason == gtypes.FinishReason.STOP, "finish_reason not STOP")
    expect(r.usage_metadata is not None and r.usage_metadata.candidates_token_count, "no usage")


def generate_stream(s: System, url: str) -> None:
    text, finish = "", None
    client = gemini(url)
    for chunk in client.models.generate_content_stream(
        model=s.model, contents=PROMPT, config=gemini_config(s)
    ):
        strict(chunk)
        text += chunk.text or ""
        # A chunk may carry usage alone, without candidates (the service sends such).
        if chunk.candidates:
            finish = chunk.candidates[0].finish_reason
    expect(bool(text), "no text streamed")
    expect(finish == gtypes.FinishReason.STOP, f"last candidate's finish_reason {finish!r}")


def generate_truncated(s: System, url: str) -> None:
    client = gemini(url)
    r = client.models.generate_content(model=s.model, contents=PROMPT, config=gemini_config(s))
    strict(r)
    expect(
        r.candidates[0].finish_reason == gtypes.FinishReason.MAX_TOKENS,
        f"finish_reason {r.candidates[0].finish_reason!r}",
    )


def tts_call(s: System, url: str) -> None:
    config = gtypes.GenerateContentConfig(
        response_modalities=["AUDIO"],
        speech_config=gtypes.SpeechConfig(
            voice_config=gtypes.VoiceConfig(
                prebuilt_voice_config=gtypes.PrebuiltVoiceConfig(voice_name="Kore")
            )
        ),
    )
    client = gemini(url)
    r = client.models.generate_content(
        model=s.model, contents="Say: the cave is dark.", config=config
    )
    strict(r)
    blob = r.candidates[0].content.parts[0].inline_data
    expect(blob is not None and bool(blob.data), "no inline audio")
    expect(blob.mime_type.startswith("audio/L16"), f"mime {blob.mime_type!r}")
    expect(len(blob.data) % 2 == 0, "16-bit PCM has an even byte count")


def gemini_error(s: System, url: str, status: int, kind: type[Exception]) -> None:
    try:
        client = gemini(url)
        client.models.generate_content(model=s.model, contents=PROMPT, config=gemini_config(s))
    except kind as e:
        expect(e.code == status, f"code {e.code}")
        expect(bool(e.status), "no error.status (e.g. RESOURCE_EXHAUSTED)")
        expect(bool(e.message), "no error.message")
        return
    raise AssertionError(f"expected {kind.__name__}")


# ---------------------------------------------------------------------------------------
# Wolfram|Alpha LLM API: no official SDK; the published reference is plain HTTP and text.


def wolfram_call(s: System, url: str) -> None:
    q = urllib.parse.urlencode({"input": "odds of two sixes with two dice", "appid": KEY})
    with urllib.request.urlopen(f"{url}/api/v1/llm-api?{q}", timeout=20) as r:
        expect(r.status == 200, f"status {r.status}")
        expect(r.headers.get_content_type() == "text/plain", "not text/plain")
        expect(bool(r.read().strip()), "empty answer")


# ---------------------------------------------------------------------------------------

CALLS = {
    "openai_chat": [("call", chat_call), ("stream", chat_stream)],
    "openai_responses": [("call", responses_call), ("stream", responses_stream)],
    "anthropic_messages": [("call", messages_call), ("stream", messages_stream)],
    "gemini_generate": [("call", generate_call), ("stream", generate_stream)],
    "gemini_stream": [("call", generate_call), ("stream", generate_stream)],
    "gemini_tts": [("call", tts_call)],
    "wolfram_llm": [("call", wolfram_call)],
}

TRUNCATED = {
    "openai_chat": chat_truncated,
    "openai_responses": responses_truncated,
    "anthropic_messages": messages_truncated,
    "gemini_generate": generate_truncated,
    "gemini_stream": generate_truncated,
}

# (fault, status, the exception each SDK must raise for it)
ERRORS = {
    "openai_chat": [
        ("ratelimit", 429, openai.RateLimitError),
        ("overloaded", 503, openai.InternalServerError),
        ("error:400", 400, openai.BadRequestError),
    ],
    "openai_responses": [
        ("ratelimit", 429, openai.RateLimitError),
        ("error:401", 401, openai.AuthenticationError),
    ],
    "anthropic_messages": [
        ("ratelimit", 429, anthropic.RateLimitError),
        ("overloaded", 529, anthropic.OverloadedError),
        ("error:400", 400, anthropic.BadRequestError),
    ],
    "gemini_generate": [
        ("ratelimit", 429, genai_errors.ClientError),
        ("overloaded", 503, genai_errors.ServerError),
    ],
    "gemini_stream": [("error:400", 400, genai_errors.ClientError)],
}

ERROR_CHECK = {
    "openai_chat": chat_error,
    "openai_responses": responses_error,
    "anthropic_messages": messages_error,
    "gemini_generate": gemini_error,
    "gemini_stream": gemini_error,
}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = sys.argv[1]
    systems = read_config(binary)
    wired = {n: s for n, s in systems.items() if s.protocol != "moe"}
    tally = Tally()

    try:
        sandbox = Sandbox(binary, [], systems)
    except Exception as e:
        print(f"could not start the sandbox: {e}", file=sys.stderr)
        return 2
    try:
        for name, s in wired.items():
            for what, run in CALLS.get(s.protocol, []):
                url = sandbox.urls[name]
                tally.check(f"{name} ({s.protocol}) {what}", lambda run=run, s=s, url=url: run(s, url))
    finally:
        sandbox.stop()

    # Faults apply per system; one sandbox per fault kind covers every system at once.
    plans: dict[str, list[tuple[str, Callable[[System, str], None]]]] = {}
    for name, s in wired.items():
        if s.protocol in TRUNCATED:
            plans.setdefault("truncate", []).append((name, TRUNCATED[s.protocol]))
        for fault, status, kind in ERRORS.get(s.protocol, []):
            check = ERROR_CHECK[s.protocol]
            plans.setdefault(fault, []).append(
                (name, lambda s, url, c=check, st=status, k=kind: c(s, url, st, k))
            )
    for fault, checks in plans.items():
        names = sorted({n for n, _ in checks})
        try:
            sandbox = Sandbox(binary, [f"{n}={fault}" for n in names], systems)
        except Exception as e:
            tally.failed.append(f"sandbox with {fault}: {e}")
            continue
        try:
            for name, run in checks:
                s, url = systems[name], sandbox.urls[name]
                tally.check(f"{name} ({s.protocol}) {fault}", lambda run=run, s=s, url=url: run(s, url))
        finally:
            sandbox.stop()

    print(
        f"\n{len(tally.passed)} passed, {len(tally.failed)} failed "
        f"(openai {openai.__version__}, anthropic {anthropic.__version__}, "
        f"google-genai {genai.__version__})"
    )
    for f in tally.failed:
        print(f"  FAIL {f}")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
