// balance: sources (src/inputs/pull/balance-pull.ts): the source, the balancer's answer and the
// effective config are read by pure functions; known cases, then fast-check: any text gives a
// result or a HazeError, never another throw, and what they return is well-formed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { balancerSourceUrl, parseBalanceSource, parseBalancerAnswer, selfServerName } from '../../src/inputs/pull/balance-pull.js';
import { isHazeError } from '../../src/util/errors.js';

test('balance: sources, answers and the server name: known cases', () => {
  const s = parseBalanceSource('balance:http://127.0.0.1:8042?fallback=dtsc://o.test:4201/cam&tag_adjust={"a":5}');
  assert.deepEqual(s, { balancer: 'http://127.0.0.1:8042/', query: [['tag_adjust', '{"a":5}']], fallback: 'dtsc://o.test:4201/cam' });
  assert.equal(balancerSourceUrl(s, 'live+x', '127.0.0.1:4242'), 'http://127.0.0.1:8042/?source=live%2Bx&exclude=127.0.0.1%3A4242&tag_adjust=%7B%22a%22%3A5%7D');
  assert.equal(balancerSourceUrl(parseBalanceSource('balance:http://lb'), 'a b', undefined), 'http://lb/?source=a+b');
  for (const bad of ['balance:', 'balance:dtsc://x', 'balance:http://lb?fallback=rtmp://x/y', 'rtmp://x', 'balance:nourl']) {
    assert.throws(() => parseBalanceSource(bad), (e: unknown) => isHazeError(e), bad);
  }

  const a = parseBalancerAnswer('dtsc://10.0.0.1:4200\n', 'live+x');
  assert.ok('url' in a);
  assert.deepEqual(a.url, { host: '10.0.0.1', port: 4200, stream: 'live+x', query: [] });
  assert.deepEqual(parseBalancerAnswer('FULL', 's'), { none: 'FULL' });
  assert.deepEqual(parseBalancerAnswer('', 's'), { none: '(empty answer)' });
  assert.ok('none' in parseBalancerAnswer('dtsc://', 's'));

  assert.equal(selfServerName({ effective_ports: { controller: 5000 }, config: { controller: { port: 4242 } } }), '127.0.0.1:5000');
  assert.equal(selfServerName({ config: { controller: { interface: '10.1.2.3', port: 4343 } } }), '10.1.2.3:4343');
  assert.equal(selfServerName({ config: { controller: { interface: '::1' } } }), '[::1]:4242');
  assert.equal(selfServerName({ config: { controller: { interface: '0.0.0.0' } }, effective_ports: { controller: 1 } }), '127.0.0.1:1');
  assert.equal(selfServerName({ effective_ports: { controller: 70000 } }), undefined);
  assert.equal(selfServerName(null), undefined);
});

const PIECES = fc.constantFrom('balance:', 'http://', 'https://', 'dtsc://', 'lb', '127.0.0.1', ':8042', ':0', ':99999', '/', '?', '&', '=', 'fallback', 'source', 'exclude', '%', '%zz', '[', ']', '::1', '#', ' ', '\n', 'é', '\u0000', 'FULL', '+');
const TEXT = fc.oneof(fc.string({ maxLength: 60 }), fc.array(PIECES, { maxLength: 12 }).map((a) => a.join('')));

test('balance: parsers under fast-check: a result or a HazeError', () => {
  fc.assert(
    fc.property(TEXT, TEXT, (source, stream) => {
      let src;
      try {
        src = parseBalanceSource(source);
      } catch (err) {
        assert.ok(isHazeError(err), `not a HazeError for ${JSON.stringify(source)}: ${String(err)}`);
        return;
      }
      assert.match(src.balancer, /^https?:\/\/[^?#]+$/);
      if (src.fallback !== undefined) assert.match(src.fallback, /^dtsc:\/\//i);
      const url = new URL(balancerSourceUrl(src, stream, '127.0.0.1:4242'));
      // the stream goes to the balancer as given, whatever its characters
      assert.equal(url.searchParams.get('source'), stream);
      assert.equal(url.searchParams.get('exclude'), '127.0.0.1:4242');
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(TEXT, TEXT, (answer, stream) => {
      const a = parseBalancerAnswer(answer, stream || 's');
      if ('url' in a) {
        assert.ok(a.url.host.length > 0);
        assert.ok(Number.isInteger(a.url.port) && a.url.port >= 0 && a.url.port <= 65535);
      } else {
        assert.ok(a.none.length > 0 && a.none.length <= 400 && !/[\n\u0000]/.test(a.none));
      }
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
      const n = selfServerName(v);
      if (n !== undefined) assert.match(n, /:\d{1,5}$/);
    }),
    { numRuns: 1000 },
  );
});
