// Small builders shared by the areas.
import { randomUUID } from 'node:crypto';

export const chatHandle = 'openai/gpt-4o-mini';
export const embeddingHandle = 'openai/text-embedding-3-small';

// unique returns a name no other test uses.
export function unique(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

// createAgent creates an agent with persona and human blocks and the chat
// model handle; extra overrides or adds fields. It runs the MemGPT loop
// (memgpt_agent), which the scripted replies (say, beat) speak.
export function createAgent(client, extra = {}) {
  return client.agents.create({
    name: unique('agent'),
    agent_type: 'memgpt_agent',
    model: chatHandle,
    embedding: embeddingHandle,
    memory_blocks: [
      { label: 'persona', value: 'I am Sam, a helpful assistant.' },
      { label: 'human', value: 'First name: Ada' },
    ],
    ...extra,
  });
}

// collect drains an SDK list (an ArrayPage promise) with auto-pagination,
// failing past max items so that a server that never answers an empty page
// does not loop forever.
export async function collect(list, max = 1000) {
  const out = [];
  for await (const item of list) {
    out.push(item);
    if (out.length > max) throw new Error(`auto-pagination did not stop after ${max} items`);
  }
  return out;
}

// call is an llmtest tool call.
export function call(name, args) {
  return { Name: name, Arguments: JSON.stringify(args) };
}

// say is an llmtest step in which the model thinks and then sends text to
// the user with send_message.
export function say(text, thought = 'I should answer the user.') {
  return { Content: thought, ToolCalls: [call('send_message', { message: text })] };
}

// missing holds well-formed ids that name nothing.
export const missing = {
  agent: 'agent-01J0000000000000000000000Z',
  block: 'block-01J0000000000000000000000Z',
  tool: 'tool-01J0000000000000000000000Z',
  folder: 'source-01J0000000000000000000000Z',
  passage: 'passage-01J0000000000000000000000Z',
};
