"""Training datasets of one voice: ``aisinger dataset build``.

Public API::

    from aisinger.dataset import build_dataset, DatasetConfig, DatasetResult

:func:`build_dataset` (see :mod:`aisinger.dataset.build`) slices songs or dry recordings into
normalised mono clips at the model rate, rejects unusable ones with a reason, splits
train/validation deterministically, and writes ``dataset.json``, ``report.md``,
``pitch_histogram.png`` and the consent record.
"""

from aisinger.dataset.build import DatasetResult, build_dataset, collect_inputs
from aisinger.dataset.config import DatasetConfig

__all__ = ["build_dataset", "DatasetConfig", "DatasetResult", "collect_inputs"]
