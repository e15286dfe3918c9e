// Headless Chromium as every player script here launches it: a throwaway profile, media that plays
// without a gesture and is not throttled in the background. Returns the persistent context (close it)
// and its profile directory (remove it).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function launchChromium(chromium, executablePath, prefix) {
  const userDataDir = mkdtempSync(join(tmpdir(), prefix));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required", "--disable-background-media-suspend",
      "--disable-renderer-backgrounding", "--disable-background-timer-throttling"],
  });
  return { browser, userDataDir };
}
