// What every page of the UI gets: the API, the server's capabilities (asked once), navigation.

import type { Api, Answer } from './api.js';

export interface PageContext {
  api: Api;
  /** the route's captured parts (a stream name) */
  params: string[];
  /** `capabilities` (inputs, connectors, triggers, listening ports): asked once per page load */
  capabilities(): Promise<Answer>;
  go(hash: string): void;
}

/** Renders into `root`; returns what to run when the page is left (stop refreshes, close feeds). */
export type Page = (root: HTMLElement, ctx: PageContext) => (() => void) | void;
