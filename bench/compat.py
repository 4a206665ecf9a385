"""Speed of the So-VITS-SVC 4.1 generator at the community's full size on this CPU.

    .venv/bin/python bench/compat.py [--seconds 10 30] [--threads 2] [--repeats 1] [--json PATH]

The generator (our :class:`aisinger.nn.vits.SvcGenerator`) is built with the community 4.1
defaults — hidden 192, inter 192, filter 768, 2 heads, 6 layers, 4-layer flow WaveNets,
gin 768, 768-d content, volume embedding, F0 predictor, NSF-HiFiGAN with upsample rates
[8, 8, 2, 2, 2], 512 initial channels, 44.1 kHz — with random weights (seeded).  It is timed
on content / F0 / volume frames for each input length (content encoder and F0 extraction are
not part of it), as one inference call under ``torch.inference_mode``, with randomness on
(posterior noise 0.4, NSF noise).  Real-time factor = wall time / audio duration; the table
also gives the process CPU time (and CPU time / threads / duration), which is what to
compare when other processes share the cores (the load average is recorded).

Per-module timing: forward hooks on the prior encoder, the flow, the harmonic source and each
decoder stage (upsampling conv, source conv, resblocks), summed over the call.

Target (issue 9): no slower than the original code measured here, RTF 0.60 (10 s) and 0.86
(30 s).  Prints a table and writes JSON (default ``bench/results/compat.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

ORIGINAL_RTF = {10: 0.60, 30: 0.86}


def full_size_config():
    from aisinger.nn.nsf_hifigan import NsfConfig
    from aisinger.nn.vits import VitsConfig

    dec = NsfConfig(in_channels=192, upsample_initial_channel=512,
                    upsample_rates=(8, 8, 2, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4, 4),
                    resblock="1", resblock_kernel_sizes=(3, 7, 11),
                    resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
                    sample_rate=44100, harmonics=9, gin_channels=768)
    return VitsConfig(family="sovits", content_dim=768, inter_channels=192,
                      hidden_channels=192, filter_channels=768, n_heads=2, n_layers=6,
                      kernel_size=3, window_size=4, n_flows=4, flow_layers=4, gin_channels=768,
                      n_speakers=1, vol_embedding=True, f0_predictor=True, spec_channels=1025,
                      decoder=dec)


class _FunctionalTimer:
    """Times the decoder's functional conv calls (its 4-D fast path bypasses module hooks)."""

    def __init__(self, names: dict, times: dict):
        from aisinger.nn import nsf_hifigan

        self.mod = nsf_hifigan
        self.names, self.times = names, times
        self.orig = (nsf_hifigan.conv, nsf_hifigan.conv_t)

    def _wrap(self, fn):
        def timed(m, x):
            name = self.names.get(id(m))
            if name is None:
                return fn(m, x)
            t0 = time.perf_counter()
            y = fn(m, x)
            self.times[name] += time.perf_counter() - t0
            return y
        return timed

    def __enter__(self):
        self.mod.conv, self.mod.conv_t = (self._wrap(f) for f in self.orig)
        return self

    def __exit__(self, *exc):
        self.mod.conv, self.mod.conv_t = self.orig


def _hooks(model, times: dict):
    """Register timing hooks; returns the handles."""
    handles = []

    def wrap(name, module):
        def pre(_m, _inp):
            module._t0 = time.perf_counter()

        def post(_m, _inp, _out):
            times[name] += time.perf_counter() - module._t0

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))

    wrap("prior: content projection (pre)", model.pre)
    wrap("prior: transformer encoder", model.enc_p)
    wrap("flow (reverse)", model.flow)
    wrap("decoder: harmonic source mix", model.dec.m_source)
    wrap("decoder: conv_pre", model.dec.conv_pre)
    dec = model.dec
    nk = len(dec.cfg.resblock_kernel_sizes)
    for i in range(len(dec.ups)):
        for j in range(nk):
            wrap(f"decoder stage {i}: resblocks", dec.resblocks[i * nk + j])
    return handles


