// Errors: the SDK's error classes, with the {"detail": "<string>"} body.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import Letta, { AuthenticationError, BadRequestError, NotFoundError, APIError } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { chatHandle, missing } from '../lib/fixtures.mjs';

export function register(ctx) {
  describe('errors', () => {
    const cases = [
      ['agents.retrieve', (c) => c.agents.retrieve(missing.agent)],
      ['agents.update', (c) => c.agents.update(missing.agent, { name: 'x' })],
      ['agents.delete', (c) => c.agents.delete(missing.agent)],
      ['agents.blocks.list', (c) => c.agents.blocks.list(missing.agent)],
      ['agents.messages.create', (c) => c.agents.messages.create(missing.agent, { input: 'hi' })],
      ['agents.messages.list', (c) => c.agents.messages.list(missing.agent)],
      ['agents.passages.list', (c) => c.agents.passages.list(missing.agent)],
      ['blocks.retrieve', (c) => c.blocks.retrieve(missing.block)],
      ['blocks.update', (c) => c.blocks.update(missing.block, { value: 'x' })],
      ['tools.retrieve', (c) => c.tools.retrieve(missing.tool)],
      ['tools.delete', (c) => c.tools.delete(missing.tool)],
      ['folders.retrieve', (c) => c.folders.retrieve(missing.folder)],
    ];
    for (const [name, op] of cases) {
      it(`${name} of an unknown id is NotFoundError with a string detail`, async () => {
        await assert.rejects(op(ctx.client), (err) => {
          shape.notFound(err, NotFoundError);
          assert.ok(err instanceof APIError);
          assert.match(err.message, /^404 /);
          return true;
        });
      });
    }

    it('an unknown model handle is refused with a string detail', async () => {
      await assert.rejects(ctx.client.agents.create({ model: 'openai/no-such-model' }), (err) => {
        assert.ok(err instanceof NotFoundError || err instanceof BadRequestError, `${err}`);
        assert.equal(typeof err.error?.detail, 'string');
        return true;
      });
    });

    it('a wrong token is AuthenticationError; health needs none', async () => {
      const bad = new Letta({ baseURL: ctx.h.urls.engram, apiKey: 'wrong', maxRetries: 0 });
      await assert.rejects(bad.agents.list(), (err) => {
        assert.ok(err instanceof AuthenticationError, `${err}`);
        assert.equal(err.status, 401);
        assert.equal(typeof err.error?.detail, 'string');
        return true;
      });
      const anon = new Letta({ baseURL: ctx.h.urls.engram, apiKey: null, maxRetries: 0 });
      assert.equal((await anon.health()).status, 'ok');
      await assert.rejects(anon.models.list(), AuthenticationError);
      void chatHandle;
    });
  });
}
