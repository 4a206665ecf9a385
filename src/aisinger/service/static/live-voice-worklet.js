// AudioWorklet processors of the live-voice page (audio thread; no DOM, no network).
//   lv-capture: microphone -> mono -> resampled to the server's rate -> blocks to the page
//   lv-player:  converted blocks (server rate) -> resampled to the context rate -> a jitter
//               buffer that starts after a prebuffer, counts underruns and grows after each.
"use strict";

// Streaming band-limited resampler: Hann-windowed sinc, cutoff 0.95 x the lower Nyquist,
// `taps` zero crossings each side.  Delay: about `taps` samples of the lower rate.
class Resampler {
  constructor(inRate, outRate, taps = 16) {
    this.bypass = inRate === outRate;
    this.step = inRate / outRate;                 // input samples per output sample
    this.fc = Math.min(1, outRate / inRate) * 0.95;
    this.W = Math.ceil(taps / this.fc);            // half width, input samples
    this.buf = new Float32Array(this.W);           // W samples of zero history
    this.pos = this.W;                             // next output, in input samples
  }
  process(x) {
    if (this.bypass) return Float32Array.from(x);
    const buf = new Float32Array(this.buf.length + x.length);
    buf.set(this.buf); buf.set(x, this.buf.length);
    const W = this.W, fc = this.fc, n = Math.max(0, Math.ceil((buf.length - W - this.pos) / this.step));
    const out = new Float32Array(n);
    let pos = this.pos;
    for (let j = 0; j < n; j++, pos += this.step) {
      const lo = Math.ceil(pos - W), hi = Math.floor(pos + W);
      let acc = 0;
      for (let i = Math.max(0, lo); i <= hi && i < buf.length; i++) {
        const d = pos - i;
        const a = Math.PI * fc * d;
        const sinc = a === 0 ? 1 : Math.sin(a) / a;
        acc += buf[i] * fc * sinc * (0.5 + 0.5 * Math.cos(Math.PI * d / W));
      }
      out[j] = acc;
    }
    const drop = Math.max(0, Math.floor(pos) - W);
    this.buf = buf.slice(drop);
    this.pos = pos - drop;
    return out;
  }
}

class Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.rs = new Resampler(sampleRate, options.processorOptions.outRate);
    this.chunk = 0;          // samples per message; 0 = not streaming (discard)
    this.acc = null; this.fill = 0;
    this.port.onmessage = e => {
      if ("chunk" in e.data) { this.chunk = e.data.chunk; this.acc = new Float32Array(this.chunk); this.fill = 0; }
    };
  }
  process(inputs) {
    const inp = inputs[0];
    if (!inp || !inp.length || !this.chunk) return true;
    let mono = inp[0];
    if (inp.length > 1) {
      mono = new Float32Array(inp[0].length);
      for (const ch of inp) for (let i = 0; i < ch.length; i++) mono[i] += ch[i] / inp.length;
    }
    const y = this.rs.process(mono);
    for (let i = 0; i < y.length; i++) {
      this.acc[this.fill++] = y[i];
      if (this.fill === this.chunk) {
        this.port.postMessage(this.acc, [this.acc.buffer]);
        this.acc = new Float32Array(this.chunk); this.fill = 0;
      }
    }
    return true;
  }
}

class Player extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.rs = new Resampler(o.inRate, sampleRate);
    this.size = Math.ceil(sampleRate * 4);         // ring: 4 s
    this.ring = new Float32Array(this.size);
    this.r = 0; this.w = 0; this.count = 0;
    this.target = Math.round(sampleRate * o.prebufferMs / 1000);
    this.maxTarget = Math.round(sampleRate * 0.5);
    this.maxFill = Math.round(sampleRate * 1.5);    // more than this queued: drop the oldest
    this.playing = false;
    this.underruns = 0; this.skipped = 0; this.played = 0; this.lastReport = 0;
    this.port.onmessage = e => this.push(this.rs.process(e.data));
  }
  push(y) {
    for (let i = 0; i < y.length; i++) {
      this.ring[this.w] = y[i]; this.w = (this.w + 1) % this.size;
    }
    this.count += y.length;
    if (this.count > this.maxFill) {               // far behind: keep the latency bounded
      const drop = this.count - this.target;
      this.r = (this.r + drop) % this.size; this.count -= drop; this.skipped += drop;
    }
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.count >= this.target) this.playing = true;
    if (this.playing) {
      const n = Math.min(out.length, this.count);
      for (let i = 0; i < n; i++) { out[i] = this.ring[this.r]; this.r = (this.r + 1) % this.size; }
      this.count -= n; this.played += n;
      if (n < out.length) {                          // underrun: rebuffer with a larger target
        this.playing = false; this.underruns++;
        this.target = Math.min(this.maxTarget, this.target + Math.round(sampleRate * 0.02));
      }
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (currentTime - this.lastReport > 0.25) {
      this.lastReport = currentTime;
      this.port.postMessage({bufferedMs: 1000 * this.count / sampleRate,
                             targetMs: 1000 * this.target / sampleRate,
                             underruns: this.underruns, skippedMs: 1000 * this.skipped / sampleRate,
                             playedS: this.played / sampleRate, playing: this.playing});
    }
    return true;
  }
}

registerProcessor("lv-capture", Capture);
registerProcessor("lv-player", Player);
