"""Training progress as the user reads it, and the model card's final losses (issue #15 item
15): the time budget shown when ``max_minutes`` will stop training, the validation loss only
when it is new, and the card's "final" validation loss measured at the final step."""

from __future__ import annotations

import json
import logging
import re

from service_util import TINY_MODEL, tiny_dataset


def test_progress_shows_time_budget_and_final_validation(tmp_path, caplog):
    import torch

    from aisinger.train import TrainConfig, train

    ds = tiny_dataset(tmp_path / "dataset")
    torch.set_num_threads(1)
    # far more steps than the 0.1 min budget allows; validation every 4 steps
    cfg = TrainConfig(steps=100000, batch_size=1, segment_s=0.25, checkpoint_every=2,
                      validate_every=4, model=TINY_MODEL)
    with caplog.at_level(logging.INFO, logger="aisinger"):
        r = train(ds, tmp_path / "voice", cfg, max_minutes=0.1, seed=0)
    assert not r.finished and r.step > 4
    lines = [m for m in caplog.messages if m.startswith("step ")]
    assert lines, caplog.messages
    for line in lines:      # e.g. "step 6/100000 · 0:03/0:06 (time budget) · loss 0.1234"
        assert re.search(r"\d+:\d\d/0:06 \(time budget\)", line), line
    with_val = [x for x in lines if "validation" in x]
    n_val = r.step // 4 + (r.step % 4 != 0)           # every 4 steps, and once at the stop
    assert len(with_val) == n_val, lines                # shown once per validation, no repeats
    card = json.loads((tmp_path / "voice" / "model_card.json").read_text())
    assert card["training"]["steps"] == r.step
    assert card["losses"]["validation_step"] == r.step, card["losses"]
    assert card["losses"]["validation"] == round(r.validation_loss, 4)
    # the last validation shown is the one at the final step
    assert with_val[-1].startswith(f"step {r.step}/"), with_val[-1]
    assert with_val[-1].endswith(f"validation {r.validation_loss:.4f}"), with_val[-1]
