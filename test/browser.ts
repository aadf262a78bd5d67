// Headless Chromium for the browser tests: Debian's `chromium` driven by playwright-core, with
// the flags this kind of machine needs (closed network, root, no GPU; see the env notes).

import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env['HAZE_CHROMIUM'] ?? '/usr/bin/chromium';

const BASE_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/** Starts Chromium with the base flags plus `extraArgs` (fake camera, loopback ICE, ...). */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...extraArgs] });
}
