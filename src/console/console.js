// Flint's web console: a chat over the Responses WebSocket mode, a fill-in-the-middle panel on
// /v1/completions, and a live view of /v1/flint/status. Plain browser JavaScript, no build step.
'use strict';

const $ = (selector) => document.querySelector(selector);
const keyStorage = 'flint.apiKey';
let apiKey = sessionStorage.getItem(keyStorage) || '';
let modelId = '';

// ---------- API key and requests ----------

/** Resolves once the user has entered a key (the dialog stays until then). */
function askForKey(message) {
  const dialog = $('#key-dialog');
  const error = $('#key-error');
  error.hidden = !message;
  error.textContent = message || '';
  if (!dialog.open) dialog.showModal();
  $('#key-input').focus();
  return new Promise((resolve) => {
    $('#key-form').onsubmit = () => {
      apiKey = $('#key-input').value.trim();
      sessionStorage.setItem(keyStorage, apiKey);
      resolve();
    };
  });
}

/** fetch() with the key; a 401 asks for a key and tries again. */
async function api(path, init = {}) {
  for (;;) {
    const headers = { ...(init.headers || {}) };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    const res = await fetch(path, { ...init, headers });
    if (res.status !== 401) return res;
    await askForKey(apiKey ? 'That key was refused.' : '');
  }
}

function formatBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

const ms = (x) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`);
const pct = (x) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(1)}%`);

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

// ---------- views ----------

for (const tab of document.querySelectorAll('.tab')) {
  tab.addEventListener('click', () => {
    for (const other of document.querySelectorAll('.tab')) other.setAttribute('aria-pressed', String(other === tab));
    for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== tab.dataset.view;
  });
}

// ---------- chat over the Responses WebSocket ----------

const chat = {
  socket: null,
  opening: null,
  /** The id to continue from: the last response (or warm-up) of this conversation. */
  lastId: null,
  /** The instructions the cache was last warmed with. */
  warmedWith: null,
  /** The response in progress: { kind: 'turn' | 'warmup', id, li, body, startedAt, firstAt, text }. */
  running: null,
  turns: [],
};

