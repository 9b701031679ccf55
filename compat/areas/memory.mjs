// An agent's core memory blocks: list, retrieve, update by label, unknown labels.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';

import { NotFoundError } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { collect, createAgent } from '../lib/fixtures.mjs';

export function register(ctx) {
  describe('core memory blocks', () => {
    let agent;
    before(async () => {
      agent = await createAgent(ctx.client, {
        memory_blocks: [
          { label: 'persona', value: 'I am Sam.' },
          { label: 'human', value: 'First name: Ada' },
          { label: 'notes/today', value: 'a label with a slash' },
        ],
      });
    });

    it('list() returns the agent\'s blocks, also page by page', async () => {
      const page = await ctx.client.agents.blocks.list(agent.id);
      page.items.forEach(shape.block);
      assert.deepEqual(page.items.map((b) => b.label).sort(), ['human', 'notes/today', 'persona']);
      const paged = await collect(ctx.client.agents.blocks.list(agent.id, { limit: 1 }));
      assert.deepEqual(paged.map((b) => b.id), page.items.map((b) => b.id));
    });

    it('retrieve() finds a block by label, a label with "/" too', async () => {
      const b = shape.block(await ctx.client.agents.blocks.retrieve('human', { agent_id: agent.id }));
      assert.equal(b.label, 'human');
      assert.equal(b.value, 'First name: Ada');
      const slash = shape.block(await ctx.client.agents.blocks.retrieve('notes/today', { agent_id: agent.id }));
      assert.equal(slash.value, 'a label with a slash');
    });

    it('update() by label changes the value the agent sees', async () => {
      const b = shape.block(
        await ctx.client.agents.blocks.update('human', { agent_id: agent.id, value: 'First name: Ada. Likes tea.' }),
      );
      assert.equal(b.label, 'human');
      assert.equal(b.value, 'First name: Ada. Likes tea.');
      const again = await ctx.client.agents.blocks.retrieve('human', { agent_id: agent.id });
      assert.equal(again.value, 'First name: Ada. Likes tea.');
      const a = await ctx.client.agents.retrieve(agent.id);
      assert.equal(a.blocks.find((x) => x.label === 'human').value, 'First name: Ada. Likes tea.');
    });

    it('update() can change the limit and description too', async () => {
      const b = await ctx.client.agents.blocks.update('persona', {
        agent_id: agent.id,
        limit: 4000,
        description: 'who the agent is',
      });
      assert.equal(b.limit, 4000);
      assert.equal(b.description, 'who the agent is');
      assert.equal(b.value, 'I am Sam.');
    });

    it('an unknown label is NotFoundError naming the label', async () => {
      await assert.rejects(ctx.client.agents.blocks.retrieve('no-such-label', { agent_id: agent.id }), (err) => {
        const detail = shape.notFound(err, NotFoundError);
        assert.ok(detail.includes('no-such-label'), detail);
        return true;
      });
      await assert.rejects(
        ctx.client.agents.blocks.update('no-such-label', { agent_id: agent.id, value: 'x' }),
        (err) => !!shape.notFound(err, NotFoundError),
      );
    });
  });
}
