import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  autoPushDecision,
  autoPushId,
  autoPushRemovals,
  autoPushRuleToList,
  evaluateCondition,
  matchesStream,
  parseAutoPushAdd,
  parseAutoPushRule,
  parsePushSettings,
  type PushCondition,
} from '../../src/pushes/auto-push.js';
import { HazeError } from '../../src/util/errors.js';

test('rule shapes: object form, list form, lists and id objects', () => {
  const obj = parseAutoPushRule({ stream: 'live+', target: '/r/$stream.mkv', scheduletime: 100, completetime: 200, start_rule: ['$go', 2, 'yes'], end_rule: ['count', '10', 5], inhibit: 'live+private', 'x-LSP-notes': 'n' });
  assert.deepEqual(obj, { stream: 'live+', target: '/r/$stream.mkv', scheduletime: 100, completetime: 200, start_rule: ['$go', 2, 'yes'], end_rule: ['count', 10, '5'], inhibit: ['live+private'], 'x-LSP-notes': 'n' });
  const list = parseAutoPushRule(['live+', '/r/$stream.mkv', 100, 200, '$go', 2, 'yes', 'count', 10, '5']);
  assert.deepEqual(list, { stream: 'live+', target: '/r/$stream.mkv', scheduletime: 100, completetime: 200, start_rule: ['$go', 2, 'yes'], end_rule: ['count', 10, '5'] });
  assert.deepEqual(parseAutoPushRule(['s', 'rtmp://h/a/k', 0, 0]), { stream: 's', target: 'rtmp://h/a/k' });
  assert.deepEqual(autoPushRuleToList(list), ['live+', '/r/$stream.mkv', 100, 200, '$go', 2, 'yes', 'count', 10, '5']);

  const one = parseAutoPushAdd({ stream: 'a', target: '/r/a.ts' });
  assert.equal(one.size, 1);
  assert.equal([...one.keys()][0], autoPushId({ stream: 'a', target: '/r/a.ts' }));
  assert.match([...one.keys()][0]!, /^[0-9a-f]{32}$/);
  assert.equal(parseAutoPushAdd([['a', '/r/a.ts'], { stream: 'b', target: '/r/b.ts' }]).size, 2);
  const byId = parseAutoPushAdd({ first: { stream: 'a', target: '/r/a.ts' }, second: ['b', '/r/b.ts'] });
  assert.deepEqual([...byId.keys()], ['first', 'second']);
  // same rule, same id whatever the key order
  assert.equal(autoPushId({ target: 'x', stream: 's' } as never), autoPushId({ stream: 's', target: 'x' }));
});

test('rule validation', () => {
  const bad: unknown[] = [
    {},
    { stream: '', target: '/r/a.ts' },
    { stream: 's', target: '' },
    { stream: 's', target: '/r/a.ts', start_rule: ['v', 7, 'x'] },
    { stream: 's', target: '/r/a.ts', scheduletime: 200, completetime: 100 },
    { stream: 's', target: '/r/a.ts', scheduletime: 'soon' },
    { stream: 's', target: '/r/a.jpg' },
    { stream: 's', target: '/r/a.ts', inhibit: [1] },
    42,
  ];
  for (const b of bad) assert.throws(() => parseAutoPushAdd(b), HazeError, JSON.stringify(b));
  // unchecked targets are allowed when asked
  assert.equal(parseAutoPushRule({ stream: 's', target: 'srt://x' }, { checkTarget: false }).target, 'srt://x');
});

test('matchesStream: exact, base+ prefix, #tag, inhibit', () => {
  const table: [string | { stream: string; inhibit?: string[] }, string, string[], boolean][] = [
    ['live', 'live', [], true],
    ['live', 'live+a', [], false],
    ['live+', 'live+a', [], true],
    ['live+', 'live+b+c', [], true],
    ['live+', 'live', [], false],
    ['live+', 'lively+a', [], false],
    ['#rec', 'any', ['rec'], true],
    ['#rec', 'any', ['other'], false],
    [{ stream: 'live+', inhibit: ['live+private'] }, 'live+private', [], false],
    [{ stream: 'live+', inhibit: ['#norec'] }, 'live+x', ['norec'], false],
    [{ stream: 'live+', inhibit: ['#norec'] }, 'live+x', [], true],
  ];
  for (const [rule, name, tags, want] of table) assert.equal(matchesStream(rule, name, tags), want, `${JSON.stringify(rule)} ${name}`);
});

