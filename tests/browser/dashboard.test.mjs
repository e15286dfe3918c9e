// Browser test of the dashboard in Debian's Chromium. hlsrelay-server runs a --channels list with two
// channels: "broken" (an unreachable source, started with --autostart, so it shows an error) and
// "demo" (a looping local file, left stopped). At 1024x768, 1280x800, 1440x900 and 390x844 (a phone)
// the controls and the error column must be inside the viewport and not covered by anything (the
// element at each one's centre is that element), and the page must not scroll sideways. At 1280x800
// and 390x844 pressing Play on the stopped demo channel must start it (state "running") and play
// it (the video's currentTime advances). A third channel, "ladder", is a status fixture added to the
// server's /api/v1/channels/streams-status answer in the browser (a presentation: 3 video, 2 audio and
// 1 subtitle renditions, fMP4 out, one audio rendition reconnecting, names and languages that carry
// HTML): at every width its renditions summary is visible, opening it shows one row per rendition
// with its fields, the page still does not scroll sideways, and the HTML stays text (no element, no
// script run). Screenshots of each width go to tests/browser/output/.
// Usage: node dashboard.test.mjs [--server PATH] [--work-dir DIR] [--output DIR] [--web-root DIR]
// Exit codes: 0 pass, 1 fail, 77 a prerequisite is missing (ctest reports it as skipped).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromiumPath, makeLoopMedia, option, requirePrerequisites, screenshot as saveScreenshot, visibilityProblem } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const outputDir = option("--output", join(here, "output"));
const budgetMs = 200_000;

const serverPath = option("--server", process.env.HLSRELAY_SERVER || join(repo, "build", "server", "hlsrelay-server"));
const workDir = option("--work-dir", join(tmpdir(), "hlsrelay-browser-test"));
const webRoot = option("--web-root", join(repo, "server", "web"));

requirePrerequisites({ serverPath, webRoot, testDir: here });
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
  return makeLoopMedia(workDir, "demo-loop.ts", { size: "640x360", seconds: 8, videoKbps: 800, audioKbps: 96 });
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

// A presentation as the status JSON describes it (agent contract: ChannelStatus.renditions). Names and
// languages come from the source's multivariant playlist: untrusted, so some carry markup.
const hostileName = '<img src=x onerror="window.__pwned=1">Fran\u00e7ais';
const hostileLanguage = '"><script>window.__pwned=2</script>';
function rendition(id, kind, fields) {
  return { id, kind, name: null, language: null, group: null, codecs: null, bandwidth: null, resolution: null,
    state: "running", newest_segment_age_seconds: 0.8, bytes_in: 12_345_678, segment_count: 5, last_error: null, ...fields };
}
const ladderFixture = {
  channel_name: "Ladder fixture <b>bold</b>", stream_id: "ladder", process_status: "running", cleanup_running: true,
  segment_count: 5, max_segments: 5, master_playlist_exists: true, hls_url: "/hls_streams/ladder/master.m3u8",
  estimated_buffer_seconds: 10, state: "running", last_error: null, last_error_at: null, last_error_age_seconds: null,
  previous_error: null, previous_error_at: null, reconnects: 0, reconnect_attempts: 0, uptime_seconds: 60,
  source: "http://127.0.0.1:9/ladder/master.m3u8", source_index: 0, input_bitrate: 4_200_000, output_bitrate: 4_100_000,
  codecs: "avc1.64001f,mp4a.40.2", resolution: "1280x720", newest_segment_age_seconds: 0.8, container: "fmp4", viewers: 0,
  renditions: [
    rendition("v0", "video", { codecs: "avc1.64001f", bandwidth: 2_800_000, resolution: "1280x720", group: "aud" }),
    rendition("v1", "video", { codecs: "avc1.64001e", bandwidth: 1_200_000, resolution: "640x360", group: "aud" }),
    rendition("v2", "video", { codecs: "avc1.64000c", bandwidth: 300_000, resolution: "256x144", group: "aud" }),
    rendition("a0", "audio", { name: "English", language: "en", group: "aud", codecs: "mp4a.40.2", bandwidth: 96_000 }),
    rendition("a1", "audio", { name: hostileName, language: hostileLanguage, group: "aud", codecs: "mp4a.40.2",
      state: "reconnecting", newest_segment_age_seconds: 9.5, last_error: "HTTP 503 <i>from</i> the origin" }),
    rendition("s0", "subtitles", { name: "Deutsch", language: "de", group: "subs", codecs: "wvtt",
      newest_segment_age_seconds: null, bytes_in: 2048 }),
  ],
};

