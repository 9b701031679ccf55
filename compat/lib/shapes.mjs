// Shape checks for the objects SDK 1.12.1 returns. The SDK does not validate
// responses at run time; its TypeScript types are the contract a user's code
// compiles against. Each check asserts the fields those types mark required
// (and the optional ones engram promises), with their JSON types.
import assert from 'node:assert/strict';

// engram's ids are "<prefix>-<uuid>" like Letta's (engram makes UUIDv7s, time
// ordered, where Letta makes uuid4s; the SDK treats both as opaque strings).
const uuid = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const ID = Object.fromEntries(
  ['agent', 'block', 'tool', 'source', 'file', 'passage', 'message', 'run'].map((p) => [p, new RegExp(`^${p}-${uuid}$`)]),
);

function where(what, obj) {
  return `${what}: ${JSON.stringify(obj)?.slice(0, 600)}`;
}

// has asserts obj[key] exists with the given type: 'string', 'number',
// 'boolean', 'object' (non-null, non-array), 'array', or a RegExp a string
// must match. A trailing '?' in the type allows null.
function has(obj, key, type, what) {
  assert.ok(obj !== null && typeof obj === 'object', where(`${what} is not an object`, obj));
  assert.ok(key in obj, where(`${what} lacks required "${key}"`, obj));
  let v = obj[key];
  let t = type;
  if (typeof t === 'string' && t.endsWith('?')) {
    if (v === null) return;
    t = t.slice(0, -1);
  }
  if (t instanceof RegExp) {
    assert.equal(typeof v, 'string', where(`${what}.${key} is not a string`, obj));
    assert.match(v, t, `${what}.${key}`);
  } else if (t === 'array') {
    assert.ok(Array.isArray(v), where(`${what}.${key} is not an array`, obj));
  } else if (t === 'object') {
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), where(`${what}.${key} is not an object`, obj));
  } else {
    assert.equal(typeof v, t, where(`${what}.${key} is not a ${t}`, obj));
  }
}

// An absent key is fine; a present one has the type.
function maybe(obj, key, type, what) {
  if (obj[key] === undefined || obj[key] === null) return;
  has(obj, key, type, what);
}

function isoDate(obj, key, what) {
  has(obj, key, 'string', what);
  assert.ok(!Number.isNaN(Date.parse(obj[key])), where(`${what}.${key} is not an ISO date`, obj));
}

export function block(b) {
  has(b, 'id', ID.block, 'block');
  has(b, 'value', 'string', 'block');
  maybe(b, 'label', 'string', 'block');
  maybe(b, 'limit', 'number', 'block');
  maybe(b, 'description', 'string', 'block');
  maybe(b, 'metadata', 'object', 'block');
  maybe(b, 'is_template', 'boolean', 'block');
  maybe(b, 'read_only', 'boolean', 'block');
  maybe(b, 'tags', 'array', 'block');
  return b;
}

export function llmConfig(c, what = 'llm_config') {
  has(c, 'model', 'string', what);
  has(c, 'model_endpoint_type', 'string', what);
  has(c, 'context_window', 'number', what);
  maybe(c, 'handle', 'string', what);
}

export function embeddingConfig(c, what = 'embedding_config') {
  has(c, 'embedding_endpoint_type', 'string', what);
  has(c, 'embedding_model', 'string', what);
  has(c, 'embedding_dim', 'number', what);
  maybe(c, 'handle', 'string', what);
}

export function agent(a) {
  has(a, 'id', ID.agent, 'agent');
  has(a, 'name', 'string', 'agent');
  has(a, 'agent_type', 'string', 'agent');
  has(a, 'system', 'string', 'agent');
  has(a, 'blocks', 'array', 'agent');
  has(a, 'tools', 'array', 'agent');
  has(a, 'sources', 'array', 'agent');
  has(a, 'tags', 'array', 'agent');
  has(a, 'memory', 'object', 'agent');
  has(a.memory, 'blocks', 'array', 'agent.memory');
  has(a, 'llm_config', 'object', 'agent');
  llmConfig(a.llm_config, 'agent.llm_config');
  maybe(a, 'model', 'string', 'agent');
  maybe(a, 'embedding', 'string', 'agent');
  if (a.embedding_config) embeddingConfig(a.embedding_config, 'agent.embedding_config');
  maybe(a, 'metadata', 'object', 'agent');
  maybe(a, 'description', 'string', 'agent');
  maybe(a, 'message_ids', 'array', 'agent');
  maybe(a, 'created_at', 'string', 'agent');
  for (const b of a.blocks) block(b);
  for (const b of a.memory.blocks) block(b);
  for (const t of a.tools) tool(t);
  for (const s of a.sources) folder(s);
  for (const t of a.tags) assert.equal(typeof t, 'string', 'agent.tags[]');
  return a;
}

