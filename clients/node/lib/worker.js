'use strict';
// Worker: the worker SDK. Serves tasks from taskd over one WorkerService.Work
// stream, running up to `concurrency` handlers at once on the event loop.
//
//   const worker = new Worker({ target: '127.0.0.1:50051', queues: ['images'], concurrency: 8 });
//   worker.handle('resize', async (ctx) => {
//     ctx.progress(50, 'half way');
//     return await resize(ctx.json(), { signal: ctx.signal });
//   });
//   await worker.run(); // until stop(), SIGTERM or SIGINT
//
// The outcome of an attempt, as the C++ worker SDK reports it:
// - the handler returns a value: `complete` with it as the result (bytes as
//   is, a string as UTF-8, undefined as empty, anything else as JSON);
//   a result over maxResultBytes (or the assignment's max_result_bytes)
//   fails with code "result_too_large", not retryable.
// - the handler throws a TaskFailure: `fail` with its code, message, details
//   and retryability; any other throw: code "handler_exception", retryable
//   unless the error has `retryable === false`.
// - the server cancelled the attempt (cancel or timeout): ctx.signal aborts;
//   `fail` with code "cancelled", retryable = false, whatever the handler did.
// - the worker is stopping and the handler throws: `fail` with code
//   "worker_stopped", retryable = true, so another worker retries it.
// - the stream broke: nothing can be reported; the server ends the leases.
//
// The hello message names exactly the registered types; register handlers
// before run(). A worker runs once.

const os = require('node:os');
const { EventEmitter } = require('node:events');
const { v1 } = require('./proto');
const errors = require('./errors');
const c = require('./convert');
const { channelArgs } = require('./client');

const WORKER_OPTIONS = ['queues', 'concurrency', 'workerId', 'heartbeatIntervalMs',
  'shutdownGraceMs', 'reconnect', 'handleSignals', 'maxResultBytes'];
const MAX_RECONNECT_DELAY_MS = 5000;
// After the handlers are done: how long stop() waits for the server to
// close the stream, and for handlers that ignore their aborted signal.
const CLOSE_TIMEOUT_MS = 5000;

// What one attempt's handler sees.
// How much of a worker's text the server keeps (api/strings/text_limits.h);
// the SDK cuts to the same sizes, so what it sends is what is stored.
const MAX_PROGRESS_MESSAGE_BYTES = 1024;
const MAX_ERROR_CODE_BYTES = 128;
const MAX_ERROR_MESSAGE_BYTES = 4096;
const MAX_ERROR_DETAILS_BYTES = 16384;

