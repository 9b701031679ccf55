// Archival memory (passages): create, list, search, delete.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';

import * as shape from '../lib/shapes.mjs';
import { pending } from '../lib/pending.mjs';
import { createAgent, missing } from '../lib/fixtures.mjs';

export function register(ctx) {
  describe('archival passages', () => {
    let agent;
    const texts = [
      'Ada prefers green tea in the morning.',
      'The project deadline is the first of March.',
      'Ada\'s cat is called Turing.',
    ];
    const created = [];
    before(async () => {
      agent = await createAgent(ctx.client);
      for (const [i, text] of texts.entries()) {
        const ps = await ctx.client.agents.passages.create(agent.id, { text, tags: i === 1 ? ['work'] : ['ada'] });
        created.push(ps);
      }
    });

    it('create() returns an array with the one passage', () => {
      for (const [i, ps] of created.entries()) {
        assert.ok(Array.isArray(ps));
        assert.equal(ps.length, 1);
        shape.passage(ps[0]);
        assert.equal(ps[0].text, texts[i]);
        assert.deepEqual(ps[0].tags, i === 1 ? ['work'] : ['ada']);
      }
    });

    it('list() is a plain array, oldest first by default; ascending=false reverses it', async () => {
      const list = await ctx.client.agents.passages.list(agent.id);
      assert.ok(Array.isArray(list), 'a plain array, not a page');
      list.forEach(shape.passage);
      assert.deepEqual(list.map((p) => p.text), texts);
      const desc = await ctx.client.agents.passages.list(agent.id, { ascending: false });
      assert.deepEqual(desc.map((p) => p.text), [...texts].reverse());
      const limited = await ctx.client.agents.passages.list(agent.id, { limit: 2 });
      assert.deepEqual(limited.map((p) => p.text), texts.slice(0, 2));
      const after = await ctx.client.agents.passages.list(agent.id, { after: list[0].id });
      assert.deepEqual(after.map((p) => p.text), texts.slice(1));
    });

    it('list() with search keeps the passages containing the text, ignoring case', async () => {
      const tea = await ctx.client.agents.passages.list(agent.id, { search: 'GREEN tea' });
      assert.deepEqual(tea.map((p) => p.text), [texts[0]]);
      const ada = await ctx.client.agents.passages.list(agent.id, { search: 'ada', ascending: false });
      assert.deepEqual(ada.map((p) => p.text), [texts[2], texts[0]]);
      const one = await ctx.client.agents.passages.list(agent.id, { search: 'ada', limit: 1 });
      assert.deepEqual(one.map((p) => p.text), [texts[0]], 'the limit counts matches');
      const none = await ctx.client.agents.passages.list(agent.id, { search: 'nothing like this' });
      assert.deepEqual(none, []);
    });

    it('search() ranks the passages that match the query', { skip: pending('archival-search') }, async () => {
      const r = await ctx.client.agents.passages.search(agent.id, { query: 'what tea does Ada drink' });
      assert.equal(typeof r.count, 'number');
      assert.ok(Array.isArray(r.results));
      assert.equal(r.count, r.results.length);
      assert.ok(r.results.length > 0);
      for (const x of r.results) {
        assert.equal(typeof x.id, 'string');
        assert.equal(typeof x.content, 'string');
        assert.equal(typeof x.timestamp, 'string');
      }
      assert.equal(r.results[0].content, texts[0]);
      const work = await ctx.client.agents.passages.search(agent.id, { query: 'deadline', tags: ['work'] });
      assert.deepEqual(work.results.map((x) => x.content), [texts[1]]);
      const top1 = await ctx.client.agents.passages.search(agent.id, { query: 'Ada', top_k: 1 });
      assert.equal(top1.results.length, 1);
    });

    it('delete() removes a passage', async () => {
      const extra = (await ctx.client.agents.passages.create(agent.id, { text: 'to be deleted' }))[0];
      await ctx.client.agents.passages.delete(extra.id, { agent_id: agent.id });
      const list = await ctx.client.agents.passages.list(agent.id);
      assert.ok(!list.some((p) => p.id === extra.id));
      await assert.rejects(ctx.client.agents.passages.delete(missing.passage, { agent_id: agent.id }), { status: 404 });
    });
  });
}
