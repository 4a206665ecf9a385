// The request page: upload or pick a song, choose a voice, submit, follow, listen, download.
"use strict";
let currentJob = null, resultUrl = null, voicesById = {};

function msg(text) { document.getElementById("message").textContent = text || ""; }

async function loadMe() {
  try {
    const me = await (await api("/api/me")).json();
    document.getElementById("me").textContent = me.name + " (" + me.role + ")";
    await Promise.all([loadSongs(), loadVoices(), loadJobs()]);
  } catch (e) { document.getElementById("me").textContent = t("need_token"); }
}

async function loadSongs(select) {
  const songs = await (await api("/api/songs")).json();
  const sel = document.getElementById("song");
  const keep = select || sel.value;
  sel.innerHTML = "";
  for (const s of songs) {
    const o = document.createElement("option");
    o.value = s.id; o.textContent = s.title + " (" + s.seconds.toFixed(1) + " s)";
    sel.appendChild(o);
  }
  if (keep) sel.value = keep;
  previewSong();
}

async function previewSong() {
  const id = document.getElementById("song").value, a = document.getElementById("song-preview");
  if (!id) return;
  a.dataset.song = id;
  const blob = await (await api("/api/songs/" + id + "/audio")).blob();
  if (a.dataset.song === id) a.src = URL.createObjectURL(blob);
}

async function loadVoices() {
  const voices = await (await api("/api/voices")).json();
  const sel = document.getElementById("voice");
  sel.innerHTML = "";
  voicesById = {};
  for (const v of voices) {
    voicesById[v.id] = v;
    const o = document.createElement("option");
    o.value = v.id; o.textContent = v.name + (v.usable ? "" : " ⚠");
    o.disabled = !v.usable;
    sel.appendChild(o);
  }
  const first = voices.find(v => v.usable);
  if (first) sel.value = first.id;
  showVoice();
}

function showVoice() {
  const v = voicesById[document.getElementById("voice").value];
  const card = document.getElementById("voice-card");
  if (!v) { card.textContent = t("need_voice"); return; }
  const c = v.consent || {};
  const tr = (v.card && v.card.training) || {};
  const lines = [v.name + " · " + (tr.steps || "?") + " steps"];
  if (v.card && v.card.pitch_range)
    lines.push(v.card.pitch_range.low_note + " – " + v.card.pitch_range.high_note);
  lines.push(t("consent") + ": " + t("owner") + " " + (c.voice_owner || "?") + " · " + t("scope") +
             " " + (c.scope || "?") + " · " + t("uses") + " " + (c.permitted_uses || []).join(", "));
  if (!v.usable) lines.push(t("not_usable") + (v.problem ? ": " + v.problem : ""));
  card.textContent = lines.join("\n");
}

async function upload() {
  const f = document.getElementById("file").files[0];
  if (!f) { msg(t("need_song")); return; }
  const title = document.getElementById("title").value || f.name;
  try {
    const r = await api("/api/songs?title=" + encodeURIComponent(title), {
      method: "POST", body: f, headers: { "Content-Type": "application/octet-stream" } });
    const s = await r.json();
    msg(t("uploaded") + ": " + s.title);
    await loadSongs(s.id);
  } catch (e) { msg(e.message); }
}

async function submit() {
  const song = document.getElementById("song").value, voice = document.getElementById("voice").value;
  if (!song) { msg(t("need_song")); return; }
  if (!voice) { msg(t("need_voice")); return; }
  const options = { explicit_label: document.getElementById("cue").value };
  if (!document.getElementById("auto-key").checked)
    options.transpose = parseFloat(document.getElementById("transpose").value || "0");
  try {
    const r = await api("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ song_id: song, voice_id: voice, options,
                             format: document.getElementById("format").value }) });
    const j = await r.json();
    currentJob = j.id; resultUrl = null;
    document.getElementById("player").removeAttribute("src");
    document.getElementById("download").hidden = true;
    msg(t("submitted") + ": " + j.id.slice(0, 8));
    showJob(j);
  } catch (e) { msg(e.message); }
}

function showJob(j) {
  document.getElementById("status").textContent = stateText(j.state);
  document.getElementById("status").dataset.state = j.state;
  document.getElementById("position").textContent = j.position == null ? "-" : j.position;
  document.getElementById("stage").textContent = (j.stage || "") + " " + Math.round(100 * (j.progress || 0)) + "%";
  document.getElementById("progress").value = j.progress || 0;
  if (j.state === "failed") msg(j.error || "");
  if (j.state === "done" && j.result_url && resultUrl !== j.result_url) {
    resultUrl = j.result_url;
    fetchResult(j);
  }
}

async function fetchResult(j) {
  const blob = await (await api(j.result_url)).blob();
  const url = URL.createObjectURL(blob);
  const player = document.getElementById("player");
  player.src = url;
  const a = document.getElementById("download");
  a.href = url; a.download = "aisinger-" + j.id.slice(0, 12) + "." + j.format; a.hidden = false;
  if (j.info && j.info.key_reason) msg(j.info.key_reason);
}

async function loadJobs() {
  const jobs = await (await api("/api/jobs?limit=20")).json();
  const body = document.querySelector("#jobs tbody");
  body.innerHTML = "";
  for (const j of jobs) {
    const tr = document.createElement("tr");
    for (const v of [j.song_title, (voicesById[j.voice_id] || {}).name || j.voice_id, stateText(j.state),
                     j.position == null ? "-" : j.position, Math.round(100 * j.progress) + "%"]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

async function poll() {
  try {
    if (currentJob) showJob(await (await api("/api/jobs/" + currentJob)).json());
    if (token()) await loadJobs();
  } catch (e) { /* server restarting: try again */ }
  setTimeout(poll, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  setupLang(() => { showVoice(); loadJobs(); });
  setupToken(loadMe);
  document.getElementById("upload").addEventListener("click", upload);
  document.getElementById("submit").addEventListener("click", submit);
  document.getElementById("song").addEventListener("change", previewSong);
  document.getElementById("voice").addEventListener("change", showVoice);
  document.getElementById("auto-key").addEventListener("change", e => {
    document.getElementById("transpose").disabled = e.target.checked; });
  if (token()) loadMe();
  poll();
});
