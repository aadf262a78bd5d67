// The controller's session table: shares of one session from several workers add up, a late or
// repeated report changes nothing, a finished session counts once (also across a checkpoint
// restore), the per-second history feeds `totals` with MistServer's interval compression.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionTable, type ReportedFinish, type ReportedShare } from '../../src/stats/session-table.js';
import { handleApiCommand, type ApiHost } from '../../src/controller/api.js';
import { ConfigStore } from '../../src/controller/config-store.js';
import { tmpDir } from '../helpers.js';
import { createAuthState } from '../../src/controller/auth.js';
import path from 'node:path';

const ID = 'a'.repeat(64);

function share(over: Partial<ReportedShare> = {}): ReportedShare {
  return { id: ID, kind: 'viewer', stream: 's', host: '10.0.0.1', owner: true, open: 1, connectors: ['HLS'], firstMs: 1000, lastActiveMs: 5000, activeMs: 4000, down: 1000, up: 100, packets: [0, 0, 0], tags: [], ...over };
}

function finish(over: Partial<ReportedFinish> = {}): ReportedFinish {
  return { seq: 1, sessionId: ID, kind: 'viewer', stream: 's', connectors: 'HLS', host: '10.0.0.1', token: 't', durationS: 20, bytesUp: 300, bytesDown: 3000, tags: [], startMs: 1000, endMs: 21_000, ...over };
}

