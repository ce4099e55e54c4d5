"""Prompt synthesis: the rules backend on the cast, and the openai backend against a real loopback HTTP
server speaking the chat-completions protocol (normal, slow, 500, 429, malformed, refused)."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import cli
from PIL import Image

from idglow.prompts.rules import coarse, refine, synthesize
from idglow.prompts.scene import SceneDescription, SubjectDescription
from idglow.prompts.vlm import VLMOptions, VLMPromptSynthesizer, validate_reply

SCENE = SceneDescription([SubjectDescription("on the left", clothing="red"), SubjectDescription("on the right", clothing="blue")],
                         setting="in a park")
GOOD = "a group photo of two people in a park: the person on the left wears red, the person on the right wears blue"


def test_rules_reproduce_the_cast_captions_from_their_annotations():
    assert synthesize(SCENE) == GOOD
    one = SceneDescription([SubjectDescription("in the centre", age="child", clothing="green")], setting="on a beach", task="age")
    assert synthesize(one) == "a photo of one child wearing green on a beach"
    # records as `idglow synth build` writes them (benchmark and SFT formats)
    bench = {"id": "b", "task": "age", "refs": ["r0.png", "r1.png", "r2.png"],
             "prompt": "a group photo of three children on a city street: the child on the left wears red, "
                       "the child in the middle wears white, the child on the right wears black",
             "expected": {"count": 3, "age": "child", "clothing": ["red", "white", "black"],
                          "positions": ["on the left", "in the middle", "on the right"]}}
    assert synthesize(SceneDescription.from_record(bench)) == bench["prompt"]
    sft = {"task": "group", "prompt": "a group photo of two people in a studio: the person on the left wears red, "
                                      "the person on the right wears blue",
           "subjects": [{"attributes": {"position": "on the left", "clothing": "red", "age": "adult"}},
                        {"attributes": {"position": "on the right", "clothing": "blue", "age": "adult"}}]}
    assert synthesize(SceneDescription.from_record(sft)) == sft["prompt"]


def test_rules_refine_binds_reorders_and_stresses_failures():
    text = refine(SCENE, {1: {"leakage"}, 0: {"swap"}})
    assert text.index("on the left") < text.index("on the right")  # order kept by default
    assert text.startswith("a group photo of exactly two people in a park, from left to right:")
    assert "the person on the right wears blue and only blue" in text
    only_right = refine(SCENE, {1: {"leakage"}}, reorder=True)
    assert only_right.index("on the right") < only_right.index("on the left")  # the failing person first
    with pytest.raises(ValueError, match="unknown kind"):
        refine(SCENE, {0: {"blurry"}})
    with pytest.raises(ValueError, match="at least one person"):
        synthesize(SceneDescription([]))


def test_reply_validation():
    assert validate_reply(json.dumps({"prompt": GOOD}), SCENE) == GOOD
    for bad, message in [("not json", "not JSON"), ('{"text": "x"}', '"prompt"'), ('{"prompt": "a red person"}', "drops attributes")]:
        with pytest.raises(ValueError, match=message):
            validate_reply(bad, SCENE)


class Endpoint(BaseHTTPRequestHandler):
    """Chat completions whose behaviour the request's model name picks."""

    seen: list[dict] = []
    failures_left: dict[str, int] = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Endpoint.seen.append({"body": body, "auth": self.headers.get("Authorization")})
        mode = body["model"]
        if mode in ("500", "429") and Endpoint.failures_left.get(mode, 0) > 0:
            Endpoint.failures_left[mode] -= 1
            return self._send(int(mode), {"error": {"message": "try later", "type": "server_error"}})
        if mode == "slow":
            time.sleep(2.0)
        content = "{not json" if mode == "malformed" else json.dumps({"prompt": GOOD})
        self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": mode,
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _synth(url, model, monkeypatch, **kw):
    monkeypatch.setenv("IDGLOW_TEST_KEY", "sk-secret-123")
    return VLMPromptSynthesizer(VLMOptions(base_url=url, model=model, api_key_env="IDGLOW_TEST_KEY", timeout=1.0, **kw))