export function tool(t) {
  has(t, 'id', ID.tool, 'tool');
  maybe(t, 'name', 'string', 'tool');
  maybe(t, 'description', 'string', 'tool');
  maybe(t, 'source_code', 'string', 'tool');
  maybe(t, 'source_type', 'string', 'tool');
  maybe(t, 'json_schema', 'object', 'tool');
  maybe(t, 'tags', 'array', 'tool');
  maybe(t, 'tool_type', 'string', 'tool');
  maybe(t, 'return_char_limit', 'number', 'tool');
  maybe(t, 'metadata_', 'object', 'tool');
  if (t.json_schema) {
    has(t.json_schema, 'name', 'string', 'tool.json_schema');
    has(t.json_schema, 'parameters', 'object', 'tool.json_schema');
  }
  return t;
}

export function passage(p) {
  has(p, 'text', 'string', 'passage');
  has(p, 'embedding', 'array?', 'passage');
  has(p, 'embedding_config', 'object?', 'passage');
  has(p, 'id', ID.passage, 'passage'); // optional in the SDK type; the SDK's delete needs it
  maybe(p, 'tags', 'array', 'passage');
  maybe(p, 'created_at', 'string', 'passage');
  return p;
}

export function folder(f) {
  has(f, 'id', ID.source, 'folder');
  has(f, 'name', 'string', 'folder');
  has(f, 'embedding_config', 'object', 'folder');
  embeddingConfig(f.embedding_config, 'folder.embedding_config');
  maybe(f, 'description', 'string', 'folder');
  maybe(f, 'instructions', 'string', 'folder');
  maybe(f, 'metadata', 'object', 'folder');
  return f;
}

export const processingStatuses = ['pending', 'parsing', 'embedding', 'completed', 'error'];

export function fileMetadata(f) {
  has(f, 'id', ID.file, 'file');
  has(f, 'source_id', ID.source, 'file');
  maybe(f, 'file_name', 'string', 'file');
  maybe(f, 'original_file_name', 'string', 'file');
  maybe(f, 'file_type', 'string', 'file');
  maybe(f, 'file_size', 'number', 'file');
  maybe(f, 'total_chunks', 'number', 'file');
  maybe(f, 'chunks_embedded', 'number', 'file');
  if (f.processing_status !== undefined && f.processing_status !== null) {
    assert.ok(processingStatuses.includes(f.processing_status), where('file.processing_status', f));
  }
  return f;
}

export function model(m) {
  for (const k of ['model', 'model_endpoint_type', 'name', 'provider_type']) has(m, k, 'string', 'model');
  for (const k of ['context_window', 'max_context_window']) has(m, k, 'number', 'model');
  maybe(m, 'handle', 'string', 'model');
  return m;
}

export function embeddingModel(m) {
  for (const k of ['display_name', 'embedding_endpoint_type', 'embedding_model', 'name', 'provider_name', 'provider_type']) {
    has(m, k, 'string', 'embedding model');
  }
  has(m, 'embedding_dim', 'number', 'embedding model');
  maybe(m, 'handle', 'string', 'embedding model');
  return m;
}

function toolCall(c, what) {
  has(c, 'name', 'string', what);
  has(c, 'arguments', 'string', what);
  has(c, 'tool_call_id', 'string', what);
  JSON.parse(c.arguments); // arguments are JSON text
}

