// Messages: send (non-streaming and streaming), and the history in both orders.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';

import { APIError, InternalServerError, UnprocessableEntityError } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { call, collect, createAgent, say, unique } from '../lib/fixtures.mjs';
import { newClient, token } from '../lib/harness.mjs';

const shoutSource = (name) => `def ${name}(text: str) -> str:
    """Shout a text back.

    Args:
        text (str): What to shout.

    Returns:
        str: The text in capitals.
    """
    print("shouting", text)
    return text.upper()
`;

function types(ms) {
  return ms.map((m) => m.message_type);
}

export function register(ctx) {
  describe('messages', () => {
    let agent;
    let shout;
    before(async () => {
      shout = unique('shout').replace(/-/g, '_');
      const tool = await ctx.client.tools.create({ source_code: shoutSource(shout) });
      agent = await createAgent(ctx.client, { tool_ids: [tool.id] });
    });

    it('create() answers a LettaResponse with every message type well formed', async () => {
      await ctx.h.script(
        { Content: 'Ada wants it loud.', ToolCalls: [call(shout, { text: 'hello', request_heartbeat: true })] },
        say('HELLO, Ada!', 'Now I answer.'),
      );
      const r = shape.lettaResponse(
        await ctx.client.agents.messages.create(agent.id, {
          messages: [{ role: 'user', content: 'Shout hello for me.' }],
        }),
      );
      assert.equal(await ctx.h.pending(), 0, 'both scripted steps were used');
      assert.equal(r.stop_reason.stop_reason, 'end_turn');
      assert.equal(r.usage.step_count, 2);
      assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
      assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
      assert.ok(!r.messages.some((m) => m.message_type === 'user_message'), 'the input is not echoed');

      const ts = types(r.messages);
      for (const t of ['reasoning_message', 'tool_call_message', 'tool_return_message', 'assistant_message']) {
        assert.ok(ts.includes(t), `no ${t} in ${ts}`);
      }
      const reasoning = r.messages.filter((m) => m.message_type === 'reasoning_message').map((m) => m.reasoning);
      assert.deepEqual(reasoning, ['Ada wants it loud.', 'Now I answer.']);
      const tc = r.messages.find((m) => m.message_type === 'tool_call_message');
      assert.equal(tc.tool_call.name, shout);
      assert.equal(JSON.parse(tc.tool_call.arguments).text, 'hello');
      const tr = r.messages.find((m) => m.message_type === 'tool_return_message' && m.tool_call_id === tc.tool_call.tool_call_id);
      assert.ok(tr, 'the tool return answers the tool call by id');
      assert.equal(tr.status, 'success');
      assert.match(tr.tool_return, /HELLO/);
      assert.match(tr.stdout.join(''), /^shouting hello\n?$/, 'what the tool printed');
      assert.ok(Array.isArray(tr.stderr ?? []));
      assert.ok(ts.indexOf('tool_call_message') < ts.indexOf('tool_return_message'));
      const said = r.messages.find((m) => m.message_type === 'assistant_message');
      assert.equal(said.content, 'HELLO, Ada!');
      if (r.usage.run_ids?.length) {
        for (const m of r.messages) if (m.run_id != null) assert.ok(r.usage.run_ids.includes(m.run_id));
      }
    });

    it('create() takes the input shorthand', async () => {
      await ctx.h.script(say('Hi from input.'));
      const r = shape.lettaResponse(await ctx.client.agents.messages.create(agent.id, { input: 'Hello there' }));
      assert.equal(r.messages.find((m) => m.message_type === 'assistant_message')?.content, 'Hi from input.');
    });

    it('create() with streaming: true yields messages, then stop_reason, then usage, then ends', async () => {
      await ctx.h.script(say('Streaming hello!', 'Stream it.'));
      const stream = await ctx.client.agents.messages.create(agent.id, {
        messages: [{ role: 'user', content: 'Stream something.' }],
        streaming: true,
      });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      assert.ok(chunks.length >= 4, JSON.stringify(chunks));
      const ts = types(chunks).filter((t) => t !== 'ping');
      assert.deepEqual(ts.slice(-2), ['stop_reason', 'usage_statistics'], `${ts}`);
      const msgs = chunks.filter((c) => !['ping', 'stop_reason', 'usage_statistics'].includes(c.message_type));
      msgs.forEach(shape.message);
      const firstControl = ts.indexOf('stop_reason');
      assert.ok(ts.slice(0, firstControl).every((t) => t !== 'usage_statistics'));
      assert.ok(ts.indexOf('reasoning_message') < ts.indexOf('assistant_message'), `${ts}`);
      assert.equal(msgs.find((m) => m.message_type === 'reasoning_message').reasoning, 'Stream it.');
      assert.equal(msgs.find((m) => m.message_type === 'assistant_message').content, 'Streaming hello!');
      shape.stopReason(chunks.find((c) => c.message_type === 'stop_reason'));
      assert.equal(chunks.find((c) => c.message_type === 'stop_reason').stop_reason, 'end_turn');
      const u = shape.usage(chunks.find((c) => c.message_type === 'usage_statistics'));
      assert.equal(u.step_count, 1);
      for (const p of chunks.filter((c) => c.message_type === 'ping')) {
        assert.equal(typeof p.id, 'string');
        assert.equal(typeof p.date, 'string');
      }
    });

    it('the stream is SSE framed as the SDK expects, ending in data: [DONE]', async () => {
      await ctx.h.script(say('Raw frames.'));
      const r = await fetch(`${ctx.h.urls.engram}/v1/agents/${agent.id}/messages`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'raw' }], streaming: true }),
      });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /^text\/event-stream/);
      const events = (await r.text()).split(/\r?\n\r?\n/).filter((e) => e.trim() !== '');
      assert.equal(events.at(-1).trim(), 'data: [DONE]');
      for (const e of events.slice(0, -1)) {
        const lines = e.split(/\r?\n/).filter((l) => !l.startsWith(':'));
        assert.ok(lines.every((l) => l.startsWith('data: ')), `an unnamed data event: ${e}`);
        JSON.parse(lines.map((l) => l.slice(6)).join('\n'));
      }
    });

    it('the deprecated messages.stream() streams too', async () => {
      await ctx.h.script(say('Old stream path.'));
      const stream = await ctx.client.agents.messages.stream(agent.id, {
        messages: [{ role: 'user', content: 'Stream via the old path.' }],
      });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      assert.deepEqual(types(chunks).filter((t) => t !== 'ping').slice(-2), ['stop_reason', 'usage_statistics']);
      assert.ok(chunks.some((c) => c.message_type === 'assistant_message' && c.content === 'Old stream path.'));
    });

    it('stream_tokens: true streams deltas that share an id, then the same end', async () => {
      await ctx.h.script(say('Token by token.', 'Thinking in tokens.'));
      const stream = await ctx.client.agents.messages.create(agent.id, {
        messages: [{ role: 'user', content: 'Stream tokens.' }],
        streaming: true,
        stream_tokens: true,
      });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      const ts = types(chunks).filter((t) => t !== 'ping');
      assert.deepEqual(ts.slice(-2), ['stop_reason', 'usage_statistics']);
      for (const c of chunks) {
        assert.equal(typeof c.message_type, 'string');
        if (c.message_type === 'reasoning_message') assert.equal(typeof c.reasoning, 'string');
      }
      const said = chunks.filter((c) => c.message_type === 'assistant_message').map((c) => c.content).join('');
      assert.ok(said.includes('Token by token.'), said);
      // Joined by id, as a client assembles deltas, each thought appears once.
      const byId = new Map();
      for (const c of chunks.filter((c) => c.message_type === 'reasoning_message')) {
        byId.set(c.id, (byId.get(c.id) ?? '') + c.reasoning);
      }
      assert.deepEqual([...byId.values()], ['Thinking in tokens.']);
    });

    it('an error after the stream started is thrown by the SDK as an APIError', async () => {
      await ctx.h.script({ Status: 400, ErrorBody: '{"error":{"message":"bad model request","type":"invalid_request_error"}}' });
      const run = async () => {
        const stream = await ctx.client.agents.messages.create(agent.id, {
          messages: [{ role: 'user', content: 'this will fail' }],
          streaming: true,
        });
        for await (const c of stream) void c;
      };
      await assert.rejects(run, (err) => {
        assert.ok(err instanceof APIError, `${err?.constructor?.name}: ${err?.message}`);
        return true;
      });
    });

    it('include_return_message_types narrows what a send returns', async () => {
      await ctx.h.script(say('Only this.', 'Not shown.'));
      const r = shape.lettaResponse(
        await ctx.client.agents.messages.create(agent.id, {
          input: 'Answer briefly.',
          include_return_message_types: ['assistant_message'],
        }),
      );
      assert.deepEqual(types(r.messages), ['assistant_message']);
      assert.equal(r.messages[0].content, 'Only this.');
      assert.equal(r.stop_reason.stop_reason, 'end_turn');

      await ctx.h.script(say('Streamed only this.', 'Not streamed.'));
      const stream = await ctx.client.agents.messages.create(agent.id, {
        input: 'Stream briefly.',
        streaming: true,
        include_return_message_types: ['assistant_message'],
      });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      assert.deepEqual(types(chunks).filter((t) => t !== 'ping'), ['assistant_message', 'stop_reason', 'usage_statistics']);
    });

    it('the SDK\'s own retries never store an input twice', async () => {
      // A client as users build it: retries on (maxRetries 2, the default).
      const client = newClient(ctx.h, { maxRetries: 2 });
      const calls = async () => (await ctx.h.requests()).length;
      const userTexts = async (id) =>
        (await client.agents.messages.list(id, { include_return_message_types: ['user_message'] })).items.map((m) => m.content);

      // Without an otid a retry would store the input again: engram tells
      // the SDK not to retry.
      const a = await createAgent(client);
      await ctx.h.script({ Status: 500 });
      let before = await calls();
      await assert.rejects(client.agents.messages.create(a.id, { input: 'no otid' }), (err) => {
        assert.ok(err instanceof InternalServerError, `${err}`);
        assert.equal(typeof err.error?.detail, 'string');
        return true;
      });
      assert.equal((await calls()) - before, 1, 'the SDK did not retry the send');
      assert.deepEqual((await userTexts(a.id)).filter((t) => t === 'no otid'), ['no otid']);

      // With an otid the SDK retries, and the retry answers the one stored input.
      const b = await createAgent(client);
      await ctx.h.script({ Status: 500 }, say('Answered after a retry.'));
      before = await calls();
      const r = await client.agents.messages.create(b.id, { messages: [{ role: 'user', content: 'with an otid', otid: unique('otid') }] });
      assert.equal((await calls()) - before, 2, 'the SDK retried once');
      assert.equal(r.messages.find((m) => m.message_type === 'assistant_message')?.content, 'Answered after a retry.');
      assert.deepEqual((await userTexts(b.id)).filter((t) => t === 'with an otid'), ['with an otid']);
    });

    it('bad send bodies are UnprocessableEntityError', async () => {
      await assert.rejects(ctx.client.agents.messages.create(agent.id, {}), UnprocessableEntityError);
      await assert.rejects(
        ctx.client.agents.messages.create(agent.id, { input: 'x', messages: [{ role: 'user', content: 'y' }] }),
        UnprocessableEntityError,
      );
      await assert.rejects(ctx.client.agents.messages.create(agent.id, { messages: [] }), UnprocessableEntityError);
    });

    describe('history', () => {
      let fresh;
      before(async () => {
        fresh = await createAgent(ctx.client);
        await ctx.h.script(say('First answer.'));
        await ctx.client.agents.messages.create(fresh.id, { messages: [{ role: 'user', content: 'First question.' }] });
        await ctx.h.script(say('Second answer.'));
        await ctx.client.agents.messages.create(fresh.id, { messages: [{ role: 'user', content: 'Second question.' }] });
      });

      it('list() is newest first by default and oldest first with order=asc', async () => {
        const desc = (await ctx.client.agents.messages.list(fresh.id)).items;
        desc.forEach(shape.message);
        const asc = (await ctx.client.agents.messages.list(fresh.id, { order: 'asc' })).items;
        asc.forEach(shape.message);
        assert.deepEqual(
          desc.map((m) => `${m.id}/${m.message_type}`).sort(),
          asc.map((m) => `${m.id}/${m.message_type}`).sort(),
        );
        const ascIds = [...new Set(asc.map((m) => m.id))];
        const descIds = [...new Set(desc.map((m) => m.id))];
        assert.deepEqual(descIds, [...ascIds].reverse(), 'desc is asc reversed, by stored message');

        assert.equal(asc[0].message_type, 'system_message', 'the system message comes first');
        const users = asc.filter((m) => m.message_type === 'user_message');
        assert.ok(users.some((m) => m.content === 'First question.'), JSON.stringify(users));
        assert.ok(users.some((m) => m.content === 'Second question.'));
        const said = asc.filter((m) => m.message_type === 'assistant_message').map((m) => m.content);
        assert.deepEqual(said.slice(-2), ['First answer.', 'Second answer.'], 'after the initial greeting, if any');
        const first = asc.findIndex((m) => m.content === 'First question.');
        const second = asc.findIndex((m) => m.content === 'Second question.');
        assert.ok(first < asc.findIndex((m) => m.content === 'First answer.'));
        assert.ok(asc.findIndex((m) => m.content === 'First answer.') < second);
      });

      it('auto-pagination at a small page size returns the same history in both orders', async () => {
        for (const order of ['asc', 'desc']) {
          const whole = (await ctx.client.agents.messages.list(fresh.id, { order, limit: 1000 })).items;
          const paged = await collect(ctx.client.agents.messages.list(fresh.id, { order, limit: 2 }));
          assert.deepEqual(
            paged.map((m) => `${m.id}/${m.message_type}`),
            whole.map((m) => `${m.id}/${m.message_type}`),
            `order=${order}`,
          );
        }
      });

      it('include_return_message_types narrows the history', async () => {
        const users = (await ctx.client.agents.messages.list(fresh.id, {
          include_return_message_types: ['user_message', 'assistant_message'],
          order: 'asc',
        })).items;
        assert.ok(users.length >= 4);
        assert.ok(users.every((m) => ['user_message', 'assistant_message'].includes(m.message_type)), `${types(users)}`);
        await assert.rejects(
          ctx.client.agents.messages.list(fresh.id, { include_return_message_types: ['no_such_type'] }),
          UnprocessableEntityError,
        );
      });

      it('limit counts stored messages and keeps the newest by default', async () => {
        // As in Letta, one stored message can expand into several items
        // sharing its id (reasoning + assistant), limit counts stored
        // messages, and send_message's return is not listed (it still
        // fills its place): the two newest stored messages are the last
        // answer's return and the answer itself.
        const two = (await ctx.client.agents.messages.list(fresh.id, { limit: 2 })).items;
        const all = (await ctx.client.agents.messages.list(fresh.id)).items;
        const idsOf = (ms) => [...new Set(ms.map((m) => m.id))];
        assert.deepEqual(idsOf(two), idsOf(all).slice(0, 1));
        assert.deepEqual(two, all.slice(0, two.length));
        assert.deepEqual(two.map((m) => m.message_type), ['reasoning_message', 'assistant_message']);
        assert.ok(!all.some((m) => m.message_type === 'tool_return_message'), 'send_message returns are not listed');
      });
    });
  });
}
