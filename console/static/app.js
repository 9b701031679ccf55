// The engram console: one page over the server's /v1 REST API. Plain DOM,
// no framework, no build step; every call goes to the page's own origin.

const KEY = 'engram.key'; // sessionStorage: the API key, when the server needs one
const AGENT = 'engram.agent'; // sessionStorage: the chosen agent's id

const $ = (sel) => document.querySelector(sel);

// el builds an element: attrs are properties (on*, className, …) or, with
// a "data-"/"aria-" name, attributes; children are nodes or text.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('data-') || k.startsWith('aria-') || k === 'for' || k === 'role') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const state = {
  agent: null, // the chosen agent (AgentState)
  view: 'agents',
  oldest: null, // id of the oldest message shown, for "load older"
  sending: false,
  blocks: new Map(), // label -> {value, node}
  events: [],
};

// ---- the API ---------------------------------------------------------------

let keyWaiter = null;

// askKey shows the key dialog and resolves when a key has been entered.
function askKey(message) {
  if (!keyWaiter) {
    keyWaiter = new Promise((resolve) => {
      const d = $('#login');
      $('#login-error').textContent = message;
      $('#login-key').value = '';
      $('#login-form').onsubmit = (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(KEY, $('#login-key').value.trim());
        d.close();
        keyWaiter = null;
        resolve();
      };
      d.showModal();
    });
  }
  return keyWaiter;
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? { Authorization: 'Bearer ' + key } : {};
}

async function errorOf(r) {
  let detail;
  try { detail = (await r.json()).detail; } catch { /* not JSON */ }
  if (detail !== undefined && typeof detail !== 'string') detail = JSON.stringify(detail);
  const e = new Error(detail || `${r.status} ${r.statusText}`);
  e.status = r.status;
  return e;
}

// api calls the REST API and returns the decoded answer (raw: the Response).
// A 401 asks for the key and tries again; any other failure throws an Error
// carrying the server's detail.
async function api(method, path, body, { raw = false } = {}) {
  for (;;) {
    const headers = authHeaders();
    const init = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    if (r.status === 401) {
      const had = sessionStorage.getItem(KEY);
      sessionStorage.removeItem(KEY);
      await askKey(had ? 'The server refused that key.' : '');
      continue;
    }
    if (!r.ok) throw await errorOf(r);
    if (raw) return r;
    if (r.status === 204) return null;
    return r.json();
  }
}

const enc = encodeURIComponent;
const agentPath = (p = '') => `/v1/agents/${enc(state.agent.id)}${p}`;

// upload sends a file as multipart/form-data, reporting progress (0..1).
function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const send = () => {
      const x = new XMLHttpRequest();
      x.open('POST', path);
      for (const [k, v] of Object.entries(authHeaders())) x.setRequestHeader(k, v);
      x.upload.onprogress = (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); };
      x.onload = async () => {
        if (x.status === 401) {
          sessionStorage.removeItem(KEY);
          await askKey('The server refused that key.');
          send();
          return;
        }
        let body = null;
        try { body = JSON.parse(x.responseText); } catch { /* not JSON */ }
        if (x.status >= 200 && x.status < 300) resolve(body);
        else reject(new Error((body && body.detail) || `${x.status} ${x.statusText}`));
      };
      x.onerror = () => reject(new Error('the upload failed: network error'));
      const form = new FormData();
      form.append('file', file, file.name);
      x.send(form);
    };
    send();
  });
}

function showError(node, err) {
  node.textContent = err ? (err.message || String(err)) : '';
}

// ---- views -----------------------------------------------------------------

const views = ['agents', 'chat', 'archival', 'sources', 'timeline', 'tools'];
const needsAgent = new Set(['chat', 'archival', 'timeline']);

