'use strict';
// make bench-node: the Node client and worker of taskd next to BullMQ (Redis)
// on the same workload, in one run. Not a test: it prints a table.
//
//   node bench/bench_vs_bullmq.js --taskd-bin PATH [--n 20000] [--bulk 1000]
//       [--concurrency 50] [--redis-server PATH]
//
// Workload: N no-op jobs from one client, (1) submitted one at a time, each
// awaited before the next; (2) submitted in bulk calls of BULK; (3) end to
// end: submitted in bulk while one worker at CONCURRENCY runs them, timed
// until the server has recorded every completion. A first row gives each
// system's floor for (1): one trivial round trip (taskd GetTask, Redis PING)
// at a time. Both servers run on
// 127.0.0.1 with the same durability: taskd --durability=async and Redis
// with appendonly + appendfsync no (written to the OS, no fsync per job).
// Client and worker share this process, for both systems alike.

const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { parseArgs } = require('node:util');
const taskd = require('..');
const { startTaskd, deadline } = require('../test/harness');

const PHASE_LIMIT_MS = 300_000; // any one phase; the bench stops past it

const { values: opts } = parseArgs({
  options: {
    'taskd-bin': { type: 'string' },
    'redis-server': { type: 'string', default: 'redis-server' },
    n: { type: 'string', default: '20000' },
    bulk: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '50' },
  },
});
const N = Number(opts.n);
const BULK = Number(opts.bulk);
const CONCURRENCY = Number(opts.concurrency);
if (opts['taskd-bin']) process.env.TASKD_BIN = path.resolve(opts['taskd-bin']);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function startRedis(dir) {
  const port = await freePort();
  const proc = spawn(opts['redis-server'], ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
    '--save', '', '--appendonly', 'yes', '--appendfsync', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await deadline(new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => { log += d; if (/Ready to accept connections/.test(log)) resolve(); });
    proc.on('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${log}`)));
  }), 15_000, `redis-server to start:\n${log}`);
  proc.stdout.resume();
  return { port, stop: async () => { proc.kill('SIGTERM'); await once(proc, 'exit'); } };
}

// Runs fn, bounded by PHASE_LIMIT_MS; returns jobs per second.
async function rate(what, fn) {
  const started = process.hrtime.bigint();
  await deadline(fn(), PHASE_LIMIT_MS, what);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(`  ${what}: ${N} in ${seconds.toFixed(2)} s\n`);
  return N / seconds;
}

function chunks(n, size) {
  const out = [];
  for (let i = 0; i < n; i += size) out.push(Math.min(size, n - i));
  return out;
}

async function benchTaskd(dataDir) {
  const server = await startTaskd(['--durability=async', `--data-dir=${dataDir}`, '--threads=0']);
  const client = new taskd.Client({ target: server.target });
  const r = {};
  try {
    const probe = await client.submit('noop', '', { queue: 'probe' });
    r.floor = await rate('taskd GetTask one at a time (round-trip floor)', async () => {
      for (let i = 0; i < N; i++) await client.get(probe.id);
    });
    r.one = await rate('taskd submit one at a time', async () => {
      for (let i = 0; i < N; i++) await client.submit('noop', '', { queue: 'one' });
    });
    r.bulk = await rate(`taskd submit in bulk of ${BULK}`, async () => {
      for (const size of chunks(N, BULK)) {
        await client.submitMany(Array.from({ length: size }, () => ({ type: 'noop', queue: 'bulk' })));
      }
    });
    const worker = new taskd.Worker({ target: server.target, queues: ['e2e'], concurrency: CONCURRENCY, handleSignals: false });
    worker.handle('noop', () => undefined);
    const running = worker.run();
    r.e2e = await rate(`taskd end to end, 1 worker at concurrency ${CONCURRENCY}`, async () => {
      const ids = [];
      for (const size of chunks(N, BULK)) {
        const handles = await client.submitMany(Array.from({ length: size }, () => ({ type: 'noop', queue: 'e2e' })));
        for (const h of handles) ids.push(h.id);
      }
      const tasks = await client.awaitAll(ids);
      const ok = tasks.filter((t) => t.state === taskd.TaskState.SUCCEEDED).length;
      if (ok !== N) throw new Error(`taskd: ${ok} of ${N} succeeded`);
    });
    await worker.stop();
    await running;
  } finally {
    client.close();
    await server.stop();
  }
  return r;
}

async function benchBullmq(dir) {
  const { Queue, Worker } = require('bullmq');
  const redis = await startRedis(dir);
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
  const r = {};
  const queues = [];
  try {
    const one = new Queue('one', { connection });
    const bulk = new Queue('bulk', { connection });
    const e2e = new Queue('e2e', { connection });
    queues.push(one, bulk, e2e);
    await Promise.all(queues.map((q) => q.waitUntilReady()));
    const IORedis = require('ioredis');
    const ping = new IORedis(connection);
    r.floor = await rate('Redis PING one at a time (round-trip floor)', async () => {
      for (let i = 0; i < N; i++) await ping.ping();
    });
    ping.disconnect();
    r.one = await rate('BullMQ add one at a time', async () => {
      for (let i = 0; i < N; i++) await one.add('noop', {});
    });
    r.bulk = await rate(`BullMQ addBulk of ${BULK}`, async () => {
      for (const size of chunks(N, BULK)) await bulk.addBulk(Array.from({ length: size }, () => ({ name: 'noop', data: {} })));
    });
    let completed = 0;
    let allDone;
    const done = new Promise((resolve) => { allDone = resolve; });
    const worker = new Worker('e2e', async () => undefined, { connection, concurrency: CONCURRENCY });
    worker.on('completed', () => { completed += 1; if (completed === N) allDone(); });
    await worker.waitUntilReady();
    r.e2e = await rate(`BullMQ end to end, 1 worker at concurrency ${CONCURRENCY}`, async () => {
      for (const size of chunks(N, BULK)) await e2e.addBulk(Array.from({ length: size }, () => ({ name: 'noop', data: {} })));
      await done;
    });
    await worker.close();
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    await redis.stop();
  }
  return r;
}

function table(t, b) {
  const rows = [
    ['one round trip (taskd GetTask, Redis PING)', t.floor, b.floor],
    ['submit one at a time', t.one, b.one],
    [`submit in bulk of ${BULK}`, t.bulk, b.bulk],
    [`end to end, 1 worker, concurrency ${CONCURRENCY}`, t.e2e, b.e2e],
  ];
  const fmt = (x) => Math.round(x).toLocaleString('en-US');
  const lines = [
    `N=${N} no-op jobs, one Node client (node ${process.version}, bullmq ${require('bullmq/package.json').version}, ` +
      `@grpc/grpc-js ${require('@grpc/grpc-js/package.json').version}), ${os.cpus().length} cores`,
    '',
    '| workload | taskd jobs/s | BullMQ jobs/s | taskd / BullMQ |',
    '|---|---:|---:|---:|',
    ...rows.map(([name, x, y]) => `| ${name} | ${fmt(x)} | ${fmt(y)} | ${(x / y).toFixed(2)}x |`),
  ];
  return lines.join('\n');
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskd-bench-node-'));
  try {
    process.stderr.write('taskd (--durability=async):\n');
    const t = await benchTaskd(path.join(dir, 'taskd'));
    process.stderr.write('BullMQ (redis-server, appendonly, appendfsync no):\n');
    fs.mkdirSync(path.join(dir, 'redis'));
    const b = await benchBullmq(path.join(dir, 'redis'));
    console.log(table(t, b));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
