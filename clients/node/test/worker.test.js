'use strict';
// The worker SDK against a real taskd.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { Client, Worker, TaskState, TaskFailure, UnavailableError } = require('..');
const { startTaskd, withSharedTaskd, deadline, latch } = require('./harness');

let server;
let client;
withSharedTaskd((s, c) => { server = s; client = c; });

function startWorker(queue, handlers, options = {}) {
  const worker = new Worker({ target: server.target, queues: [queue], handleSignals: false, ...options });
  for (const [type, h] of Object.entries(handlers)) worker.handle(type, h);
  worker.running = worker.run();
  return worker;
}

async function stopWorker(worker) {
  await worker.stop({ graceMs: 0 });
  await worker.running;
}

// Resolves when `signal` aborts, with its reason.
function aborted(signal) {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));
}

test('never more than `concurrency` handlers at once, and all of them run', async () => {
  let active = 0;
  let peak = 0;
  const full = latch();
  const worker = startWorker('q-conc', {
    job: async (ctx) => {
      active += 1;
      peak = Math.max(peak, active);
      if (active === 3) full.resolve();
      await full.promise;
      active -= 1;
      return ctx.payload;
    },
  }, { concurrency: 3 });
  const handles = await client.submitMany(Array.from({ length: 10 }, (_, i) => ({ type: 'job', payload: String(i), queue: 'q-conc' })));
  const tasks = await client.awaitAll(handles, { timeoutMs: 15_000 });
  assert.deepEqual(tasks.map((t) => t.result.toString()), handles.map((_, i) => String(i)));
  assert.equal(peak, 3);
  assert.equal(worker.stats.completed, 10);
  await stopWorker(worker);
});

