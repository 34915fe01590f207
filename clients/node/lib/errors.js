'use strict';
// Errors of the taskd client. Every error the package raises for a failed
// RPC or a finished-but-unsuccessful task is a TaskdError; bad arguments are
// TypeError/RangeError naming the argument, as Node's own APIs do.

const { status } = require('@grpc/grpc-js');

const STATUS_NAMES = Object.fromEntries(
  Object.entries(status).map(([name, code]) => [code, name]),
);

class TaskdError extends Error {
  // code: the gRPC status name ('NOT_FOUND', 'UNAVAILABLE', ...) for RPC
  // failures, else one of 'TASK_FAILED', 'TASK_CANCELLED', 'AWAIT_TIMEOUT'.
  constructor(message, code, options) {
    super(message, options);
    this.name = 'TaskdError';
    this.code = code;
  }
}

// The server cannot be reached, or it is shutting down.
class UnavailableError extends TaskdError {
  constructor(message, options) {
    super(message, 'UNAVAILABLE', options);
    this.name = 'UnavailableError';
  }
}

// result() of a task that ended FAILED. `task` is the terminal Task and
// `error` its TaskError {code, message, details, retryable}.
class TaskFailedError extends TaskdError {
  constructor(task) {
    const e = task.error || { code: '', message: '' };
    super(`task ${task.id} failed: ${e.code}${e.message ? ': ' + e.message : ''}`, 'TASK_FAILED');
    this.name = 'TaskFailedError';
    this.task = task;
    this.error = task.error;
  }
}

// result() of a task that ended CANCELLED (by a client, a purge, or a failed
// dependency: see error.code).
class TaskCancelledError extends TaskdError {
  constructor(task) {
    const e = task.error || { code: 'cancelled', message: '' };
    super(`task ${task.id} was cancelled: ${e.code}${e.message ? ': ' + e.message : ''}`, 'TASK_CANCELLED');
    this.name = 'TaskCancelledError';
    this.task = task;
    this.error = task.error;
  }
}

// The wait's own timeoutMs passed before the tasks were done. The tasks are
// unaffected; `tasks` holds them as they stood.
class AwaitTimeoutError extends TaskdError {
  constructor(ids, timeoutMs, tasks) {
    super(`await of ${ids.length} task(s) timed out after ${timeoutMs} ms`, 'AWAIT_TIMEOUT');
    this.name = 'AwaitTimeoutError';
    this.tasks = tasks;
  }
}

// A worker handler throws this to choose the TaskError it reports:
//   throw new TaskFailure('bad_image', 'not a PNG', { retryable: false });
class TaskFailure extends Error {
  constructor(code, message, { retryable = true, details = '' } = {}) {
    super(message);
    if (typeof code !== 'string' || code === '') {
      throw new TypeError('TaskFailure(code): expected a non-empty string');
    }
    this.name = 'TaskFailure';
    this.code = code;
    this.retryable = Boolean(retryable);
    this.details = String(details);
  }
}

// Converts a grpc-js call error into a TaskdError. `what` names the call
// ("SubmitTask"), `target` the server address.
function fromGrpcError(err, what, target) {
  if (err instanceof TaskdError) return err;
  const name = STATUS_NAMES[err.code] || 'UNKNOWN';
  const details = err.details || err.message;
  if (err.code === status.UNAVAILABLE) {
    return new UnavailableError(`taskd at ${target} is unavailable (${what}): ${details}`, { cause: err });
  }
  const e = new TaskdError(`${what}: ${name}: ${details}`, name, { cause: err });
  e.details = details;
  return e;
}

// The error an aborted wait rejects with: the signal's reason, as
// AbortSignal-aware Node APIs do.
function abortError(signal) {
  if (signal.reason !== undefined) return signal.reason;
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

module.exports = {
  TaskdError,
  UnavailableError,
  TaskFailedError,
  TaskCancelledError,
  AwaitTimeoutError,
  TaskFailure,
  fromGrpcError,
  abortError,
  STATUS_NAMES,
};
