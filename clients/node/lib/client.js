'use strict';
// Client: the promise API of taskd's TaskService.
//
//   const client = new Client({ target: '127.0.0.1:50051' });
//   const t = await client.submit('resize', { src: 'a.png' }, { timeoutMs: 60_000 });
//   const bytes = await t.result({ timeoutMs: 5_000 });
//
// One Client holds one gRPC channel; share it. Every method validates its
// arguments synchronously (TypeError/RangeError naming the argument) and
// rejects RPC failures with a TaskdError (UnavailableError when the server
// cannot be reached). Waits take `timeoutMs` (the server's own wait limit)
// and `signal` (an AbortSignal that stops waiting locally, cancelling the
// RPC; the task itself is untouched); results always come back, payloads
// only with `includePayloads`.

const grpc = require('@grpc/grpc-js');
const { v1 } = require('./proto');
const errors = require('./errors');
const c = require('./convert');
const { SECURITY_OPTIONS, channelSecurity } = require('./security');

const MAX_AWAIT_IDS = 1000; // AwaitRequest and SubmitTasksRequest limits
const AWAIT_DEADLINE_SLACK_MS = 10_000; // gRPC deadline beyond the server's own timeout
const WAIT_OPTIONS = ['timeoutMs', 'signal', 'includePayloads'];

// Normalises the `target`/options argument shared by Client and Worker.
function channelArgs(options, where, extraKeys) {
  if (typeof options === 'string') options = { target: options };
  options = c.checkOptions(options, where, ['target', 'credentials', 'channelOptions', ...SECURITY_OPTIONS, ...extraKeys]);
  const target = options.target === undefined ? '127.0.0.1:50051' : c.checkString(options.target, `${where}: options.target`);
  // TLS/mTLS/token (lib/security.js), or the caller's own credentials.
  const security = channelSecurity(options, target, `${where.replace('(options)', '')}: options`);
  // Reconnect soon after a server restart (grpc-js backs off up to 120 s).
  const channelOptions = {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 5000,
    ...options.channelOptions,
  };
  if (security.interceptors.length > 0) {
    channelOptions.interceptors = [...security.interceptors, ...(channelOptions.interceptors || [])];
  }
  return { options, target, credentials: security.credentials, channelOptions };
}

class Client {
  // options: a target string, or { target = '127.0.0.1:50051', tlsCa,
  // tlsCert, tlsKey, tls, token = $TASKD_TOKEN (lib/security.js), or
  // credentials (default insecure), channelOptions, callTimeoutMs = 30000
  // (deadline of calls that do not wait for tasks) }.
  constructor(options = {}) {
    const args = channelArgs(options, 'new Client(options)', ['callTimeoutMs']);
    this.target = args.target;
    this._callTimeoutMs = args.options.callTimeoutMs === undefined
      ? 30_000 : c.checkMs(args.options.callTimeoutMs, 'new Client: options.callTimeoutMs');
    this._stub = new v1.TaskService(this.target, args.credentials, args.channelOptions);
  }

  // Submits one task; resolves to its TaskHandle. opts: queue, priority (0..9),
  // runAt (Date) | delayMs, timeoutMs, heartbeatTimeoutMs, retry
  // {maxAttempts, initialBackoffMs, maxBackoffMs, multiplier},
  // idempotencyKey, dependsOn (ids or handles), labels, resultTtlMs.
  async submit(type, payload, opts) {
    const task = c.specToProto(type, payload, opts, 'submit');
    const res = await this._unary('SubmitTask', { task });
    return new TaskHandle(this, c.taskFromProto(res.task), res.deduplicated);
  }

  // Submits up to 1000 tasks at once, all or nothing: specs is an array of
  // { type, payload, ...opts of submit() }. Resolves to their handles in order.
  async submitMany(specs) {
    if (!Array.isArray(specs) || specs.length === 0 || specs.length > MAX_AWAIT_IDS) {
      throw new TypeError(`submitMany(specs): expected an array of 1..${MAX_AWAIT_IDS} specs, got ${Array.isArray(specs) ? specs.length + ' specs' : typeof specs}`);
    }
    const tasks = specs.map((s, i) => {
      const where = `submitMany(specs[${i}])`;
      if (s === null || typeof s !== 'object') throw new TypeError(`${where}: expected { type, payload, ...opts }`);
      const { type, payload, ...opts } = s;
      return c.specToProto(type, payload, opts, where);
    });
    const res = await this._unary('SubmitTasks', { tasks });
    return res.tasks.map((t) => new TaskHandle(this, c.taskFromProto(t), false));
  }

  // A handle on an existing task (no RPC), e.g. one another program submitted.
  task(id) {
    return new TaskHandle(this, { id: c.toId(id, 'task(id)') }, false);
  }

  // The task as it stands now. NOT_FOUND (TaskdError) for an unknown id.
  async get(id) {
    return c.taskFromProto(await this._unary('GetTask', { id: c.toId(id, 'get(id)') }));
  }

