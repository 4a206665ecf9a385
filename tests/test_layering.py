"""The layer rule of docs/architecture.md, checked on the real import graph.

The graph is read with ``ast`` from every module under ``src/aisinger`` and holds imports at
module level *and* inside functions.  The test fails on: an import cycle; an import that points
up (or sideways between two units of one layer) against :data:`LAYERS`; a private name (or
private module) imported from another unit; ``aisinger.nn`` importing anything but torch,
numpy and the standard library; anything importing ``cli`` or ``service``; shipped code
importing ``lab``; a function-level import of a project module or of a third-party module
that is not in :data:`HEAVY`.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = "aisinger"

# The declared layer order, bottom first.  A unit is the first component below ``aisinger``
# (a subpackage or a top-level module; ``aisinger`` itself is the package root).  A module
# may import its own unit and the units of lower layers; units of one layer are peers and
# must not import each other.
LAYERS: list[set[str]] = [
    {"aisinger", "errors", "paths", "progress", "layout"},  # core: import only each other
    {"io", "dsp"},  # file/audio I/O, external programs; numeric helpers (numpy only)
    {"nn", "assets"},  # torch modules only; the asset registry
    {"consent", "tts"},  # the consent record; offline speech engines
    {"separation", "features"},
    {"dataset"},
    {"voice"},  # voice folder + card, community import, training
    {"convert"},  # conversion (both families), retrieval, key
    {"remix", "label", "eval", "lab"},
    {"pipelines", "live"},  # cover, speak, demo; live (streaming) conversion
    {"service", "cli"},  # the two front ends; nothing imports them
    {"__main__"},
]
CORE = LAYERS[0]

# Third-party modules that may be imported inside functions: each is slow to import (or pulls
# in torch) and is needed only on some code paths, so importing it at module level would slow
# every command, the service and the workers that never use it.
HEAVY = {
    "torch": "~1-2 s import; only model code needs it",
    "safetensors": "safetensors.torch imports torch",
    "scipy": "~0.5 s (scipy.signal); only some DSP paths",
    "pyloudnorm": "imports scipy",
    "matplotlib": "~0.3 s; only when a plot is written",
    "transformers": "~1.5 s; only for imported So-VITS/RVC content encoders",
    "onnxruntime": "~0.1-0.2 s; only DNSMOS and ONNX content encoders",
    "ctranslate2": "~0.1 s; only the Whisper content encoder",
    "tokenizers": "loaded with ctranslate2 for Whisper only",
    "faiss": "~0.1 s; only when an RVC .index is imported",
    "pyworld": "~0.2 s (imports pkg_resources); only the lab and the DSP F0 method",
    "pypinyin": "~0.2 s of dictionaries; only Mandarin speech",
    "misaki": "jieba/pypinyin/OpenJTalk front ends; only Kokoro Mandarin/Japanese speech",
    "opencc_purepy": "dictionaries; only Chinese CER",
    "demucs": "optional separation backend, may be absent",
    "sounddevice": "optional (needs the PortAudio system library); only live device mode",
    "huey": "~0.15 s (imports redis); only where the service makes a queue",
    "fastapi": "~0.3 s (starlette, pydantic models); only when the service app is built",
    "mutagen": "~0.05 s (every tag format); only when a label is read or written",
    "uvicorn": "only when the service runs",
    "httpx": "~0.1 s; only the service's worker client",
}
# aisinger.nn: every nn module imports torch at module level, so a lazy import of one is a lazy
# import of torch (the same reason as HEAVY["torch"]).
LAZY_PROJECT_OK = ("aisinger.nn",)

# Who may import the lab (the synthetic test corpus): the lab itself, the demo pipeline (it
# trains the demo voice on a lab corpus) and the CLI (``aisinger lab``).
LAB_USERS = ("aisinger.lab", "aisinger.pipelines.demo", "aisinger.cli")

# The one import between the front ends: the main CLI mounts the request service's own command
# group (``aisinger serve``).  Nothing else imports cli or service.
MOUNTS = {("aisinger.cli", "aisinger.service.cli")}


@dataclass(frozen=True)
class Edge:
    src: str  # importing module
    dst: str  # imported module (the deepest module that exists), or a third-party name
    name: str | None  # the imported name for "from X import name"
    lazy: bool  # inside a function
    line: int

    def __str__(self) -> str:
        what = f"{self.dst}.{self.name}" if self.name else self.dst
        return f"{self.src}:{self.line} imports {what}{' (in a function)' if self.lazy else ''}"


def _modules() -> dict[str, Path]:
    mods = {}
    for p in sorted((SRC / PKG).rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


MODULES = _modules()


def _edges() -> list[Edge]:
    edges = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        in_function = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                in_function.update(id(n) for n in ast.walk(fn) if n is not fn)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            lazy = id(node) in in_function
            if isinstance(node, ast.Import):
                for a in node.names:
                    edges.append(Edge(mod, a.name, None, lazy, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".")[: len(mod.split(".")) - (0 if is_pkg else 1)]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    if sub in MODULES:  # "from aisinger.io import audio": the module itself
                        edges.append(Edge(mod, sub, None, lazy, node.lineno))
                    else:
                        edges.append(Edge(mod, base, a.name, lazy, node.lineno))
    return edges


EDGES = _edges()


def _unit(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _layer(unit: str) -> int:
    for i, units in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(f"aisinger.{unit} is in no layer: add it to LAYERS in {__file__}")


def _project(edges=EDGES) -> list[Edge]:
    return [e for e in edges if e.dst == PKG or e.dst.startswith(PKG + ".")]


def _within(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def _report(bad: list) -> str:
    return "\n  " + "\n  ".join(str(b) for b in bad)


def test_every_unit_has_a_layer():
    for mod in MODULES:
        _layer(_unit(mod))


def test_imports_point_down():
    bad = []
    for e in _project():
        su, du = _unit(e.src), _unit(e.dst)
        if su == du or (e.src, e.dst) in MOUNTS:
            continue
        if _layer(du) > _layer(su) or (_layer(du) == _layer(su) and not {su, du} <= CORE):
            bad.append(e)
    assert not bad, "imports that point up or sideways (see LAYERS):" + _report(bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in _project():
        if e.dst in MODULES and e.dst != e.src:
            graph[e.src].add(e.dst)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:" + _report(cycles)


def test_no_private_names_across_units():
    bad = []
    for e in _project():
        if _unit(e.src) == _unit(e.dst):
            continue
        private_module = any(p.startswith("_") and p != "__init__" for p in e.dst.split("."))
        if private_module or (e.name or "").startswith("_") and e.name != "__version__":
            bad.append(e)
    assert not bad, "private names imported from another unit:" + _report(bad)


# transformers is allowed in nn for one reason: nn/hubert.py builds transformers' HubertModel,
# which is itself a torch module (architecture code, no weights are downloaded through it).
NN_ALLOWED = {"torch", "numpy", "transformers"}


def test_nn_imports_only_torch_and_numpy():
    allowed = NN_ALLOWED | set(sys.stdlib_module_names)
    bad = [e for e in EDGES if _within(e.src, "aisinger.nn")
           and not _within(e.dst, "aisinger.nn") and e.dst.split(".")[0] not in allowed]
    assert not bad, "aisinger.nn holds torch modules only:" + _report(bad)


def test_nothing_imports_the_front_ends():
    bad = []
    for e in _project():
        for top in ("aisinger.cli", "aisinger.service"):
            if _within(e.dst, top) and not _within(e.src, top):
                if (e.src == "aisinger.__main__" and e.dst == "aisinger.cli") or \
                        (e.src, e.dst) in MOUNTS:
                    continue
                bad.append(e)
    assert not bad, "imports of cli/service (nothing may import the front ends):" + _report(bad)


def test_shipped_code_does_not_import_the_lab():
    bad = [e for e in _project() if _within(e.dst, "aisinger.lab")
           and not any(_within(e.src, u) for u in LAB_USERS)]
    assert not bad, "shipped code importing the lab corpus package:" + _report(bad)


def test_lazy_imports_only_for_heavy_modules():
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for e in EDGES:
        if not e.lazy:
            continue
        top = e.dst.split(".")[0]
        if top == PKG:
            if not any(_within(e.dst, p) for p in LAZY_PROJECT_OK):
                bad.append(e)
        elif top not in stdlib and top not in HEAVY:
            bad.append(e)
    assert not bad, ("imports inside functions (import project modules and light third-party "
                     "modules at module level; heavy ones are listed in HEAVY):" + _report(bad))


def test_the_checker_sees_function_level_imports(tmp_path):
    """The graph builder itself: a function-level import is an edge, marked lazy."""
    lazy = [e for e in EDGES if e.lazy and e.dst.split(".")[0] == "torch"]
    assert lazy, "no lazy torch import found: the graph builder misses function-level imports"
    assert any(e.dst == "aisinger.cli" for e in EDGES if e.src == "aisinger.__main__")
