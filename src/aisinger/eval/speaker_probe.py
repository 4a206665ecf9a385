"""A linear speaker-identity probe: how much of the singer a frame-level feature still carries.

Issue 16 asks to "measure how much source identity the content features still carry (e.g. a
speaker-ID probe on them)".  The probe is the standard one: pool a feature over short
segments, train a linear classifier (multinomial logistic regression) to name the singer on
some clips, and count how often it names the right singer on *other* clips (other phrases).
High accuracy on content features = the content leaks the singer, which a voice model then
reproduces (timbre leakage); accuracy near chance = the feature is speaker-free for a linear
reader (a non-linear one may still find more: this is a lower bound on what is there).

* :func:`pool_segments` — mean of the active frames of each segment (default 0.5 s = 50
  frames at 100 frames/s; a segment counts when at least half its frames are active).
* :class:`LinearProbe` / :func:`fit_probe` — features standardised with the training
  statistics, softmax regression with an L2 penalty ``l2`` (on the weights, not the biases),
  fitted by L-BFGS from zeros: deterministic, no random seed involved.
* :func:`select_l2` — the penalty by grouped cross-validation on the training data (groups =
  phrases: each fold holds out whole phrases, as the test does).
* :func:`probe` — select, fit, and score held-out segments: segment accuracy, clip accuracy
  (the clip's segments' log-probabilities summed), chance level, confusion matrix.

Not a registered metric (it needs several speakers' clips, not one conversion); used by
``bench/content_probe.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aisinger.errors import AisingerError

__all__ = ["pool_segments", "LinearProbe", "fit_probe", "select_l2", "probe", "ProbeResult",
           "L2_GRID", "SEGMENT_FRAMES"]

SEGMENT_FRAMES = 50  # 0.5 s at 100 frames/s
MIN_ACTIVE_SHARE = 0.5  # a segment is used when at least half of its frames are active
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # penalty per sample (mean loss + l2/2 * |W|^2)
MAX_ITER = 500  # L-BFGS iterations
STD_FLOOR = 1e-6  # features with (near) zero variance are left unscaled


def pool_segments(frames: np.ndarray, active: np.ndarray | None = None,
                  segment: int = SEGMENT_FRAMES, min_active: float = MIN_ACTIVE_SHARE
                  ) -> np.ndarray:
    """Mean-pool ``frames`` (T, D) over consecutive, non-overlapping segments of ``segment``
    frames, averaging only the ``active`` frames (T,) bool (default: all).  Segments with
    fewer than ``min_active`` · segment active frames (and a trailing partial segment) are
    dropped.  Returns float64 ``(n_segments, D)`` (possibly 0 rows)."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2:
        raise AisingerError(f"pool_segments: frames must be (T, D), got shape {frames.shape}")
    act = np.ones(frames.shape[0], bool) if active is None else np.asarray(active, bool)
    if act.shape != (frames.shape[0],):
        raise AisingerError(f"pool_segments: active must be ({frames.shape[0]},), got {act.shape}")
    out = []
    for a in range(0, frames.shape[0] - segment + 1, segment):
        m = act[a:a + segment]
        if m.sum() >= min_active * segment and m.any():
            out.append(frames[a:a + segment][m].mean(axis=0))
    return np.array(out).reshape(-1, frames.shape[1])


@dataclass
class LinearProbe:
    """A fitted multinomial logistic regression on standardised features.

    classes: the labels, in the order of the weight columns; mean/std: standardisation;
    weights (D, C), bias (C,); l2: the penalty it was fitted with.
    """

    classes: tuple
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    l2: float

    def log_proba(self, x: np.ndarray) -> np.ndarray:
        """Log class probabilities ``(n, C)`` of ``x`` (n, D)."""
        z = ((np.asarray(x, np.float64) - self.mean) / self.std) @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, x: np.ndarray) -> list:
        """Predicted labels of the rows of ``x``."""
        return [self.classes[i] for i in np.argmax(self.log_proba(x), axis=1)]


def fit_probe(x: np.ndarray, y: Sequence, l2: float = 1e-2) -> LinearProbe:
    """Fit a :class:`LinearProbe` on ``x`` (n, D) with labels ``y`` (n,) (>= 2 classes)."""
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    classes = tuple(sorted(set(y)))
    if x.ndim != 2 or x.shape[0] != len(y) or x.shape[0] == 0:
        raise AisingerError(f"fit_probe: x must be (n, D) with one label per row "
                            f"(x {x.shape}, {len(y)} labels)")
    if len(classes) < 2:
        raise AisingerError("fit_probe: needs at least two classes")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > STD_FLOOR, std, 1.0)
    xs = (x - mean) / std
    n, d = xs.shape
    c = len(classes)
    onehot = np.zeros((n, c))
    onehot[np.arange(n), [classes.index(v) for v in y]] = 1.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d * c].reshape(d, c), theta[d * c:]
        z = xs @ w + b
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        value = -np.sum(onehot * logp) / n + 0.5 * l2 * np.sum(w * w)
        g = (np.exp(logp) - onehot) / n
        grad = np.concatenate([(xs.T @ g + l2 * w).ravel(), g.sum(axis=0)])
        return value, grad

    res = minimize(loss, np.zeros(d * c + c), jac=True, method="L-BFGS-B",
                   options={"maxiter": MAX_ITER})
    return LinearProbe(classes, mean, std, res.x[:d * c].reshape(d, c), res.x[d * c:], float(l2))


