// The Letta SDK compatibility suite: the official @letta-ai/letta-client
// drives a real engram server (fresh data directory, random port) whose
// model is a scripted LLM on loopback. One harness serves every test; each
// area module registers its tests with the shared context.
import { before, after } from 'node:test';

import { startHarness, newClient } from '../lib/harness.mjs';
import * as health from '../areas/health.mjs';
import * as agents from '../areas/agents.mjs';
import * as memory from '../areas/memory.mjs';
import * as blocks from '../areas/blocks.mjs';
import * as passages from '../areas/passages.mjs';
import * as tools from '../areas/tools.mjs';
import * as folders from '../areas/folders.mjs';
import * as messages from '../areas/messages.mjs';
import * as runs from '../areas/runs.mjs';
import * as errors from '../areas/errors.mjs';
import * as fields from '../areas/fields.mjs';
import * as modern from '../areas/modern.mjs';

const ctx = {};

before(async () => {
  ctx.h = await startHarness();
  ctx.client = newClient(ctx.h);
}, { timeout: 600_000 });

after(async () => {
  await ctx.h?.stop();
});

for (const area of [health, agents, memory, blocks, passages, tools, folders, messages, runs, errors, fields, modern]) {
  area.register(ctx);
}
