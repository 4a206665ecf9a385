// The live page: the request queue as a stream host shows it (now singing, up next, just sung).
"use strict";
let lastPlayed = null;

function entry(j) {
  return (j.song_title || "?") + " — " + (j.voice_name || "") + " · " + t("requested_by") + " " + j.owner;
}

async function refresh() {
  try {
    const q = await (await api("/api/queue")).json();
    document.getElementById("auth").hidden = true;
    const now = document.getElementById("now");
    now.innerHTML = "";
    if (!q.running.length) now.textContent = t("nothing");
    for (const j of q.running) {
      const d = document.createElement("div");
      d.textContent = entry(j) + " · " + (j.stage || "") + " " + Math.round(100 * j.progress) + "%";
      const p = document.createElement("progress"); p.max = 1; p.value = j.progress;
      now.appendChild(d); now.appendChild(p);
    }
    const ol = document.getElementById("waiting");
    ol.innerHTML = "";
    for (const j of q.waiting.slice(0, 30)) {
      const li = document.createElement("li"); li.textContent = entry(j); ol.appendChild(li);
    }
    document.getElementById("waiting-count").textContent = q.waiting.length;
    const ul = document.getElementById("recent");
    ul.innerHTML = "";
    for (const j of q.recent) {
      const li = document.createElement("li");
      li.textContent = entry(j) + " · " + stateText(j.state);
      if (j.result_url) {
        const b = document.createElement("button");
        b.textContent = "▶"; b.addEventListener("click", () => play(j.result_url));
        li.appendChild(b);
      }
      ul.appendChild(li);
    }
  } catch (e) {
    document.getElementById("auth").hidden = false;
  }
  setTimeout(refresh, 1000);
}

async function play(url) {
  const blob = await (await api(url)).blob();
  const a = document.getElementById("live-player");
  a.src = URL.createObjectURL(blob);
  a.play();
}

document.addEventListener("DOMContentLoaded", () => {
  setupLang();
  setupToken(null);
  refresh();
});
