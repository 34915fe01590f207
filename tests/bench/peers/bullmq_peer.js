'use strict';
// BullMQ's side of `make bench-peers` (run by bench_peers.py; the protocol is
// in peer_common.py: one JSON record per stdout line). Submits with Queue.add
// (one at a time; 64 add() calls in flight on the Queue's one ioredis
// connection, as async code does) and Queue.addBulk (batches of 1,000), then
// starts one Worker process at --concurrency (BullMQ runs that many jobs at
// once in one Node thread) for the end-to-end and round-trip figures. The
// client has each result from QueueEvents 'completed' (the queue's Redis event
// stream, returnvalue included); round trips use job.waitUntilFinished.
//
//   node bullmq_peer.js --redis_port P --redis_pid PID [--n 20000] ...
//   node bullmq_peer.js --role worker --redis_port P --queue e2e --concurrency 50

const fs = require('node:fs');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');
const { Queue, QueueEvents, Worker } = require('bullmq');

const { values: opts } = parseArgs({
  options: {
    role: { type: 'string', default: 'driver' },
    queue: { type: 'string', default: 'e2e' },
    redis_port: { type: 'string' },
    redis_pid: { type: 'string', default: '0' },
    n: { type: 'string', default: '20000' },
    in_flight: { type: 'string', default: '64' },
    batch: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '50' },
    roundtrips: { type: 'string', default: '5000' },
    phase_limit_s: { type: 'string', default: '120' },
    option: { type: 'string', default: '' },
  },
});
const N = Number(opts.n);
const IN_FLIGHT = Number(opts.in_flight);
const BATCH = Number(opts.batch);
const CONCURRENCY = Number(opts.concurrency);
const ROUNDTRIPS = Number(opts.roundtrips);
const LIMIT_MS = Number(opts.phase_limit_s) * 1000;
const connection = { host: '127.0.0.1', port: Number(opts.redis_port), maxRetriesPerRequest: null };
// BullMQ trims a queue's event stream to this many entries (default 10,000);
// an end-to-end figure writes about three per job, all before the client reads
// them if it lags, so keep them all.
const EVENTS_MAX_LEN = Math.max(10_000, 10 * (N + ROUNDTRIPS));

const SUBMIT_SERIAL = 'submit_1';
const SUBMIT_IN_FLIGHT = 'submit_64';
const SUBMIT_BATCH = 'submit_batch';
const E2E_SERIAL = 'e2e_1';
const E2E_IN_FLIGHT = 'e2e_64';
const E2E_BATCH = 'e2e_batch';

const CLOCK_TICKS = 100; // USER_HZ on Linux

// User + system CPU seconds of a process from /proc (0 if it is gone).
function processCpuS(pid) {
  if (!pid) return 0;
  let raw;
  try {
    raw = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return 0;
  }
  const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

const now = () => performance.now();
const emit = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);

function chunks(n, size) {
  const out = [];
  for (let i = 0; i < n; i += size) out.push([i, Math.min(n, i + size)]);
  return out;
}

// Resolves as promise does, or with onTimeout()'s value once ms pass.
async function bounded(promise, ms, onTimeout) {
  let timer;
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

class CpuMeter {
  constructor(brokerPid) {
    this.brokerPid = brokerPid;
    this.workerPid = 0;
  }

  read() {
    const u = process.cpuUsage();
    return {
      client_cpu_s: (u.user + u.system) / 1e6,
      broker_cpu_s: processCpuS(this.brokerPid),
      worker_cpu_s: processCpuS(this.workerPid),
    };
  }

  delta(before) {
    const after = this.read();
    return Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
  }
}

// body() resolves with how many of N tasks it finished; emits the figure.
async function measure(meter, figure, how, body) {
  const before = meter.read();
  const start = now();
  const done = await body();
  const seconds = (now() - start) / 1000;
  emit({ figure, n: N, done, seconds, how, ...meter.delta(before) });
}

// The three client shapes; each returns the ids it submitted by the deadline.
async function serial(queue, deadline) {
  const ids = [];
  for (let i = 0; i < N && now() < deadline; i++) ids.push((await queue.add('noop', { i })).id);
  return ids;
}

async function inFlight(queue, deadline) {
  const ids = [];
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < N && now() < deadline; i = next++) ids.push((await queue.add('noop', { i })).id);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return ids;
}

async function batched(queue, deadline) {
  const ids = [];
  for (const [from, to] of chunks(N, BATCH)) {
    if (now() > deadline) break;
    const jobs = await queue.addBulk(Array.from({ length: to - from }, (_, k) => ({ name: 'noop', data: { i: from + k } })));
    for (const job of jobs) ids.push(job.id);
  }
  return ids;
}

// Tracks QueueEvents 'completed' so a phase can wait for a set of ids; an
// event may arrive before add() has returned its id to us.
class Completions {
  constructor(events) {
    this.seen = new Set();
    this.waiting = null;
    events.on('completed', ({ jobId }) => {
      this.seen.add(jobId);
      if (this.waiting && this.waiting.ids.delete(jobId) && this.waiting.ids.size === 0) this.waiting.resolve();
    });
    events.on('failed', ({ jobId, failedReason }) => {
      if (this.waiting) this.waiting.reject(new Error(`bullmq job ${jobId} failed: ${failedReason}`));
    });
  }

