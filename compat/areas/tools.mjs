// Tools: create from Python source, list, update, upsert, attach, detach, delete.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { NotFoundError, BadRequestError, UnprocessableEntityError } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { collect, createAgent, unique } from '../lib/fixtures.mjs';

// pySource is a Python tool with a Google-style docstring.
function pySource(name, doc = 'Roll a die and report the results.') {
  return `def ${name}(sides: int, times: int = 1, label: str = "roll") -> str:
    """${doc}

    Args:
        sides (int): How many sides the die has.
        times (int): How many times to roll it.
        label (str): What to call the roll.

    Returns:
        str: The results, one per line.
    """
    import random
    return "\\n".join(f"{label} {i}: {random.randint(1, sides)}" for i in range(times))
`;
}

export function register(ctx) {
  describe('tools', () => {
    it('create() derives the name and JSON schema from the source', async () => {
      const name = unique('roll_dice').replace(/-/g, '_');
      const t = shape.tool(await ctx.client.tools.create({ source_code: pySource(name), tags: ['dice'] }));
      assert.equal(t.name, name);
      assert.equal(t.source_type ?? 'python', 'python');
      assert.equal(t.tool_type, 'custom');
      assert.deepEqual(t.tags, ['dice']);
      assert.equal(t.description, 'Roll a die and report the results.');
      assert.equal(t.json_schema.name, name);
      const params = t.json_schema.parameters;
      assert.equal(params.type, 'object');
      assert.equal(params.properties.sides.type, 'integer');
      assert.equal(params.properties.times.type, 'integer');
      assert.equal(params.properties.label.type, 'string');
      assert.equal(params.properties.sides.description, 'How many sides the die has.');
      // engram keeps Letta 0.5's request_heartbeat in stored schemas (see
      // the README's known differences); modern Letta adds it at run time.
      assert.deepEqual(params.required.filter((p) => p !== 'request_heartbeat'), ['sides']);
    });

    it('create() refuses source without a function', async () => {
      await assert.rejects(ctx.client.tools.create({ source_code: 'x = 1\n' }), (err) => {
        assert.ok(err instanceof BadRequestError || err instanceof UnprocessableEntityError, `${err}`);
        assert.equal(typeof err.error?.detail, 'string');
        return true;
      });
    });

    it('retrieve, list, update, upsert, attach, detach, delete', async () => {
      const name = unique('weather').replace(/-/g, '_');
      const t = await ctx.client.tools.create({ source_code: pySource(name, 'First description.') });

      assert.equal(shape.tool(await ctx.client.tools.retrieve(t.id)).name, name);
      const byName = (await ctx.client.tools.list({ name })).items;
      byName.forEach(shape.tool);
      assert.deepEqual(byName.map((x) => x.id), [t.id]);
      const all = await collect(ctx.client.tools.list({ limit: 2 }));
      assert.ok(all.some((x) => x.id === t.id), 'auto-pagination reaches the tool');
      assert.equal(new Set(all.map((x) => x.id)).size, all.length, 'no tool twice');

      const u = shape.tool(await ctx.client.tools.update(t.id, { description: 'Second description.', tags: ['x'] }));
      assert.equal(u.id, t.id);
      assert.equal(u.description, 'Second description.');
      assert.deepEqual(u.tags, ['x']);

      const up = shape.tool(await ctx.client.tools.upsert({ source_code: pySource(name, 'Third description.') }));
      assert.equal(up.id, t.id, 'upsert by name keeps the id');
      assert.equal(up.description, 'Third description.');
      const created = shape.tool(await ctx.client.tools.create({ source_code: pySource(name, 'Fourth.') }));
      assert.equal(created.id, t.id, 'create upserts by name too');

      const agent = await createAgent(ctx.client);
      const attached = await ctx.client.agents.tools.attach(t.id, { agent_id: agent.id });
      assert.ok(attached === null || attached === undefined || attached.id === agent.id, JSON.stringify(attached));
      const agentTools = await collect(ctx.client.agents.tools.list(agent.id));
      agentTools.forEach(shape.tool);
      assert.ok(agentTools.some((x) => x.id === t.id));
      assert.ok((await ctx.client.agents.retrieve(agent.id)).tools.some((x) => x.id === t.id));

      await ctx.client.agents.tools.detach(t.id, { agent_id: agent.id });
      const after = await collect(ctx.client.agents.tools.list(agent.id));
      assert.ok(!after.some((x) => x.id === t.id));

      await ctx.client.tools.delete(t.id);
      await assert.rejects(ctx.client.tools.retrieve(t.id), (err) => !!shape.notFound(err, NotFoundError));
    });

    it('list() takes the SDK\'s filters', async () => {
      const stem = unique('flt').replace(/-/g, '_');
      const a = await ctx.client.tools.create({ source_code: pySource(`${stem}_alpha`) });
      const b = await ctx.client.tools.create({ source_code: pySource(`${stem}_beta`) });
      const names = async (q) => (await collect(ctx.client.tools.list(q))).map((t) => t.name).sort();
      assert.deepEqual(await names({ search: stem.toUpperCase() }), [a.name, b.name].sort());
      assert.deepEqual(await names({ names: [a.name, 'send_message'] }), [a.name, 'send_message'].sort());
      assert.deepEqual(await names({ tool_ids: [b.id] }), [b.name]);
      assert.deepEqual(await names({ search: stem, tool_types: ['custom'] }), [a.name, b.name].sort());
      assert.deepEqual(await names({ search: stem, exclude_tool_types: ['custom'] }), []);
      const letta = await collect(ctx.client.tools.list({ return_only_letta_tools: true }));
      assert.ok(letta.length > 0 && letta.every((t) => t.tool_type.startsWith('letta_')), JSON.stringify(letta.map((t) => t.tool_type)));
      await assert.rejects(ctx.client.tools.list({ tool_types: ['magic'] }), BadRequestError);
    });

    it('agents.tools.list() pages at the SDK\'s page size', async () => {
      const agent = await createAgent(ctx.client);
      const all = await collect(ctx.client.agents.tools.list(agent.id, { limit: 50 }));
      const paged = await collect(ctx.client.agents.tools.list(agent.id, { limit: 1 }));
      assert.deepEqual(paged.map((x) => x.id), all.map((x) => x.id));
    });
  });
}