def select_l2(x: np.ndarray, y: Sequence, groups: Sequence, grid: Sequence[float] = L2_GRID
              ) -> tuple[float, dict[float, float]]:
    """The penalty of ``grid`` with the best leave-one-group-out accuracy on (x, y) (ties: the
    larger penalty); returns ``(l2, {l2: cv accuracy})``.  With fewer than two groups the
    middle of the grid is returned without cross-validation."""
    groups = np.asarray(groups)
    y = np.asarray(y)
    uniq = sorted(set(groups.tolist()))
    if len(uniq) < 2:
        return float(grid[len(grid) // 2]), {}
    scores = {}
    for l2 in grid:
        hits = 0
        for g in uniq:
            test = groups == g
            if len(set(y[~test].tolist())) < 2:
                continue
            model = fit_probe(x[~test], y[~test].tolist(), l2)
            hits += int(np.sum(np.array(model.predict(x[test])) == y[test]))
        scores[float(l2)] = hits / len(y)
    best = max(scores.values())
    return max(l2 for l2, s in scores.items() if s == best), scores


@dataclass
class ProbeResult:
    """What :func:`probe` measured (see there)."""

    accuracy: float
    clip_accuracy: float
    chance: float
    n_train: int
    n_test: int
    n_test_clips: int
    l2: float
    cv: dict[float, float]
    classes: tuple
    confusion: list[list[int]] = field(default_factory=list)
    probe: LinearProbe | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "clip_accuracy": self.clip_accuracy,
                "chance": self.chance, "n_train": self.n_train, "n_test": self.n_test,
                "n_test_clips": self.n_test_clips, "l2": self.l2,
                "cv": {str(k): v for k, v in self.cv.items()}, "classes": list(self.classes),
                "confusion": self.confusion}


def probe(train_x: np.ndarray, train_y: Sequence, train_groups: Sequence, test_x: np.ndarray,
          test_y: Sequence, test_clips: Sequence | None = None,
          grid: Sequence[float] = L2_GRID) -> ProbeResult:
    """Train a speaker probe on the training segments and score the test segments.

    Args:
        train_x, train_y, train_groups: pooled segments (n, D), their speaker labels and
            their groups (phrase ids) for choosing the penalty (:func:`select_l2`).
        test_x, test_y: held-out segments and their labels.
        test_clips: the clip id of each test segment (clip accuracy: a clip is classified
            by the sum of its segments' log-probabilities); default: one clip per segment.
    Returns:
        a :class:`ProbeResult`: ``accuracy`` (segments), ``clip_accuracy``, ``chance`` (1 /
        number of training classes), ``confusion`` (rows: true class, columns: predicted, in
        ``classes`` order) and the fitted probe.
    """
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    if test_x.shape[0] == 0:
        raise AisingerError("probe: no test segments")
    l2, cv = select_l2(train_x, train_y, train_groups, grid)
    model = fit_probe(train_x, list(train_y), l2)
    return evaluate_probe(model, test_x, test_y, test_clips, n_train=train_x.shape[0], cv=cv)


def evaluate_probe(model: LinearProbe, test_x: np.ndarray, test_y: Sequence,
                   test_clips: Sequence | None = None, *, n_train: int = 0,
                   cv: dict[float, float] | None = None) -> ProbeResult:
    """Score an already fitted probe on test segments (see :func:`probe`)."""
    test_x = np.asarray(test_x, np.float64)
    test_y = list(test_y)
    logp = model.log_proba(test_x)
    pred = [model.classes[i] for i in np.argmax(logp, axis=1)]
    clips = list(range(len(test_y))) if test_clips is None else list(test_clips)
    clip_hits = []
    for clip in dict.fromkeys(clips):
        rows = [i for i, c in enumerate(clips) if c == clip]
        label = test_y[rows[0]]
        clip_hits.append(model.classes[int(np.argmax(logp[rows].sum(axis=0)))] == label)
    index = {c: i for i, c in enumerate(model.classes)}
    confusion = [[0] * len(model.classes) for _ in model.classes]
    for t, p in zip(test_y, pred):
        if t in index:
            confusion[index[t]][index[p]] += 1
    return ProbeResult(
        accuracy=float(np.mean([p == t for p, t in zip(pred, test_y)])),
        clip_accuracy=float(np.mean(clip_hits)), chance=1.0 / len(model.classes),
        n_train=n_train, n_test=len(test_y), n_test_clips=len(clip_hits), l2=model.l2,
        cv=dict(cv or {}), classes=model.classes, confusion=confusion, probe=model)
