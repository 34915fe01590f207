// A taskd worker in Node: serves two task types until SIGTERM or Ctrl-C.
//
//   node worker.js            # TASKD_TARGET overrides 127.0.0.1:50051
'use strict';
const { Worker, TaskFailure } = require('taskd');

const worker = new Worker({
  target: process.env.TASKD_TARGET || '127.0.0.1:50051',
  queues: ['examples'],
  concurrency: 8,
});

// Payload: JSON { width, height, scale }. Reports progress per step and stops
// early when the task is cancelled or times out (ctx.signal).
worker.handle('thumbnail', async (ctx) => {
  const { width, height, scale } = ctx.json();
  if (!(scale > 0)) throw new TaskFailure('bad_request', `scale must be positive, got ${scale}`, { retryable: false });
  for (let step = 1; step <= 4; step++) {
    ctx.signal.throwIfAborted();
    await new Promise((resolve) => setImmediate(resolve)); // stand-in for real work
    ctx.progress(step * 25, `step ${step} of 4`);
  }
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
});

// Payload: text. Result: the text upper-cased.
worker.handle('upper', (ctx) => ctx.text().toUpperCase());

// Payload: a number of milliseconds to sleep; ends early on cancel.
worker.handle('sleep', (ctx) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, Number(ctx.text()), 'slept');
  ctx.signal.addEventListener('abort', () => { clearTimeout(timer); reject(ctx.signal.reason); });
}));

worker.on('connected', () => console.log(`worker ${worker.workerId} serving queue "examples"`));
worker.run().then(() => console.log(`worker stopped: ${worker.stats.completed} completed, ${worker.stats.failed} failed`));
