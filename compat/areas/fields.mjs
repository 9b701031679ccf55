// Every request field SDK 1.12.1 types is accepted. engram refuses unknown
// body fields (422), so a field the SDK may send but engram does not
// declare would break a user's call. The field names are read from the
// SDK's own declaration files; each call sends the fields it needs with
// real values and every other field as null, which the SDK's types allow
// ("field?: T | null") and which means "not given".
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';

import { UnprocessableEntityError } from '@letta-ai/letta-client';
import { fields } from '../lib/sdktypes.mjs';
import { chatHandle, createAgent, say, unique } from '../lib/fixtures.mjs';

// withNulls returns given plus null for every other field of the SDK type
// that may be null, leaving out the path parameters (which the SDK takes out
// of the body).
function withNulls(file, type, given) {
  const body = { ...given };
  for (const [name, f] of fields(file, type)) {
    if (name in body || !f.nullable || name.endsWith('_id') && name in pathParams) continue;
    body[name] = null;
  }
  return body;
}

const pathParams = { agent_id: true, folder_id: true };

// accepted runs op and fails if engram answers 422 for an unknown field.
async function accepted(op) {
  try {
    return await op();
  } catch (err) {
    if (err instanceof UnprocessableEntityError) {
      assert.fail(`engram refused a field the SDK types: ${err.message}`);
    }
    throw err;
  }
}

export function register(ctx) {
  describe('every request field the SDK types is accepted', () => {
    let agent;
    before(async () => {
      agent = await createAgent(ctx.client);
    });

    it('agents.create and agents.update', async () => {
      const body = withNulls('agents/agents.d.ts', 'AgentCreateParams', {
        name: unique('fields'),
        model: chatHandle,
        memory_blocks: [{ label: 'human', value: 'x' }],
      });
      const a = await accepted(() => ctx.client.agents.create(body));
      const upd = withNulls('agents/agents.d.ts', 'AgentUpdateParams', { description: 'fields' });
      const u = await accepted(() => ctx.client.agents.update(a.id, upd));
      assert.equal(u.description, 'fields');
      assert.equal(u.name, a.name, 'null leaves a field unchanged');
      assert.deepEqual(u.blocks.map((b) => b.id), a.blocks.map((b) => b.id));
    });

    it('blocks.create, blocks.update and agents.blocks.update', async () => {
      const b = await accepted(() =>
        ctx.client.blocks.create(withNulls('blocks/blocks.d.ts', 'BlockCreateParams', { label: unique('f'), value: 'v' })),
      );
      const u = await accepted(() =>
        ctx.client.blocks.update(b.id, withNulls('blocks/blocks.d.ts', 'BlockUpdateParams', { value: 'w' })),
      );
      assert.equal(u.value, 'w');
      assert.equal(u.label, b.label, 'null leaves the label');
      const ab = await accepted(() =>
        ctx.client.agents.blocks.update(
          'human',
          withNulls('agents/blocks.d.ts', 'BlockUpdateParams', { agent_id: agent.id, value: 'First name: Ada' }),
        ),
      );
      assert.equal(ab.value, 'First name: Ada');
    });

    it('tools.create, tools.upsert and tools.update', async () => {
      const name = unique('fld').replace(/-/g, '_');
      const src = `def ${name}(x: int) -> int:\n    """Double x.\n\n    Args:\n        x (int): A number.\n\n    Returns:\n        int: Twice x.\n    """\n    return 2 * x\n`;
      const t = await accepted(() =>
        ctx.client.tools.create(withNulls('tools.d.ts', 'ToolCreateParams', { source_code: src })),
      );
      await accepted(() => ctx.client.tools.upsert(withNulls('tools.d.ts', 'ToolUpsertParams', { source_code: src })));
      const u = await accepted(() =>
        ctx.client.tools.update(t.id, withNulls('tools.d.ts', 'ToolUpdateParams', { description: 'Doubles.' })),
      );
      assert.equal(u.description, 'Doubles.');
      assert.equal(u.name, name);
    });

    it('folders.create and folders.update', async () => {
      const f = await accepted(() =>
        ctx.client.folders.create(
          withNulls('folders/folders.d.ts', 'FolderCreateParams', { name: unique('f'), embedding: 'openai/text-embedding-3-small' }),
        ),
      );
      const u = await accepted(() =>
        ctx.client.folders.update(f.id, withNulls('folders/folders.d.ts', 'FolderUpdateParams', { description: 'd' })),
      );
      assert.equal(u.description, 'd');
      assert.equal(u.name, f.name);
    });

    it('agents.passages.create', async () => {
      const ps = await accepted(() =>
        ctx.client.agents.passages.create(agent.id, withNulls('agents/passages.d.ts', 'PassageCreateParams', { text: 'a fact' })),
      );
      assert.equal(ps[0].text, 'a fact');
    });

    it('agents.messages.create', async () => {
      await ctx.h.script(say('Fields are fine.'));
      const body = withNulls('agents/messages.d.ts', 'MessageCreateParamsNonStreaming', {
        messages: [{ role: 'user', content: 'hello', otid: null, name: null }],
        streaming: false,
      });
      const r = await accepted(() => ctx.client.agents.messages.create(agent.id, body));
      assert.ok(r.messages.some((m) => m.content === 'Fields are fine.'));
    });

    it('agents.messages.createAsync and agents.messages.cancel', async () => {
      await ctx.h.script(say('Async fields are fine.'));
      const body = withNulls('agents/messages.d.ts', 'MessageCreateAsyncParams', {
        messages: [{ role: 'user', content: 'hello', otid: null, name: null }],
      });
      let run = await accepted(() => ctx.client.agents.messages.createAsync(agent.id, body));
      const deadline = Date.now() + 20_000;
      while (run.status !== 'completed') {
        assert.ok(Date.now() < deadline, `run ${run.id} is still ${run.status}`);
        await new Promise((res) => setTimeout(res, 20));
        run = await ctx.client.runs.retrieve(run.id);
      }
      const cancel = withNulls('agents/messages.d.ts', 'MessageCancelParams', {});
      assert.deepEqual(await accepted(() => ctx.client.agents.messages.cancel(agent.id, cancel)), {});
    });
  });
}
