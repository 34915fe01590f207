'use strict';
// examples/node as a new user runs them: worker.js in one process, submit.js
// in another, against a real taskd; then SIGTERM stops the worker.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { startTaskd, deadline, SOURCE_ROOT } = require('./harness');

const EXAMPLES = path.join(SOURCE_ROOT, 'examples', 'node');

function run(script, target) {
  const child = spawn(process.execPath, [script], {
    cwd: EXAMPLES,
    env: { ...process.env, TASKD_TARGET: target },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.out = '';
  child.stdout.on('data', (d) => { child.out += d; });
  child.stderr.on('data', (d) => { child.out += d; });
  child.exited = once(child, 'exit');
  return child;
}

test('worker.js serves what submit.js submits; SIGTERM stops it', async () => {
  const server = await startTaskd();
  const worker = run('worker.js', server.target);
  try {
    const submit = run('submit.js', server.target);
    const [code] = await deadline(submit.exited, 60_000, 'submit.js to finish');
    assert.equal(code, 0, submit.out);
    const lines = submit.out.trim().split('\n');
    assert.match(lines[0], /^submitted [0-9A-Z]{26}$/);
    assert.equal(lines[1], 'result: HELLO FROM NODE');
    assert.equal(lines[2], 'thumbnails: 50 100 150 200 250 300 350 400 450 500');
    assert.equal(lines[3], 'first done: QUICK');
    assert.equal(lines[4], 'failed: bad_request: scale must be positive, got 0');
    assert.equal(lines[5], 'cancelled: cancelled: not needed');
    assert.equal(lines.at(-1), 'watched: TASK_STATE_SUCCEEDED {"width":160,"height":120}');
    assert.equal(lines.at(-2), 'event EVENT_TYPE_SUCCEEDED 100%');
    worker.kill('SIGTERM');
    const [wcode] = await deadline(worker.exited, 20_000, 'worker.js to stop');
    assert.equal(wcode, 0, worker.out);
    assert.match(worker.out, /worker stopped: 13 completed, [1-3] failed/, 'a sleep task fails on the worker only if it started before its cancel');
  } finally {
    worker.kill('SIGKILL');
    await server.stop();
  }
});

test('the README\'s Node.js code blocks are excerpts of the examples', () => {
  const fs = require('node:fs');
  const readme = fs.readFileSync(path.join(SOURCE_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Node.js\n');
  assert.ok(start >= 0, 'README.md has a Node.js section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 2, 'the section quotes the client and the worker');
  const exampleLines = new Set(fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.js'))
    .flatMap((f) => fs.readFileSync(path.join(EXAMPLES, f), 'utf8').split('\n').map((l) => l.trim())));
  for (const block of blocks) {
    for (const line of block.split('\n').map((l) => l.trim()).filter(Boolean)) {
      assert.ok(exampleLines.has(line), `README line not in examples/node: ${line}`);
    }
  }
});
