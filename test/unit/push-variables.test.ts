import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyVariables, applyVariablesWith, parseCustomVariable, streamVariables } from '../../src/pushes/variables.js';
import { HazeError } from '../../src/util/errors.js';

// Sunday 2024-03-10 07:08:09 UTC: ISO week 10, day of year 070
const now = new Date(Date.UTC(2024, 2, 10, 7, 8, 9));
const ctx = { stream: 'live+cam1', now, utc: true };

test('built-in variables (fixed clock)', () => {
  const table: [string, string][] = [
    ['$stream', 'live+cam1'],
    ['$basename', 'live'],
    ['$wildcard', 'cam1'],
    ['$pluswildcard', '+cam1'],
    ['$datetime', '2024.03.10.07.08.09'],
    ['$year-$month-$day $hour:$minute:$second', '2024-03-10 07:08:09'],
    ['$wday', '7'],
    ['$yday', '070'],
    ['$week', '10'],
    ['${stream}x', 'live+cam1x'],
    ['$streamx', 'live+cam1x'],
    ['$unknown/$stream', '$unknown/live+cam1'],
    ['${unknown}', '${unknown}'],
    ['$$stream', '$live+cam1'],
  ];
  for (const [text, want] of table) assert.equal(applyVariables(text, ctx), want, text);
  assert.equal(applyVariables('$pluswildcard|$wildcard', { stream: 'plain', now, utc: true }), '|');
  assert.equal(applyVariables('$wday', { stream: 's', now: new Date(Date.UTC(2024, 2, 11)), utc: true }), '1');
  assert.equal(applyVariables('$week', { stream: 's', now: new Date(Date.UTC(2021, 0, 1)), utc: true }), '53');
  assert.equal(applyVariables('$yday', { stream: 's', now: new Date(Date.UTC(2024, 11, 31)), utc: true }), '366');
});

test('segment variables and custom variables, recursion up to 10', () => {
  assert.equal(applyVariables('/r/$basename/$segmentCounter_${currentMediaTime}.ts', { ...ctx, segmentCounter: 3, currentMediaTime: 12000.4 }), '/r/live/3_12000.ts');
  // without values they stay for a later pass
  assert.equal(applyVariables('/r/$segmentCounter.ts', ctx), '/r/$segmentCounter.ts');
  assert.equal(applyVariables('$dir/$stream', { ...ctx, custom: { dir: '/mnt/$basename' } }), '/mnt/live/live+cam1');
  // built-ins win over a custom variable of the same name
  assert.equal(applyVariables('$stream', { ...ctx, custom: { stream: 'x' } }), 'live+cam1');
  // longest name first: $ab is not $a + b
  assert.equal(applyVariablesWith('$ab $a', { a: '1', ab: '2' }), '2 1');
  // a loop stops after 10 passes
  const loop = applyVariablesWith('$a', { a: 'x$a' });
  assert.equal(loop, `${'x'.repeat(10)}$a`);
  const vars = streamVariables(ctx);
  assert.equal(vars['source'], '');
});

test('variable_add validation', () => {
  assert.deepEqual(parseCustomVariable({ name: '$foo', value: 'bar' }), { name: 'foo', value: 'bar' });
  assert.deepEqual(parseCustomVariable(['foo', 'bar']), { name: 'foo', value: 'bar' });
  assert.deepEqual(parseCustomVariable(['t', 'http://x/y', 60, 5]), { name: 't', target: 'http://x/y', interval: 60, waitTime: 5 });
  for (const bad of [{ name: 'stream', value: 'x' }, { name: 'a b', value: 'x' }, { name: 'ok' }, 5, { name: 'x', value: 'v', interval: -1 }]) {
    assert.throws(() => parseCustomVariable(bad), HazeError, JSON.stringify(bad));
  }
});
