'use strict';
// Three languages, one task: clients and workers in Python, Node and C++
// (taskctl) share tasks through one real taskd, cancels cross languages, and
// Python's server-reflection calls see the full API. Run by run.sh, which
// sets TASKD_BIN, TASKCTL_BIN, TASKD_NODE_PACKAGE, XL_DIR and PYTHONPATH.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn, execFile } = require('node:child_process');
const { once } = require('node:events');
const { promisify } = require('node:util');

const NODE_PACKAGE = process.env.TASKD_NODE_PACKAGE;
const { Client, TaskCancelledError } = require(NODE_PACKAGE);
const { startTaskd, deadline } = require(path.join(NODE_PACKAGE, 'test', 'harness.js'));

const PYTHON = '/usr/bin/python3'; // Debian's, with python3-grpcio
const XL_DIR = process.env.XL_DIR;
const TASKCTL = process.env.TASKCTL_BIN;
const STEP_MS = 30_000; // bound of any one step

let server;
let client;
let nodeWorker;
let pyWorker;

// A long-running child whose output lines the test waits for.
function startChild(cmd, args, env = {}) {
  const child = spawn(cmd, args, { cwd: XL_DIR, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.out = '';
  child.waiters = [];
  const onData = (d) => {
    child.out += d;
    child.waiters = child.waiters.filter((w) => !w());
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  child.exited = once(child, 'exit');
  return child;
}

// Resolves with the first match of `re` in the child's output.
function waitForLine(child, re, what) {
  return deadline(new Promise((resolve) => {
    const check = () => {
      const m = re.exec(child.out);
      if (m) resolve(m);
      return Boolean(m);
    };
    if (!check()) child.waiters.push(check);
  }), STEP_MS, `${what}; output so far:\n${child.out}`);
}

// Runs a command to its end (killed after STEP_MS); resolves to {code, stdout, stderr}.
async function run(cmd, args) {
  try {
    const { stdout, stderr } = await promisify(execFile)(cmd, args, { cwd: XL_DIR, timeout: STEP_MS });
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (typeof err.code !== 'number') throw err;
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function python(...args) {
  const r = await run(PYTHON, [path.join(XL_DIR, 'py_client.py'), server.target, ...args]);
  assert.equal(r.code, 0, `py_client.py ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

async function taskctl(...args) {
  return run(TASKCTL, ['--server', server.target, ...args]);
}

test.before(async () => {
  server = await startTaskd();
  client = new Client({ target: server.target });
  nodeWorker = startChild(process.execPath, [path.join(XL_DIR, 'node_worker.js'), server.target]);
  pyWorker = startChild(PYTHON, ['-m', 'taskd.worker', 'py_worker:worker'], { TASKD_TARGET: server.target });
});

test.after(async () => {
  client.close();
  for (const child of [nodeWorker, pyWorker]) {
    child.kill('SIGTERM');
    await deadline(child.exited, STEP_MS, 'a worker to exit');
  }
  assert.equal(await server.stop(), 0, `taskd exits cleanly on SIGTERM; its log:\n${server.log()}`);
});

test('Python submits, a Node worker runs it, C++ awaits the result', async () => {
  const id = await python('submit', 'xl.reverse', 'three languages', 'xl-node');
  assert.match(id, /^[0-9A-Z]{26}$/);
  const r = await taskctl('--json', 'await', id, '--timeout', '30s');
  assert.equal(r.code, 0, r.stderr);
  const { tasks: [task], done } = JSON.parse(r.stdout); // the AwaitResponse as JSON
  assert.equal(done, true);
  assert.equal(task.id, id);
  assert.equal(task.state, 'TASK_STATE_SUCCEEDED');
  assert.equal(Buffer.from(task.result, 'base64').toString(), 'segaugnal eerht (node attempt 1)');
  assert.match(task.worker_id, /-node$/);
});

test('C++ submits, a Python worker runs it, Node awaits the result', async () => {
  const r = await taskctl('submit', 'xl.upper', '--payload', 'from c++', '--queue', 'xl-py');
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  const result = await client.task(id).result({ timeoutMs: STEP_MS });
  assert.equal(result.toString(), 'FROM C++ (python attempt 1)');
  assert.match((await client.get(id)).workerId, /^py-/);
});

test('a cancel from Python reaches the task running on the Node worker', async () => {
  const r = await taskctl('submit', 'xl.block', '--queue', 'xl-node');
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  await waitForLine(nodeWorker, new RegExp(`started ${id}`), 'the Node worker to start the task');
  assert.equal(await python('cancel', id, 'python says stop'), 'TASK_STATE_RUNNING', 'a running task ends once its worker stops');
  await waitForLine(nodeWorker, new RegExp(`aborted ${id} cancelled python says stop`), 'the Node handler to see the cancel');
  const awaited = await taskctl('await', id, '--timeout', '30s');
  assert.equal(awaited.code, 1, 'taskctl await exits 1 for a cancelled task');
  assert.match(awaited.stdout, new RegExp(`${id} CANCELLED .*error=cancelled`));
});

test('a cancel from Node reaches the task running on the Python worker', async () => {
  const id = await python('submit', 'xl.block', '', 'xl-py');
  await waitForLine(pyWorker, new RegExp(`started ${id}`), 'the Python worker to start the task');
  await client.cancel(id, 'node says stop');
  await waitForLine(pyWorker, new RegExp(`aborted ${id} node says stop`), 'the Python handler to see the cancel');
  const err = await client.task(id).result({ timeoutMs: STEP_MS }).then(() => null, (e) => e);
  assert.ok(err instanceof TaskCancelledError, `got ${err}`);
  assert.equal(err.error.code, 'cancelled');
});

test('a cancel from C++ reaches the task running on the Node worker', async () => {
  const t = await client.submit('xl.block', '', { queue: 'xl-node' });
  await waitForLine(nodeWorker, new RegExp(`started ${t.id}`), 'the Node worker to start the task');
  const r = await taskctl('cancel', t.id, '--reason', 'taskctl says stop');
  assert.equal(r.code, 0, r.stderr);
  await waitForLine(nodeWorker, new RegExp(`aborted ${t.id} cancelled taskctl says stop`), 'the Node handler to see the cancel');
  const [done] = await client.awaitAll([t], { timeoutMs: STEP_MS });
  assert.equal(done.state, 'TASK_STATE_CANCELLED');
});

test('server reflection from Python lists the services and serves the full descriptors', async () => {
  const r = await run(PYTHON, [path.join(XL_DIR, 'py_reflection.py'), server.target, path.join(XL_DIR, 'taskd_descriptor_set.pb')]);
  const report = JSON.parse(r.stdout);
  assert.deepEqual(report.services, [
    'grpc.health.v1.Health',
    'grpc.reflection.v1alpha.ServerReflection',
    'taskd.v1.QueueService',
    'taskd.v1.ScheduleService',
    'taskd.v1.TaskService',
    'taskd.v1.WorkerService',
  ]);
  assert.deepEqual(report.taskd_services_in_file, ['QueueService', 'ScheduleService', 'TaskService', 'WorkerService']);
  assert.deepEqual(report.files.filter((f) => f.startsWith('google/')), ['google/protobuf/duration.proto', 'google/protobuf/timestamp.proto']);
  assert.deepEqual(report.task_service_methods, {
    SubmitTask: ['taskd.v1.SubmitTaskRequest', 'taskd.v1.SubmitTaskResponse', false, false],
    SubmitTasks: ['taskd.v1.SubmitTasksRequest', 'taskd.v1.SubmitTasksResponse', false, false],
    GetTask: ['taskd.v1.GetTaskRequest', 'taskd.v1.Task', false, false],
    ListTasks: ['taskd.v1.ListTasksRequest', 'taskd.v1.ListTasksResponse', false, false],
    Await: ['taskd.v1.AwaitRequest', 'taskd.v1.AwaitResponse', false, false],
    Cancel: ['taskd.v1.CancelRequest', 'taskd.v1.Task', false, false],
    Stream: ['taskd.v1.StreamRequest', 'taskd.v1.TaskEvent', false, true],
  });
  assert.equal(report.matches_api_proto, true, 'the served taskd.v1 file equals protoc\'s compilation of api/taskd/v1/taskd.proto');
  assert.equal(report.reflection_schema_matches, true);
  assert.equal(r.code, 0, r.stderr);
});
