'use strict';
// The promise client against a real taskd.

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  Client, Worker, TaskState, EventType, isTerminal, TaskdError, UnavailableError,
  TaskFailedError, TaskCancelledError, AwaitTimeoutError,
} = require('..');
const { startTaskd, withSharedTaskd, deadline, latch } = require('./harness');

let server;
let client;
withSharedTaskd((s, c) => { server = s; client = c; });

// A worker on its own queue; the test's handlers decide outcomes.
async function withWorker(queue, handlers, fn, options = {}) {
  const worker = new Worker({ target: server.target, queues: [queue], concurrency: 4, handleSignals: false, ...options });
  for (const [type, h] of Object.entries(handlers)) worker.handle(type, h);
  const running = worker.run();
  try {
    return await fn(worker);
  } finally {
    await worker.stop({ graceMs: 0 });
    await running;
  }
}

test('submit returns a PENDING task at once and result() its bytes', async () => {
  await withWorker('q-result', { echo: (ctx) => Buffer.concat([Buffer.from('got:'), ctx.payload]) }, async () => {
    const t = await client.submit('echo', Buffer.from([0, 1, 2]), { queue: 'q-result', priority: 3, labels: { a: 'b' } });
    assert.match(t.id, /^[0-9A-Z]{26}$/);
    assert.equal(t.deduplicated, false);
    assert.equal(t.task.spec.priority, 3);
    assert.deepEqual(t.task.spec.labels, { a: 'b' });
    const result = await t.result({ timeoutMs: 10_000 });
    assert.deepEqual(result, Buffer.from([...Buffer.from('got:'), 0, 1, 2]));
    const done = await t.get();
    assert.equal(done.state, TaskState.SUCCEEDED);
    assert.equal(done.attempt, 1);
    assert.ok(done.finishTime instanceof Date);
  });
});

test('result() rejects with TaskFailedError carrying the TaskError', async () => {
  await withWorker('q-fail', { boom: () => { throw new (require('..').TaskFailure)('bad_input', 'no pixels', { retryable: false, details: 'd1' }); } }, async () => {
    const t = await client.submit('boom', 'x', { queue: 'q-fail' });
    const err = await t.result({ timeoutMs: 10_000 }).then(() => null, (e) => e);
    assert.ok(err instanceof TaskFailedError, `got ${err}`);
    assert.ok(err instanceof TaskdError);
    assert.equal(err.code, 'TASK_FAILED');
    assert.deepEqual(err.error, { code: 'bad_input', message: 'no pixels', details: 'd1', retryable: false });
    assert.equal(err.task.state, TaskState.FAILED);
    assert.equal(err.task.attempt, 1, 'a non-retryable failure is final');
  });
});

test('result() rejects with TaskCancelledError for a cancelled task', async () => {
  const t = await client.submit('never-served', '', { queue: 'q-nobody' });
  const cancelled = await client.cancel(t, 'changed my mind');
  assert.equal(cancelled.state, TaskState.CANCELLED);
  const err = await t.result({ timeoutMs: 10_000 }).then(() => null, (e) => e);
  assert.ok(err instanceof TaskCancelledError, `got ${err}`);
  assert.equal(err.error.code, 'cancelled');
  assert.equal(err.error.message, 'changed my mind');
  // Cancel is idempotent.
  assert.equal((await t.cancel('again')).state, TaskState.CANCELLED);
});

test('timeoutMs ends a wait with AwaitTimeoutError; the task goes on', async () => {
  const t = await client.submit('never-served', '', { queue: 'q-nobody' });
  const started = Date.now();
  const err = await t.result({ timeoutMs: 200 }).then(() => null, (e) => e);
  assert.ok(err instanceof AwaitTimeoutError, `got ${err}`);
  assert.ok(Date.now() - started >= 150, 'waited about timeoutMs');
  assert.equal(err.tasks[0].state, TaskState.PENDING);
  assert.equal((await t.get()).state, TaskState.PENDING);
  await t.cancel();
});

test('an AbortSignal stops waiting locally without touching the task', async () => {
  const t = await client.submit('never-served', '', { queue: 'q-nobody' });
  const ac = new AbortController();
  const waiting = t.result({ signal: ac.signal });
  ac.abort(new Error('user gave up'));
  await assert.rejects(deadline(waiting, 5000, 'the aborted wait'), /user gave up/);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(client.awaitAll([t], { signal: pre.signal }), { name: 'AbortError' });
  assert.equal((await t.get()).state, TaskState.PENDING);
  await t.cancel();
});