// The renditions of the fixture channel: summary visible; opened, one row per rendition with its
// fields, markup from the source shown as text, no sideways scrolling; closed again afterwards.
async function checkRenditions(page, label) {
  const summary = 'tr[data-renditions-of="ladder"] summary';
  await page.waitForFunction((sel) => !!document.querySelector(sel), summary, { timeout: 10_000, polling: 250 })
    .catch(() => fail(`${label}: the ladder fixture's renditions summary is missing`));
  await scrollTo(page, summary);
  await checkVisible(page, summary, "the ladder channel's renditions summary", label);
  const summaryText = await page.locator(summary).textContent();
  const expected = "6 renditions: 3 video, 2 audio, 1 subtitles · fMP4 · 1 not running";
  if (summaryText !== expected) await fail(`${label}: renditions summary is "${summaryText}", not "${expected}"`);
  const format = await page.evaluate(() => document.querySelector('tr[data-channel="ladder"] .format')?.textContent ?? "");
  if (!format.includes("fMP4") || !format.includes("1280x720")) await fail(`${label}: the ladder channel's stream line is "${format}"`);
  // Collapsed: the rendition table takes no room.
  if (await page.locator('tr[data-renditions-of="ladder"] tr[data-rendition="v0"]').isVisible())
    await fail(`${label}: the renditions are shown before the summary is opened`);
  await page.locator(summary).click();
  const rows = await page.evaluate(() => [...document.querySelectorAll('tr[data-renditions-of="ladder"] tbody tr')].map((tr) => ({
    id: tr.dataset.rendition,
    cells: Object.fromEntries([...tr.children].map((td) => [td.className, td.textContent])),
    visible: tr.getBoundingClientRect().height > 0,
  })));
  const ids = rows.map((r) => r.id).join(",");
  if (ids !== "v0,v1,v2,a0,a1,s0") await fail(`${label}: rendition rows ${ids}, not v0,v1,v2,a0,a1,s0`);
  if (!rows.every((r) => r.visible)) await fail(`${label}: opened, some rendition rows have no height`);
  const byId = Object.fromEntries(rows.map((r) => [r.id, r.cells]));
  const want = [
    ["v0", "r-id", "v0 · video"], ["v0", "r-resolution", "1280x720"], ["v0", "r-codecs", "avc1.64001f"],
    ["v0", "r-bandwidth", "2.80 Mbit/s"], ["v0", "r-state", "running"], ["v0", "r-age", "0.8 s ago"], ["v0", "r-bytes", "12.3 MB"],
    ["a0", "r-name", "English · en · group aud"], ["a0", "r-bandwidth", "96 kbit/s"], ["a0", "r-resolution", "–"],
    ["a1", "r-name", `${hostileName} · ${hostileLanguage} · group aud`], ["a1", "r-state", "reconnecting"], ["a1", "r-age", "9.5 s ago"],
    ["s0", "r-id", "s0 · subtitles"], ["s0", "r-age", "–"], ["s0", "r-bytes", "2 kB"],
  ];
  for (const [id, cell, text] of want)
    if (byId[id]?.[cell] !== text) await fail(`${label}: rendition ${id} ${cell} is ${JSON.stringify(byId[id]?.[cell])}, not ${JSON.stringify(text)}`);
  const injected = await page.evaluate(() => ({
    pwned: window.__pwned ?? null,
    elements: document.querySelectorAll('img, tbody script, tr[data-channel="ladder"] b, tr[data-renditions-of="ladder"] i').length,
  }));
  if (injected.pwned !== null || injected.elements !== 0)
    await fail(`${label}: markup from the status was rendered as HTML (${JSON.stringify(injected)})`);
  await scrollTo(page, 'tr[data-renditions-of="ladder"] tr[data-rendition="a1"] .state');
  await checkVisible(page, 'tr[data-renditions-of="ladder"] tr[data-rendition="a1"] .state', "the reconnecting audio rendition's state", label);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  if (overflow > 0) await fail(`${label}: with the renditions open the page is ${overflow} px wider than the viewport`);
  const shot = await screenshot(page, `dashboard-${label}-renditions.png`);
  await page.locator(summary).click();
  await page.evaluate(() => window.scrollTo(0, 0));
  return shot;
}

// Scrolls the element into view in one step inside the page: the dashboard re-renders its table on
// every status poll, and a locator's scroll could find the element detached midway (seen in CI).
async function scrollTo(page, selector) {
  await page.evaluate((sel) => document.querySelector(sel)?.scrollIntoView({ block: "center" }), selector);
}

// Inside the viewport and on top at its centre (not under the player, not scrolled away).
async function checkVisible(page, selector, what, label) {
  const problem = await visibilityProblem(page, selector, { scroll: false });
  if (problem) await fail(`${label}: ${what} ${problem}`);
}

function screenshot(page, name) {
  return saveScreenshot(page, outputDir, name);
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
  // The live status plus the ladder fixture (the server's own channels stay real).
  await page.route("**/api/v1/channels/streams-status", async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    body.streams.push(ladderFixture);
    body.total_channels += 1;
    await route.fulfill({ response, json: body });
  });

  await page.goto(url, { waitUntil: "load", timeout: 15_000 });
  await page.locator('button[data-action="play"][data-channel="demo"]').waitFor({ timeout: 10_000 });
  if (!(await page.evaluate(() => typeof window.Hls === "function"))) await fail("hls.js did not load from /assets/hls.min.js");

  const results = [];
  for (const [width, height] of [[1024, 768], [1440, 900], [1280, 800]]) {
    const label = `${width}x${height}`;
    await page.setViewportSize({ width, height });
    await checkLayout(page, label);
    results.push(`${label} layout ok (${await screenshot(page, `dashboard-${label}.png`)})`);
    results.push(`${label} renditions ok (${await checkRenditions(page, label)})`);
  }
  const desktopPlayed = await playStopped(page, "1280x800");
  await checkLayout(page, "1280x800 playing");
  results.push(`1280x800 Play started the stopped channel, played to ${desktopPlayed.toFixed(1)} s (${await screenshot(page, "dashboard-1280x800-playing.png")})`);

  // The phone: stop the demo channel with its Stop button, then Play it again from the stopped state.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(url, { waitUntil: "load", timeout: 15_000 });
  await checkLayout(page, "390x844");
  results.push(`390x844 layout ok (${await screenshot(page, "dashboard-390x844.png")})`);
  results.push(`390x844 renditions ok (${await checkRenditions(page, "390x844")})`);
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
  console.log("PASS: controls, errors and renditions visible at every width, upstream markup shown as text; Play starts a stopped channel and plays it");
  console.log("1 passed, 0 failed");
} catch (e) {
  await fail(e.stack || String(e));
}
