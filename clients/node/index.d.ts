// Type declarations of the taskd Node.js package (hand-maintained; checked by
// `tsc --noEmit` in test/types.test.js against test/types-usage.ts).

import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';

export type TaskStateName =
  | 'TASK_STATE_PENDING' | 'TASK_STATE_SCHEDULED' | 'TASK_STATE_RUNNING'
  | 'TASK_STATE_SUCCEEDED' | 'TASK_STATE_FAILED' | 'TASK_STATE_CANCELLED';

export type EventTypeName =
  | 'EVENT_TYPE_SUBMITTED' | 'EVENT_TYPE_SCHEDULED' | 'EVENT_TYPE_STARTED'
  | 'EVENT_TYPE_PROGRESS' | 'EVENT_TYPE_RETRYING' | 'EVENT_TYPE_SUCCEEDED'
  | 'EVENT_TYPE_FAILED' | 'EVENT_TYPE_CANCELLED';

export declare const TaskState: {
  readonly PENDING: 'TASK_STATE_PENDING';
  readonly SCHEDULED: 'TASK_STATE_SCHEDULED';
  readonly RUNNING: 'TASK_STATE_RUNNING';
  readonly SUCCEEDED: 'TASK_STATE_SUCCEEDED';
  readonly FAILED: 'TASK_STATE_FAILED';
  readonly CANCELLED: 'TASK_STATE_CANCELLED';
};

export declare const EventType: {
  readonly SUBMITTED: 'EVENT_TYPE_SUBMITTED';
  readonly SCHEDULED: 'EVENT_TYPE_SCHEDULED';
  readonly STARTED: 'EVENT_TYPE_STARTED';
  readonly PROGRESS: 'EVENT_TYPE_PROGRESS';
  readonly RETRYING: 'EVENT_TYPE_RETRYING';
  readonly SUCCEEDED: 'EVENT_TYPE_SUCCEEDED';
  readonly FAILED: 'EVENT_TYPE_FAILED';
  readonly CANCELLED: 'EVENT_TYPE_CANCELLED';
};

/** Bytes as given; a string is sent as UTF-8, anything else as JSON. */
export type Payload = Buffer | Uint8Array | string | number | boolean | object | null | undefined;

/** Something that names a task: its id, a TaskHandle or a Task. */
export type TaskRef = string | { readonly id: string };

export interface RetryPolicy {
  /** Total attempts including the first (server default 3). */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** At least 1 (server default 2). */
  multiplier?: number;
}

export interface SubmitOptions {
  /** Queue name; the server's `default` when omitted. */
  queue?: string;
  /** 0..9, higher first within a queue. */
  priority?: number;
  /** Not before this time (at most one of runAt and delayMs). */
  runAt?: Date;
  delayMs?: number;
  /** Execution limit per attempt; expiry fails the attempt with code `timeout`. */
  timeoutMs?: number;
  /** A worker silent this long loses the attempt (`lease_expired`). */
  heartbeatTimeoutMs?: number;
  retry?: RetryPolicy;
  /** A second submit with the same key returns the first task (deduplicated). */
  idempotencyKey?: string;
  /** Tasks that must all succeed first. */
  dependsOn?: TaskRef[];
  labels?: Record<string, string>;
  /** How long the finished task and its result are retained. */
  resultTtlMs?: number;
}

export interface SubmitSpec extends SubmitOptions {
  type: string;
  payload?: Payload;
}

export interface TaskSpec {
  queue: string;
  type: string;
  payload: Buffer;
  priority: number;
  runAt: Date | null;
  delayMs: number;
  timeoutMs: number;
  heartbeatTimeoutMs: number;
  retry: Required<RetryPolicy> | null;
  idempotencyKey: string;
  dependsOn: string[];
  labels: Record<string, string>;
  resultTtlMs: number;
}

/** taskd.v1.TaskError: why an attempt or a task failed. */
export interface TaskError {
  code: string;
  message: string;
  details: string;
  retryable: boolean;
}