test('operators 0-3, 10-13, 20-23', () => {
  const vars: Record<string, string> = { on: 'true', off: '0', n: '15', s: 'beta', empty: '' };
  const lookup = (k: string): string | undefined => vars[k];
  const table: [PushCondition, boolean][] = [
    [['on', 0, ''], true],
    [['off', 0, ''], false],
    [['missing', 0, ''], false],
    [['empty', 0, ''], false],
    [['on', 1, ''], false],
    [['missing', 1, ''], true],
    [['s', 2, 'beta'], true],
    [['$s', 2, 'beta'], true],
    [['${s}', 2, 'beta'], true],
    [['s', 2, 'Beta'], false],
    [['s', 3, 'beta'], false],
    [['missing', 3, 'x'], true],
    [['n', 10, '9'], true], // numeric: 15 > 9 (lexically "15" < "9")
    [['n', 10, '15'], false],
    [['n', 11, '15'], true],
    [['n', 12, '100'], true],
    [['n', 13, '14'], false],
    [['n', 20, '9'], false], // lexical: "15" < "9"
    [['n', 22, '9'], true],
    [['s', 21, 'beta'], true],
    [['s', 23, 'alpha'], false],
    [['s', 20, 'alpha'], true],
  ];
  for (const [cond, want] of table) assert.equal(evaluateCondition(cond, lookup), want, JSON.stringify(cond));
});

test('schedule and rule decisions', () => {
  const vars: Record<string, string> = { live: '1' };
  const lookup = (k: string): string | undefined => vars[k];
  const r = parseAutoPushRule({ stream: 's', target: '/r/a.ts', scheduletime: 100, completetime: 200, start_rule: ['live', 0, ''], end_rule: ['stop', 0, ''] });
  assert.deepEqual(autoPushDecision(r, 50, lookup), { expired: false, mayStart: false, mustStop: false, removeAfterStart: false });
  assert.deepEqual(autoPushDecision(r, 150, lookup), { expired: false, mayStart: true, mustStop: false, removeAfterStart: false });
  vars['stop'] = 'yes';
  assert.equal(autoPushDecision(r, 150, lookup).mustStop, true);
  assert.equal(autoPushDecision(r, 150, lookup).mayStart, false);
  delete vars['stop'];
  vars['live'] = '0';
  assert.equal(autoPushDecision(r, 150, lookup).mustStop, true);
  assert.deepEqual(autoPushDecision(r, 201, lookup), { expired: true, mayStart: false, mustStop: true, removeAfterStart: false });
  assert.equal(autoPushDecision(parseAutoPushRule({ stream: 's', target: '/r/a.ts', scheduletime: 100 }), 100, lookup).removeAfterStart, true);
  assert.equal(autoPushDecision(parseAutoPushRule({ stream: 's', target: '/r/a.ts' }), 0, lookup).mayStart, true);
});

test('push_auto_remove arguments and push_settings', () => {
  const rules = parseAutoPushAdd({ a: ['s1', '/r/a.ts'], b: ['s1', '/r/b.ts'], c: ['s2', '/r/c.ts'] });
  assert.deepEqual(autoPushRemovals(rules, 'a'), ['a']);
  assert.deepEqual(autoPushRemovals(rules, 's1').sort(), ['a', 'b']);
  assert.deepEqual(autoPushRemovals(rules, ['s2', '/r/c.ts']), ['c']);
  assert.deepEqual(autoPushRemovals(rules, [['s2', '/r/c.ts'], 'a']).sort(), ['a', 'c']);
  assert.deepEqual(autoPushRemovals(rules, 'nothing'), []);
  assert.deepEqual(parsePushSettings({ wait: 3, maxspeed: '2' }), { wait: 3, maxspeed: 2 });
  assert.deepEqual(parsePushSettings(null, { wait: 1, maxspeed: 0 }), { wait: 1, maxspeed: 0 });
  assert.throws(() => parsePushSettings({ wait: -1 }), HazeError);
});