test('awaitAll and awaitAny follow the tasks in request order', async () => {
  const gate = latch();
  await withWorker('q-await', {
    fast: (ctx) => ctx.text(),
    gated: async (ctx) => { await gate.promise; return ctx.text(); },
  }, async () => {
    const slow = await client.submit('gated', 'slow', { queue: 'q-await' });
    const fast = await client.submit('fast', 'fast', { queue: 'q-await' });
    const any = await client.awaitAny([slow, fast.id], { timeoutMs: 10_000 });
    assert.deepEqual(any.map((t) => t.id), [slow.id, fast.id]);
    assert.equal(any[1].state, TaskState.SUCCEEDED);
    assert.equal(isTerminal(any[0]), false);
    gate.resolve();
    const all = await client.awaitAll([fast, slow, fast], { timeoutMs: 10_000 });
    assert.deepEqual(all.map((t) => t.result.toString()), ['fast', 'slow', 'fast']);
  });
});

test('awaitAll takes more than 1000 ids', async () => {
  const specs = Array.from({ length: 1000 }, (_, i) => ({ type: 'never-served', payload: String(i), queue: 'q-many' }));
  const handles = [...await client.submitMany(specs), ...await client.submitMany(specs.slice(0, 200))];
  assert.equal(handles.length, 1200);
  const waiting = client.awaitAll(handles, { timeoutMs: 20_000 });
  for (let i = 0; i < handles.length; i += 100) {
    await Promise.all(handles.slice(i, i + 100).map((h) => h.cancel()));
  }
  const tasks = await waiting;
  assert.equal(tasks.length, 1200);
  assert.ok(tasks.every((t) => t.state === TaskState.CANCELLED));
});

test('awaitAll over several calls fails as a whole when one call fails', async () => {
  const specs = Array.from({ length: 1000 }, () => ({ type: 'never-served', queue: 'q-many' }));
  const handles = await client.submitMany(specs);
  const gone = handles[0].id.slice(0, -4) + (handles[0].id.endsWith('ZZZZ') ? 'YYYY' : 'ZZZZ');
  const err = await deadline(client.awaitAll([...handles, gone]).then(() => null, (e) => e), 10_000, 'awaitAll to fail');
  assert.ok(err instanceof TaskdError, `got ${err}`);
  assert.equal(err.code, 'NOT_FOUND');
  await Promise.all(handles.map((h) => h.cancel()));
});

test('submitMany is all or nothing and names the bad index', async () => {
  const err = await client.submitMany([{ type: 'ok' }, { type: 'bad type!' }]).then(() => null, (e) => e);
  assert.ok(err instanceof TaskdError);
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, /1/);
});

test('an idempotency key answers with the first task', async () => {
  const a = await client.submit('never-served', 'one', { queue: 'q-nobody', idempotencyKey: 'k-1' });
  const b = await client.submit('never-served', 'two', { queue: 'q-nobody', idempotencyKey: 'k-1' });
  assert.equal(b.id, a.id);
  assert.equal(b.deduplicated, true);
  await a.cancel();
});

// Stream tests replay from sequence 1 of a server of their own, so no event
// can be missed between opening the stream and the server registering it.
async function withFreshServer(fn) {
  const fresh = await startTaskd();
  const c = new Client({ target: fresh.target });
  try {
    return await fn(fresh, c);
  } finally {
    c.close();
    await fresh.stop();
  }
}

test('stream yields a task\'s events in order and ends when it is terminal', async () => {
  await withFreshServer(async (fresh, c) => {
    const gate = latch();
    const worker = new Worker({ target: fresh.target, queues: ['q-stream'], handleSignals: false });
    worker.handle('step', async (ctx) => { ctx.progress(40, 'forty'); await gate.promise; return 'done'; });
    const running = worker.run();
    const t = await c.submit('step', 'in', { queue: 'q-stream' });
    const seen = [];
    const consumed = (async () => {
      for await (const ev of c.stream({ ids: [t], fromSequence: 1n, includePayloads: true })) {
        seen.push(ev);
        if (ev.type === EventType.PROGRESS) gate.resolve();
      }
    })();
    await deadline(consumed, 10_000, 'the stream to end');
    await worker.stop();
    await running;
    assert.deepEqual(seen.map((e) => e.type), [EventType.SUBMITTED, EventType.STARTED, EventType.PROGRESS, EventType.SUCCEEDED]);
    assert.ok(seen.every((e) => e.task.id === t.id));
    assert.equal(seen[0].task.spec.payload.toString(), 'in');
    assert.equal(seen[2].task.progress.percent, 40);
    assert.equal(seen[2].task.progress.message, 'forty');
    assert.equal(seen[3].task.result.toString(), 'done');
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].sequence > seen[i - 1].sequence);
  });
});

