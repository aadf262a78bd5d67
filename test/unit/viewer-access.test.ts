// Fallback resolution of worker/viewer-access.ts with stand-in stream state: fallback_stream
// chains with variables, loops that end, defaultStream for names that are not configured, and
// streams that play as they are (online, between two publishers, a file that opens).

import { NO_TRACKING } from '../../src/stats/tracker.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../helpers.js';
import { log } from '../../src/util/log.js';
import { ConfigView } from '../../src/worker/config-view.js';
import { ViewerAccess, type PlayableStreams } from '../../src/worker/viewer-access.js';
import { workerTriggers } from '../../src/worker/worker-triggers.js';

const dir = tmpDir('haze-va-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function accessWith(config: Record<string, unknown>, state: { online?: string[]; files?: string[]; between?: string[] } = {}): ViewerAccess {
  const file = path.join(dir, `effective-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(config));
  const view = new ConfigView(file);
  const streams: PlayableStreams = {
    isConfigured: (n) => view.stream(n) !== undefined,
    hasSource: (n) => state.online?.includes(n) ?? false,
    liveHub: (n) => (state.between?.includes(n) ? { isEnded: false, everAttached: true } : undefined),
    endedHub: () => undefined,
    isVod: (n) => view.stream(n)?.source.startsWith('/') ?? false,
    openVod: async (n) => {
      if (!state.files?.includes(n)) throw new Error('no such file');
    },
  };
  return new ViewerAccess({
    triggers: workerTriggers(view, log),
    config: view,
    streams,
    admit: async () => true,
    tracker: NO_TRACKING,
    variables: () => ({ suffix: 'vod' }),
    log,
  });
}

const info = (stream: string) => ({ stream, host: '192.0.2.1', connector: 'FLV', requestUrl: `http://h/${stream}.flv` });

describe('viewer access: fallbacks', () => {
  it('plays a stream that can be opened as it is', async () => {
    const a = accessWith({ config: { defaultStream: 'demo' }, streams: { live: { name: 'live', source: 'push://', fallback_stream: 'demo' }, demo: { name: 'demo', source: '/m/demo.mp4' } } }, { online: ['live+a'], files: ['demo'], between: ['live+b'] });
    assert.equal(await a.fallback(info('live+a')), 'live+a');
    assert.equal(await a.fallback(info('live+b')), 'live+b', 'between two publishers');
    assert.equal(await a.fallback(info('demo')), 'demo');
    assert.equal(await a.fallback(info('live+c')), 'demo', 'offline: its fallback_stream');
  });

  it('follows fallback_stream chains with variables; a loop ends', async () => {
    const a = accessWith(
      {
        streams: {
          cam: { name: 'cam', source: 'push://', fallback_stream: '$basename_backup' },
          cam_backup: { name: 'cam_backup', source: 'push://', fallback_stream: '${wildcard}_$suffix' },
          x_vod: { name: 'x_vod', source: '/m/x.mp4' },
          ping: { name: 'ping', source: 'push://', fallback_stream: 'pong' },
          pong: { name: 'pong', source: 'push://', fallback_stream: 'ping' },
        },
      },
      { files: ['x_vod'] },
    );
    // cam+x -> cam_backup (offline) -> its fallback with $wildcard of cam_backup (none): "_vod"
    assert.equal(await a.fallback(info('cam+x')), '_vod');
    assert.ok(['ping', 'pong'].includes(await a.fallback(info('ping'))), 'a loop stops after a few hops');
  });

  it('uses config.defaultStream for names that are not configured, with variables', async () => {
    const a = accessWith({ config: { defaultStream: '${wildcard}_vod' }, streams: { x_vod: { name: 'x_vod', source: '/m/x.mp4' } } }, { files: ['x_vod'] });
    assert.equal(await a.fallback(info('nothing+x')), 'x_vod');
    // as written, even when it cannot be opened either (the output then fails on it)
    assert.equal(await a.fallback(info('nothing')), '_vod');
    const self = accessWith({ config: { defaultStream: '$stream' } });
    assert.equal(await self.fallback(info('nothing')), 'nothing', 'a default that is the stream itself: no fallback');
  });

  it('a file that does not open falls back; nothing configured concerns nobody', async () => {
    const a = accessWith({ streams: { film: { name: 'film', source: '/m/gone.mp4', fallback_stream: 'demo' }, demo: { name: 'demo', source: '/m/demo.mp4' } } }, { files: ['demo'] });
    assert.equal(await a.fallback(info('film')), 'demo');
    assert.equal(a.concerns('film'), true);
    const none = accessWith({ streams: { live: { name: 'live', source: 'push://' } } });
    assert.equal(none.concerns('live+a'), false);
    assert.equal(await none.fallback(info('live+a')), 'live+a');
    assert.equal(await none.rewrite(info('live+a')), 'live+a');
  });
});