  // How many of ids have completed by the deadline.
  async wait(ids, deadline) {
    const left = new Set(ids.filter((id) => !this.seen.has(id)));
    if (left.size > 0) {
      const all = new Promise((resolve, reject) => { this.waiting = { ids: left, resolve, reject }; });
      await bounded(all, Math.max(0, deadline - now()), () => undefined);
      this.waiting = null;
    }
    const done = ids.length - left.size;
    this.seen.clear();
    return done;
  }
}

// The worker process prints "ready" when it is taking jobs. Told to stop
// (SIGTERM), it closes the Worker, within 10 s; when its parent is gone
// (stdin closes) it exits at once: Redis may be gone too, and close() would
// wait for it.
async function runWorker() {
  const worker = new Worker(opts.queue, async (job) => job.data.i, { connection, concurrency: CONCURRENCY });
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(1), 10_000).unref();
    worker.close().then(() => process.exit(0), () => process.exit(1));
  };
  const orphaned = () => process.exit(1);
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
  process.stdin.on('end', orphaned);
  process.stdin.on('error', orphaned);
  process.stdin.resume();
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
}

function startWorker() {
  const child = spawn(process.execPath, [__filename, '--role=worker', `--queue=e2e`,
    `--redis_port=${opts.redis_port}`, `--concurrency=${CONCURRENCY}`],
  { stdio: ['pipe', 'pipe', 'inherit'], cwd: __dirname });
  const ready = new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.trim() === 'ready') resolve();
    });
    child.on('exit', (code) => reject(new Error(`bullmq worker exited (${code})`)));
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await bounded(exited, 20_000, () => child.kill('SIGKILL'));
  };
  return { child, ready, stop };
}

async function runDriver() {
  const meter = new CpuMeter(Number(opts.redis_pid));
  emit({ info: {
    peer: 'bullmq',
    version: require('bullmq/package.json').version,
    in_flight: `${IN_FLIGHT} add() promises in flight on one ioredis connection (async, node ${process.version})`,
    batch: `Queue.addBulk of ${BATCH}`,
    worker: `1 Worker process, concurrency ${CONCURRENCY} (async, one Node thread)`,
    results: 'QueueEvents \'completed\' (Redis stream); round trips job.waitUntilFinished',
  } });
  const shapes = [
    [SUBMIT_SERIAL, E2E_SERIAL, serial, 'Queue.add one at a time'],
    [SUBMIT_IN_FLIGHT, E2E_IN_FLIGHT, inFlight, `${IN_FLIGHT} add() in flight`],
    [SUBMIT_BATCH, E2E_BATCH, batched, `Queue.addBulk of ${BATCH}`],
  ];
  const queues = [];
  let events = null;
  let worker = null;
  try {
    for (const [figure, , submit, how] of shapes) {
      const queue = new Queue(figure, { connection });
      queues.push(queue);
      await queue.waitUntilReady();
      await measure(meter, figure, how, async () => (await submit(queue, now() + LIMIT_MS)).length);
    }

    const e2e = new Queue('e2e', { connection, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
    queues.push(e2e);
    await e2e.waitUntilReady();
    events = new QueueEvents('e2e', { connection, lastEventId: '0-0' });
    await events.waitUntilReady();
    const completions = new Completions(events);
    worker = startWorker();
    await bounded(worker.ready, 60_000, () => { throw new Error('bullmq worker did not start'); });
    meter.workerPid = worker.child.pid;
    const warm = await e2e.add('noop', { i: 0 });
    await warm.waitUntilFinished(events, 60_000);

    for (const [, figure, submit, how] of shapes) {
      await measure(meter, figure, `${how}, then QueueEvents 'completed' for each`, async () => {
        const deadline = now() + LIMIT_MS;
        return completions.wait(await submit(e2e, deadline), deadline);
      });
    }

    const samples = [];
    const before = meter.read();
    const roundtripsStart = now();
    const deadline = now() + LIMIT_MS;
    for (let k = 0; k < ROUNDTRIPS && now() < deadline; k++) {
      const start = now();
      const job = await e2e.add('noop', { i: 1 });
      await job.waitUntilFinished(events, Math.max(1, deadline - now()));
      samples.push(now() - start);
    }
    const cpu = meter.delta(before);
    const seconds = (now() - roundtripsStart) / 1000;
    samples.sort((a, b) => a - b);
    const pct = (q) => samples[Math.min(samples.length, Math.max(1, Math.ceil((q / 100) * samples.length))) - 1];
    for (const [figure, q] of [['rtt_p50', 50], ['rtt_p99', 99]]) {
      const record = { figure, n: ROUNDTRIPS, done: samples.length, seconds, how: 'Queue.add + job.waitUntilFinished', ...cpu };
      if (samples.length) {
        Object.assign(record, { value: pct(q), mean_ms: samples.reduce((a, b) => a + b, 0) / samples.length,
          max_ms: samples[samples.length - 1] });
      }
      emit(record);
    }
  } finally {
    if (worker) await worker.stop();
    if (events) await events.close();
    await Promise.all(queues.map((q) => q.close()));
  }
}

const main = opts.role === 'worker' ? runWorker : runDriver;
main().then(() => {
  if (opts.role !== 'worker') process.exit(0);
}, (err) => {
  console.error(err);
  process.exit(1);
});