def test_normal_reply_with_image_inputs_and_the_key_from_the_environment(endpoint, monkeypatch, tmp_path):
    image = tmp_path / "ref.png"
    image.write_bytes(b"\x89PNG fake")
    synth = _synth(endpoint, "ok", monkeypatch)
    assert synth.synthesize(SCENE, [image, image]) == GOOD
    request = Endpoint.seen[-1]
    parts = request["body"]["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert request["auth"] == "Bearer sk-secret-123"
    assert "sk-secret-123" not in repr(synth.options) and synth.stats["ok"] == 1


def test_slow_replies_time_out_and_fall_back_to_rules(endpoint, monkeypatch):
    synth = _synth(endpoint, "slow", monkeypatch, max_retries=0)
    start = time.perf_counter()
    assert synth.synthesize(SCENE) == synthesize(SCENE)
    assert time.perf_counter() - start < 1.9 and synth.stats["api_errors"] == 1 and synth.stats["fallbacks"] == 1


@pytest.mark.parametrize("status", ["500", "429"])
def test_server_errors_are_retried_with_backoff_then_succeed(endpoint, monkeypatch, status):
    Endpoint.failures_left[status] = 1
    before = len(Endpoint.seen)
    synth = _synth(endpoint, status, monkeypatch, max_retries=2)
    assert synth.synthesize(SCENE) == GOOD
    assert len(Endpoint.seen) - before == 2 and synth.stats["fallbacks"] == 0


def test_persistent_errors_and_malformed_replies_fall_back_counted(endpoint, monkeypatch):
    Endpoint.failures_left["500"] = 10
    synth = _synth(endpoint, "500", monkeypatch, max_retries=1)
    assert synth.synthesize(SCENE) == synthesize(SCENE) and synth.stats["api_errors"] == 1
    malformed = _synth(endpoint, "malformed", monkeypatch, schema_retries=1)
    assert malformed.synthesize(SCENE) == synthesize(SCENE)
    assert malformed.stats == {"requests": 2, "ok": 0, "schema_errors": 2, "api_errors": 0, "fallbacks": 1}


def test_connection_refused_never_aborts_and_concurrency_keeps_order(endpoint, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    refused = _synth(f"http://127.0.0.1:{port}/v1", "ok", monkeypatch, max_retries=0)
    scenes = [SCENE, SceneDescription([SubjectDescription("in the centre", clothing="green")])]
    assert refused.synthesize_many(scenes) == [synthesize(s) for s in scenes]
    assert refused.stats["fallbacks"] == 2
    many = _synth(endpoint, "ok", monkeypatch, concurrency=3)
    assert many.synthesize_many([SCENE] * 5) == [GOOD] * 5


def test_failures_are_detected_per_subject_and_the_library_round_trips(tmp_path):
    from idglow.prompts.badcases import append_library, detect_failures, few_shot_guidance, library_entries, read_library

    record = {"id": "x", "task": "age", "prompt": "p", "refs": ["a", "b", "c"],
              "expected": {"count": 3, "age": "child", "clothing": ["red", "blue", "green"],
                           "positions": ["on the left", "in the middle", "on the right"]}}
    identity = {"size": 3, "count_ok": 0.0, "swapped_slots": []}
    cast = {"leaked_slots": [1], "adult_slots": [0], "unmatched_slots": [2]}
    failures = detect_failures(record, {**identity, **cast})
    assert failures == {1: {"leakage"}, 0: {"age"}, 2: {"count"}}
    entries = library_entries(record, failures, "img.png", 0)
    assert sorted(e["failure"] for e in entries) == ["age", "count", "leakage"]
    leak = next(e for e in entries if e["failure"] == "leakage")
    assert leak["subjects"] == [1] and leak["attributes"][0]["clothing"] == "blue"
    path = tmp_path / "badcases.jsonl"
    append_library(path, entries)
    assert read_library(path) == entries and "leakage of people [1]" in few_shot_guidance(entries)
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(ValueError, match=r"badcases.jsonl:4: not JSON"):
        read_library(path)


def _sft_manifest(folder: Path, n: int = 5) -> Path:

    Image.new("RGB", (8, 8)).save(folder / "r.png")
    Image.new("RGB", (16, 8)).save(folder / "i.png")
    lines = []
    for k in range(n):
        subjects = [{"ref": "r.png", "box": [0, 0, 4, 4], "attributes": {"position": p, "clothing": c, "age": "adult"}}
                    for p, c in (("on the left", "red"), ("on the right", "blue"))]
        lines.append(json.dumps({"id": f"s{k}", "image": "i.png", "prompt": "old caption", "task": "group", "subjects": subjects}))
    path = folder / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_caption_writes_a_manifest_and_an_interrupted_run_continues_from_its_cache(tmp_path, monkeypatch, endpoint):
    from idglow.data.manifest import load_manifest
    from idglow.prompts.caption import caption_manifest

    manifest = _sft_manifest(tmp_path)
    out = tmp_path / "train.captioned.jsonl"
    cache = tmp_path / "train.captioned.jsonl.cache"
    # as if killed after two captions, mid-way through writing a third line
    cache.write_text(json.dumps({"id": "s0", "key": "rules", "prompt": "cached 0"}) + "\n"
                     + json.dumps({"id": "s1", "key": "rules", "prompt": "cached 1"}) + "\n" + '{"id": "s2", "ke')
    result = caption_manifest(manifest, progress=False)
    assert result == {"records": 5, "captioned": 3, "from_cache": 2, "out": str(out)}
    records = load_manifest(out, "sft")  # a valid manifest whose paths still resolve
    assert [r["prompt"] for r in records[:3]] == ["cached 0", "cached 1", GOOD.replace(" in a park", "")]
    assert records[0]["subjects"] == json.loads(manifest.read_text().splitlines()[0])["subjects"]
    # a VLM backend keys its own cache entries: nothing of the rules captions is reused
    synth = _synth(endpoint, "ok", monkeypatch)
    before = len(Endpoint.seen)
    assert caption_manifest(manifest, synthesizer=synth, progress=False)["captioned"] == 5
    assert len(Endpoint.seen) - before == 5 and Endpoint.seen[-1]["body"]["messages"][1]["content"][1]["type"] == "image_url"
    with pytest.raises(ValueError, match="must be in the manifest's folder"):
        caption_manifest(manifest, out=tmp_path / "elsewhere" / "x.jsonl", progress=False)
    # coarse captions (what photo datasets give): their own cache key, no person bound to anything
    plain = caption_manifest(manifest, out=tmp_path / "train.coarse.jsonl", style="coarse", progress=False)
    assert plain["captioned"] == 5
    assert load_manifest(tmp_path / "train.coarse.jsonl", "sft")[2]["prompt"] == "a group photo of two people"
    with pytest.raises(ValueError, match="coarse captions come from the rules backend"):
        caption_manifest(manifest, synthesizer=synth, style="coarse", progress=False)


def test_coarse_captions_keep_count_and_place_and_bind_no_one():
    assert coarse(SCENE) == "a group photo of two people in a park"
    one = SceneDescription([SubjectDescription("in the centre", age="child", clothing="green")], setting="on a beach", task="age")
    assert coarse(one) == "a photo of one child on a beach"
    with pytest.raises(ValueError, match="at least one person"):
        coarse(SceneDescription([], setting="in a park"))


def test_refine_rewrites_failing_records_with_rules_or_a_vlm_given_the_library(endpoint, monkeypatch):
    from idglow.prompts.refine_loop import rewrite_prompts

    record = {"id": "x", "task": "group", "prompt": GOOD, "refs": ["a", "b"],
              "expected": {"count": 2, "clothing": ["red", "blue"], "positions": ["on the left", "on the right"]}}
    fine = {**record, "id": "y"}
    library = [{"failure": "leakage", "subjects": [1], "prompt": GOOD}]
    by_rules = rewrite_prompts([record, fine], {"x": {1: {"leakage"}}}, None, library)
    assert list(by_rules) == ["x"] and "blue and only blue" in by_rules["x"]
    synth = _synth(endpoint, "ok", monkeypatch)
    assert rewrite_prompts([record, fine], {"x": {1: {"leakage"}}}, synth, library) == {"x": GOOD}
    sent = Endpoint.seen[-1]["body"]["messages"][1]["content"][0]["text"]
    assert "Known failures to avoid" in sent and "leakage of people [1]" in sent  # the library as few-shot guidance


@pytest.mark.e2e
def test_prompts_refine_round_writes_library_prompts_and_before_after_metrics(cast, sft_run, tmp_path):
    out = tmp_path / "refine"
    done = cli("prompts", "refine", "--run", str(sft_run), "--benchmark", str(cast / "synth-group.jsonl"), "--out", str(out),
               "--steps", "2", "--limit", "4")
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 4 and set(summary["before"]) == set(summary["after"])
    library = [json.loads(line) for line in (out / "badcases.jsonl").read_text().splitlines()]
    refined = [json.loads(line) for line in (out / "refined_prompts.jsonl").read_text().splitlines()]
    # a 2-step tiny model fails somewhere; every failing record got a rewritten prompt, used in round 1
    assert library and {e["id"] for e in library} == {r["id"] for r in refined} and summary["prompts_rewritten"] == len(refined)
    for r in refined:
        assert json.loads((out / "round1" / f"{r['id']}.json").read_text())["prompt"] == r["prompt"]
    assert len(list((out / "round0").glob("*.png"))) == len(list((out / "round1").glob("*.png"))) == 4


def test_lessons_of_a_library_stress_the_leaked_colours_and_the_frequent_failures():
    from idglow.prompts.badcases import Lessons

    library = [{"id": "a", "failure": "leakage", "subjects": [1], "attributes": [{"clothing": "blue"}], "prompt": "p"},
               {"id": "a", "failure": "swap", "subjects": [0, 1], "attributes": [], "prompt": "p"},
               {"id": "b", "failure": "count", "subjects": [0], "attributes": [], "prompt": "p"}]
    lessons = Lessons.from_library(library, images=10, min_share=0.2)  # swap and count: 1 image in 10 each, too rare
    assert lessons.leaked_clothing == {"blue"} and lessons.kinds == frozenset()
    assert lessons.failures(SCENE) == {1: {"leakage"}}
    assert refine(SCENE, lessons.failures(SCENE)).endswith("the person on the right wears blue and only blue")
    often = Lessons.from_library(library, images=4, min_share=0.2)
    assert often.kinds == {"swap", "count"} and often.failures(SCENE) == {0: {"swap", "count"}, 1: {"leakage", "swap", "count"}}
    alone = SceneDescription([SubjectDescription("in the centre", clothing="blue")])
    assert often.failures(alone) == {}  # one person: nothing to leak, swap or miscount
    with pytest.raises(ValueError, match="at least one generated image"):
        Lessons.from_library(library, images=0)


def test_refined_captions_follow_their_library_and_name_bad_input(tmp_path):
    from idglow.data.manifest import load_manifest
    from idglow.prompts.caption import caption_manifest

    manifest = _sft_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="badcases.jsonl: not found"):
        caption_manifest(manifest, style="refined", badcases=tmp_path / "none", progress=False)
    with pytest.raises(ValueError, match="refined style needs a badcase folder"):
        caption_manifest(manifest, style="refined", progress=False)
    folder = tmp_path / "badcases"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"images": 0}))
    (folder / "badcases.jsonl").write_text(json.dumps({"id": "a", "failure": "leakage", "subjects": [0], "prompt": "p",
                                                       "attributes": [{"clothing": "red"}]}) + "\n")
    with pytest.raises(ValueError, match="summary.json: images: expected the positive number"):
        caption_manifest(manifest, style="refined", badcases=folder, progress=False)
    (folder / "summary.json").write_text(json.dumps({"images": 50}))
    out = tmp_path / "train.refined.jsonl"
    assert caption_manifest(manifest, out=out, style="refined", badcases=folder, progress=False)["captioned"] == 5
    prompt = load_manifest(out, "sft")[0]["prompt"]
    assert "the person on the left wears red and only red" in prompt and "wears blue and only blue" not in prompt
    # another library is another cache key: nothing stale is reused
    with (folder / "badcases.jsonl").open("a") as f:
        f.write(json.dumps({"id": "b", "failure": "leakage", "subjects": [1], "prompt": "p", "attributes": [{"clothing": "blue"}]}) + "\n")
    assert caption_manifest(manifest, out=out, style="refined", badcases=folder, progress=False)["captioned"] == 5
    assert "wears blue and only blue" in load_manifest(out, "sft")[0]["prompt"]


