'use strict';
// taskd: Node.js client and worker SDK of the taskd task scheduler.
// See index.d.ts for the API and README.md (Node.js) for a tour.

const { Client, TaskHandle, TaskState, EventType } = require('./lib/client');
const { Worker, TaskContext } = require('./lib/worker');
const errors = require('./lib/errors');
const { isTerminal } = require('./lib/convert');
const { PROTO_PATH } = require('./lib/proto');
const { isLoopbackTarget } = require('./lib/security');

module.exports = {
  Client,
  TaskHandle,
  Worker,
  TaskContext,
  TaskState,
  EventType,
  isTerminal,
  TaskdError: errors.TaskdError,
  UnavailableError: errors.UnavailableError,
  TaskFailedError: errors.TaskFailedError,
  TaskCancelledError: errors.TaskCancelledError,
  AwaitTimeoutError: errors.AwaitTimeoutError,
  TaskFailure: errors.TaskFailure,
  PROTO_PATH,
  isLoopbackTarget,
};
