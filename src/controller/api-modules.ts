// Every API call a feature module answers (see api-calls.ts), in the order they run.

import type { ApiCall } from './api-calls.js';

export const MODULE_CALLS: readonly ApiCall[] = [];