function show(view) {
  if (needsAgent.has(view) && !state.agent) view = 'agents';
  state.view = view;
  for (const v of views) $('#view-' + v).hidden = v !== view;
  for (const b of document.querySelectorAll('nav button')) {
    if (b.dataset.view === view) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  history.replaceState(null, '', '#' + view);
  ({ agents: loadAgents, chat: openChat, archival: () => listPassages(), sources: loadSources, timeline: loadTimeline, tools: loadTools })[view]();
}

function setAgent(a) {
  state.agent = a;
  if (a) sessionStorage.setItem(AGENT, a.id); else sessionStorage.removeItem(AGENT);
  $('#current-agent').textContent = a ? `Agent: ${a.name}` : 'No agent chosen';
  for (const b of document.querySelectorAll('nav button')) {
    b.disabled = needsAgent.has(b.dataset.view) && !a;
  }
  state.blocks.clear();
  state.events = [];
  $('#event-type').replaceChildren(el('option', { value: '' }, 'all types'));
  $('#fork-result').replaceChildren();
  $('#blocks').replaceChildren();
  $('#messages').replaceChildren();
  state.oldest = null;
}

// ---- agents ----------------------------------------------------------------

async function loadAgents() {
  const q = $('#agent-search').value.trim();
  const list = $('#agent-list');
  try {
    const agents = await api('GET', '/v1/agents?limit=500' + (q ? '&query_text=' + enc(q) : ''));
    list.replaceChildren(...agents.map(agentItem));
    if (!agents.length) list.append(el('li', { className: 'empty' }, q ? 'No agent matches.' : 'No agents yet.'));
  } catch (e) {
    list.replaceChildren(el('li', { className: 'error' }, e.message));
  }
}

function agentItem(a) {
  const model = (a.llm_config && (a.llm_config.handle || a.llm_config.model)) || a.model || '';
  const confirmRow = el('span', { className: 'confirm', hidden: true },
    'Delete this agent and its memory? ',
    el('button', { type: 'button', className: 'danger', onclick: () => deleteAgent(a) }, `Yes, delete ${a.name}`),
    el('button', { type: 'button', onclick: () => { confirmRow.hidden = true; del.hidden = false; del.focus(); } }, 'Cancel'));
  const del = el('button', { type: 'button', className: 'quiet', onclick: () => { del.hidden = true; confirmRow.hidden = false; confirmRow.querySelector('button').focus(); } }, 'Delete');
  const chosen = state.agent && state.agent.id === a.id;
  return el('li', { 'data-agent-id': a.id, 'aria-current': chosen ? 'true' : null, className: chosen ? 'chosen' : '' },
    el('button', { type: 'button', className: 'link', onclick: () => { setAgent(a); show('chat'); } }, a.name),
    el('span', { className: 'meta' }, `${a.agent_type} · ${model} · ${a.id}`),
    del, confirmRow);
}

async function deleteAgent(a) {
  try {
    await api('DELETE', `/v1/agents/${enc(a.id)}`);
    if (state.agent && state.agent.id === a.id) setAgent(null);
  } catch (e) {
    alertIn('#agent-create', e);
  }
  loadAgents();
}

function alertIn(form, e) { showError($(form).querySelector('.error'), e); }

async function loadModels() {
  const sel = $('#new-model');
  try {
    const models = await api('GET', '/v1/models');
    sel.replaceChildren(...models.map((m) => el('option', { value: m.handle || m.model }, m.handle || m.model)));
    if (!models.length) sel.append(el('option', { value: '' }, 'no model served'));
  } catch (e) {
    sel.replaceChildren(el('option', { value: '' }, 'models unavailable'));
  }
}

async function createAgent(ev) {
  ev.preventDefault();
  const f = ev.target;
  const blocks = [{ label: 'persona', value: f.persona.value }, { label: 'human', value: f.human.value }];
  const body = { name: f.name.value.trim(), agent_type: f.agent_type.value, memory_blocks: blocks };
  if (f.model.value) body.model = f.model.value;
  try {
    const a = await api('POST', '/v1/agents', body);
    alertIn('#agent-create', null);
    f.name.value = '';
    setAgent(a);
    show('chat');
  } catch (e) {
    alertIn('#agent-create', e);
  }
}

// ---- chat ------------------------------------------------------------------

const str = (v) => (v === undefined || v === null ? '' : String(v));

const clip = (s, n) => (s.length > n ? s.slice(0, n) + '…' : s);

function pretty(s) {
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch { return str(s); }
}

// messageNode renders one LettaMessage; the same id and type make one node:
// a streamed delta appends to it, a whole message replaces it.
function messageNode(m, streaming = false) {
  const t = m.message_type;
  const key = `${m.id}:${t}`;
  const old = m.id ? document.querySelector(`#messages li[data-key="${CSS.escape(key)}"]`) : null;
  // With stream_tokens, thoughts and the modern loop's answer arrive as
  // deltas that share one id, each a piece of the text.
  if (old && streaming && t === 'reasoning_message') {
    old.querySelector('.text').append(str(m.reasoning));
    return old;
  }
  if (old && streaming && t === 'assistant_message') {
    old.querySelector('.text').append(str(m.content));
    return old;
  }
  let body;
  switch (t) {
    case 'user_message': {
      // Letta 0.5's loop sends itself JSON "user" messages (login,
      // heartbeat, system alerts); show those as the events they are.
      let ev = null;
      try { ev = JSON.parse(str(m.content)); } catch { /* a person's words */ }
      if (ev && typeof ev === 'object' && typeof ev.type === 'string') {
        const node = el('li', { className: 'msg system_message', 'data-key': key },
          el('span', { className: 'who' }, ev.type), el('span', { className: 'text' }, str(ev.reason || ev.message || ev.last_login || '')));
        if (old) old.replaceWith(node);
        return node;
      }
      body = [el('span', { className: 'who' }, 'you'), el('p', { className: 'text' }, str(m.content))];
      break;
    }
    case 'assistant_message':
      body = [el('span', { className: 'who' }, 'agent'), el('p', { className: 'text' }, str(m.content))];
      break;
    case 'reasoning_message':
      body = [el('span', { className: 'who' }, 'thinks'), el('p', { className: 'text' }, str(m.reasoning))];
      break;
    case 'tool_call_message': {
      const c = m.tool_call || (m.tool_calls && m.tool_calls[0]) || {};
      body = [el('details', { open: true }, el('summary', {}, el('span', { className: 'who' }, 'calls'), ` ${str(c.name)}(…)`),
        el('pre', { className: 'args' }, pretty(c.arguments)))];
      break;
    }
    case 'tool_return_message':
      // As in engram chat: a successful send_message returns nothing worth showing.
      if (m.name === 'send_message' && m.status === 'success') return el('li', { hidden: true, 'data-key': key });
      body = [el('details', {}, el('summary', {}, el('span', { className: 'who' }, `${str(m.name) || 'tool'} → ${str(m.status)}`), ' ', clip(str(m.tool_return), 60)),
        el('pre', { className: 'result' }, str(m.tool_return)))];
      break;
    case 'system_message':
      body = [el('span', { className: 'who' }, 'system'), el('pre', { className: 'text' }, str(m.content))];
      break;
    default:
      body = [el('span', { className: 'who' }, t), el('pre', {}, JSON.stringify(m, null, 2))];
  }
  const node = el('li', { className: 'msg ' + t, 'data-key': key }, ...body);
  if (old) old.replaceWith(node);
  return node;
}

function scrollToEnd() {
  const t = $('#transcript');
  t.scrollTop = t.scrollHeight;
}

async function openChat() {
  if (!$('#messages').children.length) await loadHistory(false);
  else scrollToEnd();
  refreshBlocks();
  $('#send-text').focus();
}

// chronological turns a page listed newest first into oldest first. One
// stored message can list as several (reasoning, then a tool call) that
// share its id; those keep their order.
function chronological(ms) {
  const groups = [];
  for (const m of ms) {
    const g = groups[groups.length - 1];
    if (g && g[0].id === m.id) g.push(m); else groups.push([m]);
  }
  return groups.reverse().flat();
}

// loadHistory shows the latest messages, or (older) the page before those shown.
async function loadHistory(older) {
  const p = new URLSearchParams({ limit: '30', order: 'desc' });
  // Cursors follow the listing's order: newest first, so the older
  // messages come after the oldest one shown.
  if (older && state.oldest) p.set('after', state.oldest);
  try {
    const ms = chronological(await api('GET', agentPath('/messages?' + p)));
    const nodes = ms.map((m) => messageNode(m));
    $('#messages').prepend(...nodes);
    if (ms.length) state.oldest = ms[0].id;
    $('#load-older').hidden = ms.length < 30;
    if (!older) scrollToEnd();
  } catch (e) {
    showError($('#chat-error'), e);
  }
}

// sendMessage posts text with streaming on and renders the events as they
// arrive. EventSource cannot send a POST or a header, so the stream is read
// with fetch.
async function sendMessage(text) {
  if (state.sending) return;
  state.sending = true;
  $('#send-btn').disabled = true;
  showError($('#chat-error'), null);
  $('#chat-status').textContent = 'The agent is answering…';
  const mine = el('li', { className: 'msg user_message pending' }, el('span', { className: 'who' }, 'you'), el('p', { className: 'text' }, text));
  $('#messages').append(mine);
  scrollToEnd();
  let pending = mine;
  try {
    const r = await api('POST', agentPath('/messages'), { messages: [{ role: 'user', content: text }], streaming: true, stream_tokens: true }, { raw: true });
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let done = false;
    while (!done) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while (!done && (i = buf.indexOf('\n\n')) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        const data = [];
        for (const line of chunk.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (!data.length) continue;
        const d = data.join('\n');
        if (d === '[DONE]') { done = true; break; }
        const m = JSON.parse(d);
        if (event === 'error') throw new Error(m.detail || m.message || 'the agent failed');
        const t = m.message_type;
        if (t === 'stop_reason') { $('#chat-status').textContent = `Stopped: ${m.stop_reason}`; continue; }
        if (t === 'usage_statistics' || t === 'ping') continue;
        if (t === 'user_message' && pending) { pending.classList.remove('pending'); pending.dataset.key = `${m.id}:${t}`; pending = null; continue; }
        const node = messageNode(m, true);
        if (!node.isConnected) $('#messages').append(node);
        if (t === 'tool_return_message') refreshBlocks();
        scrollToEnd();
      }
    }
    mine.classList.remove('pending');
  } catch (e) {
    showError($('#chat-error'), e);
    $('#chat-status').textContent = '';
  } finally {
    state.sending = false;
    $('#send-btn').disabled = false;
    refreshBlocks();
  }
}

async function runCommand(cmd) {
  showError($('#chat-error'), null);
  $('#chat-status').textContent = `Running ${cmd}…`;
  try {
    const r = await api('POST', agentPath('/command'), { command: cmd });
    $('#messages').replaceChildren();
    state.oldest = null;
    await loadHistory(false);
    for (const m of r.messages || []) {
      const n = messageNode(m);
      if (!n.isConnected) $('#messages').append(n);
    }
    scrollToEnd();
    $('#chat-status').textContent = `${cmd} done.`;
  } catch (e) {
    showError($('#chat-error'), e);
    $('#chat-status').textContent = '';
  }
  refreshBlocks();
}

// ---- core memory -----------------------------------------------------------

let refreshing = false;

// refreshBlocks reads the agent's core memory and shows what changed: a
// block the agent edited is updated and flashes, unless its text is being
// edited by hand here (then a note says the agent changed it).
async function refreshBlocks() {
  if (!state.agent || refreshing) return;
  refreshing = true;
  const id = state.agent.id;
  try {
    const blocks = await api('GET', agentPath('/core-memory/blocks'));
    if (!state.agent || state.agent.id !== id) return;
    const seen = new Set();
    for (const b of blocks) {
      seen.add(b.label);
      const have = state.blocks.get(b.label);
      if (!have) {
        const node = blockNode(b);
        state.blocks.set(b.label, { value: b.value, node });
        $('#blocks').append(node);
        continue;
      }
      have.node.querySelector('.limit').dataset.limit = b.limit;
      if (have.value === b.value) continue;
      const ta = have.node.querySelector('textarea');
      const editing = ta.value !== have.value;
      have.value = b.value;
      if (editing) {
        have.node.querySelector('.note').textContent = 'The agent changed this block while you were editing it.';
      } else {
        ta.value = b.value;
        have.node.querySelector('.note').textContent = '';
      }
      updateCount(have.node);
      flash(have.node);
    }
    for (const [label, have] of state.blocks) {
      if (!seen.has(label)) { have.node.remove(); state.blocks.delete(label); }
    }
  } catch (e) {
    showError($('#chat-error'), e);
  } finally {
    refreshing = false;
  }
}

function flash(node) {
  node.classList.remove('changed');
  void node.offsetWidth; // restart the animation
  node.classList.add('changed');
}

function updateCount(node) {
  const ta = node.querySelector('textarea');
  const lim = node.querySelector('.limit');
  const n = [...ta.value].length;
  lim.textContent = `${n} / ${lim.dataset.limit} characters`;
  lim.classList.toggle('over', n > Number(lim.dataset.limit));
}

function blockNode(b) {
  const tid = 'block-' + b.label.replace(/[^A-Za-z0-9_-]/g, '_');
  const node = el('div', { className: 'block', 'data-label': b.label },
    el('label', { for: tid }, b.label),
    el('textarea', { id: tid, value: b.value, rows: 5, readOnly: b.read_only, oninput: () => updateCount(node) }),
    el('div', { className: 'row' },
      el('span', { className: 'limit', 'data-limit': b.limit }),
      el('button', { type: 'button', className: 'save', disabled: b.read_only, onclick: () => saveBlock(b.label) }, `Save ${b.label}`)),
    el('p', { className: 'note', role: 'status' }),
    el('p', { className: 'error', role: 'alert' }));
  updateCount(node);
  return node;
}

async function saveBlock(label) {
  const have = state.blocks.get(label);
  const node = have.node;
  const value = node.querySelector('textarea').value;
  try {
    const b = await api('PATCH', agentPath('/core-memory/blocks/' + enc(label)), { value });
    have.value = b.value;
    showError(node.querySelector('.error'), null);
    node.querySelector('.note').textContent = 'Saved.';
    flash(node);
  } catch (e) {
    showError(node.querySelector('.error'), e);
    node.querySelector('.note').textContent = '';
  }
}

// ---- archival memory -------------------------------------------------------

async function listPassages(query) {
  const list = $('#passages');
  const note = $('#archival-note');
  try {
    let items;
    if (query) {
      const r = await api('GET', agentPath('/archival-memory/search?top_k=50&query=' + enc(query)));
      items = r.results.map((p) => ({ id: p.id, text: p.content, when: p.timestamp }));
      note.textContent = `${r.count} passage${r.count === 1 ? '' : 's'} match “${query}”, best first.`;
    } else {
      const r = await api('GET', agentPath('/archival-memory?limit=100&ascending=false'));
      items = r.map((p) => ({ id: p.id, text: p.text, when: p.created_at }));
      note.textContent = `${items.length} most recent passage${items.length === 1 ? '' : 's'}.`;
    }
    list.replaceChildren(...items.map((p) => el('li', { 'data-passage-id': p.id },
      el('p', { className: 'text' }, p.text),
      el('span', { className: 'meta' }, `${p.when} · ${p.id}`),
      el('button', { type: 'button', className: 'quiet', onclick: () => deletePassage(p.id) }, 'Delete'))));
  } catch (e) {
    note.textContent = '';
    list.replaceChildren(el('li', { className: 'error' }, e.message));
  }
}

async function deletePassage(id) {
  try {
    await api('DELETE', agentPath('/archival-memory/' + enc(id)));
  } catch (e) {
    alertIn('#archival-insert', e);
  }
  listPassages($('#archival-query').value.trim());
}

async function insertPassage(ev) {
  ev.preventDefault();
  const text = $('#archival-text').value;
  try {
    await api('POST', agentPath('/archival-memory'), { text });
    $('#archival-text').value = '';
    alertIn('#archival-insert', null);
    $('#archival-query').value = '';
    listPassages();
  } catch (e) {
    alertIn('#archival-insert', e);
  }
}

// ---- sources ---------------------------------------------------------------

async function loadSources() {
  const list = $('#source-list');
  try {
    const [sources, attached] = await Promise.all([
      api('GET', '/v1/folders?limit=500'),
      state.agent ? api('GET', agentPath('/folders?limit=500')) : Promise.resolve([]),
    ]);
    const on = new Set(attached.map((s) => s.id));
    list.replaceChildren(...sources.map((s) => sourceItem(s, on.has(s.id))));
    if (!sources.length) list.append(el('li', { className: 'empty' }, 'No folders yet.'));
  } catch (e) {
    showError($('#source-error'), e);
  }
}

function sourceItem(s, attached) {
  const fid = 'file-' + s.id;
  const files = el('ul', { className: 'files', 'aria-label': `Files in ${s.name}` });
  const progress = el('progress', { max: 1, value: 0, hidden: true, 'aria-label': `Upload to ${s.name}` });
  const input = el('input', { type: 'file', id: fid, accept: '.txt,.md,.markdown,.json,.html,.htm,.pdf' });
  const err = el('p', { className: 'error', role: 'alert' });
  const item = el('li', { className: 'source', 'data-source-id': s.id },
    el('h3', {}, s.name),
    el('span', { className: 'meta' }, s.id),
    state.agent
      ? el('button', { type: 'button', className: 'attach', onclick: () => attach(s, !attached) },
        attached ? `Detach from ${state.agent.name}` : `Attach to ${state.agent.name}`)
      : el('span', { className: 'meta' }, 'Choose an agent to attach this folder.'),
    el('div', { className: 'row' },
      el('label', { for: fid }, 'Upload a file'), input,
      el('button', { type: 'button', onclick: () => uploadTo(s, input, progress, files, err) }, 'Upload'), progress),
    err, files);
  listFiles(s, files);
  return item;
}

async function attach(s, on) {
  try {
    await api('PATCH', agentPath(`/folders/${on ? 'attach' : 'detach'}/${enc(s.id)}`));
    showError($('#source-error'), null);
  } catch (e) {
    showError($('#source-error'), e);
  }
  loadSources();
}

function fileNode(f) {
  const done = f.chunks_embedded ?? 0;
  const total = f.total_chunks;
  let status = f.processing_status;
  if (total) status += ` (${done}/${total} passages)`;
  if (f.error_message) status += `: ${f.error_message}`;
  return el('li', { 'data-file-id': f.id, 'data-status': f.processing_status },
    el('span', {}, f.file_name), ' ', el('span', { className: 'status ' + f.processing_status }, status));
}

async function listFiles(s, list) {
  try {
    const files = await api('GET', `/v1/folders/${enc(s.id)}/files?limit=500`);
    list.replaceChildren(...files.map(fileNode));
  } catch (e) {
    list.replaceChildren(el('li', { className: 'error' }, e.message));
  }
}

async function uploadTo(s, input, progress, list, err) {
  const file = input.files[0];
  showError(err, null);
  if (!file) { showError(err, new Error('Choose a file first.')); return; }
  progress.hidden = false;
  progress.value = 0;
  try {
    let f = await upload(`/v1/folders/${enc(s.id)}/upload`, file, (p) => { progress.value = p; });
    progress.value = 1;
    input.value = '';
    // The server loads the file in the background: follow its status.
    for (;;) {
      const node = fileNode(f);
      const old = list.querySelector(`li[data-file-id="${CSS.escape(f.id)}"]`);
      if (old) old.replaceWith(node); else list.append(node);
      if (f.processing_status === 'completed' || f.processing_status === 'error') break;
      await new Promise((r) => setTimeout(r, 500));
      f = await api('GET', `/v1/folders/${enc(s.id)}/files/${enc(f.id)}`);
    }
  } catch (e) {
    showError(err, e);
  } finally {
    progress.hidden = true;
  }
}

async function createSource(ev) {
  ev.preventDefault();
  try {
    await api('POST', '/v1/folders', { name: $('#source-name').value.trim() });
    $('#source-name').value = '';
    showError($('#source-error'), null);
  } catch (e) {
    showError($('#source-error'), e);
  }
  loadSources();
}

// ---- timeline --------------------------------------------------------------

function summary(ev) {
  const d = ev.data || {};
  const bits = [];
  for (const k of ['label', 'name', 'role', 'text', 'value', 'content']) {
    if (typeof d[k] === 'string' && d[k]) bits.push(`${k}: ${d[k]}`);
  }
  const s = bits.length ? bits.join(' · ') : JSON.stringify(d);
  return s.length > 160 ? s.slice(0, 160) + '…' : s;
}

async function loadTimeline() {
  const type = $('#event-type').value;
  const out = [];
  showError($('#timeline-error'), null);
  try {
    let after = 0;
    for (let page = 0; page < 20; page++) {
      const p = new URLSearchParams({ limit: '500' });
      if (after) p.set('after', after);
      if (type) p.set('types', type);
      const evs = await api('GET', agentPath('/events?' + p));
      out.push(...evs);
      if (evs.length < 500) break;
      after = evs[evs.length - 1].seq;
    }
  } catch (e) {
    showError($('#timeline-error'), e);
    return;
  }
  state.events = out;
  if (!type) {
    const sel = $('#event-type');
    const types = [...new Set(out.map((e) => e.type))].sort();
    sel.replaceChildren(el('option', { value: '' }, 'all types'), ...types.map((t) => el('option', { value: t }, t)));
  }
  const list = $('#events');
  list.replaceChildren(...out.map((e, i) => el('li', { 'data-seq': e.seq, 'data-index': i },
    el('button', { type: 'button', className: 'event', onclick: () => scrubTo(i) },
      el('span', { className: 'seq' }, `#${e.seq}${e.part ? '.' + e.part : ''}`),
      el('span', { className: 'type' }, e.type),
      el('span', { className: 'meta' }, `${new Date(e.time).toLocaleString()} · ${e.issued_by}`),
      el('span', { className: 'sum' }, summary(e))))));
  const scrub = $('#scrub');
  scrub.max = Math.max(0, out.length - 1);
  scrub.disabled = !out.length;
  $('#fork-btn').disabled = !out.length;
  if (out.length) scrubTo(out.length - 1);
}

let scrubTimer = null;
let scrubIndex = -1;

// scrubTo selects the event at index i and shows the agent's state after it.
function scrubTo(i) {
  const e = state.events[i];
  if (!e) return;
  scrubIndex = i;
  $('#scrub').value = i;
  $('#scrub-label').textContent = `#${e.seq} ${e.type} (${i + 1} of ${state.events.length})`;
  for (const li of document.querySelectorAll('#events li')) {
    if (Number(li.dataset.index) === i) { li.setAttribute('aria-current', 'true'); li.scrollIntoView({ block: 'nearest' }); } else li.removeAttribute('aria-current');
  }
  clearTimeout(scrubTimer);
  scrubTimer = setTimeout(() => showStateAt(e.seq), 120);
}

async function showStateAt(seq) {
  try {
    const [blocks, msgs] = await Promise.all([
      api('GET', agentPath('/core-memory/blocks?at=' + seq)),
      api('GET', agentPath('/messages?limit=8&order=desc&at=' + seq)),
    ]);
    if (state.events[scrubIndex] && state.events[scrubIndex].seq !== seq) return; // moved on
    $('#at-seq').textContent = '#' + seq;
    $('#blocks-at').replaceChildren(...blocks.map((b) => el('div', { className: 'block', 'data-label': b.label },
      el('h4', {}, `${b.label} `, el('span', { className: 'meta' }, `${[...b.value].length} / ${b.limit}`)),
      el('pre', {}, b.value))));
    $('#context-at').replaceChildren(...chronological(msgs).map((m) => {
      const text = m.content ?? m.reasoning ?? (m.tool_call ? `${m.tool_call.name}(${m.tool_call.arguments})` : m.tool_return);
      return el('li', {}, el('span', { className: 'who' }, m.message_type.replace('_message', '')), ' ', str(text).slice(0, 200));
    }));
  } catch (e) {
    showError($('#timeline-error'), e);
  }
}

async function fork() {
  const e = state.events[scrubIndex];
  if (!e) return;
  try {
    const a = await api('POST', agentPath('/fork'), { at: e.seq });
    $('#fork-result').replaceChildren(`Forked at #${e.seq}: `,
      el('button', { type: 'button', className: 'link', onclick: () => { setAgent(a); show('chat'); } }, `open ${a.name}`));
  } catch (err) {
    showError($('#timeline-error'), err);
  }
}

// ---- tools -----------------------------------------------------------------

let tools = [];

async function loadTools() {
  try {
    tools = await api('GET', '/v1/tools?limit=1000');
  } catch (e) {
    $('#tool-list').replaceChildren(el('li', { className: 'error' }, e.message));
    return;
  }
  renderTools();
}

function renderTools() {
  const q = $('#tool-search').value.trim().toLowerCase();
  const shown = tools.filter((t) => !q || t.name.toLowerCase().includes(q));
  $('#tool-list').replaceChildren(...shown.map((t) => el('li', { 'data-tool-id': t.id },
    el('button', { type: 'button', className: 'link', onclick: () => showTool(t.id) }, t.name),
    el('span', { className: 'meta' }, t.tool_type))));
}

async function showTool(id) {
  const box = $('#tool-detail');
  try {
    const t = await api('GET', '/v1/tools/' + enc(id));
    box.replaceChildren(el('h3', {}, t.name), el('p', {}, str(t.description)),
      el('span', { className: 'meta' }, `${t.tool_type} · ${t.id}`),
      el('h4', {}, 'Schema'), el('pre', { className: 'schema' }, JSON.stringify(t.json_schema, null, 2)),
      el('h4', {}, 'Source'), el('pre', { className: 'source' }, t.source_code ? t.source_code : '(built in: no Python source)'));
  } catch (e) {
    box.replaceChildren(el('p', { className: 'error' }, e.message));
  }
}

async function deriveSchema() {
  const f = $('#tool-create');
  $('#tool-save').disabled = true;
  $('#tool-schema').textContent = '';
  try {
    const schema = await api('POST', '/v1/tools/generate-schema', { code: $('#tool-source').value });
    $('#tool-schema').textContent = JSON.stringify(schema, null, 2);
    $('#tool-save').disabled = false;
    f.scrollIntoView({ block: 'nearest' });
    alertIn('#tool-create', null);
  } catch (e) {
    alertIn('#tool-create', e);
  }
  return f;
}

async function createTool(ev) {
  ev.preventDefault();
  try {
    const t = await api('POST', '/v1/tools?update=false', { source_code: $('#tool-source').value });
    alertIn('#tool-create', null);
    $('#tool-save').disabled = true;
    await loadTools();
    showTool(t.id);
  } catch (e) {
    alertIn('#tool-create', e);
  }
}

// ---- wiring ----------------------------------------------------------------

let searchTimer = null;

async function start() {
  for (const b of document.querySelectorAll('nav button')) b.onclick = () => show(b.dataset.view);
  $('#login').addEventListener('cancel', (e) => e.preventDefault()); // the page needs the key
  $('#agent-search').oninput = () => { clearTimeout(searchTimer); searchTimer = setTimeout(loadAgents, 200); };
  $('#agent-create').onsubmit = createAgent;
  $('#send-form').onsubmit = (ev) => {
    ev.preventDefault();
    const t = $('#send-text');
    const text = t.value.trim();
    if (!text || state.sending) return;
    t.value = '';
    sendMessage(text);
  };
  $('#send-text').onkeydown = (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); $('#send-form').requestSubmit(); }
  };
  $('#retry-btn').onclick = () => runCommand('/retry');
  $('#pop-btn').onclick = () => runCommand('/pop');
  $('#load-older').onclick = () => loadHistory(true);
  $('#archival-search').onsubmit = (ev) => { ev.preventDefault(); listPassages($('#archival-query').value.trim()); };
  $('#archival-all').onclick = () => { $('#archival-query').value = ''; listPassages(); };
  $('#archival-insert').onsubmit = insertPassage;
  $('#source-create').onsubmit = createSource;
  $('#event-type').onchange = loadTimeline;
  $('#timeline-reload').onclick = loadTimeline;
  $('#scrub').oninput = () => scrubTo(Number($('#scrub').value));
  $('#fork-btn').onclick = fork;
  $('#tool-search').oninput = renderTools;
  $('#tool-derive').onclick = deriveSchema;
  $('#tool-source').oninput = () => { $('#tool-save').disabled = true; };
  $('#tool-create').onsubmit = createTool;

  // Core memory follows the agent's edits: read it again every 1.5 s while
  // the chat is shown, and after every tool result of a streamed reply.
  setInterval(() => { if (state.view === 'chat' && !document.hidden) refreshBlocks(); }, 1500);

  const id = sessionStorage.getItem(AGENT);
  setAgent(null);
  await loadModels();
  if (id) {
    try { setAgent(await api('GET', `/v1/agents/${enc(id)}`)); } catch { /* gone */ }
  }
  const want = location.hash.slice(1);
  show(views.includes(want) ? want : 'agents');
}

start();
