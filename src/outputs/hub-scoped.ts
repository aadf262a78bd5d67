// Objects that exist once per stream hub and key (a format feed, an HLS/CMAF segmenter), made
// on first use and shared by every viewer; they go with the hub, or earlier when they forget
// themselves.

import type { StreamHub } from '../hub/stream-hub.js';

export class HubScoped<T> {
  private readonly byHub = new WeakMap<StreamHub, Map<string, T>>();

  /** The object of `key` on `hub` if it exists, without making it. */
  peek(hub: StreamHub, key: string): T | undefined {
    return this.byHub.get(hub)?.get(key);
  }

  /** The object of `key` on `hub`; `make` gets the function that removes it again. */
  get(hub: StreamHub, key: string, make: (forget: () => void) => T): T {
    let map = this.byHub.get(hub);
    if (!map) this.byHub.set(hub, (map = new Map()));
    const found = map.get(key);
    if (found !== undefined) return found;
    const scope = map;
    let made: T | undefined;
    made = make(() => {
      if (scope.get(key) === made) scope.delete(key);
    });
    scope.set(key, made);
    return made;
  }
}
