// Browser test of the dashboard in Debian's Chromium. hlsrelay-server runs a --channels list with two
// channels: "broken" (an unreachable source, started with --autostart, so it shows an error) and
// "demo" (a looping local file, left stopped). At 1024x768, 1280x800, 1440x900 and 390x844 (a phone)
// the controls and the error column must be inside the viewport and not covered by anything (the
// element at each one's centre is that element), and the page must not scroll sideways. At 1280x800
// and 390x844 pressing Play on the stopped demo channel must start it (state "running") and play
// it (the video's currentTime advances). Screenshots of each width go to tests/browser/output/.
// Usage: node dashboard.test.mjs [--server PATH] [--work-dir DIR] [--output DIR] [--web-root DIR]
// Exit codes: 0 pass, 1 fail, 77 a prerequisite is missing (ctest reports it as skipped).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const outputDir = option("--output", join(here, "output"));
const chromiumPath = "/usr/bin/chromium";
const budgetMs = 200_000;

const serverPath = option("--server", process.env.HLSRELAY_SERVER || join(repo, "build", "server", "hlsrelay-server"));
const workDir = option("--work-dir", join(tmpdir(), "hlsrelay-browser-test"));
const webRoot = option("--web-root", join(repo, "server", "web"));

// Outside CI a missing prerequisite skips the test; in CI (CI=true) it fails, so it is never silently lost.
function skip(message) {
  const ci = (process.env.CI || "").toLowerCase();
  if (ci && ci !== "false" && ci !== "0") {
    console.error(`FAIL (prerequisite missing in CI): ${message}`);
    process.exit(1);
  }
  console.error(`SKIP: ${message}`);
  process.exit(77);
}

for (const [path, hint] of [
  [serverPath, "build hlsrelay-server (or pass --server PATH)"],
  [chromiumPath, "apt-get install chromium"],
  [join(webRoot, "node_modules", "hls.js", "dist", "hls.min.js"), "run `npm ci` in server/web"],
  [join(here, "node_modules", "playwright-core"), "run `npm ci` in tests/browser"],
]) {
  if (!existsSync(path)) skip(`${path} is missing: ${hint}`);
}
if (spawnSync("ffmpeg", ["-version"]).status !== 0) skip("ffmpeg is missing: apt-get install ffmpeg");
const { chromium } = await import("playwright-core");

let server = null;
let browser = null;
let serverLog = "";
const consoleLog = [];

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  browser = null;
  if (server && server.exitCode === null) server.kill("SIGKILL");
}

