// The modern agent: agent_type, tool rules stored with the agent, and
// conversations (the threads Letta Code sends every turn through).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { BadRequestError, ConflictError, NotFoundError, UnprocessableEntityError } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { chatHandle, embeddingHandle, collect, createAgent, unique } from '../lib/fixtures.mjs';

// rulesOfEveryKind are one tool rule of each kind Letta 0.16.8 has.
const rulesOfEveryKind = [
  { tool_name: 'conversation_search', type: 'run_first' },
  { tool_name: 'memory_insert', type: 'exit_loop' },
  { tool_name: 'memory_replace', type: 'continue_loop' },
  { tool_name: 'conversation_search', type: 'conditional', child_output_mapping: { found: 'memory_insert' }, default_child: 'memory_replace' },
  { tool_name: 'memory_replace', type: 'constrain_child_tools', children: ['memory_insert'] },
  { tool_name: 'web_search', type: 'max_count_per_step', max_count_limit: 2 },
  { tool_name: 'fetch_webpage', type: 'parent_last_tool', children: ['web_search'] },
  { tool_name: 'memory_insert', type: 'required_before_exit' },
  { tool_name: 'web_search', type: 'requires_approval' },
];

// sorted gives an object's keys one order, for comparing JSON.
function sorted(v) {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
  return v;
}