export interface Progress {
  percent: number;
  message: string;
  updateTime: Date | null;
}

/** taskd.v1.Task, the server's record of a task. */
export interface Task {
  id: string;
  spec: TaskSpec;
  state: TaskStateName;
  /** 1-based count of started attempts. */
  attempt: number;
  createTime: Date | null;
  scheduleTime: Date | null;
  startTime: Date | null;
  finishTime: Date | null;
  result: Buffer;
  error: TaskError | null;
  progress: Progress | null;
  workerId: string;
  cancelRequested: boolean;
  /** The running attempt's lease (decimal), '0' when not running. */
  leaseId: string;
}

export interface TaskEvent {
  /** Server-wide, strictly increasing, gap-free within a server's life. */
  sequence: bigint;
  type: EventTypeName;
  /** The task after the event (payload and result only with includePayloads). */
  task: Task;
  time: Date | null;
}

export interface WaitOptions {
  /** The server's wait limit; past it the wait rejects with AwaitTimeoutError. */
  timeoutMs?: number;
  /** Stops waiting locally (rejects with the signal's reason); the task is untouched. */
  signal?: AbortSignal;
  /** Also return the tasks' payloads (results always come back). */
  includePayloads?: boolean;
}

export interface StreamOptions {
  /** Only these tasks; the stream ends once all are terminal. */
  ids?: TaskRef[];
  /** Only this queue (when ids is not set). */
  queue?: string;
  /** Replay from this sequence (inclusive); 0 or omitted: from now. */
  fromSequence?: bigint | number;
  includePayloads?: boolean;
  signal?: AbortSignal;
}

export interface ListOptions {
  queue?: string;
  states?: TaskStateName[];
  pageSize?: number;
  /** Payloads and results are omitted without it. */
  includePayloads?: boolean;
}

export interface ChannelArgs {
  /** host:port; default 127.0.0.1:50051. */
  target?: string;
  /** Default: insecure, or TLS and a token from the options below (not both). */
  credentials?: ChannelCredentials;
  channelOptions?: ChannelOptions;
  /** PEM file of the CA that signed the server's certificate; turns TLS on. */
  tlsCa?: string;
  /** PEM client certificate (mTLS), with tlsKey. */
  tlsCert?: string;
  /** PEM private key of tlsCert. */
  tlsKey?: string;
  /** TLS with Node's trusted roots (implied by tlsCa/tlsCert/tlsKey). */
  tls?: boolean;
  /**
   * Bearer token (`authorization: Bearer <token>`); default
   * process.env.TASKD_TOKEN, '' for none. Without TLS only to a loopback
   * target (else a TypeError).
   */
  token?: string;
}

export interface ClientOptions extends ChannelArgs {
  /** Deadline of calls that do not wait for tasks; default 30000. */
  callTimeoutMs?: number;
}

export declare class Client {
  constructor(options?: string | ClientOptions);
  readonly target: string;
  submit(type: string, payload?: Payload, opts?: SubmitOptions): Promise<TaskHandle>;
  /** 1..1000 specs, all or nothing. */
  submitMany(specs: SubmitSpec[]): Promise<TaskHandle[]>;
  /** A handle on an existing task; no RPC. */
  task(id: TaskRef): TaskHandle;
  get(id: TaskRef): Promise<Task>;
  cancel(id: TaskRef, reason?: string): Promise<Task>;
  /** Every task terminal; tasks in the order given. */
  awaitAll(ids: TaskRef[], opts?: WaitOptions): Promise<Task[]>;
  /** At least one terminal (at most 1000 ids); all tasks as they stand. */
  awaitAny(ids: TaskRef[], opts?: WaitOptions): Promise<Task[]>;
  stream(opts?: StreamOptions): AsyncGenerator<TaskEvent, void, undefined>;
  list(opts?: ListOptions): AsyncGenerator<Task, void, undefined>;
  close(): void;
}

