"""Helpers for the service tests: a real ``aisinger serve`` on loopback, songs, voices."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SR = 44100
TINY_MODEL = {"hidden": 64, "layers": 3, "kernel": 3, "n_harmonics": 32, "n_noise_bands": 33}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sung(voice: str, seed: int, n_notes: int) -> tuple[np.ndarray, list]:
    from aisinger.lab import VOICES, make_melody, render
    from aisinger.lab.lyrics import make_lyrics

    notes = make_melody(n_notes, seed=seed)
    syl = list(make_lyrics("en", len(notes), np.random.default_rng(seed)).syllables)
    return render(syl, notes, VOICES[voice], sr=SR, seed=seed).audio, notes


def make_song(path: Path, seconds: float = 5.0, seed: int = 5, voice: str = "flite-rms") -> Path:
    """A short song: a lab voice singing over a fluidsynth accompaniment, cut to ``seconds``."""
    from aisinger.io.audio import save
    from aisinger.lab import accompany, mix

    vocal, notes = sung(voice, seed, n_notes=max(4, int(seconds * 1.6)))
    acc = accompany(notes, sr=SR, seconds=seconds, seed=seed)
    n = int(seconds * SR)
    m, _, _ = mix(vocal[:n], acc[:, :n])
    return save(path, m[:, :n], SR)


def untrained_voice(root: Path, name: str = "tiny", consent_uses=None) -> Path:
    """A real voice folder (untrained tiny decoder) with a self-consent record: enough for
    the API and label jobs, which do not synthesise."""
    from aisinger.consent import USES, save_consent, self_consent
    from aisinger.features import FeatureConfig
    from aisinger.nn.ddsp import DdspConfig, build_decoder
    from aisinger.voice.folder import save_voice

    root.mkdir(parents=True, exist_ok=True)
    consent = save_consent(self_consent(f"Lab {name}", uses=tuple(consent_uses or USES)),
                           root / f"{name}-consent.json")
    return save_voice(root / name, build_decoder(DdspConfig(**TINY_MODEL)), FeatureConfig(),
                      card={"name": name}, consent=consent)


def tiny_dataset(ds: Path, n_notes: int = 12) -> Path:
    """A dataset folder: two flite-slt songs of ``n_notes`` notes (12: ~10 s; train,
    validation) and a consent record."""
    from aisinger.io.audio import save
    from aisinger.consent import save_consent, self_consent

    clips = []
    for i, split in enumerate(["train", "validation"]):
        save(ds / "clips" / f"c{i}.wav", sung("flite-slt", i, n_notes)[0], SR)
        clips.append({"id": f"c{i}", "file": f"clips/c{i}.wav", "split": split})
    (ds / "dataset.json").write_text(json.dumps({"name": "slt", "clips": clips}))
    save_consent(self_consent("Lab SLT"), ds / "consent.json")
    return ds


def train_tiny_voice(root: Path, steps: int = 20) -> Path:
    """A tiny voice really trained for a few steps on two ~10 s flite-slt songs."""
    import torch

    from aisinger.voice.train_ddsp import TrainConfig, train

    ds = tiny_dataset(root / "dataset")
    torch.set_num_threads(1)
    cfg = TrainConfig(steps=steps, batch_size=2, segment_s=0.5, learning_rate=3e-3,
                      checkpoint_every=5, validate_every=1000, model=TINY_MODEL)
    out = root / "voices" / "slt"
    train(ds, out, cfg, seed=0)
    return out


class Server:
    """``aisinger serve`` in a subprocess on a free loopback port."""

    def __init__(self, data: Path, *args: str, port: int | None = None, env: dict | None = None):
        self.data, self.args = Path(data), list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, AISINGER_PROGRESS="0", **(env or {}))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Server:
        import httpx

        self.data.mkdir(parents=True, exist_ok=True)
        log = open(self.data / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "aisinger", "serve", "--data",
                                      str(self.data), "--port", str(self.port), *self.args],
                                     stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log()[-2000:]}")

    def log(self) -> str:
        p = self.data / "server.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.send_signal(signal.SIGKILL)
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def token(data: Path, name: str = "alice", role: str = "user") -> str:
    from aisinger.service.store import Store

    return Store(Path(data) / "service.db").create_token(name, role)[1]


def client(server: Server, secret: str):
    import httpx

    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"},
                        timeout=60)


def upload(c, path: Path, title: str = "song"):
    return c.post("/api/songs", params={"title": title}, content=Path(path).read_bytes(),
                  headers={"Content-Type": "application/octet-stream"})


def wait_job(c, job_id: str, states=("done", "failed"), timeout: float = 300,
             until=None, poll: float = 0.2) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j = c.get(f"/api/jobs/{job_id}").json()
        if j.get("state") in states or (until is not None and until(j)):
            return j
        time.sleep(poll)
    raise TimeoutError(f"job {job_id} still {j}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser(profile: Path, extra: tuple[str, ...] = ()):
    """Headless Debian Chromium driven by selenium (no network, fresh profile); ``extra``:
    more command-line flags (e.g. a fake microphone)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", f"--user-data-dir={profile}", "--window-size=1200,1600",
              "--autoplay-policy=no-user-gesture-required", *extra):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def ui_submit_and_play(driver, url: str, secret: str, song: Path, voice_id: str,
                       timeout: float = 300, shots: Path | None = None) -> dict:
    """Use the web page as a person would: token, upload, voice, submit, wait, play.

    Returns what the page showed: the job state, the player's duration and play position,
    the download link, and the heading in both languages.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    driver.get(url + "/")
    heading_zh = driver.find_element(By.TAG_NAME, "h1").text
    driver.find_element(By.ID, "token").send_keys(secret)
    driver.find_element(By.ID, "save-token").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#voice option[value='{voice_id}']"))
    driver.find_element(By.ID, "file").send_keys(str(song))
    driver.find_element(By.ID, "title").send_keys("UI song")
    driver.find_element(By.ID, "upload").click()
    wait.until(lambda d: any("UI song" in o.text for o in
                             d.find_elements(By.CSS_SELECTOR, "#song option")))
    Select(driver.find_element(By.ID, "voice")).select_by_value(voice_id)
    Select(driver.find_element(By.ID, "format")).select_by_value("mp3")
    driver.find_element(By.ID, "submit").click()
    seen_positions = set()

    def finished(d):
        pos = d.find_element(By.ID, "position").text
        seen_positions.add(pos)
        return d.find_element(By.ID, "status").get_attribute("data-state") in ("done", "failed")

    WebDriverWait(driver, timeout, poll_frequency=0.3).until(finished)
    state = driver.find_element(By.ID, "status").get_attribute("data-state")
    out = {"state": state, "message": driver.find_element(By.ID, "message").text,
           "positions": sorted(seen_positions), "heading_zh": heading_zh}
    if state != "done":
        return out
    wait.until(lambda d: d.find_element(By.ID, "player").get_attribute("src").startswith("blob:"))
    played = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const a = document.getElementById('player');
        const finish = () => done({duration: a.duration, time: a.currentTime, paused: a.paused,
                                   error: a.error && a.error.code});
        a.play().then(() => setTimeout(finish, 1500)).catch(e => done({error: String(e)}));
    """)
    out.update(played)
    link = driver.find_element(By.ID, "download")
    out["download"] = link.get_attribute("download")
    out["download_href"] = link.get_attribute("href")
    out["progress"] = driver.find_element(By.ID, "progress").get_attribute("value")
    if shots:
        driver.save_screenshot(str(shots / "request-page-zh.png"))
    driver.find_element(By.ID, "lang").click()
    out["heading_en"] = driver.find_element(By.TAG_NAME, "h1").text
    if shots:
        driver.save_screenshot(str(shots / "request-page-en.png"))
    driver.get(url + "/live")
    WebDriverWait(driver, 30).until(
        lambda d: "UI song" in d.find_element(By.ID, "recent").text)
    out["live_recent"] = driver.find_element(By.ID, "recent").text
    if shots:
        driver.save_screenshot(str(shots / "live-page.png"))
    return out
