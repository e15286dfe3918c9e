// hls.js or Shaka Player in headless Chromium on a multivariant HLS ladder, forcing switches; used by
// matrix.py. One page per job, all at once.
// Usage: node switch_player.mjs --page URL --playwright DIR --chromium PATH --bound S --jobs '[{...}]'
//   job: {"key":..,"lib":"hls.js"|"shaka","url":..,"heights":[360,240,144],"languages":["eng","deu"],
//         "stall":6,"goal":8,"switch":true}
// Prints one JSON line: {key: {ok: true|false, detail: "..."}}.
//
// A page plays the master playlist, then (switch: true) forces every video variant in turn (hls.js:
// `hls.nextLevel = n`, a switch at the next fragment without flushing what is buffered; Shaka: ABR off
// and `selectVariantTrack(track, true)`), each until the <video> shows frames of the variant's height
// and has played on from there, then switches the audio to the other language until a fragment of it
// is playing. It fails on
//   - a stall: currentTime not advancing for `stall` s of wall time while the element is not paused
//     (a condition watched all along, not a bound on how long a switch may take);
//   - a gap: the buffered ranges not one contiguous range once a switch has taken effect, hls.js
//     jumping a hole (bufferSeekOverHole) or Shaka jumping one (gapsJumped rising; a rejoin of a
//     type whose buffer a switch cleared, moving the playhead at most 0.25 s, excepted);
//   - a fatal player error, a media (parse/append/decode) error, a <video> error;
//   - a switch that never takes effect within the bound.
// With switch: false the page just plays `goal` s of media (used while a rendition of the origin fails).
import { rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { launchChromium } from "./chromium.mjs";

function option(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`${name} is required`);
  return process.argv[i + 1];
}
const pageUrl = option("--page");
const { chromium } = await import(pathToFileURL(join(option("--playwright"), "index.mjs")).href);
const jobs = JSON.parse(option("--jobs"));
const boundMs = Number(option("--bound")) * 1000;

const HLSJS_MEDIA_ERRORS = new Set(["fragParsingError", "bufferAppendError", "bufferAddCodecError",
  "remuxAllocError", "manifestParsingError", "levelParsingError", "bufferIncompatibleCodecsError"]);
// Shaka reports ISO 639-1 codes ("en") for the playlist's ISO 639-2 ones ("eng"): compared by their first two letters.
const same = (a, b) => !!a && !!b && a.slice(0, 2).toLowerCase() === b.slice(0, 2).toLowerCase();
const HLSJS_GAP_ERRORS = new Set(["bufferSeekOverHole"]);

const { browser, userDataDir } = await launchChromium(chromium, option("--chromium"), "hlsrelay-players-switch-");

