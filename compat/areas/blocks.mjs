// Standalone blocks: create, list, update, attach, detach, delete.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { NotFoundError } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { collect, createAgent, unique } from '../lib/fixtures.mjs';

export function register(ctx) {
  describe('blocks', () => {
    it('blocks.agents.list() pages through the agents sharing a block, newest first', async () => {
      const shared = await ctx.client.blocks.create({ label: unique('shared'), value: 'shared' });
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await createAgent(ctx.client, { block_ids: [shared.id] })).id);
      const got = await collect(ctx.client.blocks.agents.list(shared.id, { limit: 2 }));
      assert.deepEqual(got.map((a) => a.id), [...ids].reverse());
      const asc = (await ctx.client.blocks.agents.list(shared.id, { order: 'asc' })).items;
      assert.deepEqual(asc.map((a) => a.id), ids);
    });

    it('create, retrieve, list, update, attach, detach, delete', async () => {
      const label = unique('facts');
      const b = shape.block(
        await ctx.client.blocks.create({
          label,
          value: 'The sky is blue.',
          description: 'shared facts',
          limit: 3000,
          metadata: { source: 'compat' },
        }),
      );
      assert.equal(b.label, label);
      assert.equal(b.value, 'The sky is blue.');
      assert.equal(b.limit, 3000);
      assert.equal(b.description, 'shared facts');
      assert.deepEqual(b.metadata, { source: 'compat' });
      assert.equal(b.is_template ?? false, false);

      const got = shape.block(await ctx.client.blocks.retrieve(b.id));
      assert.deepEqual({ ...got, updated_at: undefined }, { ...b, updated_at: undefined });

      const listed = (await ctx.client.blocks.list({ label })).items;
      listed.forEach(shape.block);
      assert.deepEqual(listed.map((x) => x.id), [b.id]);

      const u = shape.block(await ctx.client.blocks.update(b.id, { value: 'The sky is grey today.' }));
      assert.equal(u.id, b.id);
      assert.equal(u.value, 'The sky is grey today.');
      assert.equal(u.label, label);

      const agent = await createAgent(ctx.client);
      const attached = shape.agent(await ctx.client.agents.blocks.attach(b.id, { agent_id: agent.id }));
      assert.ok(attached.blocks.some((x) => x.id === b.id), 'attach answers the agent with the block');
      const holders = (await ctx.client.blocks.agents.list(b.id)).items;
      holders.forEach(shape.agent);
      assert.deepEqual(holders.map((x) => x.id), [agent.id], 'blocks.agents.list names the agents holding it');
      const viaLabel = await ctx.client.agents.blocks.retrieve(label, { agent_id: agent.id });
      assert.equal(viaLabel.id, b.id);
      assert.equal(viaLabel.value, 'The sky is grey today.');

      const detached = shape.agent(await ctx.client.agents.blocks.detach(b.id, { agent_id: agent.id }));
      assert.ok(!detached.blocks.some((x) => x.id === b.id));
      await assert.rejects(
        ctx.client.agents.blocks.retrieve(label, { agent_id: agent.id }),
        (err) => !!shape.notFound(err, NotFoundError),
      );
      assert.deepEqual((await ctx.client.blocks.agents.list(b.id)).items, []);

      await ctx.client.blocks.delete(b.id);
      await assert.rejects(ctx.client.blocks.retrieve(b.id), (err) => !!shape.notFound(err, NotFoundError));
      await assert.rejects(ctx.client.blocks.agents.list(b.id), (err) => !!shape.notFound(err, NotFoundError));
      assert.deepEqual((await ctx.client.blocks.list({ label })).items, []);
    });

    it('list() takes the SDK\'s filters', async () => {
      const stem = unique('flt');
      const tea = await ctx.client.blocks.create({ label: `${stem}-food`, value: 'Likes green TEA', description: 'what Ada eats', tags: [stem, 'food'] });
      const cat = await ctx.client.blocks.create({ label: `${stem}-pets`, value: 'A cat called Turing', tags: [stem] });
      await createAgent(ctx.client, { block_ids: [tea.id, cat.id] });
      await createAgent(ctx.client, { block_ids: [tea.id] });
      const ids = async (q) => (await collect(ctx.client.blocks.list({ label_search: stem, ...q }))).map((b) => b.id).sort();
      assert.deepEqual(await ids({}), [tea.id, cat.id].sort());
      assert.deepEqual(await ids({ value_search: 'tea' }), [tea.id]);
      assert.deepEqual(await ids({ description_search: 'ADA EATS' }), [tea.id]);
      assert.deepEqual(await ids({ tags: [stem, 'food'], match_all_tags: true }), [tea.id]);
      assert.deepEqual(await ids({ connected_to_agents_count_gt: 1 }), [tea.id]);
      assert.deepEqual(await ids({ connected_to_agents_count_eq: [1] }), [cat.id]);
    });

    it('list() auto-paginates, oldest first by default', async () => {
      const label = unique('paged');
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push((await ctx.client.blocks.create({ label, value: `v${i}` })).id);
      const got = await collect(ctx.client.blocks.list({ label, limit: 3 }));
      assert.deepEqual(got.map((b) => b.id), ids);
    });
  });
}
