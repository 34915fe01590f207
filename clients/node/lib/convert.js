'use strict';
// Conversions between the package's JavaScript shapes and taskd.v1 messages
// (as @grpc/proto-loader represents them), and argument checks that name the
// argument they reject.

// ---------------------------------------------------------------- checks

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `string ${JSON.stringify(value)}` : `${typeof value} ${String(value)}`;
}

function checkString(value, name, { allowEmpty = false } = {}) {
  if (typeof value !== 'string' || (!allowEmpty && value === '')) {
    throw new TypeError(`${name}: expected a ${allowEmpty ? '' : 'non-empty '}string, got ${describe(value)}`);
  }
  return value;
}

function checkInt(value, name, min, max) {
  if (!Number.isInteger(value)) {
    throw new TypeError(`${name}: expected an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name}: must be in ${min}..${max}, got ${value}`);
  }
  return value;
}

// A span in milliseconds: a finite number >= 0.
function checkMs(value, name) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${name}: expected a number of milliseconds, got ${describe(value)}`);
  }
  if (value < 0) throw new RangeError(`${name}: must be >= 0, got ${value}`);
  return value;
}

function checkSignal(signal, name) {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`${name}: expected an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

function checkOptions(opts, name, known) {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
    throw new TypeError(`${name}: expected an options object, got ${describe(opts)}`);
  }
  for (const key of Object.keys(opts)) {
    if (!known.includes(key)) {
      throw new TypeError(`${name}: unknown option "${key}" (known: ${known.join(', ')})`);
    }
  }
  return opts;
}

// Payloads and results are bytes: a Buffer/Uint8Array as is, a string as
// UTF-8, undefined/null as empty; anything else as its JSON text.
function toBytes(value, name) {
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
    throw new TypeError(`${name}: expected bytes, a string or a JSON value, got ${typeof value}`);
  }
  return Buffer.from(JSON.stringify(value), 'utf8');
}

// A task id, or anything with an `id` (a TaskHandle, a Task).
function toId(value, name) {
  if (value !== null && typeof value === 'object' && typeof value.id === 'string') value = value.id;
  return checkString(value, name);
}

// ---------------------------------------------------------------- time

function msToDuration(ms) {
  const whole = Math.floor(ms / 1000);
  return { seconds: String(whole), nanos: Math.round((ms - whole * 1000) * 1e6) };
}

function durationToMs(d) {
  if (!d) return 0;
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}

function dateToTimestamp(date) {
  const ms = date.getTime();
  const whole = Math.floor(ms / 1000);
  return { seconds: String(whole), nanos: (ms - whole * 1000) * 1e6 };
}

function timestampToDate(ts) {
  if (!ts) return null;
  const ms = Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6);
  return ms === 0 ? null : new Date(ms);
}

// ---------------------------------------------------------------- specs

const SPEC_OPTIONS = [
  'queue', 'priority', 'runAt', 'delayMs', 'timeoutMs', 'heartbeatTimeoutMs', 'retry',
  'idempotencyKey', 'dependsOn', 'labels', 'resultTtlMs',
];
const RETRY_OPTIONS = ['maxAttempts', 'initialBackoffMs', 'maxBackoffMs', 'multiplier'];

