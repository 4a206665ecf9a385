// The live-voice page: microphone -> WebSocket (/api/live/ws) -> converted voice played back.
// Protocol: docs/service.md "Live voice".  window.liveVoice holds the state the page shows
// (and the first seconds of audio sent and received, which the browser test reads).
"use strict";
const TAP_SECONDS = 15;
const LV = window.liveVoice = {
  state: "idle", ready: null, stats: null, player: null, close: null, rtt: [], net: [],
  sentAt: [], sent: 0, received: 0, tapIn: [], tapOut: [], tapInN: 0, tapOutN: 0,
  recording: null,
};
let ctx = null, ws = null, mic = null, capture = null, player = null, pingTimer = null;

function setState(s, message) {
  LV.state = s;
  const el = document.getElementById("lv-state");
  el.dataset.state = s;
  el.textContent = t("lv_st_" + s);
  if (message !== undefined) document.getElementById("lv-message").textContent = message;
  const streaming = s === "streaming" || s === "connecting" || s === "finishing";
  document.getElementById("start").disabled = streaming;
  document.getElementById("stop").disabled = !streaming;
  document.getElementById("lv-live").hidden = s !== "streaming";
}

function median(xs) {
  if (!xs.length) return null;
  const a = xs.slice().sort((x, y) => x - y);
  return a[Math.floor(a.length / 2)];
}
function ms(x) { return x == null ? "–" : Math.round(x) + " ms"; }

function showStats() {
  const r = LV.ready;
  if (!r) return;
  const rtt = median(LV.rtt.slice(-50)), net = median(LV.net.slice(-10));
  const buf = LV.player ? LV.player.bufferedMs : null;
  const device = ctx ? 1000 * ((ctx.baseLatency || 0) + (ctx.outputLatency || 0)) : null;
  LV.latency = {algorithmic: r.latency_ms, roundTrip: rtt, network: net, buffer: buf,
                device: device,
                total: rtt == null ? null : r.latency_ms + rtt + (buf || 0) + (device || 0)};
  document.getElementById("lat-algo").textContent =
    ms(r.latency_ms) + " (" + t("lv_block_of") + " " + ms(r.block_ms) + ")";
  document.getElementById("lat-rtt").textContent = ms(rtt);
  document.getElementById("lat-net").textContent = ms(net);
  document.getElementById("lat-buffer").textContent =
    buf == null ? "–" : ms(buf) + " (" + t("lv_target") + " " + ms(LV.player.targetMs) + ")";
  document.getElementById("lat-device").textContent = ms(device);
  document.getElementById("lat-total").textContent = (LV.latency.total == null ? "" : "≈ ") + ms(LV.latency.total);
  const s = LV.stats;
  if (s && s.compute_ms.mean != null) {
    document.getElementById("compute").textContent = s.compute_ms.mean.toFixed(1) + " / " +
      s.compute_ms.p95.toFixed(1) + " ms · " + Math.round(100 * s.rtf) + "% " + t("lv_of_block");
  }
  document.getElementById("drops").textContent = (s ? s.dropped : 0) + " / " +
    (LV.player ? LV.player.underruns : 0);
}

function tap(list, key, x) {
  const max = TAP_SECONDS * (LV.ready ? LV.ready.sample_rate : 48000);
  if (LV[key] >= max) return;
  list.push(Float32Array.from(x.subarray(0, max - LV[key])));
  LV[key] += Math.min(x.length, max - LV[key]);
}
// Samples of what was sent / received so far (the browser test reads these).
LV.tapped = which => {
  const list = which === "input" ? LV.tapIn : LV.tapOut;
  const n = list.reduce((a, x) => a + x.length, 0), out = new Float32Array(n);
  let o = 0;
  for (const x of list) { out.set(x, o); o += x.length; }
  return Array.from(out);
};

async function loadVoices() {
  const sel = document.getElementById("voice");
  const voices = await (await api("/api/live/voices")).json();
  sel.innerHTML = "";
  for (const v of voices) {
    const o = document.createElement("option");
    o.value = v.id; o.dataset.rate = v.sample_rate || "";
    o.textContent = v.name + (v.usable ? "" : " — " + t("not_usable"));
    o.disabled = !v.usable; o.title = v.problem || "";
    sel.appendChild(o);
  }
  const first = voices.find(v => v.usable);
  if (first) sel.value = first.id;
  document.getElementById("auth").hidden = true;
}

async function loadRecordings() {
  const ul = document.getElementById("recordings");
  const recs = await (await api("/api/live/recordings")).json();
  ul.innerHTML = "";
  if (!recs.length) ul.textContent = t("nothing");
  for (const r of recs) {
    const li = document.createElement("li");
    li.dataset.id = r.id;
    li.textContent = new Date(r.created * 1000).toLocaleString() + " · " + r.voice_id + " · " +
      r.seconds.toFixed(1) + " s ";
    const play = document.createElement("button");
    play.textContent = "▶";
    play.addEventListener("click", async () => {
      const a = document.getElementById("rec-player");
      a.src = URL.createObjectURL(await (await api(r.url)).blob());
      a.play();
    });
    const dl = document.createElement("button");
    dl.textContent = t("download"); dl.className = "download";
    dl.addEventListener("click", async () => {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await (await api(r.url)).blob());
      link.download = "live-" + r.voice_id + "-" + r.id.slice(0, 8) + ".flac";
      link.click();
    });
    li.appendChild(play); li.appendChild(dl);
    ul.appendChild(li);
  }
}