test('progress reaches the task record while it runs; objects return as JSON', async () => {
  const reported = latch();
  const release = latch();
  const worker = startWorker('q-progress', {
    work: async (ctx) => {
      ctx.progress(75, 'three quarters');
      reported.resolve();
      await release.promise;
      return { sum: ctx.json().a + 1 };
    },
  });
  const t = await client.submit('work', { a: 41 }, { queue: 'q-progress' });
  await deadline(reported.promise, 10_000, 'the handler to report progress');
  // The progress message was written before the handler went on; poll the
  // record until it shows (bounded in count and time), as a dashboard would.
  let task;
  const until = Date.now() + 10_000;
  for (let i = 0; i < 10_000 && Date.now() < until; i++) {
    task = await t.get();
    if (task.progress) break;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(task.state, TaskState.RUNNING);
  assert.deepEqual({ percent: task.progress.percent, message: task.progress.message }, { percent: 75, message: 'three quarters' });
  release.resolve();
  assert.deepEqual(JSON.parse(await t.result({ timeoutMs: 10_000 })), { sum: 42 });
  assert.throws(() => new (require('../lib/worker').TaskContext)(task, '1', null, null, () => {}).progress(101), { name: 'RangeError', message: /progress\(percent\)/ });
  await stopWorker(worker);
});

test('a cancel from a client aborts ctx.signal; the task ends CANCELLED', async () => {
  const started = latch();
  let reason;
  const worker = startWorker('q-cancel', {
    long: async (ctx) => {
      started.resolve();
      reason = await aborted(ctx.signal);
      throw reason;
    },
  });
  const t = await client.submit('long', '', { queue: 'q-cancel' });
  await deadline(started.promise, 10_000, 'the handler to start');
  await client.cancel(t, 'stop it');
  const err = await t.result({ timeoutMs: 10_000 }).then(() => null, (e) => e);
  assert.equal(err && err.name, 'TaskCancelledError');
  assert.equal(err.error.code, 'cancelled');
  assert.equal(reason.code, 'cancelled');
  assert.match(reason.message, /stop it/);
  await stopWorker(worker);
});

test('the attempt timeout aborts ctx.signal and fails the task with code timeout', async () => {
  let reason;
  const worker = startWorker('q-timeout', {
    stuck: async (ctx) => {
      assert.ok(ctx.deadline instanceof Date, 'a task with a timeout has a deadline');
      reason = await aborted(ctx.signal);
      throw reason;
    },
  });
  const t = await client.submit('stuck', '', { queue: 'q-timeout', timeoutMs: 300, retry: { maxAttempts: 1 } });
  const err = await t.result({ timeoutMs: 10_000 }).then(() => null, (e) => e);
  assert.equal(err && err.name, 'TaskFailedError');
  assert.equal(err.error.code, 'timeout');
  assert.ok(reason, 'the handler saw its signal abort');
  await stopWorker(worker);
});

test('a thrown error is retried; TaskFailure chooses code and retryability', async () => {
  const worker = startWorker('q-retry', {
    flaky: (ctx) => {
      if (ctx.attempt === 1) throw new Error('transient');
      return `ok on attempt ${ctx.attempt}`;
    },
    final: () => { throw new TaskFailure('bad_request', 'never works', { retryable: false }); },
  });
  const flaky = await client.submit('flaky', '', { queue: 'q-retry', retry: { maxAttempts: 3, initialBackoffMs: 10 } });
  const final = await client.submit('final', '', { queue: 'q-retry', retry: { maxAttempts: 3, initialBackoffMs: 10 } });
  assert.equal((await flaky.result({ timeoutMs: 10_000 })).toString(), 'ok on attempt 2');
  const [f] = await client.awaitAll([final], { timeoutMs: 10_000 });
  assert.equal(f.state, TaskState.FAILED);
  assert.equal(f.attempt, 1);
  assert.equal(f.error.code, 'bad_request');
  await stopWorker(worker);
});

test('a result over maxResultBytes fails the task instead of being sent', async () => {
  const worker = startWorker('q-big', { big: () => 'x'.repeat(11), small: () => 'x'.repeat(10) }, { maxResultBytes: 10 });
  const big = await client.submit('big', '', { queue: 'q-big' });
  const small = await client.submit('small', '', { queue: 'q-big' });
  const [b, s] = await client.awaitAll([big, small], { timeoutMs: 10_000 });
  assert.equal(b.state, TaskState.FAILED);
  assert.deepEqual([b.error.code, b.error.retryable, b.attempt], ['result_too_large', false, 1]);
  assert.equal(s.result.toString(), 'x'.repeat(10));
  await stopWorker(worker);
});

test('heartbeats keep a long attempt alive; without them its lease expires', async () => {
  // Each handler runs three heartbeat timeouts long (its workload), reporting nothing.
  const run = (ms) => (ctx) => new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms, 'survived');
    ctx.signal.addEventListener('abort', () => { clearTimeout(timer); reject(ctx.signal.reason); }, { once: true });
  });
  const alive = startWorker('q-hb-on', { long: run(900) }, { heartbeatIntervalMs: 50 });
  const silent = startWorker('q-hb-off', { long: run(900) }, { heartbeatIntervalMs: 60_000 });
  const spec = { heartbeatTimeoutMs: 300, retry: { maxAttempts: 1 } };
  const a = await client.submit('long', '', { queue: 'q-hb-on', ...spec });
  const b = await client.submit('long', '', { queue: 'q-hb-off', ...spec });
  const [ta, tb] = await client.awaitAll([a, b], { timeoutMs: 10_000 });
  assert.equal(ta.state, TaskState.SUCCEEDED, JSON.stringify(ta.error));
  assert.equal(tb.state, TaskState.FAILED);
  assert.equal(tb.error.code, 'lease_expired');
  await Promise.all([stopWorker(alive), stopWorker(silent)]);
});

test('stop() lets running handlers finish, then closes', async () => {
  const started = latch();
  const release = latch();
  const worker = startWorker('q-stop', {
    job: async () => { started.resolve(); await release.promise; return 'finished'; },
  });
  const t = await client.submit('job', '', { queue: 'q-stop' });
  await deadline(started.promise, 10_000, 'the handler to start');
  const stopping = worker.stop({ graceMs: 30_000 });
  release.resolve();
  await deadline(stopping, 10_000, 'stop()');
  await worker.running;
  assert.equal((await t.result({ timeoutMs: 10_000 })).toString(), 'finished');
});

