// Chinese / English strings of the web UI (no external resources: the service works offline).
"use strict";
const I18N = {
  zh: {
    title: "AI 点歌台", live_link: "直播队列", token: "API 令牌", save: "保存",
    step_song: "1. 歌曲", title_ph: "歌名（可选）", upload: "上传", library: "曲库",
    step_voice: "2. 声音", step_options: "3. 选项", auto_key: "自动定调",
    transpose: "移调（半音）", format: "格式", cue: "AI 提示音", cue_voice: "语音",
    cue_rhythm: "节奏", submit: "点歌 / 提交", step_result: "4. 进度与结果", state: "状态",
    position: "队列位置", download: "下载", my_jobs: "我的点歌", col_song: "歌曲",
    col_voice: "声音", progress: "进度",
    notice: "所有输出均标注为 AI 生成（元数据、水印和开头的提示音）。",
    live_title: "AI 点唱机 · 直播队列", request_link: "我要点歌", now_singing: "正在演唱",
    up_next: "待唱列表", waiting_count: "排队", recent: "刚刚唱完", nothing: "（空）",
    requested_by: "点歌人", uploaded: "已上传", submitted: "已提交", need_token: "请先输入令牌",
    need_song: "请先上传或选择歌曲", need_voice: "没有可用的声音", consent: "授权",
    owner: "声音所有者", scope: "范围", uses: "允许用途", not_usable: "授权不允许在本服务中使用",
    st_queued: "排队中", st_running: "制作中", st_done: "完成", st_failed: "失败",
    st_deleted: "已删除", lang_other: "English",
  },
  en: {
    title: "AI song requests", live_link: "Live queue", token: "API token", save: "Save",
    step_song: "1. Song", title_ph: "title (optional)", upload: "Upload", library: "Library",
    step_voice: "2. Voice", step_options: "3. Options", auto_key: "Automatic key",
    transpose: "Transpose (semitones)", format: "Format", cue: "AI notice", cue_voice: "spoken",
    cue_rhythm: "rhythm", submit: "Request / submit", step_result: "4. Progress and result",
    state: "State", position: "Queue position", download: "Download", my_jobs: "My requests",
    col_song: "Song", col_voice: "Voice", progress: "Progress",
    notice: "Every output is labelled as AI-generated (metadata, watermark and an audible notice at the start).",
    live_title: "AI jukebox · live queue", request_link: "Request a song", now_singing: "Now singing",
    up_next: "Up next", waiting_count: "Waiting", recent: "Just sung", nothing: "(empty)",
    requested_by: "requested by", uploaded: "uploaded", submitted: "submitted",
    need_token: "enter a token first", need_song: "upload or pick a song first",
    need_voice: "no usable voice", consent: "Consent", owner: "voice owner", scope: "scope",
    uses: "permitted uses", not_usable: "consent does not allow use in this service",
    st_queued: "queued", st_running: "running", st_done: "done", st_failed: "failed",
    st_deleted: "deleted", lang_other: "中文",
  },
};

function lang() { return localStorage.getItem("aisinger.lang") || "zh"; }
function t(key) { return (I18N[lang()] || I18N.zh)[key] || key; }
function applyLang() {
  document.documentElement.lang = lang();
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach(el => {
    el.placeholder = t(el.dataset.i18nPlaceholder); });
  const b = document.getElementById("lang");
  if (b) b.textContent = t("lang_other");
}
function setupLang(onChange) {
  applyLang();
  document.getElementById("lang").addEventListener("click", () => {
    localStorage.setItem("aisinger.lang", lang() === "zh" ? "en" : "zh");
    applyLang();
    if (onChange) onChange();
  });
}
function token() { return localStorage.getItem("aisinger.token") || ""; }
async function api(path, opts = {}) {
  opts.headers = Object.assign({}, opts.headers || {}, { Authorization: "Bearer " + token() });
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = r.status + "";
    try { msg = (await r.json()).detail || msg; } catch (e) { /* not JSON */ }
    throw new Error(typeof msg === "string" ? msg : JSON.stringify(msg));
  }
  return r;
}
function stateText(s) { return t("st_" + s); }
function setupToken(onSaved) {
  const input = document.getElementById("token");
  input.value = token();
  document.getElementById("save-token").addEventListener("click", () => {
    localStorage.setItem("aisinger.token", input.value.trim());
    if (onSaved) onSaved();
  });
}
