"""The README's picture of the web app: `idglow serve` on the shipped model, driven like a user would in headless
Chromium (Debian's chromium + chromium-driver through selenium): two people ticked, the prompt written by the button,
one image generated; the page is saved as a PNG.

    python scripts/app_screenshot.py [--run assets/idglow] [--out assets/serve/app.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="assets/idglow")
    parser.add_argument("--out", default="assets/serve/app.png")
    parser.add_argument("--people", nargs="+", default=["person 1", "person 4"])
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from idglow.cli.serve import build
    from idglow.serve.app import app_theme

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ns = argparse.Namespace(run=args.run, gallery=None, host="127.0.0.1", port=port, judges=None, device="cpu",
                            precision=None, height=64, width=128)
    app, _ = build(ns)
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, theme=app_theme())
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 300)
        for name in args.people:
            wait.until(ec.element_to_be_clickable((By.XPATH, f"//*[@id='people']//label[normalize-space()='{name}']"))).click()
        driver.find_element(By.CSS_SELECTOR, "#write button, button#write").click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#prompt textarea").get_attribute("value"))
        driver.find_element(By.CSS_SELECTOR, "#generate button, button#generate").click()
        image = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#output img"))
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image))
        driver.execute_script("window.scrollTo(0, 0)")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(args.out)
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        app.close()


if __name__ == "__main__":
    main()
