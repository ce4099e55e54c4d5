"""idglow serve: the web app driven in a real browser (headless Chromium through selenium and Debian's chromedriver),
the same endpoint through gradio_client, and the app's parts (gallery, prompt button, labels) on their own."""

import argparse
import json
import os
import shutil
import socket

import numpy as np
import pytest
from conftest import JUDGES, cli
from PIL import Image

from idglow.serve.gallery import gallery_from_cast, load_gallery, write_gallery
from idglow.serve.labels import FaceLabel, draw_labels, reference_rows
from idglow.serve.prompting import write_prompt

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(cast, sft_run, tmp_path_factory):
    """The app of the tiny SFT run, its gallery written like the shipped model's, on a loopback port."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from idglow.cli.serve import build
    from idglow.serve.app import app_theme

    gallery = write_gallery(gallery_from_cast(cast, size=4), tmp_path_factory.mktemp("gallery"))
    args = argparse.Namespace(run=str(sft_run), gallery=str(gallery), host="127.0.0.1", port=0, judges=JUDGES,
                              device="cpu", precision="fp32", height=64, width=128)
    app, model = build(args)
    port = _free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, theme=app_theme())
    yield f"http://127.0.0.1:{port}/", model
    app.close()


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from idglow.demo.browser import find_browser

    browser = find_browser()
    if browser is None or not os.path.exists(CHROMEDRIVER):
        if os.environ.get("IDGLOW_REQUIRE_BROWSER") == "1":  # CI installs Debian's chromium and chromium-driver
            pytest.fail("IDGLOW_REQUIRE_BROWSER=1 but chromium or chromedriver is missing")
        pytest.skip("needs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,2000"):
        options.add_argument(flag)
    # the system driver, named explicitly: selenium's manager then downloads nothing
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.mark.e2e
def test_the_page_generates_in_a_real_browser_and_labels_name_the_chosen_people(served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, model = served
    driver = _browser()
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        for name in ("person 1", "person 3"):
            wait.until(ec.element_to_be_clickable((By.XPATH, f"//*[@id='people']//label[normalize-space()='{name}']"))).click()
        driver.find_element(By.CSS_SELECTOR, "#write button, button#write").click()
        prompt = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#prompt textarea"))
        wait.until(lambda d: prompt.get_attribute("value").startswith("a group photo of two people"))
        prompt.clear()
        prompt.send_keys("a group photo of two people on a beach: the person on the left wears red, the person on the right wears blue")
        driver.find_element(By.CSS_SELECTOR, "#generate button, button#generate").click()
        image = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#output img"))
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image))
        size = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
        assert size == [512, 256]  # 128 x 64, upscaled x4
        labels = wait.until(lambda d: d.find_element(By.ID, "labels").text if "person 3" in d.find_element(By.ID, "labels").text else None)
        assert "person 1" in labels and "person 3" in labels and "person 2" not in labels
    finally:
        driver.quit()


@pytest.mark.e2e
def test_gradio_client_calls_the_same_endpoint(served):
    from gradio_client import Client

    url, model = served
    client = Client(url, verbose=False)
    prompt = client.predict(["person 2", "person 4"], [], "age", "beach", 0, api_name="/write_prompt")
    assert prompt.startswith("a group photo of two children on a beach")
    images, table = client.predict(["person 2", "person 4"], [], prompt, "age", 2, 5, 2, 1.0, 1.0, "linear_decay", 0, 1,
                                   "window", 0, 1, 0.3, 0.7, 0.1, api_name="/generate")
    assert [item["caption"] for item in images] == ["seed 5", "seed 6"]
    assert all(Image.open(item["image"]).size == (512, 256) for item in images)
    assert [(row[0], row[1]) for row in table["data"]] == [(1, "person 2"), (1, "person 4"), (2, "person 2"), (2, "person 4")]
    with pytest.raises(Exception, match="prompt: write a prompt"):
        client.predict(["person 2"], [], " ", "group", 2, 0, 1, 1.0, 1.0, "linear_decay", 0, 1, "window", 0, 1, 0.3, 0.7,
                       0.1, api_name="/generate")


def test_app_model_uses_the_sliders_for_one_call_and_names_bad_input(served):
    from idglow.serve.app import ScheduleInputs

    _, model = served
    gate = model.pipe.model.config.identity.gate
    constant = ScheduleInputs("constant", 0.0, 0.0, "window", 0, 1, 0.3, 0.7, 0.1)  # group lambda = 0: identity off
    images, rows = model.generate(["person 1"], [], "a photo of one person", "group", 2, 0, 1, 1.0, 1.0, constant)
    assert model.pipe.model.config.identity.gate is gate and len(rows) == 1
    with pytest.raises(ValueError, match="lambda_min"):
        model.generate(["person 1"], [], "x", "group", 1, 0, 1, 1.0, 1.0, ScheduleInputs("constant", 0.9, 0.2, "window", 0, 1, 0.3, 0.7, 0.1))
    with pytest.raises(ValueError, match="choose people"):
        model.generate([], [], "x", "group", 1, 0, 1, 1.0, 1.0, constant)
    with pytest.raises(ValueError, match="not in the gallery"):
        model.prompt(["nobody"], [], "group", "park", 0)
    fig = model.figure(constant, id_scale=1.5)
    assert fig.axes[0].get_ylim()[1] >= 1.5


def test_the_app_starts_at_the_model_folders_recommended_sampler():
    from types import SimpleNamespace

    from idglow.identity.config import GateConfig, IdentityConfig
    from idglow.runs.sampler import SamplerSettings
    from idglow.serve.app import AppModel, ScheduleInputs

    config = SimpleNamespace(identity=IdentityConfig(gate=GateConfig()))
    recommended = {"group": SamplerSettings(1.5, ("group.lambda_min=0.3",), "test", (0.0, 0.5)), "age": SamplerSettings(1.25)}
    model = AppModel(SimpleNamespace(model=SimpleNamespace(config=config), recommended=recommended), [], backend=None)
    assert (model.guidance("group"), model.guidance("age")) == (1.5, 1.25)
    assert (model.interval("group"), model.interval("age")) == ((0.0, 0.5), None)  # the slider's guidance keeps it
    start = ScheduleInputs.of(model.start_gate)
    assert start.group_min == 0.3 and start.age_kind == "window" and model.gate.group.lambda_min == 0.0
    plain = AppModel(SimpleNamespace(model=SimpleNamespace(config=config), recommended={}), [], backend=None)
    assert plain.guidance("age") == 1.0 and plain.start_gate == plain.gate


def test_written_prompts_follow_the_cast_caption_form():
    assert write_prompt(1, "group", "studio", seed=3).startswith("a photo of one person wearing ")
    three = write_prompt(3, "age", "park", seed=0)
    assert three.startswith("a group photo of three children in a park: the child on the left wears ")
    assert write_prompt(3, "age", "park", seed=0) == three and write_prompt(3, "age", "park", seed=1) != three
    with pytest.raises(ValueError, match="choose 1 to 4"):
        write_prompt(5)
    with pytest.raises(ValueError, match="place: expected one of"):
        write_prompt(2, place="moon")


def test_labels_draw_boxes_and_list_every_reference():
    labels = [FaceLabel((10, 5, 30, 25), 1, "bob", 0.8), FaceLabel((60, 5, 80, 25), -1, "unmatched", 0.0)]
    assert reference_rows(labels, ["ann", "bob"]) == [("ann", None, None), ("bob", 1, 0.8)]
    canvas = np.asarray(draw_labels(np.zeros((64, 128, 3), np.uint8), labels, scale=4))
    assert canvas.shape == (256, 512, 3) and canvas[60:100, 40].any() and not canvas[200:, 300:].any()


def test_gallery_round_trip_and_bad_galleries_named(cast, tmp_path):
    entries = gallery_from_cast(cast, size=3)
    assert len(entries) == 3 and len({e.identity for e in entries}) == 3
    folder = write_gallery(entries, tmp_path / "g")
    assert [(e.name, e.identity) for e in load_gallery(folder)] == [(e.name, e.identity) for e in entries]
    assert len(load_gallery(cast)) >= 3  # a cast folder works as a gallery
    rows = json.loads((folder / "gallery.json").read_text())
    (folder / "gallery.json").write_text(json.dumps(rows + [{"file": "missing.png", "name": "x"}]))
    with pytest.raises(FileNotFoundError, match="missing.png does not exist"):
        load_gallery(folder)
    with pytest.raises(FileNotFoundError, match="neither a gallery"):
        load_gallery(tmp_path)


@pytest.mark.e2e
def test_serve_refuses_a_missing_model_with_a_hint(tmp_path):
    done = cli("serve", "--run", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "is not a model or run folder" in done.stderr
    assert "Identity guidance" not in done.stdout
    helped = cli("serve", "--help")
    assert helped.returncode == 0 and "gradio_client" in helped.stdout and "--gallery" in helped.stdout
