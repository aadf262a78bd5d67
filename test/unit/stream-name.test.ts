import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { baseName, isValidStreamName, sanitizeStreamName, splitNameQuery, wildcardSuffix, MAX_STREAM_NAME_BYTES } from '../../src/util/stream-name.js';

const TABLE: Array<[string, string]> = [
  ['live', 'live'],
  ['LIVE', 'live'],
  ['Live+Alice?x=1', 'live+Alice'],
  ['my stream', 'my+stream'],
  ['My Stream Two', 'my+Stream Two'],
  ['live x+y', 'live+x+y'],
  ['live+x+y', 'live+x+y'],
  ['live+', 'live+'],
  ['Live_Stream-1.0', 'live_stream-1.0'],
  ['li/ve', 'live'],
  ['../etc', '..etc'],
  ['../../etc/passwd', '....etcpasswd'],
  ['..', ''],
  ['.', ''],
  ['...+x', ''],
  ['', ''],
  ['?x=1', ''],
  ['+abc', ''],
  [' abc', ''],
  ['!!!', ''],
  ['ÄBC', 'bc'],
  ['live+a/b', 'live+a/b'],
  ['live+a\r\nb\u0000c', 'live+abc'],
  ['live+Ünïcode', 'live+Ünïcode'],
  ['live?a=1+b', 'live'],
  ['a'.repeat(100), 'a'.repeat(100)],
  ['a'.repeat(101), ''],
  ['live+' + 'x'.repeat(95), 'live+' + 'x'.repeat(95)],
  ['live+' + 'x'.repeat(96), ''],
  ['a'.repeat(97) + '+é', 'a'.repeat(97) + '+é'], // 100 bytes: é is two
  ['a'.repeat(98) + '+é', ''], // 101 bytes
  ['x'.repeat(5000), ''],
  ['live?' + 't'.repeat(10000), 'live'],
];

test('sanitizeStreamName: table', () => {
  for (const [raw, want] of TABLE) assert.equal(sanitizeStreamName(raw), want, JSON.stringify(raw.slice(0, 40)));
});

test('sanitizeStreamName: non-strings give an empty name', () => {
  assert.equal(sanitizeStreamName(undefined as unknown as string), '');
  assert.equal(sanitizeStreamName(42 as unknown as string), '');
});

// Characters that matter to the sanitiser, plus any code point (lone surrogates included).
// (fast-check's 'binary' unit builds a table of every code point first, which costs seconds.)
const UNIT = fc.oneof(
  fc.constantFrom(' ', '+', '?', '.', '/', '\\', '\r', '\n', '\u0000', '\u007f', 'A', 'z', '0', '_', '-', 'é', 'İ', '😀'),
  fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
);

test('sanitizeStreamName: any input gives a canonical, bounded, idempotent name or nothing', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 150 }), fc.string({ unit: UNIT, maxLength: 150 }), fc.constantFrom('live', 'Live+x', 'a b c', '..', '../x', '+', '?')), (raw) => {
      const name = sanitizeStreamName(raw);
      if (name === '') return;
      assert.match(name, /^[a-z0-9_.-]+(\+[^?\u0000-\u001f\u007f]*)?$/);
      assert.ok(Buffer.byteLength(name) <= MAX_STREAM_NAME_BYTES);
      assert.doesNotMatch(baseName(name), /^\.+$/);
      assert.equal(sanitizeStreamName(name), name);
      assert.ok(isValidStreamName(name));
    }),
    { numRuns: 1000 },
  );
});

test('baseName, wildcardSuffix', () => {
  assert.equal(baseName('live+alice'), 'live');
  assert.equal(wildcardSuffix('live+alice'), 'alice');
  assert.equal(baseName('live'), 'live');
  assert.equal(wildcardSuffix('live'), '');
  assert.equal(baseName('live+a+b'), 'live');
  assert.equal(wildcardSuffix('live+a+b'), 'a+b');
  assert.equal(wildcardSuffix('live+'), '');
});

test('isValidStreamName', () => {
  assert.ok(isValidStreamName('live+Alice'));
  assert.ok(!isValidStreamName('Live'));
  assert.ok(!isValidStreamName('live?x'));
  assert.ok(!isValidStreamName(''));
});

test('splitNameQuery', () => {
  const a = splitNameQuery('Live+Alice?tkn=abc&video=0');
  assert.equal(a.name, 'live+Alice');
  assert.equal(a.query.get('tkn'), 'abc');
  assert.equal(a.query.get('video'), '0');
  const b = splitNameQuery('live');
  assert.equal(b.name, 'live');
  assert.equal([...b.query.keys()].length, 0);
  const c = splitNameQuery('!!?x=1');
  assert.equal(c.name, '');
  assert.equal(c.query.get('x'), '1');
});
