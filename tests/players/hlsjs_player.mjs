// hls.js in headless Chromium, one page per HLS URL, all at once; used by matrix.py.
// Usage: node hlsjs_player.mjs --page URL --playwright DIR --chromium PATH --bound S
//          --jobs '[{"key":..,"url":..,"goal":8,"audio":true,"video":true,"hevc":false}]'
// Prints one JSON line: {key: {ok: true|false|null, detail: "..."}} (null: not applicable, said why).
// A page passes when the video element's currentTime advances by `goal` seconds, hls.js raised no
// fatal error and no media-parsing error, and an audio SourceBuffer exists when the source has audio.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { launchChromium } from "./chromium.mjs";

function option(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`${name} is required`);
  return process.argv[i + 1];
}
// The page (a <video> and hls.min.js) is served by the test's loopback origin: a page on 127.0.0.1
// playing from another port of 127.0.0.1 is a cross-origin player, as on a real site.
const pageUrl = option("--page");
const { chromium } = await import(pathToFileURL(join(option("--playwright"), "index.mjs")).href);
const jobs = JSON.parse(option("--jobs"));
const boundMs = Number(option("--bound")) * 1000;

// hls.js errors that mean the media itself is broken (others, e.g. a stall while the live edge
// waits for a segment, are reported in the detail but are not failures by themselves).
const MEDIA_ERRORS = new Set(["fragParsingError", "bufferAppendError", "bufferAddCodecError",
  "fragDecryptError", "remuxAllocError", "manifestParsingError", "levelParsingError",
  "bufferIncompatibleCodecsError"]);

const { browser, userDataDir } = await launchChromium(chromium, option("--chromium"), "hlsrelay-players-chromium-");

async function play(job) {
  const page = await browser.newPage();
  const consoleLog = [];
  page.on("pageerror", (e) => consoleLog.push(`pageerror: ${e.message}`));
  try {
    await page.goto(pageUrl, { waitUntil: "load", timeout: 20_000 });
    if (!(await page.evaluate(() => typeof window.Hls === "function" && Hls.isSupported())))
      return { ok: false, detail: "hls.js did not load or says MediaSource is unsupported" };
    if (job.hevc) {
      const supported = await page.evaluate(() =>
        MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"') ||
        MediaSource.isTypeSupported('video/mp4; codecs="hev1.1.6.L93.B0"'));
      if (!supported) return { ok: null, detail: "this Chromium has no HEVC in MediaSource (n/a, not a relay fault)" };
    }
    await page.evaluate((url) => {
      const video = document.getElementById("v");
      const r = (window.result = { errors: [], fatal: null, tracks: [], start: null, audioTracks: 0 });
      const hls = (window.hls = new Hls({ lowLatencyMode: false }));
      hls.on(Hls.Events.ERROR, (_, d) => {
        const e = { details: d.details, fatal: !!d.fatal, reason: String(d.reason || d.error?.message || d.err?.message || "") };
        r.errors.push(e);
        if (d.fatal && !r.fatal) r.fatal = e;
      });
      hls.on(Hls.Events.BUFFER_CREATED, (_, d) => { r.tracks = Object.keys(d.tracks); });
      hls.on(Hls.Events.MANIFEST_PARSED, () => { r.audioTracks = hls.audioTracks.length; });
      video.addEventListener("playing", () => { if (r.start === null) r.start = video.currentTime; });
      hls.loadSource(url);
      hls.attachMedia(video);
      video.play().catch((e) => r.errors.push({ details: "play() rejected", fatal: false, reason: e.message }));
    }, job.url);
    const deadline = Date.now() + boundMs;
    let state;
    for (;;) {
      state = await page.evaluate(() => {
        const v = document.getElementById("v");
        const r = window.result;
        return { ...r, now: v.currentTime, played: r.start === null ? 0 : v.currentTime - r.start,
          mediaError: v.error ? `${v.error.code} ${v.error.message}` : null,
          audioBytes: v.webkitAudioDecodedByteCount ?? null, videoBytes: v.webkitVideoDecodedByteCount ?? null };
      });
      if (state.fatal || state.mediaError || state.played >= job.goal || Date.now() > deadline) break;
      await page.waitForTimeout(250);
    }
    const problems = [];
    const counts = {};
    for (const e of state.errors) counts[e.details] = (counts[e.details] || 0) + 1;
    if (state.fatal) problems.push(`fatal ${state.fatal.details}: ${state.fatal.reason}`);
    if (state.mediaError) problems.push(`video element error ${state.mediaError}`);
    const media = state.errors.filter((e) => MEDIA_ERRORS.has(e.details));
    if (media.length) problems.push(`media error ${media[0].details}: ${media[0].reason}`);
    if (state.played < job.goal) problems.push(`played ${state.played.toFixed(1)} s, not ${job.goal} (currentTime ${state.now.toFixed(1)})`);
    const hasAudio = state.tracks.includes("audio") || state.tracks.includes("audiovideo");
    if (job.audio && !hasAudio) problems.push(`no audio SourceBuffer (buffers: ${state.tracks.join(",") || "none"})`);
    if (job.audio && state.audioBytes === 0) problems.push("no audio decoded");
    if (job.video && !(state.tracks.includes("video") || state.tracks.includes("audiovideo")))
      problems.push(`no video SourceBuffer (buffers: ${state.tracks.join(",") || "none"})`);
    const others = Object.entries(counts).map(([k, n]) => `${k}x${n}`).join(",");
    const detail = problems.length ? problems.join("; ") + (others ? ` [errors: ${others}]` : "")
      : `played ${state.played.toFixed(1)} s, buffers ${state.tracks.join(",")}` + (others ? ` [non-fatal: ${others}]` : "");
    return { ok: problems.length === 0, detail: detail + (consoleLog.length ? ` (${consoleLog[0]})` : "") };
  } catch (e) {
    return { ok: false, detail: `driver error: ${e.message.split("\n")[0]}` };
  } finally {
    await page.close().catch(() => {});
  }
}

const out = {};
try {
  const results = await Promise.all(jobs.map((j) => play(j)));
  jobs.forEach((j, i) => { out[j.key] = results[i]; });
} finally {
  await browser.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
