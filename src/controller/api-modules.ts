// Every API call a feature module answers (see api-calls.ts), in the order they run.

import type { ApiCall } from './api-calls.js';
import { PUSH_CALLS } from './api-pushes.js';
import { ACCESS_CALLS } from './api-access.js';
import { STATS_CALLS } from './api-stats.js';
import { PROCESS_CALLS } from './api-processes.js';
import { ADMIN_CALLS } from './api-admin.js';
import { RECORDING_CALLS } from './api-recordings.js';
import { CAPACITY_CALLS } from './api-capacity.js';

export const MODULE_CALLS: readonly ApiCall[] = [...PUSH_CALLS, ...ACCESS_CALLS, ...STATS_CALLS, ...PROCESS_CALLS, ...ADMIN_CALLS, ...RECORDING_CALLS, ...CAPACITY_CALLS];