describe('session table', () => {
  it('adds up the shares of the workers; a repeated or older share changes nothing', () => {
    const t = new SessionTable();
    t.ingestShares(0, [share({ down: 1000 })], 10_000);
    t.ingestShares(1, [share({ owner: false, down: 500, connectors: ['MP4'] })], 10_000);
    t.ingestShares(1, [share({ owner: false, down: 500, connectors: ['MP4'] })], 10_000);
    const s = t.live.get(ID)!;
    assert.equal(s.down, 1500);
    assert.equal(s.up, 200);
    assert.deepEqual(s.connectors, ['HLS', 'MP4']);
    // an owner's copy of worker 1's share read from disk, older than what worker 1 said
    t.ingestShares(0, [share({ owner: false, down: 200, worker: 1, open: 0 })], 11_000);
    assert.equal(t.live.get(ID)!.down, 1500);
    const f = t.streamFigures(10_000)['s']!;
    assert.equal(f.current.viewers, 1);
    assert.equal(f.total.viewers, 1);
    assert.equal(f.bytes.down, 1500);
  });

  it('counts a finished session once, and not again after a restore from the checkpoint', () => {
    const t = new SessionTable();
    t.ingestShares(0, [share()], 10_000);
    assert.equal(t.ingestFinished(0, 77, [finish()], 22_000), 1);
    assert.equal(t.live.size, 0);
    assert.equal(t.ingestFinished(0, 77, [finish()], 23_000), 1, 'the same sequence again is skipped');
    let f = t.streamFigures(23_000)['s']!;
    assert.equal(f.total.viewers, 1);
    assert.equal(f.bytes.down, 3000);
    assert.equal(f.viewSeconds, 20);
    // a late share of the ended session is not a new one
    t.ingestShares(1, [share({ lastActiveMs: 20_000, open: 0 })], 23_000);
    assert.equal(t.live.size, 0);

    const restored = new SessionTable(JSON.parse(JSON.stringify(t.checkpoint(24_000))));
    assert.equal(restored.ingestFinished(0, 77, [finish()], 25_000), 1);
    f = restored.streamFigures(25_000)['s']!;
    assert.equal(f.total.viewers, 1);
    assert.equal(f.bytes.down, 3000);
    // a new process of worker 0 numbers from 1 again
    restored.ingestFinished(0, 78, [finish({ sessionId: 'b'.repeat(64), bytesDown: 10 })], 26_000);
    assert.equal(restored.streamFigures(26_000)['s']!.bytes.down, 3010);
    assert.equal(restored.streamFigures(26_000)['s']!.total.viewers, 2);
  });

  it('a live session counted before a restart is not counted again when the workers report it', () => {
    const t = new SessionTable();
    t.ingestShares(0, [share()], 10_000);
    const restored = new SessionTable(JSON.parse(JSON.stringify(t.checkpoint(10_000))));
    restored.ingestShares(0, [share({ down: 4000 })], 12_000);
    const f = restored.streamFigures(12_000)['s']!;
    assert.equal(f.total.viewers, 1);
    assert.equal(f.bytes.down, 4000);
  });

  it('rates per second, history and `totals` with interval compression', async () => {
    const t = new SessionTable();
    const base = 1_700_000_000_000;
    const at = (sec: number): number => base + sec * 1000;
    // seconds 0-2 with a viewer moving bytes; it closes at 2 and stops being current at 17
    t.ingestShares(0, [share({ down: 0, lastActiveMs: at(0) })], at(0));
    t.tick(at(0), 1000);
    t.ingestShares(0, [share({ down: 1000, lastActiveMs: at(1) })], at(1));
    t.tick(at(1), 1000);
    t.ingestShares(0, [share({ down: 3000, lastActiveMs: at(2), open: 0 })], at(2));
    t.tick(at(2), 1000);
    assert.equal(t.live.get(ID)!.downbps, 2000);
    t.tick(at(20), 18_000);
    t.tick(at(21), 1000);
    // back at 30 and 32
    t.ingestShares(0, [share({ down: 4000, lastActiveMs: at(30) })], at(30));
    t.tick(at(30), 9000);
    t.tick(at(32), 2000);
    const store = ConfigStore.open(path.join(tmpDir('haze-table-'), 'config.json'));
    const host: ApiHost = { config: store, instanceId: 'x', streamStats: async () => ({}), logs: () => [], stats: t };
    const ctx = { peer: '127.0.0.1', headers: {}, auth: createAuthState() };
    const r = (await handleApiCommand({ totals: { fields: ['clients', 'downbps'], start: at(0) / 1000, end: at(40) / 1000 } }, ctx, host)) as { totals: { start: number; end: number; data: number[][]; interval: number[][] } };
    assert.equal(r.totals.start, at(0) / 1000);
    assert.equal(r.totals.end, at(32) / 1000);
    assert.deepEqual(r.totals.data, [[1, 0], [1, 1000], [1, 2000], [1, 111], [1, 0]]);
    // MistServer's compression: [count, step] runs between the rows
    assert.deepEqual(r.totals.interval, [[2, 1], [1, 28], [1, 2]]);
    const none = (await handleApiCommand({ totals: { streams: ['other'] } }, ctx, host)) as { totals: { data: unknown[]; interval: unknown[] } };
    assert.deepEqual(none.totals.data, []);
    assert.deepEqual(none.totals.interval, []);
    const c = (await handleApiCommand({ clients: { fields: ['sessid', 'down', 'protocol', 'host'] } }, ctx, host)) as { clients: { fields: string[]; data: unknown[][] } };
    assert.deepEqual(c.clients.data, [[ID, 4000, 'HLS', '10.0.0.1']]);
    store.close();
  });

  it('tags: tag_sessid, tag_stream, untag_stream, stream_tags, stop_tag', async () => {
    const t = new SessionTable();
    t.ingestShares(0, [share()], Date.now());
    const store = ConfigStore.open(path.join(tmpDir('haze-tags-'), 'config.json'));
    const host: ApiHost = { config: store, instanceId: 'x', streamStats: async () => ({}), logs: () => [], stats: t };
    const ctx = { peer: '127.0.0.1', headers: {}, auth: createAuthState() };
    const call = (req: Record<string, unknown>): Promise<Record<string, any>> => handleApiCommand({ minimal: true, ...req }, ctx, host);
    let r = await call({ tag_sessid: { [ID]: ['vip', 'paid'] }, tag_stream: { s: 'event', other: ['a', 'b'] } });
    assert.equal(r['error'], undefined, JSON.stringify(r));
    assert.deepEqual([...t.live.get(ID)!.tags].sort(), ['paid', 'vip']);
    r = await call({ untag_stream: { other: 'a' }, stream_tags: true });
    assert.deepEqual(r['stream_tags'], { s: ['event'], other: ['b'] });
    r = await call({ tag_sessid: { ['b'.repeat(64)]: 'x', 'not-an-id': 'y' }, tag_stream: { s: '' } });
    assert.match(String(r['error']), /no session b{64}/);
    assert.match(String(r['error']), /not-an-id is not a session id/);
    assert.match(String(r['error']), /tag_stream: a tag must be a non-empty string/);
    // one session carries vip; the stream's tag finds it as well
    assert.deepEqual((await call({ stop_tag: 'vip' }))['stop_tag'], { sessions: 1 });
    assert.deepEqual((await call({ stop_tag: 'event' }))['stop_tag'], { sessions: 1 });
    assert.deepEqual((await call({ stop_tag: 'nothing' }))['stop_tag'], { sessions: 0 });
    store.close();
  });
});
