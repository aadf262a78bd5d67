// The controller's commands to a worker, over the worker's control socket (relay.ts `control`):
// `{op, ...args}` → the answer of the handler registered for `op`. Each feature registers its
// own operations (pushes, session control), so this module knows none of them.

import { HazeError } from '../util/errors.js';

export type ControlHandler = (args: Record<string, unknown>) => Promise<unknown> | unknown;

export class WorkerControl {
  private readonly handlers = new Map<string, ControlHandler>();

  on(op: string, handler: ControlHandler): void {
    if (this.handlers.has(op)) throw new Error(`control operation ${op} registered twice`);
    this.handlers.set(op, handler);
  }

  /** Runs one request; an unknown operation or a malformed request answers `{error}`. */
  async handle(request: unknown): Promise<unknown> {
    if (typeof request !== 'object' || request === null || Array.isArray(request)) return { error: 'control: expected an object' };
    const args = request as Record<string, unknown>;
    const op = args['op'];
    const handler = typeof op === 'string' ? this.handlers.get(op) : undefined;
    if (!handler) return { error: `control: unknown operation ${JSON.stringify(op)}` };
    try {
      return await handler(args);
    } catch (err) {
      return { error: err instanceof HazeError ? err.message : `control ${op}: ${(err as Error).message ?? String(err)}` };
    }
  }
}
