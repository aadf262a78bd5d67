// The JWT keys a worker checks tokens with: the effective config's `jwks`, parsed once per
// config change (KeyObjects are not free to build) and reused for every token.

import type { Logger } from '../util/log.js';
import { parseJwks, verifyJwt, type JwtKey, type VerifyOptions, type VerifyResult } from './jwt.js';

export class JwtKeyring {
  private source: unknown = undefined;
  private keys: readonly JwtKey[] = [];

  /** `jwks`: the current config's `jwks` list (a new value after every config change). */
  constructor(
    private readonly jwks: () => unknown,
    private readonly log?: Logger,
  ) {}

  current(): readonly JwtKey[] {
    const stored = this.jwks();
    if (stored !== this.source) {
      this.source = stored;
      const parsed = parseJwks(stored);
      this.keys = parsed.keys;
      for (const e of parsed.errors) this.log?.warn(`JWT keys: ${e}`);
      if (parsed.urls.length) this.log?.warn(`JWT keys: ${parsed.urls.length} JWKS URL(s) in the config are not fetched; add their keys instead`);
    }
    return this.keys;
  }

  verify(token: string, opts: VerifyOptions): VerifyResult {
    const keys = this.current();
    return keys.length === 0 ? { ok: false, reason: 'no JWT keys are configured' } : verifyJwt(token, keys, opts);
  }
}