// message checks one member of the LettaMessage union by its message_type,
// and returns it.
export function message(m) {
  has(m, 'message_type', 'string', 'message');
  const what = m.message_type;
  has(m, 'id', ID.message, what);
  isoDate(m, 'date', what);
  maybe(m, 'name', 'string', what);
  maybe(m, 'otid', 'string', what);
  maybe(m, 'run_id', 'string', what);
  maybe(m, 'step_id', 'string', what);
  maybe(m, 'seq_id', 'number', what);
  switch (m.message_type) {
    case 'system_message':
      has(m, 'content', 'string', what);
      break;
    case 'user_message':
    case 'assistant_message':
      has(m, 'content', 'string', what); // a plain string is what Letta sends
      break;
    case 'reasoning_message':
      has(m, 'reasoning', 'string', what);
      if (m.source !== undefined && m.source !== null) {
        assert.ok(['reasoner_model', 'non_reasoner_model'].includes(m.source), where(`${what}.source`, m));
      }
      break;
    case 'hidden_reasoning_message':
      assert.ok(['redacted', 'omitted'].includes(m.state), where(`${what}.state`, m));
      break;
    case 'approval_request_message': // Letta 0.16.8: id, date, tool_call required; tool_calls
    case 'tool_call_message':
      has(m, 'tool_call', 'object', what);
      toolCall(m.tool_call, `${what}.tool_call`);
      if (m.tool_calls !== undefined && m.tool_calls !== null) {
        assert.ok(Array.isArray(m.tool_calls), where(`${what}.tool_calls`, m));
        for (const c of m.tool_calls) toolCall(c, `${what}.tool_calls[]`);
      }
      break;
    case 'tool_return_message':
      has(m, 'tool_return', 'string', what);
      has(m, 'tool_call_id', 'string', what);
      assert.ok(['success', 'error'].includes(m.status), where(`${what}.status`, m));
      maybe(m, 'stdout', 'array', what);
      maybe(m, 'stderr', 'array', what);
      break;
    case 'approval_response_message': // Letta 0.16.8: approvals (ApprovalReturn | ToolReturn)
      maybe(m, 'approvals', 'array', what);
      for (const a of m.approvals ?? []) {
        has(a, 'tool_call_id', 'string', `${what}.approvals[]`);
        assert.ok(['approval', 'tool'].includes(a.type), where(`${what}.approvals[].type`, m));
      }
      break;
    default:
      assert.fail(where(`unexpected message_type ${m.message_type}`, m));
  }
  return m;
}

export const stopReasons = [
  'end_turn', 'error', 'llm_api_error', 'invalid_llm_response', 'invalid_tool_call', 'max_steps', 'max_tokens_exceeded',
  'no_tool_call', 'tool_rule', 'cancelled', 'insufficient_credits', 'requires_approval',
  'context_window_overflow_in_system_prompt',
];

export function stopReason(s) {
  has(s, 'stop_reason', 'string', 'stop_reason');
  assert.ok(stopReasons.includes(s.stop_reason), where('stop_reason', s));
  if (s.message_type !== undefined) assert.equal(s.message_type, 'stop_reason');
  return s;
}

export function usage(u) {
  for (const k of ['completion_tokens', 'prompt_tokens', 'total_tokens', 'step_count']) {
    maybe(u, k, 'number', 'usage');
  }
  if (u.message_type !== undefined) assert.equal(u.message_type, 'usage_statistics');
  maybe(u, 'run_ids', 'array', 'usage');
  return u;
}

export const runStatuses = ['created', 'running', 'completed', 'failed', 'cancelled'];

// run checks a Run (agents.messages.createAsync, runs.retrieve, runs.list).
export function run(r) {
  has(r, 'id', ID.run, 'Run');
  has(r, 'agent_id', ID.agent, 'Run');
  assert.ok(runStatuses.includes(r.status), where('Run.status', r));
  isoDate(r, 'created_at', 'Run');
  if (r.completed_at != null) isoDate(r, 'completed_at', 'Run');
  if (r.stop_reason != null) assert.ok(stopReasons.includes(r.stop_reason), where('Run.stop_reason', r));
  maybe(r, 'metadata', 'object', 'Run');
  maybe(r, 'background', 'boolean', 'Run');
  maybe(r, 'total_duration_ns', 'number', 'Run');
  return r;
}

export function lettaResponse(r) {
  has(r, 'messages', 'array', 'LettaResponse');
  has(r, 'stop_reason', 'object', 'LettaResponse');
  has(r, 'usage', 'object', 'LettaResponse');
  for (const m of r.messages) message(m);
  stopReason(r.stop_reason);
  usage(r.usage);
  return r;
}

// notFound asserts err is the SDK's NotFoundError for a 404 whose body is
// {"detail": "<string>"}, and returns the detail.
export function notFound(err, NotFoundError) {
  assert.ok(err instanceof NotFoundError, `want NotFoundError, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 404);
  assert.equal(typeof err.error?.detail, 'string', `error body ${JSON.stringify(err.error)}`);
  return err.error.detail;
}
