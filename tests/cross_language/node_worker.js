// The Node side of the cross-language test, as a worker (package taskd from
// $TASKD_NODE_PACKAGE). Serves queue xl-node: `xl.reverse` reverses its
// payload; `xl.block` runs until cancelled, printing "started ID" and
// "aborted ID CODE REASON" lines.
'use strict';
const { Worker } = require(process.env.TASKD_NODE_PACKAGE);

const worker = new Worker({ target: process.argv[2], queues: ['xl-node'], concurrency: 2 });
worker.handle('xl.reverse', (ctx) => `${[...ctx.text()].reverse().join('')} (node attempt ${ctx.attempt})`);
worker.handle('xl.block', (ctx) => new Promise((resolve, reject) => {
  ctx.signal.addEventListener('abort', () => {
    process.stdout.write(`aborted ${ctx.id} ${ctx.signal.reason.code} ${ctx.signal.reason.message}\n`);
    reject(ctx.signal.reason);
  }, { once: true });
  process.stdout.write(`started ${ctx.id}\n`);
}));
worker.run();
