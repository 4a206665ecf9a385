"""bench/quality.py: the lab quality benchmark (floor/ceiling baselines, plug-in systems).

The benchmark runs as a subprocess (tests never import ``bench/``): the end-to-end run builds
the ``--quick`` lab corpus (4 voices, 3 phrases per language) in a temporary folder and scores
both baselines and a plug-in system (~30 s on 2 idle cores, most of it the corpus build and
model loads); the tests read its JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "quality.py"
SRC = Path(__file__).resolve().parents[1] / "src"

PLUGIN = '''
import soundfile as sf

def convert(source_wav, target_voice, transpose):
    """A 'system' that returns the source unchanged (the plain plug-in signature)."""
    audio, sr = sf.read(str(source_wav), dtype="float32")
    return audio, sr
'''


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), str(cwd), os.environ.get("PYTHONPATH", "")]), "AISINGER_PROGRESS": "0"}
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick`` run with both baselines and a plug-in system; returns paths + JSON."""
    tmp = tmp_path_factory.mktemp("quality")
    plugin = tmp / "plugin_system.py"
    plugin.write_text(PLUGIN)
    out_json = tmp / "quality.json"
    corpus = tmp / "corpus"
    proc = _bench("--quick", "--corpus", str(corpus), "--json", str(out_json),
                  "--system", "identity", "--system", "ground-truth",
                  "--system", f"{plugin}:convert", "--save-audio", str(tmp / "audio"), cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"tmp": tmp, "corpus": corpus, "plugin": "plugin_system.py:convert",
            "doc": json.loads(out_json.read_text(encoding="utf-8"))}


def _agg(doc, system, lang):
    hits = [a for a in doc["aggregates"] if a["system"] == system and a["language"] == lang]
    assert len(hits) == 1
    return hits[0]


def test_quick_floor_below_ceiling(quick_run, capsys):
    doc = quick_run["doc"]
    assert {a["language"] for a in doc["aggregates"]} == {"en", "zh"}
    for lang in ("en", "zh"):
        floor, ceil = _agg(doc, "identity", lang), _agg(doc, "ground-truth", lang)
        assert floor["pairs"] == ceil["pairs"] == 2  # two voices per language, both directions
        # the target voice's own rendition resembles its train clips more than the source does
        assert ceil["similarity_target"] > floor["similarity_target"] + 0.05
        assert ceil["similarity_margin"] > 0 > floor["similarity_margin"]
        assert floor["similarity_source"] == pytest.approx(1.0, abs=1e-4)  # output is the source
        # each quick pair is cross-gender: identity misses the octave, the ground truth hits it
        assert floor["f0_rmse_cents"] == pytest.approx(1200, abs=50)
        assert floor["f0_median_cents"] == pytest.approx(1200, abs=20)
        assert ceil["f0_median_cents"] < 25  # parallel renditions share the F0 contour
        assert ceil["f0_rmse_cents"] < floor["f0_rmse_cents"] / 4
        assert ceil["dnsmos_ovrl"] is not None and 1 <= ceil["dnsmos_ovrl"] <= 5
    # English lyrics are scored; espeak Mandarin is flagged and kept out of the mean
    assert _agg(doc, "ground-truth", "en")["cer"] < 0.5
    zh = _agg(doc, "ground-truth", "zh")
    assert zh["cer"] is None and zh["cer_unintelligible"] is not None
    assert all(not r["intelligible"] for r in doc["rows"] if r["language"] == "zh")
    assert all(r["intelligible"] for r in doc["rows"] if r["language"] == "en")


def test_quick_rows_transpose_and_refs(quick_run):
    doc = quick_run["doc"]
    rows = [r for r in doc["rows"] if r["system"] == "ground-truth"]
    assert len(rows) == 4
    for r in rows:
        male_to_female = r["source_voice"] in ("flite-awb", "espeak-cmn")
        assert r["transpose"] == (12.0 if male_to_female else -12.0)
        assert r["n_target_refs"] == 2  # the target's train clips, not the evaluated phrase
    assert doc["timing"]["wall_s"] > 0 and doc["machine"]["cpus"] >= 1
    assert doc["corpus"]["built"] is True


def test_plugin_system_matches_identity(quick_run):
    """A plain ``fn(source_wav, target_voice, transpose)`` plug-in returning the source scores
    like the identity baseline, and gets a real-time factor (identity, a baseline, does not)."""
    doc = quick_run["doc"]
    plug = [r for r in doc["rows"] if r["system"] == quick_run["plugin"]]
    ident = [r for r in doc["rows"] if r["system"] == "identity"]
    assert len(plug) == len(ident) == 4
    for p, i in zip(plug, ident):
        for key in ("similarity_target", "similarity_source", "f0_rmse_cents", "cer"):
            assert p[key] == pytest.approx(i[key], abs=1e-4)
        assert p["rtf"] is not None and p["rtf"] >= 0 and i["rtf"] is None
    saved = sorted((quick_run["tmp"] / "audio").rglob("*.wav"))
    assert len(saved) == 12  # 3 systems x 4 conversions


def test_scorer_matches_evaluate(quick_run):
    """The memoising scorer gives what aisinger.eval.evaluate gives for the same inputs."""
    from aisinger.eval import evaluate
    from aisinger.lab.corpus import load_manifest

    corpus = quick_run["corpus"]
    manifest = load_manifest(corpus)
    row = next(r for r in quick_run["doc"]["rows"]
               if r["system"] == "ground-truth" and r["language"] == "en")
    target = next(c for c in manifest["clips"] if c["voice"] == row["target_voice"]
                  and c["phrase"] == row["phrase"])
    # the target's train-split clips in the row's language (what the benchmark scores against)
    refs = [corpus / c["audio"] for c in sorted(manifest["clips"], key=lambda c: c["phrase"])
            if c["voice"] == row["target_voice"] and c["split"] == "train"
            and c["language"] == "en"]
    assert len(refs) == row["n_target_refs"]
    ref = evaluate(corpus / target["audio"], source=row["source"], target_refs=list(refs),
                   transpose=row["transpose"], lyrics=row["lyrics"], lang="en",
                   metrics=["similarity", "f0", "intelligibility", "dnsmos"])
    for key in ("similarity_target", "similarity_source", "similarity_margin", "dnsmos_ovrl",
                "dnsmos_p808"):
        assert row[key] == pytest.approx(ref[key], abs=1e-4), key
    # rel 1e-4, not 1e-6: the benchmark runs in its own process, whose torch thread count
    # differs from this one's, so F0 sums in another order (measured: 2e-6 relative)
    for key in ("f0_rmse_cents", "f0_corr", "vuv_error", "cer", "wer"):
        assert row[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-9), key


def test_reuse_existing_corpus_and_seed_mismatch(quick_run):
    corpus, tmp = quick_run["corpus"], quick_run["tmp"]
    proc = _bench("--corpus", str(corpus), "--pairs", "flite-slt:flite-awb", "--phrases", "1",
                  "--system", "identity", "--no-asr", "--no-dnsmos",
                  "--json", str(tmp / "reuse.json"), cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp / "reuse.json").read_text(encoding="utf-8"))["corpus"]["built"] is False
    proc = _bench("--corpus", str(corpus), "--quick", "--seed", "1", "--json",
                  str(tmp / "x.json"), cwd=tmp)
    assert proc.returncode == 2 and "seed" in proc.stderr.strip().splitlines()[-1]


def test_resolve_system_errors(tmp_path):
    proc = _bench("--system", "no-such-system", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown system" in proc.stderr
    proc = _bench("--system", "no_such_module_xyz:convert", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot import" in proc.stderr