function wsUrl() {
  const url = new URL('/v1/responses', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

/** The conversation's socket, opened on first use (the key travels as a subprotocol). */
function socket() {
  if (chat.socket && chat.socket.readyState === WebSocket.OPEN) return Promise.resolve(chat.socket);
  if (chat.opening) return chat.opening;
  chat.opening = new Promise((resolve, reject) => {
    const ws = apiKey ? new WebSocket(wsUrl(), ['flint', `flint-insecure-api-key.${apiKey}`]) : new WebSocket(wsUrl());
    ws.onopen = () => {
      chat.socket = ws;
      chat.opening = null;
      resolve(ws);
    };
    ws.onerror = () => {
      chat.opening = null;
      reject(new Error('the WebSocket did not open (is the key right?)'));
    };
    ws.onclose = () => {
      if (chat.socket === ws) chat.socket = null;
      if (chat.running) finish({ error: 'the connection closed' });
    };
    ws.onmessage = (message) => onEvent(JSON.parse(message.data));
  });
  return chat.opening;
}

function setRunning(isRunning) {
  $('#send').disabled = isRunning;
  $('#stop').disabled = !isRunning;
}

function addMessage(role, text) {
  const li = element('li', role);
  li.append(element('span', 'who', role === 'user' ? 'You' : 'Model'), element('span', 'text', text));
  $('#log').append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

function baseBody() {
  const body = { type: 'response.create', model: modelId, store: false };
  const system = $('#system').value.trim();
  if (system) body.instructions = system;
  if (chat.lastId) body.previous_response_id = chat.lastId;
  return body;
}

/** Evaluates a changed system prompt into the cache before the next turn (`generate: false`). */
async function warmUp() {
  const system = $('#system').value.trim();
  if (chat.running || system === (chat.warmedWith ?? '') || !modelId) return;
  try {
    const ws = await socket();
    chat.running = { kind: 'warmup', startedAt: performance.now(), instructions: system };
    ws.send(JSON.stringify({ ...baseBody(), input: [], generate: false }));
  } catch (err) {
    addMessage('error', String(err.message || err));
  }
}

async function send() {
  const text = $('#prompt').value.trim();
  if (!text || chat.running || !modelId) return;
  $('#prompt').value = '';
  addMessage('user', text);
  const li = addMessage('assistant', '');
  li.dataset.status = 'in_progress';
  const body = {
    ...baseBody(),
    input: [{ type: 'message', role: 'user', content: text }],
    max_output_tokens: Number($('#max-tokens').value) || 256,
    temperature: Number($('#temperature').value),
  };
  chat.running = { kind: 'turn', li, startedAt: performance.now(), firstAt: undefined, text: '', instructions: body.instructions ?? '' };
  setRunning(true);
  try {
    const ws = await socket();
    chat.running.startedAt = performance.now();
    ws.send(JSON.stringify(body));
  } catch (err) {
    finish({ error: String(err.message || err) });
  }
}

function stop() {
  if (!chat.running || chat.running.kind !== 'turn' || !chat.socket) return;
  chat.socket.send(JSON.stringify({ type: 'response.cancel', ...(chat.running.id ? { response_id: chat.running.id } : {}) }));
}

function onEvent(event) {
  const run = chat.running;
  if (!run) return;
  switch (event.type) {
    case 'response.created':
      run.id = event.response.id;
      break;
    case 'response.output_text.delta':
      run.firstAt ??= performance.now();
      run.text += event.delta;
      run.li.querySelector('.text').textContent = run.text;
      break;
    case 'response.output_item.done':
      if (event.item && (event.item.type === 'function_call' || event.item.type === 'custom_tool_call')) {
        run.firstAt ??= performance.now();
        const args = event.item.arguments ?? event.item.input ?? '';
        run.li.append(element('span', 'tool', `tool call: ${event.item.name}(${args})`));
      }
      break;
    case 'response.completed':
    case 'response.incomplete':
    case 'response.failed':
      if (run.li) run.li.dataset.event = event.type;
      finish({ response: event.response });
      break;
    case 'error':
      finish({ error: event.error?.message || 'error' });
      break;
  }
}

function finish({ response, error }) {
  const run = chat.running;
  chat.running = null;
  setRunning(false);
  if (!run) return;
  if (run.kind === 'warmup') {
    const note = $('#warm-note');
    if (response && response.status !== 'failed') {
      chat.lastId = response.id;
      chat.warmedWith = run.instructions;
      const usage = response.usage;
      note.textContent = `System prompt evaluated into the cache${usage ? ` (${usage.input_tokens} tokens, ${ms(performance.now() - run.startedAt)})` : ''}.`;
      note.dataset.warmed = 'true';
    } else note.textContent = `Could not warm the cache: ${error || response?.error?.message || 'failed'}`;
    return;
  }
  const li = run.li;
  if (error || !response || response.status === 'failed') {
    li.classList.add('error');
    li.dataset.status = 'failed';
    li.append(element('span', 'stats', error || response?.error?.message || 'failed'));
    return;
  }
  chat.lastId = response.id;
  chat.warmedWith = run.instructions;
  const endedAt = performance.now();
  const usage = response.usage || { input_tokens: 0, output_tokens: 0, input_tokens_details: { cached_tokens: 0 } };
  const cached = usage.input_tokens_details?.cached_tokens ?? 0;
  const ttft = run.firstAt === undefined ? null : run.firstAt - run.startedAt;
  const decodeS = run.firstAt === undefined ? 0 : (endedAt - run.firstAt) / 1000;
  const tokS = decodeS > 0 && usage.output_tokens > 1 ? (usage.output_tokens - 1) / decodeS : null;
  const turn = { ttft, tokS, prompt: usage.input_tokens, cached, output: usage.output_tokens, status: response.status };
  chat.turns.push(turn);
  li.dataset.status = response.status;
  li.dataset.ttftMs = ttft === null ? '' : ttft.toFixed(1);
  li.dataset.promptTokens = String(turn.prompt);
  li.dataset.cachedTokens = String(cached);
  const reason = response.status === 'incomplete' ? ` (${response.incomplete_details?.reason ?? 'incomplete'})` : response.status === 'cancelled' ? ' (stopped)' : '';
  li.append(
    element(
      'span',
      'stats',
      `${response.status}${reason} · TTFT ${ms(ttft)} · ${tokS === null ? '–' : tokS.toFixed(0)} tok/s · ${usage.output_tokens} tokens · prompt ${turn.prompt}, cached ${cached}`,
    ),
  );
  drawChart();
}

/** TTFT per turn as bars, cached share of the prompt as a line (last 24 turns). */
function drawChart() {
  const svg = $('#turn-chart');
  const turns = chat.turns.slice(-24);
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  if (turns.length === 0) return svg.setAttribute('aria-label', 'No turns yet');
  const width = 320;
  const height = 90;
  const top = 10;
  const bottom = 12;
  const maxTtft = Math.max(...turns.map((t) => t.ttft ?? 0), 1);
  const step = width / Math.max(turns.length, 8);
  const points = [];
  turns.forEach((t, i) => {
    const h = ((t.ttft ?? 0) / maxTtft) * (height - top - bottom);
    const rect = document.createElementNS(ns, 'rect');
    rect.setAttribute('class', 'bar-rect');
    rect.setAttribute('x', String(i * step + step * 0.15));
    rect.setAttribute('width', String(step * 0.7));
    rect.setAttribute('y', String(height - bottom - h));
    rect.setAttribute('height', String(h));
    const title = document.createElementNS(ns, 'title');
    title.textContent = `turn ${chat.turns.length - turns.length + i + 1}: TTFT ${ms(t.ttft)}, cached ${t.cached} of ${t.prompt}`;
    rect.append(title);
    svg.append(rect);
    const share = t.prompt > 0 ? t.cached / t.prompt : 0;
    points.push(`${i * step + step / 2},${height - bottom - share * (height - top - bottom)}`);
  });
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('class', 'line');
  line.setAttribute('points', points.join(' '));
  svg.append(line);
  const label = document.createElementNS(ns, 'text');
  label.setAttribute('x', '2');
  label.setAttribute('y', '8');
  label.textContent = `max TTFT ${ms(maxTtft)}`;
  svg.append(label);
  const last = turns.at(-1);
  svg.setAttribute('aria-label', `${chat.turns.length} turns; last: TTFT ${ms(last.ttft)}, ${last.cached} of ${last.prompt} prompt tokens cached`);
}

function resetConversation() {
  if (chat.running) stop();
  chat.socket?.close(1000, 'new conversation');
  chat.socket = null;
  chat.lastId = null;
  chat.warmedWith = null;
  chat.turns = [];
  $('#log').replaceChildren();
  drawChart();
  $('#prompt').focus();
}

$('#composer').addEventListener('submit', (e) => {
  e.preventDefault();
  void send();
});
$('#prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    void send();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && chat.running && !$('#key-dialog').open) {
    e.preventDefault();
    stop();
  }
});
$('#stop').addEventListener('click', stop);
$('#reset').addEventListener('click', resetConversation);
$('#system').addEventListener('change', () => void warmUp());

// ---------- fill in the middle ----------

$('#fim-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const prefix = $('#fim-prefix').value;
  const suffix = $('#fim-suffix').value;
  const out = $('#fim-out');
  const stats = $('#fim-stats');
  const middle = element('mark');
  out.replaceChildren(document.createTextNode(prefix), middle, document.createTextNode(suffix));
  stats.textContent = 'completing…';
  $('#fim-run').disabled = true;
  const started = performance.now();
  let firstAt;
  let usage;
  try {
    const res = await api('/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: modelId, prompt: prefix, suffix, max_tokens: Number($('#fim-max').value) || 48, temperature: 0.2, stream: true, stream_options: { include_usage: true } }),
    });
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).error?.message || `HTTP ${res.status}`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let at;
      while ((at = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        if (!data || data === '[DONE]') continue;
        const chunk = JSON.parse(data);
        const text = chunk.choices?.[0]?.text;
        if (text) {
          firstAt ??= performance.now();
          middle.textContent += text;
        }
        if (chunk.usage) usage = chunk.usage;
      }
    }
    const total = performance.now() - started;
    stats.textContent = `TTFT ${ms(firstAt === undefined ? null : firstAt - started)} · total ${ms(total)}${usage ? ` · prompt ${usage.prompt_tokens}, cached ${usage.prompt_tokens_details?.cached_tokens ?? 0}, generated ${usage.completion_tokens}` : ''}`;
  } catch (err) {
    stats.textContent = String(err.message || err);
  } finally {
    $('#fim-run').disabled = false;
  }
});