// TaskSpec message from submit(type, payload, opts). `where` prefixes the
// argument names in errors ("submit", "submitMany(specs[3])").
function specToProto(type, payload, opts, where) {
  checkString(type, `${where}(type)`);
  opts = checkOptions(opts, `${where}(opts)`, SPEC_OPTIONS);
  const spec = { type, payload: toBytes(payload, `${where}(payload)`) };
  if (opts.queue !== undefined) spec.queue = checkString(opts.queue, `${where}: opts.queue`);
  if (opts.priority !== undefined) spec.priority = checkInt(opts.priority, `${where}: opts.priority`, 0, 9);
  if (opts.runAt !== undefined) {
    if (!(opts.runAt instanceof Date) || Number.isNaN(opts.runAt.getTime())) {
      throw new TypeError(`${where}: opts.runAt: expected a valid Date, got ${describe(opts.runAt)}`);
    }
    spec.runAt = dateToTimestamp(opts.runAt);
  }
  for (const [key, field] of [['delayMs', 'delay'], ['timeoutMs', 'timeout'],
    ['heartbeatTimeoutMs', 'heartbeatTimeout'], ['resultTtlMs', 'resultTtl']]) {
    if (opts[key] !== undefined) spec[field] = msToDuration(checkMs(opts[key], `${where}: opts.${key}`));
  }
  if (opts.retry !== undefined) {
    const r = checkOptions(opts.retry, `${where}: opts.retry`, RETRY_OPTIONS);
    spec.retry = {};
    if (r.maxAttempts !== undefined) spec.retry.maxAttempts = checkInt(r.maxAttempts, `${where}: opts.retry.maxAttempts`, 1, 2 ** 31 - 1);
    if (r.initialBackoffMs !== undefined) spec.retry.initialBackoff = msToDuration(checkMs(r.initialBackoffMs, `${where}: opts.retry.initialBackoffMs`));
    if (r.maxBackoffMs !== undefined) spec.retry.maxBackoff = msToDuration(checkMs(r.maxBackoffMs, `${where}: opts.retry.maxBackoffMs`));
    if (r.multiplier !== undefined) {
      if (typeof r.multiplier !== 'number' || !(r.multiplier >= 1)) {
        throw new RangeError(`${where}: opts.retry.multiplier: must be a number >= 1, got ${describe(r.multiplier)}`);
      }
      spec.retry.multiplier = r.multiplier;
    }
  }
  if (opts.idempotencyKey !== undefined) spec.idempotencyKey = checkString(opts.idempotencyKey, `${where}: opts.idempotencyKey`);
  if (opts.dependsOn !== undefined) {
    if (!Array.isArray(opts.dependsOn)) {
      throw new TypeError(`${where}: opts.dependsOn: expected an array of task ids, got ${describe(opts.dependsOn)}`);
    }
    spec.dependsOn = opts.dependsOn.map((d, i) => toId(d, `${where}: opts.dependsOn[${i}]`));
  }
  if (opts.labels !== undefined) {
    const labels = opts.labels;
    if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
      throw new TypeError(`${where}: opts.labels: expected an object of strings, got ${describe(labels)}`);
    }
    for (const [k, v] of Object.entries(labels)) checkString(v, `${where}: opts.labels.${k}`, { allowEmpty: true });
    spec.labels = labels;
  }
  return spec;
}

// ---------------------------------------------------------------- tasks

function specFromProto(s) {
  return {
    queue: s.queue,
    type: s.type,
    payload: s.payload,
    priority: s.priority,
    runAt: timestampToDate(s.runAt),
    delayMs: durationToMs(s.delay),
    timeoutMs: durationToMs(s.timeout),
    heartbeatTimeoutMs: durationToMs(s.heartbeatTimeout),
    retry: s.retry ? {
      maxAttempts: s.retry.maxAttempts,
      initialBackoffMs: durationToMs(s.retry.initialBackoff),
      maxBackoffMs: durationToMs(s.retry.maxBackoff),
      multiplier: s.retry.multiplier,
    } : null,
    idempotencyKey: s.idempotencyKey,
    dependsOn: s.dependsOn,
    labels: s.labels,
    resultTtlMs: durationToMs(s.resultTtl),
  };
}

function taskFromProto(t) {
  return {
    id: t.id,
    spec: specFromProto(t.spec || {}),
    state: t.state,
    attempt: t.attempt,
    createTime: timestampToDate(t.createTime),
    scheduleTime: timestampToDate(t.scheduleTime),
    startTime: timestampToDate(t.startTime),
    finishTime: timestampToDate(t.finishTime),
    result: t.result,
    error: t.error && t.error.code !== '' ? { ...t.error } : null,
    progress: t.progress && t.progress.updateTime ? {
      percent: t.progress.percent,
      message: t.progress.message,
      updateTime: timestampToDate(t.progress.updateTime),
    } : null,
    workerId: t.workerId,
    cancelRequested: t.cancelRequested,
    leaseId: t.leaseId,
  };
}

function eventFromProto(e) {
  return {
    sequence: BigInt(e.sequence),
    type: e.type,
    task: taskFromProto(e.task || {}),
    time: timestampToDate(e.time),
  };
}

const TERMINAL = new Set(['TASK_STATE_SUCCEEDED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELLED']);

function isTerminal(task) {
  return TERMINAL.has(task.state);
}

module.exports = {
  checkString,
  checkInt,
  checkMs,
  checkSignal,
  checkOptions,
  toBytes,
  toId,
  msToDuration,
  specToProto,
  taskFromProto,
  eventFromProto,
  timestampToDate,
  isTerminal,
};
