// Debian's Chromium as the browser tests launch it: headless, a throw-away profile, nothing
// talking to the network on its own.
import { chromium } from 'playwright-core';

export function launch(executablePath, userDataDir, viewport) {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
  });
}
