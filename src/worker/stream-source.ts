// STREAM_SOURCE (reference §4.2): a handler may name another source for a stream when its input
// opens; an empty answer keeps the configured one. A VoD stream opens its file per request (an
// HLS player asks many times), so an answer is kept for SOURCE_KEPT_MS per stream.

import type { TriggerDispatcher } from '../triggers/dispatch.js';

const SOURCE_KEPT_MS = 10_000;
const MAX_KEPT = 10_000;

export function streamSourceResolver(triggers: TriggerDispatcher): (name: string, configured: string) => Promise<string> {
  const kept = new Map<string, { source: string; untilMs: number }>();
  return async (name, configured) => {
    if (!triggers.hasHandlers('STREAM_SOURCE', name)) return configured;
    const now = Date.now();
    const hit = kept.get(`${name}\n${configured}`);
    if (hit && hit.untilMs > now) return hit.source;
    const r = await triggers.fire('STREAM_SOURCE', name, { stream: name });
    const source = r.response.trim() || configured;
    if (kept.size >= MAX_KEPT) kept.clear();
    kept.set(`${name}\n${configured}`, { source, untilMs: now + SOURCE_KEPT_MS });
    return source;
  };
}