  // Cancels a task (idempotent); resolves to the task as it stands after the
  // request. A RUNNING task gets cancelRequested and ends CANCELLED once its
  // worker stops.
  async cancel(id, reason = '') {
    const req = { id: c.toId(id, 'cancel(id)'), reason: c.checkString(reason, 'cancel(reason)', { allowEmpty: true }) };
    return c.taskFromProto(await this._unary('Cancel', req));
  }

  // Resolves once every task is terminal, to the tasks in the order given
  // (however they ended; see TaskHandle.result() for throwing on failure).
  // ids: task ids or handles, any number (awaited 1000 per call).
  async awaitAll(ids, opts) {
    return this._await(ids, 'AWAIT_MODE_ALL', opts, 'awaitAll', Infinity);
  }

  // Resolves once at least one task is terminal, to all of them as they
  // stand then (filter with isTerminal). At most 1000 ids.
  async awaitAny(ids, opts) {
    return this._await(ids, 'AWAIT_MODE_ANY', opts, 'awaitAny', MAX_AWAIT_IDS);
  }

  // Events as an async iterable: for await (const ev of client.stream({ queue })).
  // opts: ids (the stream ends once all of them are terminal) | queue (else
  // everything), fromSequence (replay from there; 0 = from now), includePayloads,
  // signal. Breaking out of the loop ends the RPC.
  stream(opts) {
    opts = c.checkOptions(opts, 'stream(opts)', ['ids', 'queue', 'fromSequence', 'includePayloads', 'signal']);
    const req = { ids: [], queue: '', fromSequence: '0', includePayloads: Boolean(opts.includePayloads) };
    if (opts.ids !== undefined) {
      if (!Array.isArray(opts.ids)) throw new TypeError(`stream: opts.ids: expected an array of task ids, got ${typeof opts.ids}`);
      req.ids = opts.ids.map((id, i) => c.toId(id, `stream: opts.ids[${i}]`));
    }
    if (opts.queue !== undefined) req.queue = c.checkString(opts.queue, 'stream: opts.queue');
    if (opts.fromSequence !== undefined) {
      const s = opts.fromSequence;
      if (!(typeof s === 'bigint' || Number.isSafeInteger(s)) || s < 0) {
        throw new TypeError(`stream: opts.fromSequence: expected a non-negative integer or bigint, got ${String(s)}`);
      }
      req.fromSequence = String(s);
    }
    const signal = c.checkSignal(opts.signal, 'stream: opts.signal');
    return this._streamEvents(req, signal);
  }

  // Tasks as an async iterable, page by page. opts: queue, states (e.g.
  // ['TASK_STATE_PENDING']), pageSize, includePayloads (payloads and results
  // are omitted without it).
  list(opts) {
    opts = c.checkOptions(opts, 'list(opts)', ['queue', 'states', 'pageSize', 'includePayloads']);
    const req = { queue: '', states: [], pageSize: 0, pageToken: '', includePayloads: Boolean(opts.includePayloads) };
    if (opts.queue !== undefined) req.queue = c.checkString(opts.queue, 'list: opts.queue');
    if (opts.states !== undefined) {
      if (!Array.isArray(opts.states)) throw new TypeError('list: opts.states: expected an array of TaskState names');
      req.states = opts.states.map((s, i) => {
        if (!Object.values(TaskState).includes(s)) throw new TypeError(`list: opts.states[${i}]: not a TaskState: ${String(s)}`);
        return s;
      });
    }
    if (opts.pageSize !== undefined) req.pageSize = c.checkInt(opts.pageSize, 'list: opts.pageSize', 1, 2 ** 31 - 1);
    return this._listTasks(req);
  }

  // Closes the channel; calls in flight fail.
  close() {
    this._stub.close();
  }

  // ---------------------------------------------------------------- private

