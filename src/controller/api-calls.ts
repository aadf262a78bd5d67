// API calls answered by feature modules (pushes, access, sessions) rather than by api.ts itself.
// Each module exports its calls; api.ts runs them after the config and stream changes of the
// request and merges what they answer into the reply.

import type { ApiHost, ApiRequestContext } from './api.js';

export interface ApiCallContext {
  host: ApiHost;
  /** The whole request (a call may look at its companions, e.g. push_auto_add with push_auto_list). */
  request: Record<string, unknown>;
  ctx: ApiRequestContext;
  /** Problems to report in the answer's `error` member. */
  errors: string[];
}

export interface ApiCall {
  name: string;
  /** The members this call adds to the answer (none for a call that only acts). */
  run(arg: unknown, c: ApiCallContext): Promise<Record<string, unknown> | void> | Record<string, unknown> | void;
}