test('stop() past its grace aborts handlers and hands their tasks back', async () => {
  const started = latch();
  const first = startWorker('q-handback', {
    job: async (ctx) => { started.resolve(); throw await aborted(ctx.signal); },
  });
  const t = await client.submit('job', '', { queue: 'q-handback', retry: { maxAttempts: 2, initialBackoffMs: 10 } });
  await deadline(started.promise, 10_000, 'the first handler to start');
  await first.stop({ graceMs: 0 });
  await first.running;
  const second = startWorker('q-handback', { job: (ctx) => `attempt ${ctx.attempt}` });
  assert.equal((await t.result({ timeoutMs: 10_000 })).toString(), 'attempt 2');
  const all = [];
  for await (const ev of client.stream({ ids: [t], fromSequence: 1 })) all.push(ev);
  const retrying = all.find((e) => e.type === 'EVENT_TYPE_RETRYING');
  assert.equal(retrying && retrying.task.error.code, 'worker_stopped');
  await stopWorker(second);
});

test('SIGTERM stops a worker process gracefully', async () => {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'sigterm_worker.js'), server.target],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const running = new Promise((resolve) => child.stdout.on('data', (d) => { out += d; if (out.includes('running')) resolve(); }));
  const exited = once(child, 'exit');
  const t = await client.submit('until-sigterm', '', { queue: 'q-sigterm' });
  await deadline(running, 10_000, 'the worker process to run the task');
  child.kill('SIGTERM');
  const [code] = await deadline(exited, 15_000, 'the worker process to exit');
  assert.equal(code, 0);
  assert.match(out, /stopped completed=1/);
  assert.equal((await t.result({ timeoutMs: 10_000 })).toString(), 'finished after SIGTERM');
});

test('a lost server: run() rejects with UnavailableError, or reconnects', async () => {
  const lone = await startTaskd();
  const strict = new Worker({ target: lone.target, reconnect: false, handleSignals: false }).handle('x', () => '');
  const patient = new Worker({ target: lone.target, handleSignals: false, queues: ['q-back'] }).handle('x', () => 'after restart');
  const disconnected = once(patient, 'disconnected');
  const strictOutcome = strict.run().then(() => null, (e) => e); // settles during the kill
  const patientRun = patient.run();
  await lone.stop('SIGKILL');
  const err = await deadline(strictOutcome, 10_000, 'run() to reject');
  assert.ok(err instanceof UnavailableError, `got ${err}`);
  assert.match(err.message, /unavailable/);
  const [why] = await deadline(disconnected, 10_000, 'the disconnected event');
  assert.ok(why instanceof UnavailableError);
  // A new server on the same port: the worker reconnects by itself.
  const again = await startTaskd([`--listen=127.0.0.1:${lone.port}`]);
  // A channel of its own: the shared one to this address is still backing off.
  const c = new Client({ target: again.target, channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });
  try {
    const t = await c.submit('x', '', { queue: 'q-back' });
    assert.equal((await t.result({ timeoutMs: 15_000 })).toString(), 'after restart');
  } finally {
    await patient.stop();
    await patientRun;
    c.close();
    await again.stop();
  }
});

test('bad options and misuse are reported clearly', async () => {
  assert.throws(() => new Worker({ concurrency: 0 }), { name: 'RangeError', message: /options\.concurrency/ });
  assert.throws(() => new Worker({ queues: 'images' }), { name: 'TypeError', message: /options\.queues/ });
  assert.throws(() => new Worker({ concurency: 2 }), { name: 'TypeError', message: /unknown option "concurency"/ });
  const w = new Worker({ handleSignals: false });
  assert.throws(() => w.handle('t', 'not a function'), { name: 'TypeError', message: /handle\(fn\)/ });
  await assert.rejects(w.run(), /register a handler/);
  w.handle('t', () => '');
  assert.throws(() => w.handle('t', () => ''), /already registered/);
  assert.throws(() => new TaskFailure('', 'x'), /TaskFailure\(code\)/);
});

test('worker text is valid UTF-8 cut on a character boundary (wireText)', () => {
  const { wireText } = require('../lib/worker');
  for (const text of ['ok', 'caf\u00e9', 'stderr \udcff tail', '\u00e9'.repeat(3000), 'x'.repeat(4095) + '\u00e9']) {
    const bytes = Buffer.from(wireText(text, 4096), 'utf8');
    assert.ok(bytes.length <= 4096);
    assert.ok(Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes), 'round-trips as UTF-8');
  }
  assert.equal(wireText('x'.repeat(4095) + '\u00e9', 4096), 'x'.repeat(4095));
  assert.ok(wireText('bad \udcff', 100).includes('\ufffd'));
});
