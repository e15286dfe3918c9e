// hls.js in low-latency mode in headless Chromium: plays one LL-HLS URL for a while and reports how
// far behind the source it plays and whether it ever stalled. Used by ll_latency.py.
// Usage: node ll_player.mjs --page URL --playwright DIR --chromium PATH --url URL --seconds S --warmup W
//          [--catch-up RATE]   hls.js maxLiveSyncPlaybackRate (default 1: hls.js's own, no catch-up)
//          [--classic]         hls.js without lowLatencyMode (the reference: classic HLS, no parts)
// Prints one JSON line: {ok, latency: {p50, p95, max, samples}, stalls: [...], errors: [...], detail}.
// Latency: the wall clock minus the date of the frame on screen (hls.js playingDate, from the
// playlist's EXT-X-PROGRAM-DATE-TIME, which the relay sets from when the media arrived from the
// source), sampled every 250 ms after `warmup` seconds of playing. A stall: currentTime standing still
// for over a second while the video is not paused.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { launchChromium } from "./chromium.mjs";

function option(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`${name} is required`);
  return process.argv[i + 1];
}
const { chromium } = await import(pathToFileURL(join(option("--playwright"), "index.mjs")).href);
const seconds = Number(option("--seconds"));
const warmup = Number(option("--warmup"));
const catchUp = process.argv.includes("--catch-up") ? Number(option("--catch-up")) : 1;
const classic = process.argv.includes("--classic");

const { browser, userDataDir } = await launchChromium(chromium, option("--chromium"), "hlsrelay-ll-chromium-");

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

let result;
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(option("--page"), { waitUntil: "load", timeout: 20_000 });
  await page.evaluate(({ url, warmup, catchUp, classic }) => {
    const video = document.getElementById("v");
    const T = (window.T = { errors: [], fatal: null, start: null, samples: [], stalls: [], still: 0, last: -1,
      lastTick: performance.now(), parts: 0, blocking: 0, targets: [] });
    const hls = (window.hls = new Hls({ lowLatencyMode: !classic, maxLiveSyncPlaybackRate: catchUp }));
    hls.on(Hls.Events.ERROR, (_, d) => {
      const e = { details: d.details, fatal: !!d.fatal, reason: String(d.reason || d.error?.message || "").slice(0, 200) };
      if (T.errors.length < 20) T.errors.push(e);
      if (d.fatal && !T.fatal) T.fatal = e;
    });
    hls.on(Hls.Events.FRAG_LOADED, (_, d) => { if (d.part) T.parts++; });
    hls.on(Hls.Events.LEVEL_LOADED, (_, d) => { if (d.details?.canBlockReload) T.blocking++; });
    video.addEventListener("playing", () => { if (T.start === null) T.start = performance.now(); });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch((e) => T.errors.push({ details: "play() rejected", fatal: false, reason: e.message }));
    setInterval(() => {
      const now = performance.now();
      const dt = (now - T.lastTick) / 1000;
      T.lastTick = now;
      if (T.start === null) return;
      if (!video.paused && video.currentTime === T.last) {
        T.still += dt;
      } else {
        if (T.still > 1) T.stalls.push({ at: +video.currentTime.toFixed(2), seconds: +T.still.toFixed(2) });
        T.still = 0;
      }
      T.last = video.currentTime;
      // hls.js's target latency as it follows the playlist's PART-HOLD-BACK (which a relay of a
      // classic source moves with its arrival bursts).
      const target = hls.targetLatency;
      const lastTarget = T.targets.length ? T.targets[T.targets.length - 1].target : null;
      if (target != null && (lastTarget === null || Math.abs(target - lastTarget) > 0.005) && T.targets.length < 200)
        T.targets.push({ at: +((now - T.start) / 1000).toFixed(1), target: +target.toFixed(3) });
      const date = hls.playingDate;
      if ((now - T.start) / 1000 >= warmup && date)
        T.samples.push({ latency: (Date.now() - date.getTime()) / 1000, estimate: hls.latency, target: hls.targetLatency, rate: video.playbackRate });
    }, 250);
  }, { url: option("--url"), warmup, catchUp, classic });
  const deadline = Date.now() + (seconds + warmup + 30) * 1000;
  let state;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    state = await page.evaluate(() => ({ fatal: T.fatal, n: T.samples.length, started: T.start !== null }));
    if (state.fatal || state.n >= seconds * 4 || Date.now() > deadline) break;
  }
  const T = await page.evaluate(() => {
    if (T.still > 1) T.stalls.push({ at: +document.getElementById("v").currentTime.toFixed(2), seconds: +T.still.toFixed(2), open: true });
    return T;
  });
  const lat = T.samples.map((s) => s.latency).sort((a, b) => a - b);
  const latency = { p50: quantile(lat, 0.5), p95: quantile(lat, 0.95), max: lat.length ? lat[lat.length - 1] : null,
    min: lat.length ? lat[0] : null, samples: lat.length, hlsjs_estimate_p50: quantile(T.samples.map((s) => s.estimate).sort((a, b) => a - b), 0.5),
    hlsjs_target_p50: quantile(T.samples.map((s) => s.target).sort((a, b) => a - b), 0.5) };
  const problems = [];
  if (T.fatal) problems.push(`fatal: ${T.fatal.details} ${T.fatal.reason}`);
  if (T.start === null) problems.push("never played");
  if (lat.length < seconds * 4 * 0.9) problems.push(`${lat.length} latency samples, not ${seconds * 4}`);
  if (T.stalls.length) problems.push(`${T.stalls.length} stall(s): ${JSON.stringify(T.stalls.slice(0, 5))}`);
  if (!T.parts && !classic) problems.push("hls.js loaded no part: it did not play in low-latency mode");
  result = { ok: problems.length === 0, latency, stalls: T.stalls, parts_loaded: T.parts, errors: T.errors, targets: T.targets,
    page_errors: pageErrors.slice(0, 5), detail: problems.join("; ") || "played" };
} catch (e) {
  result = { ok: false, detail: `driver: ${e.message}` };
} finally {
  await browser.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