  async *_streamEvents(req, signal) {
    if (signal && signal.aborted) throw errors.abortError(signal);
    const call = this._stub.Stream(req);
    const onAbort = () => call.cancel();
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const ev of call) yield c.eventFromProto(ev);
    } catch (err) {
      if (signal && signal.aborted) throw errors.abortError(signal);
      throw errors.fromGrpcError(err, 'Stream', this.target);
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort);
      call.cancel(); // no-op once the call has ended
    }
  }

  async *_listTasks(req) {
    do {
      const res = await this._unary('ListTasks', req);
      for (const t of res.tasks) yield c.taskFromProto(t);
      req = { ...req, pageToken: res.nextPageToken };
    } while (req.pageToken !== '');
  }

  async _await(ids, mode, opts, where, maxIds) {
    if (!Array.isArray(ids) || ids.length === 0) {
      throw new TypeError(`${where}(ids): expected a non-empty array of task ids, got ${Array.isArray(ids) ? 'an empty array' : typeof ids}`);
    }
    if (ids.length > maxIds) throw new RangeError(`${where}(ids): at most ${maxIds} ids, got ${ids.length}`);
    const list = ids.map((id, i) => c.toId(id, `${where}(ids[${i}])`));
    const { timeoutMs, signal, includePayloads } = this._waitOptions(opts, where);
    const unique = [...new Set(list)]; // the server refuses a repeated id
    const chunks = [];
    for (let i = 0; i < unique.length; i += MAX_AWAIT_IDS) chunks.push(unique.slice(i, i + MAX_AWAIT_IDS));
    const req = { mode, timeout: timeoutMs === undefined ? null : c.msToDuration(timeoutMs), includePayloads };
    const deadline = timeoutMs === undefined ? null : Date.now() + timeoutMs + AWAIT_DEADLINE_SLACK_MS;
    // One failed or aborted chunk ends the calls of the others.
    const calls = new AbortController();
    const onAbort = () => calls.abort(signal.reason);
    if (signal) {
      if (signal.aborted) throw errors.abortError(signal);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    let responses;
    try {
      responses = await Promise.all(chunks.map((chunk) =>
        this._unary('Await', { ...req, ids: chunk }, { deadline, signal: calls.signal })
          .catch((err) => { calls.abort(err); throw err; })));
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort);
    }
    const byId = new Map();
    for (const res of responses) for (const t of res.tasks) byId.set(t.id, c.taskFromProto(t));
    const tasks = list.map((id) => byId.get(id));
    if (!responses.every((r) => r.done)) throw new errors.AwaitTimeoutError(list, timeoutMs, tasks);
    return tasks;
  }

  _waitOptions(opts, where) {
    opts = c.checkOptions(opts, `${where}(opts)`, WAIT_OPTIONS);
    return {
      timeoutMs: opts.timeoutMs === undefined ? undefined : c.checkMs(opts.timeoutMs, `${where}: opts.timeoutMs`),
      signal: c.checkSignal(opts.signal, `${where}: opts.signal`),
      includePayloads: Boolean(opts.includePayloads),
    };
  }

  // One unary call. deadline: absolute ms (default now + callTimeoutMs;
  // null for none); signal cancels the call.
  _unary(method, req, { deadline = Date.now() + this._callTimeoutMs, signal } = {}) {
    return new Promise((resolve, reject) => {
      if (signal && signal.aborted) return reject(errors.abortError(signal));
      const options = deadline === null ? {} : { deadline };
      let onAbort;
      const call = this._stub[method](req, new grpc.Metadata(), options, (err, res) => {
        if (signal) signal.removeEventListener('abort', onAbort);
        if (signal && signal.aborted) return reject(errors.abortError(signal));
        if (err) return reject(errors.fromGrpcError(err, method, this.target));
        resolve(res);
      });
      if (signal) {
        onAbort = () => call.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }
}

// A submitted task: its id, the Task as the submit returned it, and whether
// the submit was answered with an existing task (idempotency key).
class TaskHandle {
  constructor(client, task, deduplicated) {
    this.client = client;
    this.id = task.id;
    this.task = task;
    this.deduplicated = deduplicated;
  }

  // Resolves to the terminal Task, however it ended. opts: timeoutMs, signal.
  async wait(opts) {
    const [task] = await this.client._await([this.id], 'AWAIT_MODE_ALL', opts, 'wait', 1);
    return task;
  }

  // Resolves to the result bytes (a Buffer) once the task SUCCEEDED; rejects
  // with TaskFailedError / TaskCancelledError (carrying .task and the
  // TaskError as .error), AwaitTimeoutError after timeoutMs, or the
  // signal's reason when aborted.
  async result(opts) {
    const [task] = await this.client._await([this.id], 'AWAIT_MODE_ALL', opts, 'result', 1);
    if (task.state === TaskState.SUCCEEDED) return task.result;
    if (task.state === TaskState.CANCELLED) throw new errors.TaskCancelledError(task);
    throw new errors.TaskFailedError(task);
  }

  get() {
    return this.client.get(this.id);
  }

  cancel(reason) {
    return this.client.cancel(this.id, reason);
  }
}

const TaskState = Object.freeze({
  PENDING: 'TASK_STATE_PENDING',
  SCHEDULED: 'TASK_STATE_SCHEDULED',
  RUNNING: 'TASK_STATE_RUNNING',
  SUCCEEDED: 'TASK_STATE_SUCCEEDED',
  FAILED: 'TASK_STATE_FAILED',
  CANCELLED: 'TASK_STATE_CANCELLED',
});

const EventType = Object.freeze({
  SUBMITTED: 'EVENT_TYPE_SUBMITTED',
  SCHEDULED: 'EVENT_TYPE_SCHEDULED',
  STARTED: 'EVENT_TYPE_STARTED',
  PROGRESS: 'EVENT_TYPE_PROGRESS',
  RETRYING: 'EVENT_TYPE_RETRYING',
  SUCCEEDED: 'EVENT_TYPE_SUCCEEDED',
  FAILED: 'EVENT_TYPE_FAILED',
  CANCELLED: 'EVENT_TYPE_CANCELLED',
});

module.exports = { Client, TaskHandle, TaskState, EventType, channelArgs };
