// Agents: create, list (tags, auto-pagination), retrieve, update, delete.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';

import { NotFoundError } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { chatHandle, embeddingHandle, collect, createAgent, unique } from '../lib/fixtures.mjs';

export function register(ctx) {
  describe('agents', () => {
    it('create() with memory blocks and a model handle returns the whole agent', async () => {
      const a = shape.agent(
        await ctx.client.agents.create({
          name: unique('sam'),
          description: 'a test agent',
          model: chatHandle,
          embedding: embeddingHandle,
          memory_blocks: [
            { label: 'persona', value: 'I am Sam.' },
            { label: 'human', value: 'First name: Ada', limit: 5000 },
          ],
          tags: ['compat', 'create'],
          metadata: { team: 'compat' },
        }),
      );
      assert.equal(a.model, chatHandle);
      assert.equal(a.llm_config.handle, chatHandle);
      assert.equal(a.llm_config.model, 'gpt-4o-mini');
      assert.equal(a.embedding, embeddingHandle);
      assert.equal(a.embedding_config?.embedding_dim, 64);
      assert.equal(a.description, 'a test agent');
      assert.deepEqual(a.metadata, { team: 'compat' });
      assert.deepEqual([...a.tags].sort(), ['compat', 'create']);
      const labels = a.blocks.map((b) => b.label).sort();
      assert.deepEqual(labels, ['human', 'persona']);
      assert.deepEqual(a.memory.blocks.map((b) => b.label).sort(), labels);
      const human = a.blocks.find((b) => b.label === 'human');
      assert.equal(human.value, 'First name: Ada');
      assert.equal(human.limit, 5000);
      assert.ok(a.system.length > 0, 'a system prompt');
      assert.ok(a.tools.length > 0, 'base tools are attached by default');
    });

    describe('list', () => {
      const tag = unique('listtag');
      const ids = [];
      before(async () => {
        for (let i = 0; i < 5; i++) {
          const extra = i % 2 === 0 ? [tag, `${tag}-even`] : [tag];
          ids.push((await createAgent(ctx.client, { tags: extra })).id);
        }
      });

      it('filters by tags (any, and all with match_all_tags)', async () => {
        const any = (await ctx.client.agents.list({ tags: [tag], limit: 50 })).items;
        any.forEach(shape.agent);
        assert.deepEqual(any.map((a) => a.id).sort(), [...ids].sort());
        const even = (await ctx.client.agents.list({ tags: [`${tag}-even`] })).items;
        assert.deepEqual(even.map((a) => a.id).sort(), [ids[0], ids[2], ids[4]].sort());
        const all = (await ctx.client.agents.list({ tags: [tag, `${tag}-even`], match_all_tags: true })).items;
        assert.equal(all.length, 3);
        const none = (await ctx.client.agents.list({ tags: [`${tag}-even`, unique('nope')], match_all_tags: true })).items;
        assert.deepEqual(none, []);
      });

      it('auto-paginates at a small page size, newest first by default', async () => {
        const got = await collect(ctx.client.agents.list({ tags: [tag], limit: 2 }));
        assert.deepEqual(got.map((a) => a.id), [...ids].reverse());
      });

      it('auto-paginates in ascending order', async () => {
        const got = await collect(ctx.client.agents.list({ tags: [tag], limit: 2, order: 'asc' }));
        assert.deepEqual(got.map((a) => a.id), ids);
      });

      it('pages by hand: a page past the end is empty, and before goes back', async () => {
        let page = await ctx.client.agents.list({ tags: [tag], limit: 3, order: 'asc' });
        assert.deepEqual(page.items.map((a) => a.id), ids.slice(0, 3));
        assert.ok(page.hasNextPage());
        page = await page.getNextPage();
        assert.deepEqual(page.items.map((a) => a.id), ids.slice(3));
        page = await page.getNextPage();
        assert.deepEqual(page.items, []);
        assert.equal(page.hasNextPage(), false);
        const back = await ctx.client.agents.list({ tags: [tag], order: 'asc', before: ids[3], limit: 2 });
        assert.deepEqual(back.items.map((a) => a.id), ids.slice(1, 3));
      });

      it('finds an agent by name', async () => {
        const a = await ctx.client.agents.retrieve(ids[1]);
        const found = (await ctx.client.agents.list({ name: a.name })).items;
        assert.deepEqual(found.map((x) => x.id), [ids[1]]);
      });
    });

    it('retrieve() returns the agent, with include= asking for relationships', async () => {
      const a = await createAgent(ctx.client);
      const got = shape.agent(await ctx.client.agents.retrieve(a.id));
      assert.equal(got.id, a.id);
      assert.equal(got.name, a.name);
      const withRel = shape.agent(
        await ctx.client.agents.retrieve(a.id, { include: ['agent.blocks', 'agent.tools', 'agent.tags'] }),
      );
      assert.deepEqual(withRel.blocks.map((b) => b.id).sort(), a.blocks.map((b) => b.id).sort());
    });

    it('update() changes name, description, tags, metadata and system', async () => {
      const a = await createAgent(ctx.client, { tags: ['before'] });
      const name = unique('renamed');
      const u = shape.agent(
        await ctx.client.agents.update(a.id, {
          name,
          description: 'updated',
          tags: ['after', 'second'],
          metadata: { v: 2 },
          system: 'You are a terse assistant.',
        }),
      );
      assert.equal(u.id, a.id);
      assert.equal(u.name, name);
      assert.equal(u.description, 'updated');
      assert.deepEqual([...u.tags].sort(), ['after', 'second']);
      assert.deepEqual(u.metadata, { v: 2 });
      assert.ok(u.system.startsWith('You are a terse assistant.'), u.system);
      const again = await ctx.client.agents.retrieve(a.id);
      assert.equal(again.name, name);
      assert.deepEqual([...again.tags].sort(), ['after', 'second']);
    });

    it('update() with block_ids and tool_ids replaces the sets', async () => {
      const a = await createAgent(ctx.client);
      const extra = await ctx.client.blocks.create({ label: unique('extra'), value: 'e' });
      const persona = a.blocks.find((b) => b.label === 'persona');
      const send = a.tools.find((t) => t.name === 'send_message');
      const u = shape.agent(await ctx.client.agents.update(a.id, { block_ids: [persona.id, extra.id], tool_ids: [send.id] }));
      assert.deepEqual(u.blocks.map((b) => b.id).sort(), [persona.id, extra.id].sort());
      assert.deepEqual(u.tools.map((t) => t.id), [send.id]);
      const again = await ctx.client.agents.retrieve(a.id);
      assert.deepEqual(again.memory.blocks.map((b) => b.id).sort(), [persona.id, extra.id].sort());
    });

    it('delete() removes the agent; retrieving it is then NotFoundError', async () => {
      const a = await createAgent(ctx.client);
      await ctx.client.agents.delete(a.id);
      await assert.rejects(ctx.client.agents.retrieve(a.id), (err) => {
        const detail = shape.notFound(err, NotFoundError);
        assert.ok(detail.includes(a.id), detail);
        return true;
      });
    });
  });
}