test('a queue stream sees only its queue; break and abort end it', async () => {
  await withFreshServer(async (fresh, c) => {
    const other = await c.submit('never-served', '', { queue: 'q-other' });
    const t = await c.submit('never-served', '', { queue: 'q-watch' });
    await c.cancel(t);
    const seen = [];
    for await (const ev of c.stream({ queue: 'q-watch', fromSequence: 1 })) {
      seen.push(ev);
      if (ev.type === EventType.CANCELLED) break; // ends the RPC
    }
    assert.deepEqual(seen.map((e) => [e.type, e.task.id]), [[EventType.SUBMITTED, t.id], [EventType.CANCELLED, t.id]]);
    const ac = new AbortController();
    const waiting = (async () => { for await (const _ of c.stream({ queue: 'q-quiet', signal: ac.signal })); })();
    ac.abort();
    await assert.rejects(deadline(waiting, 5000, 'the aborted stream'), { name: 'AbortError' });
    await other.cancel();
  });
});

// Once a server defect: a replay stalled when a read batch of 128 events
// held no match (StreamCall::PumpLocked now reads on).
test('a filtered replay reaches events behind more than one read batch', async () => {
  await withFreshServer(async (fresh, c) => {
    const noise = await c.submitMany(Array.from({ length: 200 }, () => ({ type: 'never-served', queue: 'q-noise' })));
    const t = await c.submit('never-served', '', { queue: 'q-target' });
    await c.cancel(t);
    const types = [];
    const consumed = (async () => { for await (const ev of c.stream({ ids: [t], fromSequence: 1 })) types.push(ev.type); })();
    await deadline(consumed, 3000, 'the replay to end');
    assert.deepEqual(types, [EventType.SUBMITTED, EventType.CANCELLED]);
    assert.equal(noise.length, 200);
  });
});

test('list pages through a queue, with payloads on request', async () => {
  const handles = await client.submitMany(Array.from({ length: 5 }, () => ({ type: 'never-served', payload: 'p', queue: 'q-list' })));
  const ids = [];
  for await (const t of client.list({ queue: 'q-list', states: [TaskState.PENDING], pageSize: 2 })) {
    ids.push(t.id);
    assert.equal(t.spec.payload.length, 0, 'payloads are omitted by default');
  }
  assert.deepEqual(ids.sort(), handles.map((h) => h.id).sort());
  for await (const t of client.list({ queue: 'q-list', includePayloads: true })) assert.equal(t.spec.payload.toString(), 'p');
  await Promise.all(handles.map((h) => h.cancel()));
});

test('bad arguments throw at once, naming the argument', async () => {
  await assert.rejects(client.submit(''), { name: 'TypeError', message: /submit\(type\)/ });
  await assert.rejects(client.submit('t', 'p', { priority: 12 }), { name: 'RangeError', message: /opts\.priority/ });
  await assert.rejects(client.submit('t', 'p', { delayMs: -1 }), { name: 'RangeError', message: /opts\.delayMs/ });
  await assert.rejects(client.submit('t', 'p', { retry: { maxAttempts: 1.5 } }), { name: 'TypeError', message: /opts\.retry\.maxAttempts/ });
  await assert.rejects(client.submit('t', 'p', { qeue: 'x' }), { name: 'TypeError', message: /unknown option "qeue"/ });
  await assert.rejects(client.submit('t', () => 1), { name: 'TypeError', message: /submit\(payload\)/ });
  await assert.rejects(client.awaitAll([]), { name: 'TypeError', message: /awaitAll\(ids\)/ });
  await assert.rejects(client.awaitAll(['a'], { timeoutMs: 'soon' }), { name: 'TypeError', message: /opts\.timeoutMs/ });
  await assert.rejects(client.awaitAny(Array(1001).fill('x')), { name: 'RangeError', message: /awaitAny\(ids\)/ });
  await assert.rejects(client.cancel(42), { name: 'TypeError', message: /cancel\(id\)/ });
  assert.throws(() => client.stream({ queue: 5 }), { name: 'TypeError', message: /opts\.queue/ });
  assert.throws(() => new Client({ target: 7 }), { name: 'TypeError', message: /options\.target/ });
});

test('the server\'s INVALID_ARGUMENT and NOT_FOUND arrive as TaskdErrors', async () => {
  await assert.rejects(client.submit('bad type!'), (e) => e instanceof TaskdError && e.code === 'INVALID_ARGUMENT' && /type/.test(e.message));
  const t = await client.submit('never-served', '', { queue: 'q-nobody' });
  await t.cancel();
  const unknown = t.id.slice(0, -4) + (t.id.endsWith('ZZZZ') ? 'YYYY' : 'ZZZZ');
  await assert.rejects(client.get(unknown), (e) => e instanceof TaskdError && e.code === 'NOT_FOUND');
});

test('a server that is gone gives a clear UnavailableError', async () => {
  const gone = await startTaskd();
  const target = gone.target;
  await gone.stop();
  const c = new Client({ target, callTimeoutMs: 5000 });
  try {
    const err = await c.submit('x').then(() => null, (e) => e);
    assert.ok(err instanceof UnavailableError, `got ${err}`);
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, new RegExp(`taskd at ${target} is unavailable`));
  } finally {
    c.close();
  }
});
