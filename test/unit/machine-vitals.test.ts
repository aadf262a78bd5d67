import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MachineSampler, parseNetDev, parseProcStat, readBounded } from '../../src/stats/machine.js';
import { runOk, tmpDir } from '../helpers.js';

const onLinux = fs.existsSync('/proc/meminfo') && fs.existsSync('/proc/net/dev');

/** `free -k` (procps), an independent reader of /proc/meminfo: total and used of the Mem: row. */
async function freeKiB(): Promise<{ total: number; used: number }> {
  const out = (await runOk('free', ['-k'], { timeoutMs: 10_000 })).toString('utf8');
  const lines = out.split('\n');
  const cols = lines[0]!.trim().split(/\s+/);
  const mem = lines.find((l) => l.startsWith('Mem:'))!.trim().split(/\s+/).slice(1).map(Number);
  return { total: mem[cols.indexOf('total')]!, used: mem[cols.indexOf('used')]! };
}

/** The kernel's per-interface counters from sysfs (not /proc/net/dev), loopback excluded. */
function sysfsNic(): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const iface of fs.readdirSync('/sys/class/net')) {
    if (iface === 'lo') continue;
    const dir = path.join('/sys/class/net', iface, 'statistics');
    if (!fs.existsSync(dir)) continue;
    rx += Number(fs.readFileSync(path.join(dir, 'rx_bytes'), 'utf8'));
    tx += Number(fs.readFileSync(path.join(dir, 'tx_bytes'), 'utf8'));
  }
  return { rx, tx };
}

test('machine vitals agree with free(1) and sysfs; cpu in 0..1000', { skip: !onLinux && 'needs Linux /proc' }, async () => {
  const sampler = new MachineSampler();
  const first = await sampler.sample();
  // busy work between the two samples so the CPU figure is measured over a real interval
  const until = Date.now() + 150;
  let x = 0;
  while (Date.now() < until) x += Math.sqrt(x + 1);
  assert.ok(x > 0);
  const before = sysfsNic();
  const v = await sampler.sample();
  const after = sysfsNic();
  const free = await freeKiB();

  for (const s of [first, v]) {
    assert.ok(Number.isInteger(s.cpuTenths) && s.cpuTenths >= 0 && s.cpuTenths <= 1000, `cpu ${s.cpuTenths}`);
  }
  assert.ok(v.cpuTenths > 0, 'a busy interval shows CPU use');
  assert.equal(v.memTotalKiB, free.total, 'MemTotal as free -k reports it');
  assert.ok(Math.abs(v.memUsedKiB - free.used) <= free.used * 0.1, `used ${v.memUsedKiB} vs free's ${free.used}`);
  assert.ok(v.memUsedKiB > 0 && v.memUsedKiB < v.memTotalKiB);
  assert.ok(v.shmUsedKiB >= 0 && v.shmUsedKiB <= v.memTotalKiB);
  if (fs.existsSync('/dev/shm')) {
    const st = fs.statfsSync('/dev/shm');
    assert.equal(v.shmTotalKiB, Math.floor((st.blocks * st.bsize) / 1024));
    assert.ok(v.shmTotalKiB > 0);
  }
  // up = bytes the machine received, down = bytes it sent; counters only grow between the reads
  assert.ok(v.nic.up >= before.rx && v.nic.up <= after.rx + 65536, `nic up ${v.nic.up} within [${before.rx}, ${after.rx}]`);
  assert.ok(v.nic.down >= before.tx && v.nic.down <= after.tx + 65536, `nic down ${v.nic.down} within [${before.tx}, ${after.tx}]`);
});

test('missing /proc files give zeros, not a throw', async () => {
  const dir = tmpDir();
  const none = path.join(dir, 'absent');
  const v = await new MachineSampler({ procStat: none, meminfo: none, netDev: none, shmDir: none }).sample();
  assert.deepEqual(v, { cpuTenths: 0, memTotalKiB: 0, memUsedKiB: 0, shmTotalKiB: 0, shmUsedKiB: 0, nic: { up: 0, down: 0 } });
});

test('parsers: /proc/stat deltas, /proc/net/dev without lo, reads bounded to whole lines', async () => {
  const dir = tmpDir();
  const stat = path.join(dir, 'stat');
  const meminfo = path.join(dir, 'meminfo');
  const netDev = path.join(dir, 'dev');
  // user nice system idle iowait irq softirq steal guest guest_nice
  fs.writeFileSync(stat, 'cpu  100 0 100 700 100 0 0 0 50 0\ncpu0 1 2 3 4\n');
  fs.writeFileSync(meminfo, 'MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    600 kB\nShmem:            42 kB\n');
  fs.writeFileSync(
    netDev,
    'Inter-|   Receive                                                |  Transmit\n' +
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
      '    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n' +
      '  eth0: 1000 5 0 0 0 0 0 0 20 3 0 0 0 0 0 0\n' +
      '  eth1:500 5 0 0 0 0 0 0 7 3 0 0 0 0 0 0\n',
  );
  const sampler = new MachineSampler({ procStat: stat, meminfo, netDev, shmDir: dir });
  const a = await sampler.sample();
  assert.equal(a.cpuTenths, 200, 'since boot: (100+100) busy of 1000, guest not counted twice');
  assert.equal(a.memTotalKiB, 1000);
  assert.equal(a.memUsedKiB, 400);
  assert.equal(a.shmUsedKiB, 42);
  assert.deepEqual(a.nic, { up: 1500, down: 27 });
  fs.writeFileSync(stat, 'cpu  400 0 200 800 100 0 0 0 50 0\n');
  const b = await sampler.sample();
  assert.equal(b.cpuTenths, 800, 'between samples: 400 busy of 500');

  assert.equal(parseProcStat('nonsense'), undefined);
  assert.deepEqual(parseNetDev(''), { up: 0, down: 0 });
  const long = path.join(dir, 'long');
  fs.writeFileSync(long, 'line one\nline two\nline three\n');
  assert.equal(await readBounded(long, 12), 'line one\n', 'a cut line is dropped');
  assert.equal(await readBounded(long), 'line one\nline two\nline three\n');
});