export declare class TaskHandle {
  readonly client: Client;
  readonly id: string;
  /** The task as the submit returned it ({ id } only for Client.task()). */
  readonly task: Task | { id: string };
  /** The submit was answered with an existing task (idempotency key). */
  readonly deduplicated: boolean;
  /** The terminal task, however it ended. */
  wait(opts?: WaitOptions): Promise<Task>;
  /** The result bytes; rejects with TaskFailedError / TaskCancelledError. */
  result(opts?: WaitOptions): Promise<Buffer>;
  get(): Promise<Task>;
  cancel(reason?: string): Promise<Task>;
}

export declare function isTerminal(task: Pick<Task, 'state'>): boolean;

export declare class TaskdError extends Error {
  /** gRPC status name ('NOT_FOUND', ...) or 'TASK_FAILED', 'TASK_CANCELLED', 'AWAIT_TIMEOUT'. */
  readonly code: string;
  details?: string;
}
export declare class UnavailableError extends TaskdError {
  readonly code: 'UNAVAILABLE';
}
export declare class TaskFailedError extends TaskdError {
  readonly code: 'TASK_FAILED';
  readonly task: Task;
  readonly error: TaskError | null;
}
export declare class TaskCancelledError extends TaskdError {
  readonly code: 'TASK_CANCELLED';
  readonly task: Task;
  readonly error: TaskError | null;
}
export declare class AwaitTimeoutError extends TaskdError {
  readonly code: 'AWAIT_TIMEOUT';
  /** The tasks as they stood when the wait ended. */
  readonly tasks: Task[];
}

/** Thrown by a handler to report exactly this TaskError. */
export declare class TaskFailure extends Error {
  constructor(code: string, message: string, options?: { retryable?: boolean; details?: string });
  readonly code: string;
  readonly retryable: boolean;
  readonly details: string;
}

export declare class TaskContext {
  readonly task: Task;
  readonly id: string;
  readonly type: string;
  readonly payload: Buffer;
  readonly attempt: number;
  readonly leaseId: string;
  /** The attempt's deadline; null without a timeout. */
  readonly deadline: Date | null;
  /** Aborted on cancel, timeout, a graceful stop past its grace, or a lost stream. */
  readonly signal: AbortSignal;
  text(): string;
  json<T = unknown>(): T;
  /** percent 0..100; also renews the lease. */
  progress(percent: number, message?: string): void;
}

export type Handler = (ctx: TaskContext) => Payload | Promise<Payload>;

export interface WorkerOptions extends ChannelArgs {
  /** Queues served; the server's `default` when empty. */
  queues?: string[];
  /** Handlers running at once; default 1. */
  concurrency?: number;
  workerId?: string;
  heartbeatIntervalMs?: number;
  /** How long stop() lets running handlers finish; default 10000. */
  shutdownGraceMs?: number;
  /** Reconnect a broken stream (default); false: run() rejects. */
  reconnect?: boolean;
  /** SIGTERM and SIGINT stop the worker while run() is active; default true. */
  handleSignals?: boolean;
  maxResultBytes?: number;
}

export declare class Worker extends EventEmitter {
  constructor(options?: string | WorkerOptions);
  readonly target: string;
  readonly queues: string[];
  readonly concurrency: number;
  readonly workerId: string;
  readonly stats: { completed: number; failed: number };
  readonly inFlight: number;
  handle(type: string, handler: Handler): this;
  run(): Promise<void>;
  stop(options?: { graceMs?: number }): Promise<void>;
  on(event: 'connected', listener: () => void): this;
  on(event: 'disconnected', listener: (err: TaskdError) => void): this;
}

/** Absolute path of the taskd.proto this package loads. */
export declare const PROTO_PATH: string;
/** Whether target names a loopback address (where a token may go without TLS). */
export declare function isLoopbackTarget(target: string): boolean;
