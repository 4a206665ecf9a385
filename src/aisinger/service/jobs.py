"""What a worker runs for one job: ``fn(song, voice_dir, out_path, options, progress) -> info``.

``cover`` is the product (:func:`aisinger.pipelines.cover.cover` with the request service's label
policy: metadata + watermark + audible cue).  ``label`` labels the uploaded song itself
(metadata + watermark + the same audible cue); it is a real, quick job for tests of the queue
mechanics.  ``info`` is a JSON-friendly dict stored with the finished job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aisinger.label import label_file, policy_for
from aisinger.label.metadata import check_metadata
from aisinger.pipelines.cover import CoverOptions, cover

Progress = Callable[[str, float], None]

COVER_OPTION_KEYS = ("transpose", "key_shift", "retrieval", "protect", "f0_method",
                     "explicit_label")
"""Cover options a client may set (labelling stays on: ``service=True``)."""


def run_cover(song: Path, voice_dir: Path, out: Path, options: dict, progress: Progress) -> dict:
    opts = CoverOptions(**{k: v for k, v in options.items() if k in COVER_OPTION_KEYS},
                        service=True)
    r = cover(song, voice_dir, out, options=opts, progress=progress)
    return {"transpose": r.transpose, "key_reason": r.key_reason, "label": r.label,
            "seconds": r.seconds}


def run_label(song: Path, voice_dir: Path, out: Path, options: dict,
              progress: Progress) -> dict:
    policy = policy_for("serve", service=True, explicit=options.get("explicit_label"))
    progress("label", 0.0)
    label_file(song, out, voice_id=voice_dir.name, explicit=policy.explicit, lang=policy.lang,
               producer=policy.producer)
    progress("label", 1.0)

    return {"label": check_metadata(out).to_dict(), "explicit": policy.explicit}


JOB_FUNCTIONS: dict[str, Callable[..., dict]] = {"cover": run_cover, "label": run_label}
