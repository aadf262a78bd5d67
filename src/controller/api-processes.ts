// The stream process call of the API (reference §3.3, §5.6): `proc_list` names a stream (or
// anything else: every stream) and answers `{proc_list: {PID: {...}}}` with the processes the
// workers run (processes/stream-processes.ts), each keyed by its child's pid as MistServer keys
// them by its MistProc* pid.

import type { ApiCall } from './api-calls.js';

const procList: ApiCall = {
  name: 'proc_list',
  async run(arg, c) {
    const stream = typeof arg === 'string' ? arg : '';
    const answers = (await c.host.workers?.broadcast({ op: 'proc_list', stream })) ?? [];
    const rows: Record<string, unknown> = {};
    for (const a of answers) {
      const procs = (a as { procs?: unknown }).procs;
      if (procs && typeof procs === 'object' && !Array.isArray(procs)) Object.assign(rows, procs);
    }
    return { proc_list: rows };
  },
};

export const PROCESS_CALLS: readonly ApiCall[] = [procList];
