"""Weight files are never unpickled with code execution."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from aisinger.errors import AssetError
from aisinger.io.safeload import numpy_array_globals, torch_load_safe


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "G_evil.pth"
    torch.save({"model": _Hostile(marker)}, path)
    with pytest.raises(AssetError) as err:
        torch_load_safe(path)
    assert str(path) in str(err.value) and "allow-list" in str(err.value)
    assert not marker.exists()
    # even with the numpy allow-list the hostile global stays refused
    with pytest.raises(AssetError):
        torch_load_safe(path, numpy_array_globals())
    assert not marker.exists()


def test_plain_pickle_file_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned2"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Hostile(marker)))
    with pytest.raises(AssetError):
        torch_load_safe(path)
    assert not marker.exists()


def test_numpy_dict_needs_and_gets_allow_list(tmp_path):
    path = tmp_path / "np.ckpt"
    torch.save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, path)
    with pytest.raises(AssetError):
        torch_load_safe(path)
    obj = torch_load_safe(path, numpy_array_globals())
    assert np.array_equal(obj["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_state_dict_loads(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save({"a": torch.ones(3)}, path)
    assert torch.equal(torch_load_safe(path)["a"], torch.ones(3))


def test_garbage_file(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(AssetError, match="junk.pt"):
        torch_load_safe(path)
