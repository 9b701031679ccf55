// Folders (data sources): create, attach, list both ways, detach, delete;
// files: upload, poll processing to completion, list, delete.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { NotFoundError, toFile } from '@letta-ai/letta-client';
import * as shape from '../lib/shapes.mjs';
import { pending } from '../lib/pending.mjs';
import { collect, createAgent, embeddingHandle, unique } from '../lib/fixtures.mjs';

// waitProcessed polls the file until processing ends, and returns it.
async function waitProcessed(client, folderId, fileId, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  const seen = [];
  for (;;) {
    const f = shape.fileMetadata(await client.folders.files.retrieve(fileId, { folder_id: folderId }));
    if (seen.at(-1) !== f.processing_status) seen.push(f.processing_status);
    if (f.processing_status === 'completed' || f.processing_status === 'error') return { file: f, seen };
    if (Date.now() > deadline) throw new Error(`file still ${f.processing_status} after ${timeoutMs} ms (seen ${seen})`);
    await sleep(100);
  }
}

export function register(ctx) {
  describe('folders', () => {
    it('create, retrieve, list, update, attach, list both ways, detach, delete', async () => {
      const name = unique('docs');
      const f = shape.folder(
        await ctx.client.folders.create({ name, description: 'product docs', embedding: embeddingHandle }),
      );
      assert.equal(f.name, name);
      assert.equal(f.description, 'product docs');
      assert.equal(f.embedding_config.handle ?? `openai/${f.embedding_config.embedding_model}`, embeddingHandle);
      assert.equal(shape.folder(await ctx.client.folders.retrieve(f.id)).name, name);
      const byName = (await ctx.client.folders.list({ name })).items;
      assert.deepEqual(byName.map((x) => x.id), [f.id]);
      const all = await collect(ctx.client.folders.list({ limit: 1 }));
      assert.ok(all.some((x) => x.id === f.id));

      const u = shape.folder(await ctx.client.folders.update(f.id, { description: 'updated', instructions: 'read me' }));
      assert.equal(u.description, 'updated');
      assert.equal(u.instructions, 'read me');

      const agent = await createAgent(ctx.client);
      const attached = await ctx.client.agents.folders.attach(f.id, { agent_id: agent.id });
      assert.ok(attached === null || attached === undefined || attached.id === agent.id, JSON.stringify(attached));

      const ofAgent = await collect(ctx.client.agents.folders.list(agent.id));
      ofAgent.forEach(shape.folder);
      assert.deepEqual(ofAgent.map((x) => x.id), [f.id]);
      const agentsOf = await ctx.client.folders.agents.list(f.id);
      assert.deepEqual(agentsOf, [agent.id], 'a plain array of agent ids');
      assert.ok((await ctx.client.agents.retrieve(agent.id)).sources.some((s) => s.id === f.id));

      await ctx.client.agents.folders.detach(f.id, { agent_id: agent.id });
      assert.deepEqual((await ctx.client.agents.folders.list(agent.id)).items, []);
      assert.deepEqual(await ctx.client.folders.agents.list(f.id), []);

      await ctx.client.folders.delete(f.id);
      await assert.rejects(ctx.client.folders.retrieve(f.id), (err) => !!shape.notFound(err, NotFoundError));
    });

    it('folders.agents.list() is a plain array of ids, newest first, paged', async () => {
      const f = await ctx.client.folders.create({ name: unique('shared'), embedding: embeddingHandle });
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await createAgent(ctx.client, { folder_ids: [f.id] })).id);
      assert.deepEqual(await ctx.client.folders.agents.list(f.id), [...ids].reverse());
      assert.deepEqual(await ctx.client.folders.agents.list(f.id, { order: 'asc', limit: 2 }), ids.slice(0, 2));
      assert.deepEqual(await ctx.client.folders.agents.list(f.id, { order: 'asc', after: ids[1] }), ids.slice(2));
    });

    it('files: upload, poll processing_status to completion, list, delete', { skip: pending('folder-files') }, async () => {
      const folder = await ctx.client.folders.create({ name: unique('files'), embedding: embeddingHandle });
      const agent = await createAgent(ctx.client);
      await ctx.client.agents.folders.attach(folder.id, { agent_id: agent.id });

      const text = 'Engram stores every event in JetStream.\n\nThe quick brown fox jumps over the lazy dog.\n';
      const up = shape.fileMetadata(
        await ctx.client.folders.files.upload(folder.id, {
          file: await toFile(Buffer.from(text), 'notes.txt', { type: 'text/plain' }),
        }),
      );
      assert.equal(up.source_id, folder.id);
      assert.ok(up.file_name?.endsWith('notes.txt'), up.file_name);
      assert.equal(up.original_file_name ?? 'notes.txt', 'notes.txt');

      const { file, seen } = await waitProcessed(ctx.client, folder.id, up.id);
      assert.equal(file.processing_status, 'completed', `${file.error_message ?? ''} (seen ${seen})`);
      assert.equal(file.id, up.id);
      if (file.total_chunks != null) assert.equal(file.chunks_embedded, file.total_chunks);
      const withContent = await ctx.client.folders.files.retrieve(up.id, { folder_id: folder.id, include_content: true });
      assert.equal(withContent.content, text);

      const again = shape.fileMetadata(
        await ctx.client.folders.files.upload(folder.id, {
          file: await toFile(Buffer.from('second file'), 'notes.txt', { type: 'text/plain' }),
        }),
      );
      assert.notEqual(again.file_name, up.file_name, 'a duplicate name gets a suffix');
      await waitProcessed(ctx.client, folder.id, again.id);

      const files = await collect(ctx.client.folders.files.list(folder.id, { limit: 1 }));
      files.forEach(shape.fileMetadata);
      assert.deepEqual(files.map((x) => x.id).sort(), [up.id, again.id].sort());

      const agentFiles = await ctx.client.agents.files.list(agent.id);
      assert.ok(Array.isArray(agentFiles.files));
      assert.ok(agentFiles.files.some((x) => x.file_id === up.id));

      await ctx.client.folders.files.delete(up.id, { folder_id: folder.id });
      const left = (await ctx.client.folders.files.list(folder.id)).items;
      assert.deepEqual(left.map((x) => x.id), [again.id]);
      await assert.rejects(
        ctx.client.folders.files.retrieve(up.id, { folder_id: folder.id }),
        (err) => !!shape.notFound(err, NotFoundError),
      );
    });
  });
}
