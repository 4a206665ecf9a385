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

from aisinger.errors import AssetError


def numpy_array_globals() -> list[Any]:
    """Globals needed to rebuild pickled ``numpy.ndarray`` objects (and nothing else).

    The Spleeter checkpoints store a dict of numpy arrays; rebuilding one needs numpy's
    ``_reconstruct``, ``ndarray``, ``dtype`` and the concrete dtype classes.  Pickles written
    with numpy 1.x name ``numpy.core.multiarray._reconstruct``; numpy 2 moved it to
    ``numpy._core``, so it is allow-listed under both names.
    """
    import numpy as np

    try:  # numpy >= 2 keeps the implementation in numpy._core
        from numpy._core.multiarray import _reconstruct  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[attr-defined,no-redef]
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
