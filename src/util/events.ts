// Typed events (STYLE "Typed events and triggers from one map"): an emitter whose event names
// and payloads come from one map type; a listener that throws is isolated and logged.

import { log } from './log.js';

type Listener<T> = (payload: T) => void;

export class TypedEmitter<Events extends { [K in keyof Events]: unknown }> {
  private readonly handlers: { [K in keyof Events]?: Listener<Events[K]>[] } = {};

  on<K extends keyof Events>(name: K, fn: Listener<Events[K]>): () => void {
    (this.handlers[name] ??= []).push(fn);
    return () => this.off(name, fn);
  }

  off<K extends keyof Events>(name: K, fn: Listener<Events[K]>): void {
    const list = this.handlers[name];
    if (!list) return;
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  }

  emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    const list = this.handlers[name];
    if (!list) return;
    for (const fn of list.slice()) {
      try {
        fn(payload);
      } catch (err) {
        log.error(`listener of ${String(name)} threw: ${err instanceof Error ? err.stack : String(err)}`);
      }
    }
  }
}