// Runs in the page: starts the player and the watchdog; window.T is what the driver reads.
function start(job) {
  const video = document.getElementById("v");
  const T = (window.T = { errors: [], fatal: null, start: null, stall: null, stallMax: 0, gaps: [],
    levels: [], audioTracks: [], buffered: [], gapEvents: 0, audioFrags: {} });
  let lastTime = -1, lastMove = performance.now();
  setInterval(() => {
    const now = performance.now();
    if (video.currentTime !== lastTime) { lastTime = video.currentTime; lastMove = now; return; }
    if (T.start === null || video.paused || video.ended) { lastMove = now; return; }
    const still = (now - lastMove) / 1000;
    T.stallMax = Math.max(T.stallMax, still);
    if (still >= job.stall && !T.stall) {
      T.stall = `currentTime stuck at ${video.currentTime.toFixed(2)} for ${still.toFixed(1)} s (${T.phase || "start"})`;
      if (window.shaka && window.player instanceof shaka.Player) {  // what Shaka holds and may play
        const b = player.getBufferedInfo(), r = player.seekRange();
        const round = (rs) => (rs || []).map((x) => [+x.start.toFixed(3), +x.end.toFixed(3)]);
        T.stall += `; buffered video ${JSON.stringify(round(b.video))} audio ${JSON.stringify(round(b.audio))},`
          + ` seek range [${r.start.toFixed(2)}, ${r.end.toFixed(2)}]`;
        // What Shaka's own index of each active stream says about the playhead: the reference it
        // finds there (or none), and the span the index covers. An empty buffer with no reference
        // at the playhead is Shaka unable to place the stream's media; with one, it did not load it.
        try {
          const active = player.getVariantTracks().find((t) => t.active);
          const variant = active && player.getManifest()?.variants.find((v) => v.id === active.id);
          for (const [type, stream] of [["video", variant?.video], ["audio", variant?.audio]]) {
            const index = stream?.segmentIndex;
            if (!index) { T.stall += ` ${type} index: none;`; continue; }
            const refs = [...index];
            const pos = index.find(video.currentTime);
            const ref = pos == null ? null : index.get(pos);
            const name = (x) => x ? `${x.getUris()[0]?.split("/").slice(-2).join("/")} [${x.getStartTime().toFixed(3)}, ${x.getEndTime().toFixed(3)})` : "none";
            T.stall += ` ${type} index (${stream.id}): ${refs.length} refs ${name(refs[0])} .. ${name(refs[refs.length - 1])},`
              + ` at the playhead ${name(ref)};`;
          }
        } catch (e) {
          T.stall += ` (index: ${e.message})`;
        }
      }
    }
  }, 250);
  video.addEventListener("playing", () => { if (T.start === null) T.start = video.currentTime; });
  const err = (e) => { T.errors.push(e); if (e.fatal && !T.fatal) T.fatal = e; };
  if (job.lib === "hls.js") {
    const hls = (window.player = new Hls({ lowLatencyMode: false }));
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (HLSJS_GAPS.includes(d.details)) T.gapEvents++;
      err({ details: d.details, fatal: !!d.fatal, reason: String(d.reason || d.error?.message || d.err?.message || "") });
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      T.levels = hls.levels.map((l) => l.height);
      T.audioTracks = hls.audioTracks.map((t) => t.lang);
    });
    hls.on(Hls.Events.FRAG_BUFFERED, (_, d) => {
      if (d.frag.type === "audio") {
        const lang = hls.audioTracks[d.frag.level]?.lang;
        (T.audioFrags[lang] ||= []).push(d.frag.start);
      }
    });
    hls.loadSource(job.url);
    hls.attachMedia(video);
  } else {
    shaka.polyfill.installAll();
    const player = (window.player = new shaka.Player());
    player.configure({ streaming: { lowLatencyMode: false } });
    // Where Shaka jumps a gap: the playhead, the phase and the buffered ranges per type just before.
    // A small jump (the playhead moved at most 0.25 s in a 0.1 s tick) while one type's buffer was
    // empty is a rejoin: a forced switch clears that buffer and the player starts it again at the
    // playhead, as when it joins the stream, where an audio segment boundary may lie a few ms past
    // the video's. Any other jump is a hole in the media, which counts.
    T.jumps = [];
    T.holes = 0;
    let jumps = 0, info = null, last = 0;
    const round = (rs) => (rs || []).map((r) => [+r.start.toFixed(3), +r.end.toFixed(3)]);
    setInterval(() => {
      const n = player.getStats().gapsJumped || 0;
      if (n > jumps) {
        const moved = video.currentTime - last;
        const rejoin = (!info || info.video.length === 0 || info.audio.length === 0) && moved <= 0.25;
        if (!rejoin) T.holes += n - jumps;
        if (T.jumps.length < 5) T.jumps.push({ at: +video.currentTime.toFixed(3), moved: +moved.toFixed(3),
          phase: T.phase || "start", rejoin, before: info });
      }
      last = video.currentTime;
      jumps = n;
      const b = player.getBufferedInfo();
      const r = player.seekRange();
      info = { video: round(b.video), audio: round(b.audio), seekable: [+r.start.toFixed(3), +r.end.toFixed(3)] };
    }, 100);
    // A JavaScript error inside Shaka comes as the event's detail itself: where it was thrown says most.
    const where = (d) => (d?.stack ? " at " + String(d.stack).split("\n").slice(1, 4).map((l) => l.trim()).join(" < ") : "");
    player.addEventListener("error", (e) => err({ details: `shaka ${e.detail?.code}`, fatal: e.detail?.severity === 2,
      reason: String(e.detail?.message || JSON.stringify(e.detail?.data || "").slice(0, 200)) + where(e.detail) }));
    player.attach(video).then(() => player.load(job.url)).then(() => {
      const tracks = player.getVariantTracks();
      T.levels = [...new Set(tracks.map((t) => t.height))];
      T.audioTracks = [...new Set(tracks.map((t) => t.language))];
      return video.play();
    }).catch((e) => err({ details: `shaka load ${e.code}`, fatal: true, reason: String(e.message || JSON.stringify(e.data || "")) }));
    return;
  }
  video.play().catch((e) => err({ details: "play() rejected", fatal: false, reason: e.message }));
}

