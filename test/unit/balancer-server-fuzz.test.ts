// Fuzzing the balancer's request side with fast-check: any request target, headers and peer
// give a 2xx/3xx/4xx text answer (never a throw, never a 500, never a stack trace), and the
// server-spec, weights and balancer.json parsers give a result or a HazeError.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { resultOrHazeError } from '../helpers.js';
import { Balancer, handleBalancerRequest, parseWeights } from '../../src/balancer/api.js';
import { parseServerSpec, parseStore } from '../../src/balancer/store.js';
import { DEFAULT_WEIGHTS } from '../../src/balancer/score.js';

const KEYS = ['source', 'ingest', 'stream', 'viewers', 'streamstats', 'host', 'lstserver', 'addserver', 'delserver', 'weights', 'policy', 'proto', 'lat', 'lon', 'tag_adjust', 'exclude', 'port', 'fallback', 'x'];
const VALUES = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('1', '*', 'live+x', 'a.test:4242', '{"cpu":1}', '{"a,b":5,"-c":-3}', 'round-robin', 'HLS', '-91', '1e309', 'NaN', '%', '%zz', '[::1]:1/2'),
  fc.json({ maxDepth: 2 }),
);

/** Characters that matter to a request target's parsing, and a few that should not be there. */
const URL_CHARS = fc.constantFrom('a', 'Z', '0', '/', '?', '&', '=', '%', '+', ' ', '.', ':', '#', '[', ']', '\u0000', '\n', 'é', '\ud83d', '😀', '%2', '%zz', '%2B', 'source', 'weights');

function balancer(): Balancer {
  const bal = new Balancer();
  const a = bal.addServer(parseServerSpec('a.test:4242'));
  a.update(0, {
    cpu: 10,
    mem_total: 1000,
    mem_used: 10,
    bw: [0, 0],
    streams: { 'live+x': { curr: [1, 1, 0, 0], bw: [0, 0] } },
    outputs: { HLS: 'http://HOST:8080/hls/$/index.m3u8', DTSC: 'dtsc://HOST:4200/$' },
  });
  bal.addServer(parseServerSpec('b.test:4242'));
  return bal;
}

function check(bal: Balancer, url: string, headers: Record<string, string>, peer: string, method = 'GET'): void {
  const r = handleBalancerRequest(bal, { method, url, headers, peer });
  assert.ok([200, 204, 307, 400, 403, 404, 405, 414].includes(r.status), `status ${r.status} for ${url}: ${r.body}`);
  assert.equal(typeof r.body, 'string');
  assert.doesNotMatch(r.body, /\n\s+at \S/, 'no stack trace');
  assert.equal(r.headers['Access-Control-Allow-Origin'], '*');
  if (r.status === 307) assert.ok(r.headers['Location']);
}

test('any query built from the API variables gets a well-formed answer', () => {
  const bal = balancer();
  fc.assert(
    fc.property(
      fc.constantFrom('/', '/live+x', '/metrics', '/s', '/%20', ''),
      fc.array(fc.tuple(fc.constantFrom(...KEYS), VALUES, fc.boolean()), { maxLength: 5 }),
      fc.constantFrom('127.0.0.1', '::1', '::ffff:127.0.0.1', '203.0.113.5', ''),
      fc.record({ 'x-latitude': fc.string({ maxLength: 8 }), 'x-tag-adjust': fc.string({ maxLength: 20 }) }, { requiredKeys: [] }),
      (p, vars, peer, headers) => {
        const q = vars.map(([k, v, encode]) => `${k}=${encode ? encodeURIComponent(v) : v}`).join('&');
        check(bal, q ? `${p}?${q}` : p, headers, peer);
      },
    ),
    { numRuns: 300 },
  );
  assert.ok(bal.hosts.size <= 1000);
});

test('any request target string and method gets a well-formed answer', () => {
  const bal = balancer();
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 120 }), fc.string({ maxLength: 120, unit: URL_CHARS })), fc.constantFrom('GET', 'HEAD', 'POST', 'OPTIONS', 'get'), (url, method) => {
      check(bal, url, {}, '127.0.0.1', method);
      check(bal, '/' + url, {}, '10.0.0.1', method);
      check(bal, '/?' + url, {}, '127.0.0.1', method);
    }),
    { numRuns: 300 },
  );
});

test('server specs, weights and balancer.json: a result or a HazeError', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 60 }), (s) => {
      resultOrHazeError(() => parseServerSpec(s));
      resultOrHazeError(() => parseWeights(s, DEFAULT_WEIGHTS));
      resultOrHazeError(() => parseStore(s));
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.json({ maxDepth: 3 }), (j) => {
      resultOrHazeError(() => parseWeights(j, DEFAULT_WEIGHTS));
      resultOrHazeError(() => parseStore(j));
      resultOrHazeError(() => parseStore(JSON.stringify({ servers: [JSON.parse(j) as unknown], weights: JSON.parse(j) as unknown })));
    }),
    { numRuns: 200 },
  );
  // a parsed spec round-trips
  fc.assert(
    fc.property(fc.domain(), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 10000 }), (host, port, mib) => {
      const s = parseServerSpec(`${host}:${port}/${mib}`);
      assert.deepEqual(parseServerSpec(`${s.name}/${s.capacityMiBps}`), s);
    }),
    { numRuns: 100 },
  );
});
