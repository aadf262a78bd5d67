// The controller's own triggers (reference §4.2): SYSTEM_START once per `haze serve` (not again
// when only the controller restarts; a false answer stops the server), OUTPUT_START / OUTPUT_STOP
// for each configured protocol at start, stop and when `config.protocols` changes, and
// SYSTEM_STOP when the server stops. The angel stops the children all at once and kills them
// 4 s later, so the stop triggers get at most STOP_WAIT_MS. Cancelling a stop (SYSTEM_STOP
// answering false) is not possible in Haze: the angel has already decided; it is logged.

import { countTrigger } from '../stats/trigger-figures.js';
import fs from 'node:fs';
import path from 'node:path';
import { TriggerDispatcher } from '../triggers/dispatch.js';
import { compileTriggers } from '../triggers/trigger-config.js';
import type { Logger } from '../util/log.js';
import { HAZE_VERSION } from '../util/version.js';
import type { ConfigStore } from './config-store.js';

const STOP_WAIT_MS = 2_500;

export function controllerTriggers(store: ConfigStore, instanceId: string, log: Logger): TriggerDispatcher {
  return new TriggerDispatcher({
    config: () => compileTriggers(store.get().config.triggers),
    identity: () => ({ iid: instanceId, serverid: store.get().config.serverid ?? '' }),
    logger: log,
    stat: countTrigger,
  });
}

const protocolKeys = (store: ConfigStore): string[] => store.get().config.protocols.map((p) => JSON.stringify(p));

export class SystemTriggers {
  private protocols: string[];

  constructor(
    private readonly triggers: TriggerDispatcher,
    private readonly store: ConfigStore,
    private readonly log: Logger,
  ) {
    this.protocols = protocolKeys(store);
  }

  /**
   * At controller start: SYSTEM_START and OUTPUT_START unless this `haze serve` (the angel,
   * our parent) already had them. Resolves false when SYSTEM_START refused the start.
   */
  async start(runDir: string): Promise<boolean> {
    const marker = path.join(runDir, 'system-started');
    let startedFor = '';
    try {
      startedFor = fs.readFileSync(marker, 'utf8');
    } catch {
      // first start
    }
    if (startedFor === String(process.ppid)) return true;
    fs.writeFileSync(marker, String(process.ppid));
    const r = await this.triggers.fire('SYSTEM_START', '', { version: HAZE_VERSION });
    if (!r.allowed) {
      this.log.error('SYSTEM_START answered false: stopping the server');
      return false;
    }
    for (const p of this.protocols) void this.triggers.fire('OUTPUT_START', '', { protocolConfig: p });
    return true;
  }

  /** After a config change: OUTPUT_START for added protocols, OUTPUT_STOP for removed ones. */
  protocolsChanged(): void {
    const now = protocolKeys(this.store);
    for (const p of this.protocols) if (!now.includes(p)) void this.triggers.fire('OUTPUT_STOP', '', { protocolConfig: p });
    for (const p of now) if (!this.protocols.includes(p)) void this.triggers.fire('OUTPUT_START', '', { protocolConfig: p });
    this.protocols = now;
  }

  /** The server is stopping: OUTPUT_STOP for every protocol and SYSTEM_STOP, waited for briefly. */
  async stop(reason: string): Promise<void> {
    const fired = [...this.protocols.map((p) => this.triggers.fire('OUTPUT_STOP', '', { protocolConfig: p })), this.triggers.fire('SYSTEM_STOP', '', { reason })];
    const outcome = await Promise.race([Promise.all(fired), new Promise<undefined>((r) => setTimeout(() => r(undefined), STOP_WAIT_MS).unref())]);
    if (outcome && outcome[outcome.length - 1]?.allowed === false) this.log.warn('SYSTEM_STOP answered false, but the server is already stopping (Haze cannot cancel a stop)');
  }
}