async function fail(message) {
  console.error(`FAIL: ${message}`);
  if (consoleLog.length) console.error("--- browser console ---\n" + consoleLog.slice(-30).join("\n"));
  console.error("--- server log (tail) ---\n" + serverLog.split("\n").slice(-30).join("\n"));
  await cleanup();
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const watchdog = setTimeout(() => fail(`the test took longer than ${budgetMs / 1000} s`), budgetMs);

// A short looping source: 8 s of 640x360@25 H.264 (1 s GOPs) + AAC, made once per work dir.
function makeMedia() {
  mkdirSync(workDir, { recursive: true });
  const file = join(workDir, "demo-loop.ts");
  if (existsSync(file)) return file;
  const tmp = file + ".tmp";
  const r = spawnSync("ffmpeg", [
    "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", "8", "-map", "0:v", "-map", "1:a",
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
    "-b:v", "800k", "-c:a", "aac", "-b:a", "96k", "-f", "mpegts", tmp,
  ], { encoding: "utf8" });
  if (r.status !== 0) throw new Error("ffmpeg failed: " + r.stderr);
  spawnSync("mv", [tmp, file]);
  return file;
}

function startServer(channels) {
  return new Promise((resolveUrl, reject) => {
    server = spawn(serverPath, ["--channels", channels, "--listen", "127.0.0.1:0", "--segment-duration", "1",
      "--autostart", "broken", "--web-root", webRoot, "--log-level", "info"], { stdio: ["ignore", "pipe", "pipe"] });
    const onData = (chunk) => {
      serverLog += chunk.toString();
      const m = serverLog.match(/serving \d+ channel\(s\) at (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) resolveUrl(m[1]);
    };
    server.stdout.on("data", onData);
    server.stderr.on("data", onData);
    server.on("exit", (code) => reject(new Error(`hlsrelay-server exited early with ${code}`)));
    setTimeout(() => reject(new Error("hlsrelay-server did not print its URL within 15 s")), 15_000);
  });
}

// Inside the viewport and on top at its centre (not under the player, not scrolled away).
async function checkVisible(page, selector, what, label) {
  const r = await page.evaluate((sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    const b = el.getBoundingClientRect();
    const hit = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
    return {
      box: [Math.round(b.left), Math.round(b.top), Math.round(b.right), Math.round(b.bottom)],
      inside: b.width > 0 && b.height > 0 && b.left >= 0 && b.top >= 0 && b.right <= innerWidth && b.bottom <= innerHeight,
      onTop: !!hit && (hit === el || el.contains(hit)),
      hit: hit ? hit.tagName.toLowerCase() + (hit.id ? "#" + hit.id : "") + (hit.className ? "." + hit.className : "") : null,
      viewport: [innerWidth, innerHeight],
    };
  }, selector);
  if (!r) await fail(`${label}: ${what} (${selector}) is missing`);
  if (!r.inside) await fail(`${label}: ${what} lies outside the viewport ${r.viewport}: box ${r.box}`);
  if (!r.onTop) await fail(`${label}: ${what} is covered by ${r.hit} at its centre (box ${r.box})`);
}

async function screenshot(page, name) {
  mkdirSync(outputDir, { recursive: true });
  const path = join(outputDir, name);
  await page.screenshot({ path });
  return path;
}

async function checkLayout(page, label) {
  await page.waitForFunction(() => /ago$/.test(document.querySelector('tr[data-channel="broken"] .error-age')?.textContent ?? ""),
    null, { timeout: 30_000, polling: 250 })
    .catch(() => fail(`${label}: the broken channel shows no error with its age`));
  for (const action of ["start", "stop", "play"])
    await checkVisible(page, `button[data-action="${action}"][data-channel="demo"]`, `the demo channel's ${action} button`, label);
  await checkVisible(page, 'tr[data-channel="broken"] .error-text', "the broken channel's last error", label);
  await checkVisible(page, 'tr[data-channel="broken"] .error-age', "the broken channel's error age", label);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  if (overflow > 0) await fail(`${label}: the page is ${overflow} px wider than the viewport`);
}

// Play on the stopped demo channel: it starts, the dashboard shows it running, the video plays.
async function playStopped(page, label) {
  const state = () => page.evaluate(() => document.querySelector('tr[data-channel="demo"] .state')?.textContent);
  const before = await state();
  if (before !== "idle" && before !== "stopped") await fail(`${label}: the demo channel is ${before}, not stopped, before Play`);
  await page.locator('button[data-action="play"][data-channel="demo"]').click();
  await page.waitForFunction(() => document.querySelector('tr[data-channel="demo"] .state')?.textContent === "running",
    null, { timeout: 30_000, polling: 250 }).catch(async () => fail(`${label}: after Play the demo channel is ${await state()}, not running`));
  // Playing: currentTime moves on by 2 s from where it first was seen moving.
  const first = await page.waitForFunction(() => {
    const t = document.querySelector("video").currentTime;
    return t > 0 ? t : false;
  }, null, { timeout: 45_000, polling: 250 }).then((h) => h.jsonValue()).catch(() => null);
  const played = first === null ? null : await page.waitForFunction((t0) => document.querySelector("video").currentTime > t0 + 2,
    first, { timeout: 45_000, polling: 250 }).then(() => page.evaluate(() => document.querySelector("video").currentTime)).catch(() => null);
  if (played === null) {
    const v = await page.evaluate(() => ({
      currentTime: document.querySelector("video").currentTime,
      readyState: document.querySelector("video").readyState,
      error: document.querySelector("video").error?.message ?? null,
      status: document.getElementById("player-status").textContent,
      message: document.getElementById("message").textContent,
    }));
    await screenshot(page, `failure-${label}.png`).catch(() => {});
    await fail(`${label}: the video did not play on after Play: ${JSON.stringify(v)}`);
  }
  return played;
}

try {
  const media = makeMedia();
  const channels = join(workDir, "channels.json");
  writeFileSync(channels, JSON.stringify({ channels: [
    { id: "broken", name: "Unreachable source with a rather long channel name", url: "http://127.0.0.1:1/live/index.m3u8" },
    { id: "demo", name: "hlsrelay Demo", url: media, loop: true },
  ] }));
  const url = await startServer(channels);
  console.log(`server at ${url}`);

  const userDataDir = mkdtempSync(join(tmpdir(), "hlsrelay-chromium-"));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
    viewport: { width: 1280, height: 800 },
  });
  const page = browser.pages()[0] || (await browser.newPage());
  page.on("console", (m) => consoleLog.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => consoleLog.push(`[pageerror] ${e.message}`));

  await page.goto(url, { waitUntil: "load", timeout: 15_000 });
  await page.locator('button[data-action="play"][data-channel="demo"]').waitFor({ timeout: 10_000 });
  if (!(await page.evaluate(() => typeof window.Hls === "function"))) await fail("hls.js did not load from /assets/hls.min.js");

  const results = [];
  for (const [width, height] of [[1024, 768], [1440, 900], [1280, 800]]) {
    const label = `${width}x${height}`;
    await page.setViewportSize({ width, height });
    await checkLayout(page, label);
    results.push(`${label} layout ok (${await screenshot(page, `dashboard-${label}.png`)})`);
  }
  const desktopPlayed = await playStopped(page, "1280x800");
  await checkLayout(page, "1280x800 playing");
  results.push(`1280x800 Play started the stopped channel, played to ${desktopPlayed.toFixed(1)} s (${await screenshot(page, "dashboard-1280x800-playing.png")})`);

  // The phone: stop the demo channel with its Stop button, then Play it again from the stopped state.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(url, { waitUntil: "load", timeout: 15_000 });
  await checkLayout(page, "390x844");
  results.push(`390x844 layout ok (${await screenshot(page, "dashboard-390x844.png")})`);
  await page.locator('button[data-action="stop"][data-channel="demo"]').click();
  await page.waitForFunction(() => document.querySelector('tr[data-channel="demo"] .state')?.textContent === "stopped",
    null, { timeout: 30_000, polling: 250 }).catch(() => fail("390x844: Stop did not stop the demo channel"));
  const phonePlayed = await playStopped(page, "390x844");
  results.push(`390x844 Play started the stopped channel, played to ${phonePlayed.toFixed(1)} s (${await screenshot(page, "dashboard-390x844-playing.png")})`);

  await browser.close();
  browser = null;
  rmSync(userDataDir, { recursive: true, force: true });

  server.removeAllListeners("exit");
  const exited = new Promise((r) => server.on("exit", (code) => r(code)));
  server.kill("SIGTERM");
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), 10_000))]);
  if (code !== 0) await fail(`hlsrelay-server did not exit cleanly on SIGTERM (${code})`);

  clearTimeout(watchdog);
  for (const r of results) console.log("  " + r);
  console.log("PASS: controls and errors visible at every width; Play starts a stopped channel and plays it");
  console.log("1 passed, 0 failed");
} catch (e) {
  await fail(e.stack || String(e));
}
