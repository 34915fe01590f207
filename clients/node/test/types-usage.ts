// Compiled (not run) by test/types.test.js: the declarations must accept the
// documented usage and reject misuse (each @ts-expect-error must be an error).
import {
  Client, Worker, TaskState, EventType, TaskFailedError, TaskCancelledError,
  TaskFailure, isTerminal, isLoopbackTarget, type Task, type TaskEvent,
} from '..';

async function usage(): Promise<void> {
  const client = new Client({ target: '127.0.0.1:50051', callTimeoutMs: 5000 });
  const t = await client.submit('resize', { w: 10 }, { queue: 'images', priority: 5, timeoutMs: 1000, retry: { maxAttempts: 2 } });
  const bytes: Buffer = await t.result({ timeoutMs: 500, signal: AbortSignal.timeout(1000) });
  const many = await client.submitMany([{ type: 'a', payload: 'x' }, { type: 'b', dependsOn: [t] }]);
  const all: Task[] = await client.awaitAll([t, many[0].id]);
  const any: Task[] = await client.awaitAny(many);
  const done = any.filter(isTerminal).map((x) => x.state === TaskState.SUCCEEDED);
  for await (const ev of client.stream({ queue: 'images', fromSequence: 10n })) {
    const e: TaskEvent = ev;
    if (e.type === EventType.PROGRESS && e.task.progress) console.log(e.task.progress.percent, e.sequence + 1n);
  }
  for await (const task of client.list({ states: ['TASK_STATE_PENDING'] })) console.log(task.id);
  try {
    await client.task('id').result();
  } catch (err) {
    if (err instanceof TaskFailedError || err instanceof TaskCancelledError) console.log(err.error?.code, err.task.attempt);
  }
  const cancelled: Task = await client.cancel(t, 'reason');
  console.log(bytes.length, all.length, done, cancelled.state);

  const worker = new Worker({ target: '127.0.0.1:50051', queues: ['images'], concurrency: 50 });
  const secure = new Client({ target: 'taskd.example.com:50051', tlsCa: 'ca.pem', tlsCert: 'c.pem', tlsKey: 'c.key', token: 'tdk_x' });
  console.log(secure.target, isLoopbackTarget(secure.target));
  // @ts-expect-error tlsCa is a file path
  new Client({ tlsCa: Buffer.from('') });
  worker
    .handle('resize', async (ctx) => {
      ctx.progress(50, 'half');
      if (ctx.signal.aborted) throw new TaskFailure('stopped', 'aborted', { retryable: false });
      return ctx.json<{ w: number }>().w * 2;
    })
    .handle('echo', (ctx) => ctx.payload);
  worker.on('disconnected', (err) => console.log(err.code));
  await worker.run();
  await worker.stop({ graceMs: 100 });

  // @ts-expect-error priority is a number
  await client.submit('x', '', { priority: 'high' });
  // @ts-expect-error unknown option
  await client.submit('x', '', { queu: 'a' });
  // @ts-expect-error result() resolves to a Buffer, not a string
  const s: string = await t.result();
  // @ts-expect-error not a TaskState name
  client.list({ states: ['DONE'] });
  // @ts-expect-error a handler takes a TaskContext
  worker.handle('bad', (ctx: number) => ctx);
  console.log(s);
}

void usage;
