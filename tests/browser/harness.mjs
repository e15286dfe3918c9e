// What the dashboard's browser tests share (dashboard.test.mjs, dashboard-list.test.mjs): options,
// the prerequisite check (skipped outside CI, failed in CI), a looping test source made with ffmpeg,
// and where an element stands in the viewport.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export const chromiumPath = "/usr/bin/chromium";

export function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

// Outside CI a missing prerequisite skips the test; in CI (CI=true) it fails, so it is never silently lost.
export function skip(message) {
  const ci = (process.env.CI || "").toLowerCase();
  if (ci && ci !== "false" && ci !== "0") {
    console.error(`FAIL (prerequisite missing in CI): ${message}`);
    process.exit(1);
  }
  console.error(`SKIP: ${message}`);
  process.exit(77);
}

// The server, Chromium, hls.js, playwright-core and ffmpeg, or skip() saying how to get the missing one.
export function requirePrerequisites({ serverPath, webRoot, testDir }) {
  for (const [path, hint] of [
    [serverPath, "build hlsrelay-server (or pass --server PATH)"],
    [chromiumPath, "apt-get install chromium"],
    [join(webRoot, "node_modules", "hls.js", "dist", "hls.min.js"), "run `npm ci` in server/web"],
    [join(testDir, "node_modules", "playwright-core"), "run `npm ci` in tests/browser"],
  ]) {
    if (!existsSync(path)) skip(`${path} is missing: ${hint}`);
  }
  if (spawnSync("ffmpeg", ["-version"]).status !== 0) skip("ffmpeg is missing: apt-get install ffmpeg");
}

// A short looping source, H.264 (1 s GOPs) + AAC in MPEG-TS, made once per work dir.
export function makeLoopMedia(workDir, name, { size, seconds, videoKbps, audioKbps }) {
  mkdirSync(workDir, { recursive: true });
  const file = join(workDir, name);
  if (existsSync(file)) return file;
  const tmp = file + ".tmp";
  const r = spawnSync("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
    "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=25`,
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", String(seconds), "-map", "0:v", "-map", "1:a",
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
    "-b:v", `${videoKbps}k`, "-c:a", "aac", "-b:a", `${audioKbps}k`, "-f", "mpegts", tmp,
  ], { encoding: "utf8" });
  if (r.status !== 0) throw new Error("ffmpeg failed: " + r.stderr);
  spawnSync("mv", [tmp, file]);
  return file;
}

// Why `selector` is not inside the viewport and on top at its centre (not under the player, not
// scrolled away), or null when it is. `scroll`: scrolled into view first.
export async function visibilityProblem(page, selector, { scroll = false } = {}) {
  const r = await page.evaluate(([sel, scrollFirst]) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    if (scrollFirst) el.scrollIntoView({ block: "center", inline: "nearest" });
    const b = el.getBoundingClientRect();
    const hit = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
    return {
      box: [Math.round(b.left), Math.round(b.top), Math.round(b.right), Math.round(b.bottom)],
      inside: b.width > 0 && b.height > 0 && b.left >= 0 && b.top >= 0 && b.right <= innerWidth && b.bottom <= innerHeight,
      onTop: !!hit && (hit === el || el.contains(hit)),
      hit: hit ? hit.tagName.toLowerCase() + (hit.id ? "#" + hit.id : "") + (hit.className ? "." + hit.className : "") : null,
      viewport: [innerWidth, innerHeight],
    };
  }, [selector, scroll]);
  if (!r) return `(${selector}) is missing`;
  if (!r.inside) return `lies outside the viewport ${r.viewport}: box ${r.box}`;
  if (!r.onTop) return `is covered by ${r.hit} at its centre (box ${r.box})`;
  return null;
}

export async function screenshot(page, outputDir, name) {
  mkdirSync(outputDir, { recursive: true });
  const path = join(outputDir, name);
  await page.screenshot({ path });
  return path;
}