async function start() {
  const sel = document.getElementById("voice");
  const opt = sel.selectedOptions[0];
  if (!token()) { setState("error", t("need_token")); return; }
  if (!opt || opt.disabled || !opt.dataset.rate) { setState("error", t("need_voice")); return; }
  if (!window.isSecureContext || !navigator.mediaDevices || !window.AudioWorkletNode) {
    setState("error", t("lv_need_secure")); return;
  }
  const rate = parseInt(opt.dataset.rate, 10);
  Object.assign(LV, {ready: null, stats: null, player: null, close: null, rtt: [], net: [],
                     sentAt: [], sent: 0, received: 0, tapIn: [], tapOut: [], tapInN: 0,
                     tapOutN: 0, recording: null});
  setState("connecting", "");
  try {
    ctx = new AudioContext({latencyHint: "interactive"});
    await ctx.audioWorklet.addModule("/static/live-voice-worklet.js");
    mic = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1,
      echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
  } catch (e) {
    stopAudio();
    setState("error", t("lv_no_mic") + ": " + e.message);
    return;
  }
  capture = new AudioWorkletNode(ctx, "lv-capture", {processorOptions: {outRate: rate}});
  const mute = ctx.createGain(); mute.gain.value = 0;   // keeps the capture node pulled
  ctx.createMediaStreamSource(mic).connect(capture).connect(mute).connect(ctx.destination);
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(proto + "//" + location.host + "/api/live/ws");
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    const block = document.getElementById("block").value;
    ws.send(JSON.stringify({type: "hello", token: token(), voice: opt.value, sample_rate: rate,
      channels: 1, format: "f32", transpose: parseFloat(document.getElementById("transpose").value) || 0,
      block_ms: block ? parseFloat(block) : null,
      record: document.getElementById("record").checked}));
  };
  ws.onmessage = e => (typeof e.data === "string" ? onText(JSON.parse(e.data)) : onAudio(e.data));
  ws.onclose = e => {
    LV.close = {code: e.code, reason: e.reason};
    stopAudio();
    if (e.code === 1000) setState("stopped", t("lv_stopped"));
    else setState("error", t("lv_closed") + " " + e.code + (e.reason ? ": " + e.reason : ""));
    loadRecordings().catch(() => {});
  };
  capture.port.onmessage = e => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const x = e.data;
    LV.sentAt.push(performance.now());
    ws.send(x.buffer);
    LV.sent++;
    tap(LV.tapIn, "tapInN", x);
  };
}

function onText(m) {
  if (m.type === "ready") {
    LV.ready = m;
    player = new AudioWorkletNode(ctx, "lv-player", {outputChannelCount: [1], processorOptions: {
      inRate: m.sample_rate, prebufferMs: Math.max(60, 1.5 * m.block_ms)}});
    player.connect(ctx.destination);
    player.port.onmessage = e => { LV.player = e.data; };
    capture.port.postMessage({chunk: m.block_samples});
    pingTimer = setInterval(() => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({type: "ping", t: performance.now()}));
      showStats();
    }, 1000);
    setState("streaming", t("lv_streaming"));
  } else if (m.type === "stats") {
    LV.stats = m; showStats();
  } else if (m.type === "pong") {
    LV.net.push(performance.now() - m.t);
  } else if (m.type === "bye") {
    LV.stats = m; LV.recording = m.recording; showStats();
  }
}

function onAudio(buf) {
  const y = new Float32Array(buf);
  const sentAt = LV.sentAt[LV.received];
  if (sentAt !== undefined) LV.rtt.push(performance.now() - sentAt);
  LV.received++;
  tap(LV.tapOut, "tapOutN", y);
  if (player) player.port.postMessage(y, [y.buffer]);
}

function stopAudio() {
  if (pingTimer) clearInterval(pingTimer);
  pingTimer = null;
  if (mic) mic.getTracks().forEach(tr => tr.stop());
  if (ctx) ctx.close().catch(() => {});
  ctx = mic = capture = player = null;
}

function stop() {
  if (ws && ws.readyState === WebSocket.OPEN) {
    if (capture) capture.port.postMessage({chunk: 0});
    ws.send(JSON.stringify({type: "stop"}));
    setState("finishing", t("lv_finishing"));
  } else {
    stopAudio(); setState("stopped");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupLang(() => { setState(LV.state); showStats(); });
  setState("idle");
  const refresh = () => { loadVoices().catch(() => { document.getElementById("auth").hidden = false; });
                          loadRecordings().catch(() => {}); };
  setupToken(refresh);
  refresh();
  document.getElementById("start").addEventListener("click", start);
  document.getElementById("stop").addEventListener("click", stop);
});