// `text` as the server can parse it: valid UTF-8 (Buffer turns a lone
// surrogate into U+FFFD; protobufjs would encode it as invalid UTF-8, which
// ends the whole Work stream) of at most `maxBytes`, cut on a character
// boundary.
function wireText(text, maxBytes) {
  const bytes = Buffer.from(String(text ?? ''), 'utf8');
  let end = Math.min(bytes.length, maxBytes);
  while (end > 0 && end < bytes.length && (bytes[end] & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}

class TaskContext {
  constructor(task, leaseId, deadline, signal, sendProgress) {
    this.task = task; // the Task as assigned (spec, attempt, ...)
    this.id = task.id;
    this.type = task.spec.type;
    this.payload = task.spec.payload; // Buffer
    this.attempt = task.attempt;
    this.leaseId = leaseId;
    this.deadline = deadline; // Date, or null without a timeout
    this.signal = signal; // aborted on cancel, timeout, stop or a lost stream
    this._sendProgress = sendProgress;
  }

  // The payload as UTF-8 text.
  text() {
    return this.payload.toString('utf8');
  }

  // The payload parsed as JSON.
  json() {
    return JSON.parse(this.text());
  }

  // Reports progress (percent 0..100, message); also renews the lease.
  progress(percent, message = '') {
    c.checkInt(percent, 'progress(percent)', 0, 100);
    c.checkString(message, 'progress(message)', { allowEmpty: true });
    this._sendProgress(percent, message);
  }
}

class Worker extends EventEmitter {
  // options: target = '127.0.0.1:50051', tlsCa, tlsCert, tlsKey, tls,
  // token = $TASKD_TOKEN (lib/security.js), credentials, channelOptions,
  // queues = ['default'], concurrency = 1, workerId = '<host>-<pid>-node',
  // heartbeatIntervalMs = 5000, shutdownGraceMs = 10000 (how long stop()
  // lets running handlers finish before aborting their signals),
  // reconnect = true (retry a broken stream with back-off; false: run()
  // rejects with the UnavailableError), handleSignals = true (SIGTERM and
  // SIGINT call stop() while run() is active), maxResultBytes = 4 MiB - 64 KiB.
  //
  // Events: 'connected' (hello sent), 'disconnected' (err) when a stream
  // broke and reconnect is on.
  constructor(options = {}) {
    super();
    const args = channelArgs(options, 'new Worker(options)', WORKER_OPTIONS);
    const o = args.options;
    const where = 'new Worker: options';
    this.target = args.target;
    this.queues = o.queues === undefined ? [] : o.queues;
    if (!Array.isArray(this.queues)) throw new TypeError(`${where}.queues: expected an array of queue names, got ${typeof o.queues}`);
    this.queues.forEach((q, i) => c.checkString(q, `${where}.queues[${i}]`));
    this.concurrency = o.concurrency === undefined ? 1 : c.checkInt(o.concurrency, `${where}.concurrency`, 1, 100_000);
    this.workerId = o.workerId === undefined ? `${os.hostname()}-${process.pid}-node` : c.checkString(o.workerId, `${where}.workerId`);
    this._heartbeatMs = o.heartbeatIntervalMs === undefined ? 5000 : c.checkMs(o.heartbeatIntervalMs, `${where}.heartbeatIntervalMs`);
    if (this._heartbeatMs === 0) throw new RangeError(`${where}.heartbeatIntervalMs: must be positive`);
    this._graceMs = o.shutdownGraceMs === undefined ? 10_000 : c.checkMs(o.shutdownGraceMs, `${where}.shutdownGraceMs`);
    this._reconnect = o.reconnect === undefined ? true : Boolean(o.reconnect);
    this._handleSignals = o.handleSignals === undefined ? true : Boolean(o.handleSignals);
    this._maxResultBytes = o.maxResultBytes === undefined ? (4 << 20) - (64 << 10) : c.checkInt(o.maxResultBytes, `${where}.maxResultBytes`, 0, 2 ** 31 - 1);
    this._stub = new v1.WorkerService(this.target, args.credentials, args.channelOptions);
    this._handlers = new Map();
    this._running = new Map(); // leaseId -> attempt entry
    this._session = null; // the live stream, if any
    this._runPromise = null;
    this._stopPromise = null;
    this._stopping = false;
    this._wakeBackoff = null;
    // Outcomes sent: tasks completed, tasks failed (any reason).
    this.stats = { completed: 0, failed: 0 };
  }

  // Registers the handler of task `type`: async (ctx) => result. Chainable.
  handle(type, fn) {
    c.checkString(type, 'handle(type)');
    if (typeof fn !== 'function') throw new TypeError(`handle(fn): expected a function for type "${type}", got ${typeof fn}`);
    if (this._handlers.has(type)) throw new Error(`handle(type): a handler for "${type}" is already registered`);
    if (this._runPromise) throw new Error('handle(): handlers must be registered before run()');
    this._handlers.set(type, fn);
    return this;
  }

  // Serves until stop() (resolves) or, with reconnect off, until the stream
  // breaks (rejects with a TaskdError, UnavailableError when the server is gone).
  run() {
    if (this._runPromise) return Promise.reject(new Error('run(): this worker was already started'));
    if (this._handlers.size === 0) return Promise.reject(new Error('run(): register a handler with handle() first'));
    this._runPromise = this._serve();
    return this._runPromise;
  }

  // Graceful stop: takes no new work (assignments still arriving are handed
  // back for a retry elsewhere), lets running handlers finish for graceMs,
  // then aborts their signals, reports every outcome, and closes the
  // stream. Idempotent; resolves when done.
  stop({ graceMs = this._graceMs } = {}) {
    c.checkMs(graceMs, 'stop: graceMs');
    if (!this._stopPromise) this._stopPromise = this._stop(graceMs);
    return this._stopPromise;
  }

  // Attempts running now.
  get inFlight() {
    return this._running.size;
  }

  // ---------------------------------------------------------------- private

  async _serve() {
    const onSignal = () => { this.stop(); };
    if (this._handleSignals) {
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    }
    try {
      let delayMs = 100;
      while (!this._stopping) {
        let err;
        try {
          await this._openSession();
          delayMs = 100;
        } catch (e) {
          err = e;
        }
        if (this._stopping) break;
        err = err || new errors.UnavailableError(`taskd at ${this.target} closed the work stream`);
        if (!this._reconnect) throw err;
        this.emit('disconnected', err);
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          this._wakeBackoff = () => { clearTimeout(timer); resolve(); };
        });
        this._wakeBackoff = null;
        delayMs = Math.min(delayMs * 2, MAX_RECONNECT_DELAY_MS);
      }
    } finally {
      if (this._handleSignals) {
        process.removeListener('SIGTERM', onSignal);
        process.removeListener('SIGINT', onSignal);
      }
    }
  }

  // One Work stream, from hello to its status. Resolves on OK, rejects with
  // the stream's error.
  _openSession() {
    return new Promise((resolve, reject) => {
      const call = this._stub.Work();
      const session = { call, open: true };
      this._session = session;
      call.write({
        hello: {
          workerId: this.workerId,
          queues: this.queues,
          types: [...this._handlers.keys()],
          concurrency: this.concurrency,
        },
      });
      const heartbeat = setInterval(() => this._send(session, { heartbeat: {} }), this._heartbeatMs);
      call.on('data', (msg) => this._onMessage(session, msg));
      call.on('error', () => {}); // reported through 'status'
      call.on('status', (status) => {
        session.open = false;
        clearInterval(heartbeat);
        if (this._session === session) this._session = null;
        if (session.closed) session.closed();
        // Outcomes can no longer be delivered: let the handlers stop early.
        for (const entry of this._running.values()) {
          if (entry.session === session) this._abort(entry, 'stream', 'work stream closed');
        }
        if (status.code === 0) resolve();
        else reject(errors.fromGrpcError(status, 'Work', this.target));
      });
      this.emit('connected');
    });
  }

  _send(session, msg) {
    if (!session.open || session.ending) return false;
    session.call.write(msg);
    return true;
  }

  _onMessage(session, msg) {
    if (msg.msg === 'assignment') this._onAssignment(session, msg.assignment);
    else if (msg.msg === 'cancel') {
      const notice = msg.cancel;
      for (const entry of this._running.values()) {
        if (entry.session === session && (entry.leaseId === notice.leaseId ||
            (notice.leaseId === '0' && entry.taskId === notice.taskId))) {
          this._abort(entry, 'cancel', notice.reason || 'cancelled by the server');
        }
      }
    }
    // Messages of kinds this SDK does not know are ignored.
  }

  _onAssignment(session, assignment) {
    const task = c.taskFromProto(assignment.task);
    const entry = {
      session,
      taskId: task.id,
      leaseId: assignment.leaseId,
      controller: new AbortController(),
      cause: null, // why the signal was aborted: 'cancel' | 'stopping' | 'stream'
      reason: '',
      // The server's limit for this result, when it states one.
      maxResultBytes: Math.min(this._maxResultBytes, Number(assignment.maxResultBytes || 0) || Infinity),
    };
    if (this._stopping) {
      // Hand it back at once for a retry elsewhere.
      this._abort(entry, 'stopping', 'worker stopping');
      this._report(entry, undefined, new Error('not started'));
      return;
    }
    const ctx = new TaskContext(task, entry.leaseId, c.timestampToDate(assignment.deadline),
      entry.controller.signal, (percent, message) => this._send(session, {
        progress: { taskId: task.id, leaseId: entry.leaseId, percent, message: wireText(message, MAX_PROGRESS_MESSAGE_BYTES) },
      }));
    this._running.set(entry.leaseId, entry);
    entry.done = this._execute(entry, ctx).finally(() => this._running.delete(entry.leaseId));
  }

  async _execute(entry, ctx) {
    const handler = this._handlers.get(ctx.type);
    let result;
    let error;
    try {
      if (!handler) {
        throw new errors.TaskFailure('unknown_type', `worker ${this.workerId} has no handler for type ${ctx.type}`);
      }
      result = c.toBytes(await handler(ctx), 'handler result');
    } catch (e) {
      error = e;
    }
    this._report(entry, result, error);
  }

  // Sends the attempt's outcome (see the file comment for the rules).
  _report(entry, result, error) {
    let failure = null;
    if (entry.cause === 'stream') return;
    if (entry.cause === 'cancel') {
      failure = { code: 'cancelled', message: entry.reason, details: '', retryable: false };
    } else if (entry.cause === 'stopping' && error) {
      failure = { code: 'worker_stopped', message: `${entry.reason}: ${error.message}`, details: '', retryable: true };
    } else if (error instanceof errors.TaskFailure) {
      failure = { code: error.code, message: error.message, details: error.details, retryable: error.retryable };
    } else if (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      failure = {
        code: 'handler_exception',
        message,
        details: (error && error.stack) || '',
        retryable: !(error && error.retryable === false),
      };
    } else if (result.length > entry.maxResultBytes) {
      failure = {
        code: 'result_too_large',
        message: `result of ${result.length} bytes exceeds the limit of ${entry.maxResultBytes}`,
        details: '',
        retryable: false,
      };
    }
    if (failure) {
      failure.code = wireText(failure.code, MAX_ERROR_CODE_BYTES);
      failure.message = wireText(failure.message, MAX_ERROR_MESSAGE_BYTES);
      failure.details = wireText(failure.details, MAX_ERROR_DETAILS_BYTES);
    }
    const ids = { taskId: entry.taskId, leaseId: entry.leaseId };
    const sent = failure
      ? this._send(entry.session, { fail: { ...ids, error: failure } })
      : this._send(entry.session, { complete: { ...ids, result } });
    if (sent) this.stats[failure ? 'failed' : 'completed'] += 1;
  }

  _abort(entry, cause, reason) {
    if (entry.cause !== null) return;
    entry.cause = cause;
    entry.reason = reason;
    const err = new Error(reason);
    err.name = 'AbortError';
    err.code = cause === 'cancel' ? 'cancelled' : 'worker_stopped';
    entry.controller.abort(err);
  }

  async _stop(graceMs) {
    this._stopping = true;
    if (this._wakeBackoff) this._wakeBackoff();
    const settled = () => Promise.all([...this._running.values()].map((e) => e.done));
    if (!(await within(settled(), graceMs))) {
      for (const entry of this._running.values()) this._abort(entry, 'stopping', 'worker stopping');
      await within(settled(), CLOSE_TIMEOUT_MS);
    }
    const session = this._session;
    if (session && session.open) {
      const closed = new Promise((resolve) => { session.closed = resolve; });
      session.ending = true;
      session.call.end(); // half-close: the server ends the stream
      if (!(await within(closed, CLOSE_TIMEOUT_MS))) session.call.cancel();
    }
    if (this._runPromise) await this._runPromise.catch(() => {});
  }
}

// Resolves true if `promise` settles within ms, else false (never rejects).
function within(promise, ms) {
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(resolve, ms, false); });
  return Promise.race([promise.then(() => true, () => true), timeout]).finally(() => clearTimeout(timer));
}

module.exports = { Worker, TaskContext, wireText };
