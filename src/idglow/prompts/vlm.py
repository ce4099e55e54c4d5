"""The ``openai`` prompt synthesizer: any OpenAI-compatible chat-completions endpoint (vLLM, SGLang,
Ollama, LM Studio, hosted APIs), configured by base URL and model name; the key comes from the
environment and is never logged.

Reliability: the SDK's timeout and bounded retries with exponential backoff on 429, 5xx and
connection errors (``max_retries``); a reply that is not JSON matching the schema is asked for again
(``schema_retries``); when the endpoint still fails, :mod:`idglow.prompts.rules` answers and the
fallback is counted. A misbehaving endpoint never aborts a run. ``concurrency`` caps requests in flight.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from idglow.prompts import rules
from idglow.prompts.scene import SceneDescription

SYSTEM = ("You write prompts for a text-to-image model that draws group photos of specific people. Bind every "
          "attribute to one person by position, left to right; never let an attribute float free. Reply with JSON "
          'only: {"prompt": "<the prompt>"}.')


@dataclasses.dataclass
class VLMOptions:
    """Where and how to call the endpoint."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen2.5-VL-7B-Instruct"
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding the key (never the key itself)
    timeout: float = 30.0  # seconds per request
    max_retries: int = 2  # SDK retries with backoff on 429 / 5xx / connection errors
    schema_retries: int = 1  # extra requests after a reply that is not valid JSON of the schema
    concurrency: int = 4
    temperature: float = 0.2


def validate_reply(text: str | None, scene: SceneDescription) -> str:
    """The prompt in a reply ``{"prompt": str}`` that names every subject's clothing; ValueError otherwise."""
    try:
        data = json.loads(text or "")
    except json.JSONDecodeError as err:
        raise ValueError(f"reply is not JSON ({err.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str) or not data["prompt"].strip():
        raise ValueError('reply lacks a non-empty string field "prompt"')
    missing = [s.clothing for s in scene.subjects if s.clothing and s.clothing not in data["prompt"]]
    if missing:
        raise ValueError(f"reply prompt drops attributes {missing}")
    return data["prompt"].strip()


def _image_part(path: Path) -> dict:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


class VLMPromptSynthesizer:
    """Prompts from a chat-completions endpoint, falling back to ``rules``.

    Attributes:
        stats: counts of ``requests``, ``ok``, ``schema_errors``, ``api_errors`` and ``fallbacks``.
    """

    def __init__(self, options: VLMOptions):
        from openai import OpenAI

        self.options = options
        self.client = OpenAI(base_url=options.base_url, api_key=os.environ.get(options.api_key_env) or "not-needed",
                             timeout=options.timeout, max_retries=options.max_retries)
        self.stats = {"requests": 0, "ok": 0, "schema_errors": 0, "api_errors": 0, "fallbacks": 0}
        self._lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _messages(self, scene: SceneDescription, images: Sequence[Path], guidance: str) -> list[dict]:
        content = [{"type": "text", "text": f"People, left to right, and scene: {json.dumps(dataclasses.asdict(scene))}"
                    + (f"\nKnown failures to avoid: {guidance}" if guidance else "")}]
        content += [_image_part(p) for p in images]
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]

    def synthesize(self, scene: SceneDescription, images: Sequence[Path] = (), guidance: str = "") -> str:
        """One prompt; never raises for endpoint trouble (``rules`` answers instead, counted)."""
        from openai import OpenAIError

        for _ in range(1 + self.options.schema_retries):
            self._count("requests")
            try:
                reply = self.client.chat.completions.create(
                    model=self.options.model, messages=self._messages(scene, images, guidance),
                    temperature=self.options.temperature, response_format={"type": "json_object"})
                prompt = validate_reply(reply.choices[0].message.content, scene)
                self._count("ok")
                return prompt
            except ValueError:
                self._count("schema_errors")
            except OpenAIError:  # timeouts, connection errors, 4xx/5xx after the SDK's own retries
                self._count("api_errors")
                break
        self._count("fallbacks")
        return rules.synthesize(scene)

    def synthesize_many(self, scenes: Sequence[SceneDescription], images: Sequence[Sequence[Path]] | None = None,
                        guidance: str = "") -> list[str]:
        """Prompts for many scenes, at most ``concurrency`` requests in flight, in input order."""
        images = images or [()] * len(scenes)
        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            return list(pool.map(lambda args: self.synthesize(*args, guidance=guidance), zip(scenes, images)))
