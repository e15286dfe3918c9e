// Browser test of the dashboard: starts hlsrelay-server on a looping local file, opens the page in
// Debian's Chromium, clicks the demo channel's Start button and waits for the video to play past 2 s.
// Usage: node dashboard.test.mjs [--server PATH] [--work-dir DIR]
// Exit codes: 0 pass, 1 fail, 77 a prerequisite is missing (ctest reports it as skipped).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const outputDir = join(here, "output");
const chromiumPath = "/usr/bin/chromium";
const budgetMs = 90_000;

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const serverPath = option("--server", process.env.HLSRELAY_SERVER || join(repo, "build", "server", "hlsrelay-server"));
const workDir = option("--work-dir", join(tmpdir(), "hlsrelay-browser-test"));
const webRoot = join(repo, "server", "web");

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
      "--web-root", webRoot, "--log-level", "info"], { stdio: ["ignore", "pipe", "pipe"] });
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

try {
  const media = makeMedia();
  const channels = join(workDir, "channels.json");
  writeFileSync(channels, JSON.stringify({ channels: [{ id: "demo", name: "hlsrelay Demo", url: media, loop: true }] }));
  const url = await startServer(channels);
  console.log(`server at ${url}`);

  const userDataDir = mkdtempSync(join(tmpdir(), "hlsrelay-chromium-"));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
    viewport: { width: 1280, height: 720 },
  });
  const page = browser.pages()[0] || (await browser.newPage());
  page.on("console", (m) => consoleLog.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => consoleLog.push(`[pageerror] ${e.message}`));

  await page.goto(url, { waitUntil: "load", timeout: 15_000 });
  const start = page.locator('button[data-action="start"][data-channel="demo"]');
  await start.waitFor({ timeout: 10_000 });
  if (!(await page.evaluate(() => typeof window.Hls === "function"))) await fail("hls.js did not load from /assets/hls.min.js");
  await start.click();

  await page.waitForFunction(() => document.querySelector("video").currentTime > 2, null, { timeout: 45_000, polling: 250 })
    .catch(async () => {
      const state = await page.evaluate(() => ({
        currentTime: document.querySelector("video").currentTime,
        readyState: document.querySelector("video").readyState,
        error: document.querySelector("video").error?.message ?? null,
        status: document.getElementById("player-status").textContent,
        message: document.getElementById("message").textContent,
      }));
      mkdirSync(outputDir, { recursive: true });
      await page.screenshot({ path: join(outputDir, "dashboard-failure.png") }).catch(() => {});
      await fail(`the video did not play past 2 s: ${JSON.stringify(state)}`);
    });
  const played = await page.evaluate(() => document.querySelector("video").currentTime);
  // The status row catches up with the started channel on the next refresh.
  await page.waitForFunction(() => document.querySelector('tr[data-channel="demo"] .state')?.textContent === "running",
    null, { timeout: 10_000 }).catch(() => fail("the dashboard does not show the demo channel as running"));

  mkdirSync(outputDir, { recursive: true });
  const shot = join(outputDir, "dashboard.png");
  await page.screenshot({ path: shot });
  await browser.close();
  browser = null;
  rmSync(userDataDir, { recursive: true, force: true });

  server.removeAllListeners("exit");
  const exited = new Promise((r) => server.on("exit", (code) => r(code)));
  server.kill("SIGTERM");
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), 10_000))]);
  if (code !== 0) await fail(`hlsrelay-server did not exit cleanly on SIGTERM (${code})`);

  clearTimeout(watchdog);
  console.log(`PASS: the demo channel played to ${played.toFixed(1)} s; screenshot ${shot}`);
  console.log("1 passed, 0 failed");
} catch (e) {
  await fail(e.stack || String(e));
}
