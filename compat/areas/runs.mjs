// Runs: an async send answers a Run at once; the run is polled to its end,
// listed, and its messages and usage read; a run cancelled between steps
// stops with stop_reason "cancelled".
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';

import { NotFoundError } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { call, collect, createAgent, say } from '../lib/fixtures.mjs';

async function poll(client, id, done) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = shape.run(await client.runs.retrieve(id));
    if (done(r)) return r;
    assert.ok(Date.now() < deadline, `run ${id} is still ${r.status}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

// beat is a step that edits memory and asks for another step; delayMs holds
// the model's reply back (llmtest's Delay is a Go duration, in nanoseconds).
const beat = (delayMs = 0) => ({
  Delay: delayMs * 1e6,
  ToolCalls: [call('core_memory_append', { name: 'human', content: 'noted', request_heartbeat: true })],
});

export function register(ctx) {
  describe('runs', () => {
    let agent;
    before(async () => {
      agent = await createAgent(ctx.client);
    });

    it('createAsync() answers a Run that completes; its messages and usage', async () => {
      await ctx.h.script(say('Done in the background.'));
      const run = shape.run(
        await ctx.client.agents.messages.createAsync(agent.id, {
          messages: [{ role: 'user', content: 'Work on this later.' }],
        }),
      );
      assert.equal(run.agent_id, agent.id);
      // The run as it stands when the answer is made: the run starts while the input's fsync is
      // under way, so with the instant scripted model it may have completed already.
      assert.ok(['created', 'running', 'completed'].includes(run.status), run.status);
      const done = await poll(ctx.client, run.id, (r) => r.status === 'completed');
      assert.equal(done.stop_reason, 'end_turn');
      assert.ok(done.completed_at);

      const ms = await collect(ctx.client.runs.messages.list(run.id));
      for (const m of ms) shape.message(m);
      assert.deepEqual(
        ms.map((m) => m.message_type),
        ['user_message', 'reasoning_message', 'assistant_message', 'tool_return_message'],
      );
      assert.ok(ms.every((m) => m.run_id === run.id), 'every message carries the run');
      assert.equal(ms.find((m) => m.message_type === 'assistant_message').content, 'Done in the background.');

      const u = await ctx.client.runs.usage.retrieve(run.id);
      assert.ok(u.total_tokens > 0);
      assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);

      const steps = await collect(ctx.client.runs.steps.list(run.id));
      assert.equal(steps.length, 1);
      assert.equal(steps[0].run_id, run.id);
      assert.equal(steps[0].total_tokens, u.total_tokens);
      assert.equal(steps[0].stop_reason, 'end_turn');

      const listed = await collect(ctx.client.runs.list({ agent_id: agent.id }));
      for (const r of listed) shape.run(r);
      assert.ok(listed.some((r) => r.id === run.id));
      const completed = await collect(ctx.client.runs.list({ agent_id: agent.id, statuses: ['completed'], order: 'asc' }));
      assert.ok(completed.every((r) => r.status === 'completed'));
    });

    it('a sync send names its run in usage.run_ids and on its messages', async () => {
      await ctx.h.script(say('Right away.'));
      const r = shape.lettaResponse(await ctx.client.agents.messages.create(agent.id, { input: 'Now, please.' }));
      assert.equal(r.usage.run_ids.length, 1);
      const id = r.usage.run_ids[0];
      assert.ok(r.messages.every((m) => m.run_id === id));
      const run = shape.run(await ctx.client.runs.retrieve(id));
      assert.equal(run.status, 'completed');
    });

    it('cancel() stops a run between steps', async () => {
      await ctx.h.script(beat(), beat(500), beat(), say('never said'));
      const run = shape.run(await ctx.client.agents.messages.createAsync(agent.id, { input: 'A long task.' }));
      const deadline = Date.now() + 20_000;
      while ((await ctx.client.runs.usage.retrieve(run.id)).total_tokens === 0) {
        assert.ok(Date.now() < deadline, 'the first step never committed');
        await new Promise((res) => setTimeout(res, 20));
      }
      const res = await ctx.client.agents.messages.cancel(agent.id, { run_ids: [run.id] });
      assert.equal(res[run.id], 'cancelled');
      const done = await poll(ctx.client, run.id, (r) => r.status === 'cancelled');
      assert.equal(done.stop_reason, 'cancelled');
      await new Promise((res) => setTimeout(res, 800));
      assert.equal(await ctx.h.pending(), 2, 'no step after the one in flight');
      const ms = await collect(ctx.client.runs.messages.list(run.id));
      assert.ok(!ms.some((m) => m.message_type === 'assistant_message'), 'the run never answered');
      // The unused steps would confuse the next test: use them up.
      await ctx.client.agents.messages.create(agent.id, { input: 'Go on.' });
      assert.equal(await ctx.h.pending(), 0);
    });

    it('an unknown run is a NotFoundError', async () => {
      const err = await ctx.client.runs.retrieve('run-00000000-0000-4000-8000-000000000000').catch((e) => e);
      shape.notFound(err, NotFoundError);
    });
  });
}
