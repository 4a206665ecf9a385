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
    lv_link: "实时变声", lv_title: "实时变声", lv_block: "块长（毫秒）", lv_default: "默认",
    lv_notice: "你听到的是 AI 生成的声音：麦克风的声音由 AI 声音模型实时转换。录音保存时带有 AI 生成标识（元数据、水印和开头的提示音）。",
    lv_record: "录音（在服务器上保存为带标识的文件）", lv_start: "开始", lv_stop: "停止",
    lv_live: "● 正在播放 AI 生成的声音", lv_latency: "延迟与计算",
    lv_algo: "算法延迟（块 + 前瞻 + 模型）", lv_rtt: "往返（网络 + 排队 + 计算）",
    lv_net: "网络往返（ping）", lv_buffer: "播放缓冲", lv_device: "浏览器音频（输入 + 输出）",
    lv_total: "总延迟（估计）", lv_compute: "每块计算（平均 / p95）",
    lv_drops: "服务器丢块 / 播放欠载", lv_recordings: "我的录音", lv_block_of: "块长",
    lv_target: "目标", lv_of_block: "块时长",
    lv_need_secure: "麦克风需要 https 或 localhost（以及支持 AudioWorklet 的浏览器）",
    lv_no_mic: "无法打开麦克风", lv_stopped: "已停止", lv_closed: "连接已关闭",
    lv_streaming: "正在转换：对着麦克风唱吧", lv_finishing: "正在结束……",
    lv_st_idle: "未开始", lv_st_connecting: "连接中", lv_st_streaming: "实时转换中",
    lv_st_finishing: "正在结束", lv_st_stopped: "已停止", lv_st_error: "出错",
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
    lv_link: "Live voice", lv_title: "Live voice changer", lv_block: "Block (ms)",
    lv_default: "default",
    lv_notice: "What you hear is an AI-generated voice: the microphone is converted live by an AI voice model. Saved recordings are labelled as AI-generated (metadata, watermark and an audible notice at the start).",
    lv_record: "Record (saved on the server as a labelled file)", lv_start: "Start",
    lv_stop: "Stop", lv_live: "● Playing an AI-generated voice", lv_latency: "Latency and compute",
    lv_algo: "Algorithmic latency (block + lookahead + model)",
    lv_rtt: "Round trip (network + queue + compute)", lv_net: "Network round trip (ping)",
    lv_buffer: "Playback buffer", lv_device: "Browser audio (input + output)",
    lv_total: "Total latency (estimate)", lv_compute: "Compute per block (mean / p95)",
    lv_drops: "Server drops / playback underruns", lv_recordings: "My recordings",
    lv_block_of: "block", lv_target: "target", lv_of_block: "of the block",
    lv_need_secure: "the microphone needs https or localhost (and a browser with AudioWorklet)",
    lv_no_mic: "cannot open the microphone", lv_stopped: "stopped", lv_closed: "connection closed",
    lv_streaming: "converting: sing into the microphone", lv_finishing: "finishing…",
    lv_st_idle: "not started", lv_st_connecting: "connecting", lv_st_streaming: "live",
    lv_st_finishing: "finishing", lv_st_stopped: "stopped", lv_st_error: "error",
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
