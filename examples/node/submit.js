// A taskd client in Node: one task and its result, a fan-out/fan-in, a
// failure, a cancel, and a stream of events. Needs worker.js running.
//
//   node submit.js            # TASKD_TARGET overrides 127.0.0.1:50051
'use strict';
const { Client, TaskFailedError, TaskCancelledError, isTerminal } = require('taskd');

async function main() {
  const client = new Client({ target: process.env.TASKD_TARGET || '127.0.0.1:50051' });

  // Submit returns at once with the task's id; result() waits for it.
  const t = await client.submit('upper', 'hello from node', { queue: 'examples' });
  console.log(`submitted ${t.id}`);
  console.log(`result: ${await t.result({ timeoutMs: 10_000 })}`);

  // Fan out ten thumbnails in one call, fan in with awaitAll.
  const sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => ({ width: 100 * i, height: 50 * i, scale: 0.5 }));
  const batch = await client.submitMany(sizes.map((s) => ({ type: 'thumbnail', payload: s, queue: 'examples' })));
  const done = await client.awaitAll(batch, { timeoutMs: 30_000 });
  console.log(`thumbnails: ${done.map((task) => JSON.parse(task.result).width).join(' ')}`);

  // awaitAny returns once one task is terminal, with all of them as they stand.
  const race = await client.submitMany([
    { type: 'sleep', payload: '60000', queue: 'examples' },
    { type: 'upper', payload: 'quick', queue: 'examples' },
  ]);
  const first = (await client.awaitAny(race, { timeoutMs: 10_000 })).find(isTerminal);
  console.log(`first done: ${first.result}`);
  await race[0].cancel();

  // A failure arrives as TaskFailedError with the worker's TaskError.
  try {
    await (await client.submit('thumbnail', { width: 1, height: 1, scale: 0 }, { queue: 'examples' })).result();
  } catch (err) {
    if (!(err instanceof TaskFailedError)) throw err;
    console.log(`failed: ${err.error.code}: ${err.error.message}`);
  }

  // Cancel a task: at once if it has not started, else the worker's
  // ctx.signal aborts and the task ends CANCELLED when the handler returns.
  const nap = await client.submit('sleep', '60000', { queue: 'examples' });
  await nap.cancel('not needed');
  await nap.result().catch((err) => {
    if (!(err instanceof TaskCancelledError)) throw err;
    console.log(`cancelled: ${err.error.code}: ${err.error.message}`);
  });

  // Watch a task's events (from now on; progress included) while it runs.
  // The stream of a list of ids ends once they are all terminal.
  const watched = await client.submit('thumbnail', { width: 640, height: 480, scale: 0.25 },
    { queue: 'examples', delayMs: 200 });
  for await (const ev of client.stream({ ids: [watched] })) {
    const progress = ev.task.progress ? ` ${ev.task.progress.percent}%` : '';
    console.log(`event ${ev.type}${progress}`);
  }
  const final = await watched.get();
  console.log(`watched: ${final.state} ${final.result}`);
  client.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
