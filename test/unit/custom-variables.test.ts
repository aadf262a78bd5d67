// Custom variables with a target (reference §5.3): a shell command's or a URL's output becomes the
// value, re-run every `interval` s, written to the file the workers read; a failing target keeps
// the old value; removing the variable removes its value.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ConfigStore } from '../../src/controller/config-store.js';
import { CustomVariables, runVariableTarget } from '../../src/controller/custom-variables.js';
import { log } from '../../src/util/log.js';
import { sleep, tmpDir } from '../helpers.js';

const read = (file: string): Record<string, string> => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(50);
  }
}

test('a command target runs every interval; its output is the value; removal clears it', async () => {
  const dir = tmpDir('haze-vars-');
  const counter = path.join(dir, 'n');
  const file = path.join(dir, 'variables.json');
  const store = ConfigStore.open(undefined);
  store.update((c) => {
    c.variables = { count: { target: `echo x >> ${counter}; wc -l < ${counter}`, interval: 1 }, fixed: { value: 'static' } };
  });
  const vars = new CustomVariables(store, file, log);
  try {
    await until(() => fs.existsSync(file) && read(file)['count'] === '1');
    // static values travel in the config, not in the file
    assert.equal(read(file)['fixed'], undefined);
    await until(() => read(file)['count'] === '2', 3000);
    assert.equal(vars.current('count')?.value, '2');
    store.update((c) => {
      c.variables = { fixed: { value: 'static' } };
    });
    vars.sync();
    assert.deepEqual(read(file), {});
  } finally {
    vars.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a URL target is fetched with X-Custom-Variable; failures and timeouts reject', async () => {
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') return; // never answers
    res.statusCode = req.url === '/bad' ? 500 : 200;
    res.end(`  ${String(req.headers['x-custom-variable'])}-value\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    assert.equal(await runVariableTarget('mood', `${base}/ok`, 2), 'mood-value');
    await assert.rejects(runVariableTarget('mood', `${base}/bad`, 2), /HTTP 500/);
    await assert.rejects(runVariableTarget('mood', `${base}/slow`, 0.3));
    await assert.rejects(runVariableTarget('x', 'exit 3', 2), /code 3/);
    await assert.rejects(runVariableTarget('x', 'sleep 5', 0.3), /no answer/);
  } finally {
    server.close();
  }
});