// ---------- live status ----------

/** Fills a <dl> with [term, text or node] rows. */
function summaryRows(dl, rows) {
  const nodes = [];
  for (const [term, value] of rows) {
    const dd = element('dd');
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    nodes.push(element('dt', '', term), dd);
  }
  dl.replaceChildren(...nodes);
}

function renderStatus(status) {
  if (status.model) $('#model').textContent = `${status.model.id} · ${status.model.architecture} · context ${status.model.contextSize}`;
  const slotCount = status.workers.reduce((n, w) => n + w.slots.length, 0);
  const busy = status.workers.reduce((n, w) => n + w.slots.filter((s) => s.busy).length, 0);
  const budget = status.savedPrefixes.limitBytesPerWorker * Math.max(status.workers.length, 1);
  const meter = element('meter');
  meter.min = 0;
  meter.max = Math.max(budget, 1);
  meter.value = status.savedPrefixes.bytes;
  meter.title = `${formatBytes(status.savedPrefixes.bytes)} of ${formatBytes(budget)}`;
  const savedCell = element('span', '', `${formatBytes(status.savedPrefixes.bytes)} of ${formatBytes(budget)} `);
  savedCell.append(meter);
  summaryRows($('#status-summary'), [
    ['Workers × slots', `${status.workers.length} × ${slotCount / Math.max(status.workers.length, 1)} (${busy} busy)`],
    ['Queue', `${status.queue.depth} of ${status.queue.limit}`],
    ['WebSocket sessions', `${status.sessions.open} open, ${status.sessions.resumable} resumable`],
    ['Saved prefixes', savedCell],
    ['Uptime', `${status.uptimeS} s`],
  ]);
  const rows = [];
  for (const worker of status.workers) {
    for (const slot of worker.slots) {
      const tr = element('tr');
      tr.dataset.busy = String(slot.busy);
      tr.append(
        element('td', '', `${worker.index}.${slot.slot}`),
        element('td', slot.busy ? 'state-busy' : 'state-idle', slot.busy ? 'busy' : 'idle'),
        element('td', '', String(slot.heldTokens)),
        element('td', '', slot.pinned === 'yours' ? slot.session : slot.pinned === 'other' ? 'another key' : '–'),
      );
      rows.push(tr);
    }
  }
  $('#slots tbody').replaceChildren(...rows);
  const c = status.cache;
  const reasons = (byReason) => Object.entries(byReason).map(([k, v]) => `${k} ${v}`).join(', ') || '–';
  summaryRows($('#cache'), [
    ['Hit rate', `${pct(c.hitRate)} of ${c.hits + c.misses} requests`],
    ['Prompt tokens cached', `${pct(c.cachedTokenShare)} of ${c.promptTokens}`],
    ['Hits', reasons(c.hitsByReason)],
    ['Misses', reasons(c.missesByReason)],
  ]);
  const latencyRow = (name, p) => {
    const tr = element('tr');
    tr.append(element('th', '', name), element('td', '', ms(p.p50)), element('td', '', ms(p.p90)), element('td', '', ms(p.p99)), element('td', '', String(p.n)));
    return tr;
  };
  $('#latency tbody').replaceChildren(latencyRow('Time to first token', status.latency.ttftMs), latencyRow('Inter-token', status.latency.interTokenMs));
}

let polling = false;
async function pollStatus() {
  if (polling || document.hidden) return;
  polling = true;
  try {
    const res = await api('/v1/flint/status');
    if (!res.ok) throw new Error(`status: HTTP ${res.status}`);
    renderStatus(await res.json());
    $('#status-error').hidden = true;
  } catch (err) {
    $('#status-error').hidden = false;
    $('#status-error').textContent = String(err.message || err);
  } finally {
    polling = false;
  }
}

// ---------- start ----------

async function start() {
  try {
    const res = await api('/v1/models');
    const models = await res.json();
    modelId = models.data?.[0]?.id || '';
    if (!modelId) $('#model').textContent = 'no model loaded yet';
  } catch (err) {
    $('#model').textContent = `cannot reach the server: ${err.message || err}`;
  }
  if ($('#key-dialog').open) $('#key-dialog').close();
  await pollStatus();
  setInterval(pollStatus, 1000);
  document.body.dataset.ready = 'true';
  $('#prompt').focus();
}

void start();