async function play(job) {
  const page = await browser.newPage();
  const consoleLog = [];
  page.on("pageerror", (e) => consoleLog.push(`pageerror: ${e.message}`));
  // The player's last audio requests (a rendition "a<n>/"), told when the job fails: what it asked
  // for and what it got, in seconds since the page opened.
  const opened = Date.now();
  const audioRequests = [];
  const noteAudio = (url, outcome) => {
    const path = new URL(url).pathname;
    if (!/\/a\d+\//.test(path)) return;
    audioRequests.push(`${((Date.now() - opened) / 1000).toFixed(1)} ${outcome} ${path.split("/").slice(-2).join("/")}`);
    if (audioRequests.length > 8) audioRequests.shift();
  };
  page.on("response", (r) => noteAudio(r.url(), r.status()));
  page.on("requestfailed", (r) => noteAudio(r.url(), "failed"));
  const deadline = Date.now() + boundMs;
  const log = [];
  let lastErrors = [];
  try {
    await page.goto(pageUrl, { waitUntil: "load", timeout: 20_000 });
    const loaded = await page.evaluate((lib) => lib === "hls.js" ? typeof window.Hls === "function" && Hls.isSupported()
      : typeof window.shaka === "object" && shaka.Player.isBrowserSupported(), job.lib);
    if (!loaded) return { ok: false, detail: `${job.lib} did not load or says this browser is unsupported` };
    await page.evaluate(`window.HLSJS_GAPS = ${JSON.stringify([...HLSJS_GAP_ERRORS])}; (${start.toString()})(${JSON.stringify(job)})`);

    const snapshot = () => page.evaluate(() => {
      const v = document.getElementById("v");
      const ranges = [];
      for (let i = 0; i < v.buffered.length; i++) ranges.push([v.buffered.start(i), v.buffered.end(i)]);
      const T = window.T;
      let stats = null, active = null;
      if (window.shaka && window.player instanceof shaka.Player) {
        const s = player.getStats();
        stats = { gapsJumped: s.gapsJumped, stallsDetected: s.stallsDetected };
        const a = player.getVariantTracks().find((t) => t.active);
        active = a ? { height: a.height, language: a.language } : null;
      } else if (window.player && window.Hls && window.player instanceof Hls) {
        T.audioTracks = player.audioTracks.map((t) => t.lang);
        active = { level: player.currentLevel, height: player.levels[player.currentLevel]?.height,
          language: player.audioTracks[player.audioTrack]?.lang };
      }
      return { now: v.currentTime, height: v.videoHeight, ranges, fatal: T.fatal, stall: T.stall, start: T.start,
        levels: T.levels, audioTracks: T.audioTracks, gapEvents: T.gapEvents, stats, active, errors: T.errors,
        mediaError: v.error ? `${v.error.code} ${v.error.message}` : null, audioFrags: T.audioFrags,
        audioBytes: v.webkitAudioDecodedByteCount ?? null, jumps: T.jumps || [], holes: T.holes || 0 };
    });
    const broken = (s) => s.fatal ? `fatal ${s.fatal.details}: ${s.fatal.reason}` : s.mediaError ? `video element error ${s.mediaError}`
      : s.stall ? `stall: ${s.stall}` : null;
    // Waits until cond(snapshot) holds; returns the snapshot, or throws what broke / that it did not happen.
    const until = async (what, cond) => {
      for (;;) {
        const s = await snapshot();
        lastErrors = s.errors;
        const b = broken(s);
        if (b) throw new Error(`${b} (while waiting for ${what})`);
        if (cond(s)) return s;
        if (Date.now() > deadline) throw new Error(`${what}: not within the bound (now ${s.now.toFixed(1)}, height ${s.height}, `
          + `active ${JSON.stringify(s.active)}, buffered ${JSON.stringify(s.ranges.map((r) => r.map((x) => +x.toFixed(2))))}, `
          + `stats ${JSON.stringify(s.stats)}, errors ${JSON.stringify(s.errors.slice(0, 3))})`);
        await page.waitForTimeout(250);
      }
    };
    const contiguous = (s, after) => {
      // One range around the playhead: a gap at a switch shows as a second range after it.
      if (s.ranges.length !== 1) return `after ${after}: buffered ${JSON.stringify(s.ranges.map((r) => r.map((x) => +x.toFixed(3))))}`;
      return null;
    };
    const gaps = [];
    let s = await until("playback starts", (x) => x.start !== null && x.now - x.start >= 2 && x.levels.length > 0);
    // Holes jumped from here on count: joining a live stream, a player may jump one to reach the
    // buffered media (calibrated: Shaka does so now and then on the sources themselves).
    const base = { gapEvents: s.gapEvents, holes: s.holes };
    log.push(`levels ${JSON.stringify(s.levels)} audio ${JSON.stringify(s.audioTracks)}`);
    if (job.switch) {
      const heights = [...job.heights].sort((a, b) => b - a);
      const have = [...s.levels].sort((a, b) => b - a);
      if (JSON.stringify(have) !== JSON.stringify(heights)) throw new Error(`the player sees variants ${JSON.stringify(have)}, not ${JSON.stringify(heights)}`);
      for (const l of job.languages) if (!s.audioTracks.some((a) => same(a, l))) throw new Error(`the player sees audio ${JSON.stringify(s.audioTracks)}, no ${l}`);
      // Every variant in turn, starting with one that is not playing now.
      const order = heights.filter((h) => h !== s.height).concat(heights.filter((h) => h === s.height));
      for (const h of order) {
        await page.evaluate(([h, lib]) => {
          window.T.phase = `switch to ${h}p`;
          if (lib === "hls.js") { player.nextLevel = player.levels.findIndex((l) => l.height === h); return; }
          player.configure({ abr: { enabled: false } });
          const cur = player.getVariantTracks().find((t) => t.active);
          const t = player.getVariantTracks().find((t) => t.height === h && t.language === cur.language);
          player.selectVariantTrack(t, true);
        }, [h, job.lib]);
        const at = await until(`frames of the ${h}p variant`, (x) => x.height === h);
        s = await until(`playing on after the switch to ${h}p`, (x) => x.now >= at.now + 2 && x.height === h);
        const g = contiguous(s, `the switch to ${h}p`);
        if (g) gaps.push(g);
        log.push(`${h}p at ${at.now.toFixed(1)}`);
      }
      const other = same(s.active?.language, job.languages[0]) ? job.languages[1] : job.languages[0];
      await page.evaluate(([lang, lib]) => {
        const same = (a, b) => !!a && !!b && a.slice(0, 2).toLowerCase() === b.slice(0, 2).toLowerCase();
        window.T.phase = `audio to ${lang}`;
        if (lib === "hls.js") { player.audioTrack = player.audioTracks.findIndex((t) => same(t.lang, lang)); return; }
        const cur = player.getVariantTracks().find((t) => t.active);
        player.selectVariantTrack(player.getVariantTracks().find((t) => t.height === cur.height && same(t.language, lang)), true);
      }, [other, job.lib]);
      // Switched when the player says so and (hls.js) a fragment of the new language is buffered and
      // playing; then played on.
      const sw = await until(`audio in ${other}`, (x) => same(x.active?.language, other)
        && (job.lib !== "hls.js" || (x.audioFrags[other] || []).some((t) => t <= x.now)));
      s = await until(`playing on in ${other}`, (x) => x.now >= sw.now + 2);
      const g = contiguous(s, `the audio switch to ${other}`);
      if (g) gaps.push(g);
      log.push(`audio ${other} at ${sw.now.toFixed(1)}`);
    } else {
      s = await until(`${job.goal} s played`, (x) => x.now - x.start >= job.goal);
    }
    const problems = [];
    const mediaErrors = s.errors.filter((e) => HLSJS_MEDIA_ERRORS.has(e.details) || (job.lib === "shaka" && /^shaka 3\d\d\d/.test(e.details)));
    if (mediaErrors.length) problems.push(`media error ${mediaErrors[0].details}: ${mediaErrors[0].reason}`);
    if (job.switch) {
      problems.push(...gaps.map((g) => `gap ${g}`));
      if (s.gapEvents > base.gapEvents) problems.push(`hls.js jumped ${s.gapEvents - base.gapEvents} hole(s) in the buffer`);
      if (s.holes > base.holes) problems.push(`Shaka jumped ${s.holes - base.holes} hole(s) in buffered media`
        + ` (${JSON.stringify(s.jumps)})`);
    }
    if (s.audioBytes === 0) problems.push("no audio decoded");
    const counts = {};
    for (const e of s.errors) counts[e.details] = (counts[e.details] || 0) + 1;
    const others = Object.entries(counts).map(([k, n]) => `${k}x${n}`).join(",");
    const detail = (problems.length ? problems.join("; ") + "; " : "") + log.join(", ")
      + (s.stats ? `, stalls ${s.stats.stallsDetected}` : "") + (others ? ` [errors: ${others}; first: ${s.errors[0].reason.slice(0, 160)}]` : "");
    return { ok: problems.length === 0, detail: detail + (consoleLog.length ? ` (${consoleLog[0]})` : "") };
  } catch (e) {
    const first = lastErrors.length ? ` [first error: ${lastErrors[0].details} ${lastErrors[0].reason.slice(0, 400)}]` : "";
    return { ok: false, detail: `${e.message.split("\n")[0]}; ${log.join(", ")}${first}` + (consoleLog.length ? ` (${consoleLog[0]})` : "")
      + (audioRequests.length ? ` [last audio requests: ${audioRequests.join("; ")}]` : "") };
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
