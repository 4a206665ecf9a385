"""Loading pickled weight files without executing code.

PyTorch checkpoints are pickles; a plain ``torch.load``/``pickle.load`` of a hostile file runs
arbitrary code.  aisinger only ever uses ``torch.load(weights_only=True)``, whose unpickler
rebuilds tensors and plain containers and refuses every other global — unless the caller names
it in an explicit allow-list here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from aisinger.errors import AssetError

try:  # numpy >= 2 keeps the implementation in numpy._core
    from numpy._core.multiarray import _reconstruct  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[attr-defined,no-redef]


def numpy_array_globals() -> list[Any]:
    """Globals needed to rebuild pickled ``numpy.ndarray`` objects (and nothing else).

    The Spleeter checkpoints store a dict of numpy arrays; rebuilding one needs numpy's
    ``_reconstruct``, ``ndarray``, ``dtype`` and the concrete dtype classes.  Pickles written
    with numpy 1.x name ``numpy.core.multiarray._reconstruct``; numpy 2 moved it to
    ``numpy._core``, so it is allow-listed under both names.
    """
    dtype_classes = [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32",
                                                  "bool", "float16", "uint8")]
    return [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray,
            np.dtype, *dtype_classes]


def _refused_global(message: str) -> str:
    """The name of the global torch's weights-only unpickler refused, from its message."""
    import re

    m = re.search(r"(?:Unsupported global: GLOBAL|Unsupported operand|GLOBAL) ([\w.]+)", message)
    if m:
        return f"refused global {m.group(1)}"
    first = message.strip().splitlines()[0] if message.strip() else "unpickling error"
    return first[:200]


def torch_load_safe(path: str | Path, extra_globals: Iterable[Any] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` with an explicit allow-list of extra globals.

    Raises :class:`AssetError` (one line, naming the file) when the file is not a loadable
    checkpoint or needs a global that is not allowed — nothing in the file is executed.
    """
    import pickle

    import torch

    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(extra_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise AssetError(f"{path}: refused to load: the file needs code that is not on the "
                         f"allow-list ({_refused_global(str(err))})") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise AssetError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200] if str(err) else ''})") from err


# ----------------------------------------------------------------------------------------------
# checkpoints whose metadata names foreign classes (fairseq: argparse / omegaconf configs)

INERT_PREFIXES = ("argparse.Namespace", "omegaconf.", "fairseq.", "typing.Any", "enum.Enum",
                  "pathlib.PosixPath", "pathlib.WindowsPath")
"""Globals that :func:`torch_load_inert` replaces by inert stand-ins: configuration
containers of training frameworks (fairseq stores its argparse/omegaconf config beside the
weights).  Everything else that is not on torch's own allow-list is still refused."""


class Inert:
    """Stands in for a foreign class named in a checkpoint.  Constructing, calling or
    restoring it only records the arguments; it never runs any code of the named class."""

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.__dict__["_args"] = args
        self.__dict__["_kwargs"] = kwargs

    def __setstate__(self, state):
        self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<inert {self.qualname}>"


def pickle_globals(path: str | Path) -> set[str]:
    """The ``module.name`` globals a pickle (or a torch zip checkpoint) refers to, read with
    :mod:`pickletools` (opcode scan; nothing is unpickled or run)."""
    import io
    import pickletools
    import zipfile

    path = Path(path)
    blobs: list[bytes] = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            blobs = [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
    else:
        blobs = [path.read_bytes()]
    names: set[str] = set()
    for blob in blobs:
        stream = io.BytesIO(blob)
        while stream.tell() < len(blob):  # legacy torch files hold several pickles in a row
            memo: dict = {}
            recent: list = []
            try:
                for op, arg, _pos in pickletools.genops(stream):
                    if op.name in ("GLOBAL", "INST"):
                        names.add(str(arg).replace(" ", "."))
                        recent.append(None)
                    elif op.name == "STACK_GLOBAL":
                        if len(recent) >= 2 and isinstance(recent[-1], str) and \
                                isinstance(recent[-2], str):
                            names.add(f"{recent[-2]}.{recent[-1]}")
                        recent.append(None)
                    elif op.name == "MEMOIZE":
                        memo[len(memo)] = recent[-1] if recent else None
                    elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                        memo[arg] = recent[-1] if recent else None
                    elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                        recent.append(memo.get(arg))
                    elif isinstance(arg, str) and "UNICODE" in op.name or op.name in (
                            "STRING", "BINSTRING", "SHORT_BINSTRING"):
                        recent.append(arg)
                    else:
                        recent.append(None)
                    if op.name == "STOP":
                        break
            except (ValueError, EOFError):
                break  # raw storage bytes after the pickles (legacy format)
    return names


def torch_load_inert(path: str | Path, extra_globals: Iterable[Any] = ()) -> Any:
    """Like :func:`torch_load_safe`, but framework configuration objects named in the file
    (see :data:`INERT_PREFIXES`) come back as :class:`Inert` stand-ins instead of refusing the
    file.  Any other foreign global (``os.system``, ``builtins.eval``, …) is still refused."""
    from torch import _weights_only_unpickler as wou

    allowed = set(wou._get_allowed_globals())
    stubs = []
    for name in sorted(pickle_globals(path)):
        if name in allowed or not name.startswith(INERT_PREFIXES):
            continue
        stub = type(name.rsplit(".", 1)[-1], (Inert,), {"qualname": name})
        stubs.append((stub, name))
    return torch_load_safe(path, [*extra_globals, *stubs])