def _functional_names(model) -> dict:
    dec = model.dec
    names = {id(dec.conv_post): "decoder: conv_post"}
    for i, up in enumerate(dec.ups):
        names[id(up)] = f"decoder stage {i}: upsample conv"
        names[id(dec.noise_convs[i])] = f"decoder stage {i}: source conv"
    return names


def run(seconds: float, model, timed: bool):
    import torch

    cfg = model.cfg
    t = int(round(seconds * cfg.sample_rate / cfg.hop))
    g = torch.Generator().manual_seed(0)
    c = torch.randn(1, t, cfg.content_dim, generator=g)
    f0 = 220.0 * 2 ** (torch.sin(torch.arange(t) / 40.0)[None] / 2)
    vol = torch.rand(1, t, generator=g) * 0.2
    times: dict = defaultdict(float)
    handles = _hooks(model, times) if timed else []
    timer = _FunctionalTimer(_functional_names(model) if timed else {}, times)
    try:
        with torch.inference_mode(), timer:
            t0, c0 = time.perf_counter(), time.process_time()
            y = model.infer(c, f0, torch.tensor([0]), vol=vol, noise_scale=0.4,
                            generator=torch.Generator().manual_seed(1))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        for h in handles:
            h.remove()
    assert y.shape[1] == t * cfg.hop and torch.isfinite(y).all()
    return wall, cpu, t * cfg.hop / cfg.sample_rate, dict(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per length (best kept)")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "compat.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does (see cli.py)
    import torch

    from aisinger.nn.vits import SvcGenerator

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SvcGenerator(full_size_config()).eval()
    n_params = sum(p.numel() for p in model.parameters())
    run(1.0, model, timed=False)  # warm-up (allocator, kernels)
    load = [os.getloadavg()[0]]
    rows = []
    for s in args.seconds:
        best = None
        for _ in range(args.repeats):
            wall, cpu, dur, _ = run(s, model, timed=False)
            if best is None or wall < best[0]:
                best = (wall, cpu)
        hooked_wall, _, _, times = run(s, model, timed=True)  # hooks add overhead: own run
        times["rest (harmonic sines, embeddings, glue)"] = max(
            0.0, hooked_wall - sum(times.values()))
        rows.append({"seconds": s, "audio_s": dur, "wall_s": best[0], "rtf": best[0] / dur,
                     "cpu_s": best[1], "cpu_rtf": best[1] / args.threads / dur,
                     "original_rtf": ORIGINAL_RTF.get(int(s)), "modules_s": times})
        load.append(os.getloadavg()[0])
    print(f"So-VITS-SVC 4.1 generator, full size ({n_params / 1e6:.1f} M parameters), "
          f"44.1 kHz, torch threads {args.threads}, {os.cpu_count()} CPUs")
    print(f"load average (1 min) during the run: {', '.join(f'{v:.1f}' for v in load)} "
          "(other processes compete for the cores when it exceeds the core count)")
    print(f"{'input':>8} {'wall s':>8} {'RTF':>6} {'CPU s':>7} {'CPU RTF':>8} "
          f"{'original RTF':>13}")
    for r in rows:
        orig = f"{r['original_rtf']:.2f}" if r["original_rtf"] else "-"
        print(f"{r['seconds']:>7.0f}s {r['wall_s']:>8.2f} {r['rtf']:>6.3f} {r['cpu_s']:>7.2f} "
              f"{r['cpu_rtf']:>8.3f} {orig:>13}")
    print("CPU RTF = process CPU time / threads / audio duration: the RTF on otherwise idle "
          "cores, if the threads scale perfectly; CPU s / duration bounds it from above "
          "(no thread scaling at all)")
    for r in rows:
        total = sum(r["modules_s"].values())
        print(f"\nwhere the time goes, {r['seconds']:.0f} s input (hooked run, {total:.2f} s):")
        for name, sec in sorted(r["modules_s"].items(), key=lambda kv: -kv[1]):
            print(f"  {name:<38} {sec:7.3f} s  {100 * sec / total:5.1f} %")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "compat", "parameters": n_params, "threads": args.threads,
        "cpus": os.cpu_count(), "machine": platform.platform(), "python": sys.version.split()[0],
        "torch": torch.__version__, "load_average": load, "rows": rows}, indent=2))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
