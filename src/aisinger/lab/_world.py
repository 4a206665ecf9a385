"""Import shim for :mod:`pyworld` (the WORLD vocoder).

``pyworld`` 0.3.5's ``__init__`` does ``import pkg_resources`` only to read its own version,
and recent setuptools no longer ships ``pkg_resources``.  :func:`world` returns the compiled
extension module, loading it directly when the package ``__init__`` fails for that reason.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

from aisinger.errors import AisingerError


@functools.lru_cache(maxsize=1)
def world() -> ModuleType:
    """The pyworld extension module (``harvest``, ``dio``, ``stonemask``, ``cheaptrick``, ``d4c``, ``synthesize``)."""
    try:
        import pyworld

        return pyworld
    except ModuleNotFoundError as err:
        if err.name != "pkg_resources":
            raise AisingerError("pyworld is not installed; install it with `pip install pyworld`") from err
    spec = importlib.util.find_spec("pyworld")
    if spec is None or not spec.submodule_search_locations:
        raise AisingerError("pyworld is not installed; install it with `pip install pyworld`")
    pkg_dir = Path(list(spec.submodule_search_locations)[0])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        ext = pkg_dir / f"pyworld{suffix}"
        if ext.exists():
            loader = importlib.machinery.ExtensionFileLoader("pyworld.pyworld", str(ext))
            ext_spec = importlib.util.spec_from_file_location("pyworld.pyworld", ext, loader=loader)
            module = importlib.util.module_from_spec(ext_spec)
            loader.exec_module(module)
            return module
    raise AisingerError(f"pyworld extension module not found in {pkg_dir}")
