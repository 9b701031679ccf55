// Health, models and embedding models.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import * as shape from '../lib/shapes.mjs';
import { chatHandle, embeddingHandle } from '../lib/fixtures.mjs';

export function register(ctx) {
  describe('health and models', () => {
    it('health() answers ok with a version', async () => {
      const h = await ctx.client.health();
      assert.equal(h.status, 'ok');
      assert.equal(typeof h.version, 'string');
      assert.ok(h.version.length > 0);
    });

    it('models.list() lists the configured chat model by handle', async () => {
      const models = await ctx.client.models.list();
      assert.ok(Array.isArray(models), 'a plain array, not a page');
      models.forEach(shape.model);
      const m = models.find((x) => x.handle === chatHandle);
      assert.ok(m, `no model with handle ${chatHandle}: ${JSON.stringify(models)}`);
      assert.equal(m.model, 'gpt-4o-mini');
      assert.equal(m.model_endpoint_type, 'openai');
      assert.equal(m.provider_type, 'openai');
      assert.equal(m.context_window, 128000);
    });

    it('models.list() takes the provider filters the SDK sends', async () => {
      const models = await ctx.client.models.list({ provider_category: ['base', 'byok'] });
      assert.ok(models.some((x) => x.handle === chatHandle));
    });

    it('models.embeddings.list() lists the embedding model by handle', async () => {
      const models = await ctx.client.models.embeddings.list();
      assert.ok(Array.isArray(models));
      models.forEach(shape.embeddingModel);
      const m = models.find((x) => x.handle === embeddingHandle);
      assert.ok(m, `no embedding model with handle ${embeddingHandle}: ${JSON.stringify(models)}`);
      assert.equal(m.embedding_dim, 64);
    });
  });
}
