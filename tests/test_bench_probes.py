"""bench/content_probe.py and bench/retrieval.py end to end on a tiny lab corpus (slow).

The benchmarks run as subprocesses (tests never import ``bench/``).  One module fixture builds
a lab corpus of three flite voices singing 5 English phrases (4 train + 1 test each) and a
tiny nsf voice trained for a few steps on flite-slt's train clips; both benchmarks read them.
About 4-6 minutes on 2 busy cores (corpus build, Whisper features and transcripts).  Run with
``bash scripts/test.sh --slow`` or ``pytest -m slow tests/test_bench_probes.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")]

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
VOICES = ("flite-awb", "flite-rms", "flite-slt")
TINY = {"hidden": 32, "layers": 2, "kernel": 3, "latent": 32, "upsample_initial_channel": 32,
        "harmonics": 4, "generator": "istft", "istft_n_fft": 480}


def _bench(script: str, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "AISINGER_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(corpus, voice folder, dataset.json) in a temporary folder."""
    import torch

    from aisinger.consent import save_consent, self_consent
    from aisinger.lab.corpus import load_manifest, make_corpus
    from aisinger.voice.train_nsf import NsfTrainConfig, train_nsf

    tmp = tmp_path_factory.mktemp("probes")
    corpus = tmp / "corpus"
    make_corpus(corpus, seed=0, voices=list(VOICES), n_phrases=5, n_shared=0, n_songs=0,
                workers=2)
    manifest = load_manifest(corpus)
    clips = [c for c in manifest["clips"] if c["voice"] == "flite-slt"]
    ds = tmp / "slt-dataset"
    ds.mkdir()
    doc = {"name": "flite-slt", "clips": [
        {"file": str(corpus / c["audio"]), "split": "train" if c["split"] == "train"
         else "validation"} for c in clips]}
    (ds / "dataset.json").write_text(json.dumps(doc))
    save_consent(self_consent("lab voice flite-slt"), ds / "consent.json")
    torch.set_num_threads(1)
    voice = tmp / "slt"
    train_nsf(ds, voice, NsfTrainConfig(steps=4, batch_size=2, segment_s=0.3,
                                        checkpoint_every=4, validate_every=1000, model=TINY,
                                        adversarial_from=-1, init=None), seed=0)
    return {"tmp": tmp, "corpus": corpus, "voice": voice, "dataset": ds / "dataset.json",
            "manifest": manifest}


def test_content_probe(lab):
    out = lab["tmp"] / "probe.json"
    proc = _bench("content_probe.py", "--corpus", str(lab["corpus"]), "--voices",
                  ",".join(VOICES), "--retrieval", "1.0", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    rows = {(r["key"], r["voices"]): r for r in doc["probes"]}
    assert set(rows) == {("logmel", "all"), ("logmel", "en"), ("content", "all"),
                         ("content", "en")}
    for r in rows.values():
        assert r["chance"] == pytest.approx(1 / 3) and r["n_test_clips"] == 3
        assert 0.0 <= r["accuracy"] <= 1.0 and r["n_test"] > 10
    # three very different synthetic voices: the plain spectrum names them
    assert rows[("logmel", "all")]["accuracy"] > 0.6
    by = {(r["retrieval"], r["protect"]): r for r in doc["retrieval"] if r["targets"] == "same"}
    assert set(by) == {(0.0, 0.0), (1.0, 0.33), (1.0, 0.0)}
    # unblended content is classified as its source as often as the content probe row says
    assert by[(0.0, 0.0)]["to_source"] == pytest.approx(rows[("content", "all")]["accuracy"])
    # full retrieval replaces the content by the target's frames: the source is (nearly) gone
    assert by[(1.0, 0.0)]["to_source"] < by[(0.0, 0.0)]["to_source"]
    assert by[(1.0, 0.0)]["to_target"] > 0.5
    assert "->source" in proc.stdout


def test_retrieval_sweep(lab):
    out = lab["tmp"] / "retrieval.json"
    proc = _bench("retrieval.py", "--voice", str(lab["voice"]), "--refs", str(lab["dataset"]),
                  "--corpus", str(lab["corpus"]), "--sources", "flite-awb,flite-rms",
                  "--per-language", "2", "--retrieval", "0,1", "--protect", "0,0.5",
                  "--no-dnsmos", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    clips = doc["config"]["clips"]  # one test clip per source voice (round-robin)
    assert len(clips) == 2 and {c.split("/")[0] for c in clips} == {"flite-awb", "flite-rms"}
    assert "lab registers" in doc["config"]["transpose"]
    settings = {(a["retrieval"], a["protect"]) for a in doc["aggregates"]}
    assert settings == {(None, None), (0.0, 0.0), (0.0, 0.5), (1.0, 0.0), (1.0, 0.5)}
    rows = doc["rows"]
    assert len(rows) == 2 * 5
    # both sources are male: +12 semitones to flite-slt's register
    assert {r["transpose"] for r in rows} == {12.0}
    src = [r for r in rows if r["retrieval"] is None]
    assert all(r["similarity_source"] == pytest.approx(1.0, abs=1e-4) for r in src)
    for r in rows:  # a 4-step voice may sing (near) silence: spectrum undefined, noted
        assert r["cer"] is not None and (r["spectrum_max_abs_db"] is not None
                                         or any("silent" in n for n in r["notes"]))
    # the settings change the output (protect mixes the source back in on consonants)
    a = {(r["retrieval"], r["protect"], r["clip"]): r["similarity_source"] for r in rows}
    assert a[(0.0, 0.5, src[0]["clip"])] != a[(0.0, 0.0, src[0]["clip"])]
    # a bad voice folder is one line on stderr, exit 2
    bad = _bench("retrieval.py", "--voice", str(lab["tmp"] / "missing"), "--json",
                 str(lab["tmp"] / "x.json"), timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error:")