def test_sft_records_become_benchmark_records_and_missing_attributes_are_named(tmp_path):
    from idglow.data.manifest import ManifestError, load_manifest, sft_as_benchmark

    manifest = _sft_manifest(tmp_path)
    record = load_manifest(manifest, "sft")[1]
    with pytest.raises(ManifestError, match=r"train.jsonl:2: subjects\[0\].attributes: missing identity"):
        sft_as_benchmark(record, manifest)
    for subject, identity in zip(record["subjects"], (7, 9)):
        subject["attributes"]["identity"] = identity
    bench = sft_as_benchmark(record, manifest)
    assert bench["refs"] == ["r.png", "r.png"] and bench["expected"]["identities"] == [7, 9]
    assert bench["expected"]["clothing"] == ["red", "blue"] and bench["expected"]["target"] == "i.png"
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps(bench) + "\n")
    assert load_manifest(path, "benchmark")[0]["expected"]["count"] == 2  # a valid benchmark record


@pytest.mark.e2e
def test_training_badcases_then_refined_captions_from_the_cli(cast, sft_run, tmp_path):
    import shutil

    data = tmp_path / "cast"
    shutil.copytree(cast, data)  # the badcase scenes are written beside the manifest: not into the shared cast
    out = tmp_path / "badcases"
    done = cli("prompts", "badcases", "--run", str(sft_run), "--manifest", str(data / "sft-group-train.jsonl"),
               "--out", str(out), "--steps", "2", "--limit", "4")
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    scenes = [json.loads(line) for line in (data / "sft-group-train.badcase-scenes.jsonl").read_text().splitlines()]
    assert summary["images"] == 4 == len(scenes) == len(list((out / "round0").glob("*.png")))
    assert all(s["id"].startswith("sft-group-train-") for s in scenes)  # training scenes, no benchmark record
    library = [json.loads(line) for line in (out / "badcases.jsonl").read_text().splitlines()]
    assert sum(summary["failures"].values()) == len(library)
    done = cli("prompts", "caption", "--manifest", str(data / "sft-group-train.jsonl"), "--style", "refined",
               "--badcases", str(out), "--out", str(data / "sft-group-train.refined.jsonl"))
    assert done.returncode == 0, done.stderr
    assert len((data / "sft-group-train.refined.jsonl").read_text().splitlines()) == 8
    refused = cli("prompts", "caption", "--manifest", str(data / "sft-group-train.jsonl"), "--badcases", str(out))
    assert refused.returncode != 0 and "--badcases DIR goes with --style refined" in refused.stderr