export function register(ctx) {
  describe('agent_type', () => {
    it('the modern API makes letta_v1_agent by default, and memgpt_agent when asked', async () => {
      const v1 = shape.agent(await ctx.client.agents.create({ name: unique('v1'), model: chatHandle, embedding: embeddingHandle }));
      assert.equal(v1.agent_type, 'letta_v1_agent');
      assert.ok(!v1.tools.some((t) => t.name === 'send_message'), 'letta_v1_agent has no send_message');
      const old = shape.agent(await createAgent(ctx.client));
      assert.equal(old.agent_type, 'memgpt_agent');
      assert.ok(old.tools.some((t) => t.name === 'send_message'));
      assert.equal((await ctx.client.agents.retrieve(v1.id)).agent_type, 'letta_v1_agent');
    });

    it('a letta_v1_agent answers in plain content, which ends the turn', async () => {
      const a = await ctx.client.agents.create({ name: unique('v1'), model: chatHandle, embedding: embeddingHandle });
      await ctx.h.script({ Content: 'Plainly said.' });
      const r = shape.lettaResponse(await ctx.client.agents.messages.create(a.id, { messages: [{ role: 'user', content: 'hi' }] }));
      assert.deepEqual(r.messages.map((m) => m.message_type), ['assistant_message']);
      assert.equal(r.messages[0].content, 'Plainly said.');
      assert.equal(r.stop_reason.stop_reason, 'end_turn');
    });

    it('an unknown agent_type is refused', async () => {
      await assert.rejects(
        ctx.client.agents.create({ name: unique('bad'), agent_type: 'no_such_agent', model: chatHandle, embedding: embeddingHandle }),
        UnprocessableEntityError,
      );
    });
  });

  describe('tool rules', () => {
    it('are stored with the agent, returned by retrieve, replaced by update', async () => {
      const a = shape.agent(
        await ctx.client.agents.create({ name: unique('ruled'), model: chatHandle, embedding: embeddingHandle, tool_rules: rulesOfEveryKind }),
      );
      assert.deepEqual(sorted(a.tool_rules), sorted(rulesOfEveryKind));
      assert.deepEqual(sorted((await ctx.client.agents.retrieve(a.id)).tool_rules), sorted(rulesOfEveryKind));
      const u = await ctx.client.agents.update(a.id, { tool_rules: [{ tool_name: 'memory_insert', type: 'exit_loop' }] });
      assert.deepEqual(u.tool_rules, [{ tool_name: 'memory_insert', type: 'exit_loop' }]);
    });

    it('a bad rule is 400 with what is wrong, and changes nothing', async () => {
      const a = await ctx.client.agents.create({
        name: unique('ruled'), model: chatHandle, embedding: embeddingHandle, tool_rules: [{ tool_name: 'memory_insert', type: 'exit_loop' }],
      });
      for (const [rule, why] of [
        [{ tool_name: 'x', type: 'sometimes' }, /unknown type/],
        [{ type: 'exit_loop' }, /tool_name is required/],
        [{ tool_name: 'x', type: 'constrain_child_tools' }, /children is required/],
        [{ tool_name: 'x', type: 'conditional', child_output_mapping: {} }, /child_output_mapping/],
        [{ tool_name: 'x', type: 'max_count_per_step' }, /max_count_limit is required/],
      ]) {
        await assert.rejects(ctx.client.agents.update(a.id, { tool_rules: [rule] }), (err) => {
          assert.ok(err instanceof BadRequestError, `${JSON.stringify(rule)}: ${err}`);
          assert.match(err.error.detail, why);
          return true;
        });
      }
      assert.deepEqual((await ctx.client.agents.retrieve(a.id)).tool_rules, [{ tool_name: 'memory_insert', type: 'exit_loop' }]);
    });
  });

  describe('conversations', () => {
    it('create, retrieve, list, send and list messages, update, delete', async () => {
      const a = await ctx.client.agents.create({ name: unique('conv'), model: chatHandle, embedding: embeddingHandle });
      const c = await ctx.client.conversations.create({ agent_id: a.id });
      assert.match(c.id, /^conv-/);
      assert.equal(c.agent_id, a.id);
      assert.ok(Array.isArray(c.in_context_message_ids));
      assert.equal((await ctx.client.conversations.retrieve(c.id)).id, c.id);
      const listed = await ctx.client.conversations.list({ agent_id: a.id });
      assert.deepEqual(listed.map((x) => x.id), [c.id]);

      await ctx.h.script({ Content: 'Hello in the thread.' });
      const stream = await ctx.client.conversations.messages.create(c.id, { messages: [{ role: 'user', content: 'hi there' }] });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const said = chunks.filter((x) => x.message_type === 'assistant_message').map((x) => x.content).join('');
      assert.equal(said, 'Hello in the thread.');
      assert.ok(chunks.every((x) => typeof x.seq_id === 'number'), 'every event has a seq_id');
      assert.equal(chunks.find((x) => x.message_type === 'stop_reason')?.stop_reason, 'end_turn');

      const ms = await collect(ctx.client.conversations.messages.list(c.id, { order: 'asc' }));
      ms.forEach(shape.message);
      assert.deepEqual(ms.map((m) => m.message_type), ['user_message', 'assistant_message']);

      // GET /v1/messages/{id}: the messages one stored message shows as.
      const one = await ctx.client.messages.retrieve(ms[1].id);
      assert.deepEqual(one.map((m) => [m.message_type, m.content]), [['assistant_message', 'Hello in the thread.']]);
      await assert.rejects(ctx.client.messages.retrieve('message-01a24aae-b4af-736c-9e22-07fc3938852d'), NotFoundError);

      assert.equal((await ctx.client.conversations.update(c.id, { summary: 'greetings' })).summary, 'greetings');
      await ctx.client.conversations.delete(c.id);
      await assert.rejects(ctx.client.conversations.retrieve(c.id), NotFoundError);
    });

    it('each conversation has its own history and shares the agent\'s memory', async () => {
      const a = await ctx.client.agents.create({
        name: unique('convs'), model: chatHandle, embedding: embeddingHandle,
        memory_blocks: [{ label: 'human', value: 'The user likes tea.' }],
      });
      const one = await ctx.client.conversations.create({ agent_id: a.id });
      const two = await ctx.client.conversations.create({ agent_id: a.id });
      // sent says what the model's last request held after its system
      // message, and the system message itself.
      const sent = async () => {
        const reqs = await ctx.h.requests();
        const msgs = reqs[reqs.length - 1].Messages;
        return { system: msgs[0].Content, rest: msgs.slice(1).map((m) => m.Content).join('\n') };
      };
      const send = async (c, text, answer) => {
        await ctx.h.script({ Content: answer });
        const stream = await ctx.client.conversations.messages.create(c.id, { messages: [{ role: 'user', content: text }] });
        for await (const _ of stream);
        return sent();
      };
      await send(one, 'alpha question', 'alpha answer');
      let got = await send(two, 'beta question', 'beta answer');
      assert.ok(!got.rest.includes('alpha'), `conversation two was sent conversation one's messages: ${got.rest}`);
      await ctx.client.agents.blocks.update('human', { agent_id: a.id, value: 'The user likes coffee.' });
      got = await send(one, 'alpha again', 'alpha answer 2');
      assert.ok(got.rest.includes('alpha question') && got.rest.includes('alpha answer') && !got.rest.includes('beta'), got.rest);
      assert.ok(got.system.includes('The user likes coffee.'), 'the shared memory is in every conversation\'s system message');
      got = await send(two, 'beta again', 'beta answer 2');
      assert.ok(got.rest.includes('beta question') && !got.rest.includes('alpha'), got.rest);
      assert.ok(got.system.includes('The user likes coffee.'));

      const listed = async (c) => (await collect(ctx.client.conversations.messages.list(c.id, { order: 'asc' }))).map((m) => m.content).join('\n');
      assert.ok((await listed(one)).includes('alpha again') && !(await listed(one)).includes('beta'));
      assert.ok((await listed(two)).includes('beta again') && !(await listed(two)).includes('alpha'));
      const c1 = await ctx.client.conversations.retrieve(one.id);
      assert.equal(c1.in_context_message_ids.length, 5, 'the system message and conversation one\'s four messages');
      // The agent's own list holds every conversation's messages, as Letta's does.
      const all = (await collect(ctx.client.agents.messages.list(a.id, { limit: 100 }))).map((m) => m.content).join('\n');
      assert.ok(all.includes('alpha again') && all.includes('beta again'), all);
    });

    it('a conversation of an unknown agent is 404', async () => {
      await assert.rejects(ctx.client.conversations.create({ agent_id: 'agent-01a24aae-b4af-736c-9e22-07fa574961dc' }), NotFoundError);
    });
  });

  describe('approvals', () => {
    const execTool = {
      name: 'exec_command',
      description: "Run a shell command on the user's machine.",
      parameters: { type: 'object', properties: { cmd: { type: 'string' } }, required: ['cmd'] },
    };

    it('a client-side tool call stops the run for the client, whose return the model then reads', async () => {
      const a = await ctx.client.agents.create({ name: unique('client'), model: chatHandle, embedding: embeddingHandle });
      await ctx.h.script({ ToolCalls: [{ ID: 'call_ls', Name: 'exec_command', Arguments: '{"cmd":"ls"}' }] });
      const r = shape.lettaResponse(
        await ctx.client.agents.messages.create(a.id, { messages: [{ role: 'user', content: 'What files do I have?' }], client_tools: [execTool] }),
      );
      assert.equal(r.stop_reason.stop_reason, 'requires_approval');
      const req = r.messages.at(-1);
      assert.equal(req.message_type, 'approval_request_message');
      assert.equal(req.tool_call.name, 'exec_command');
      assert.equal(req.tool_call.tool_call_id, 'call_ls');
      // A plain message while the call waits is refused, and stores nothing;
      // the 409's detail is Letta's object, naming the request.
      const conflict = await ctx.client.agents.messages.create(a.id, { messages: [{ role: 'user', content: 'hello?' }] }).then(() => null, (e) => e);
      assert.ok(conflict instanceof ConflictError, String(conflict));
      assert.equal(conflict.error?.detail?.code, 'PENDING_APPROVAL', JSON.stringify(conflict.error));
      assert.equal(conflict.error.detail.pending_request_id, req.id);
      assert.match(conflict.error.detail.message, /waiting for approval/);

      await ctx.h.script({ Content: 'You have a.txt.' });
      const done = shape.lettaResponse(
        await ctx.client.agents.messages.create(a.id, {
          messages: [{ type: 'approval', approvals: [{ type: 'tool', tool_call_id: 'call_ls', tool_return: 'a.txt', status: 'success' }] }],
          client_tools: [execTool],
        }),
      );
      assert.deepEqual(done.messages.map((m) => m.message_type), ['tool_return_message', 'assistant_message']);
      assert.match(done.messages[0].tool_return, /a\.txt/);
      assert.equal(done.messages[1].content, 'You have a.txt.');
      assert.equal(done.stop_reason.stop_reason, 'end_turn');
      const history = await collect(ctx.client.agents.messages.list(a.id, { order: 'asc' }));
      const kinds = history.map((m) => m.message_type).join(',');
      assert.ok(kinds.includes('approval_request_message,approval_response_message,tool_return_message,assistant_message'), kinds);
    });

    it('a requires_approval tool waits for a person; a denial reaches the model with its reason', async () => {
      const a = await ctx.client.agents.create({
        name: unique('approve'), model: chatHandle, embedding: embeddingHandle,
        memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
        tool_rules: [{ tool_name: 'memory_insert', type: 'requires_approval' }],
      });
      await ctx.h.script({ ToolCalls: [{ ID: 'call_ins', Name: 'memory_insert', Arguments: '{"label":"human","new_string":"Likes tea"}' }] });
      const r = await ctx.client.agents.messages.create(a.id, { messages: [{ role: 'user', content: 'Remember that I like tea.' }] });
      assert.equal(r.stop_reason.stop_reason, 'requires_approval');
      await ctx.h.script({ Content: 'Understood, I will not.' });
      const done = await ctx.client.agents.messages.create(a.id, {
        messages: [{ type: 'approval', approvals: [{ type: 'approval', tool_call_id: 'call_ins', approve: false, reason: 'not now' }] }],
      });
      assert.deepEqual(done.messages.map((m) => m.message_type), ['tool_return_message', 'assistant_message']);
      assert.match(done.messages[0].tool_return, /request to call tool denied\. User reason: not now/);
      assert.equal(done.messages[0].status, 'error');
      const human = await ctx.client.agents.blocks.retrieve('human', { agent_id: a.id });
      assert.ok(!human.value.includes('Likes tea'), 'a denied call changed memory');
    });

    it('a memgpt_agent waits for approval too; an approved call runs and the heartbeat it asked for goes on', async () => {
      const a = await ctx.client.agents.create({
        name: unique('memgpt-approve'), agent_type: 'memgpt_agent', model: chatHandle, embedding: embeddingHandle,
        memory_blocks: [{ label: 'human', value: 'Name: Ada' }],
        tool_rules: [{ tool_name: 'core_memory_append', type: 'requires_approval' }],
      });
      await ctx.h.script({ Content: 'Ada likes tea.', ToolCalls: [{ ID: 'call_app', Name: 'core_memory_append', Arguments: '{"name":"human","content":"Likes tea","request_heartbeat":true}' }] });
      const r = await ctx.client.agents.messages.create(a.id, { messages: [{ role: 'user', content: 'Remember that I like tea.' }] });
      assert.equal(r.stop_reason.stop_reason, 'requires_approval');
      assert.equal(r.messages.at(-1).message_type, 'approval_request_message');
      await ctx.h.script({ ToolCalls: [{ ID: 'call_say', Name: 'send_message', Arguments: '{"message":"Noted."}' }] });
      const done = await ctx.client.agents.messages.create(a.id, {
        messages: [{ type: 'approval', approvals: [{ type: 'approval', tool_call_id: 'call_app', approve: true }] }],
      });
      assert.equal(done.messages[0].message_type, 'tool_return_message');
      assert.equal(done.messages.find((m) => m.message_type === 'assistant_message')?.content, 'Noted.', JSON.stringify(done.messages));
      const human = await ctx.client.agents.blocks.retrieve('human', { agent_id: a.id });
      assert.ok(human.value.includes('Likes tea'), human.value);
    });
  });
}
