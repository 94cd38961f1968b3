// The concept map: every change is a plain fetch; the outbox, registered as
// the README says, sends it or queues it; the rest of the page shows what
// the outbox is doing.
import { Outbox } from '/outbox/outbox.js';
import { MapModel } from './model.js';
import { renderMap, stateClass } from './map.js';
import { Badge } from './badge.js';
import { Inspector } from './inspector.js';
import { ConflictDialog } from './conflicts.js';
import { Controls } from './controls.js';
import { h, pathOf, show } from './format.js';

const $ = (selector) => document.querySelector(selector);

function notify(message) {
  const notice = h('p', {}, message, h('button', { type: 'button', 'aria-label': 'Dismiss', onclick: () => notice.remove() }, '×'));
  $('#notices').append(notice);
  setTimeout(() => notice.remove(), 12000);
}

let outbox;
try {
  outbox = await Outbox.register('/sw.js');
} catch (error) {
  $('#badge .connection-text').textContent = 'Outbox not running';
  notify(error.message);
  throw error;
}

const model = new MapModel(outbox);
const badge = new Badge($('#badge'));
const inspector = new Inspector($('#inspector'), outbox, { onResolve: (id) => dialog.ask(id), onError: notify });
const dialog = new ConflictDialog($('#conflict-dialog'), model, {
  describe,
  showValue: (field, value) => ((field === 'from' || field === 'to') && typeof value === 'string' ? nameOf(value) : show(value)),
  onError: notify,
});
const controls = new Controls($('#controls'), { model, outbox, notify });
let selected = null;

outbox.addEventListener('conflict', (event) => dialog.ask(event.detail.entry.id));
model.addEventListener('change', scheduleRender);
model.addEventListener('status', renderBadge);
model.addEventListener('notice', (event) => notify(event.detail));
window.addEventListener('online', () => model.refresh());
window.addEventListener('offline', renderBadge);

// ---- the user's actions ------------------------------------------------------

function onSubmit(selector, action) {
  $(selector).addEventListener('submit', (event) => {
    event.preventDefault();
    action(event.currentTarget).catch((error) => notify(error.message));
  });
}

onSubmit('#concept-form', async (form) => {
  const name = form.elements.name.value.trim();
  if (!name) return;
  form.reset();
  await model.addConcept(name);
});

onSubmit('#connect-form', async (form) => {
  const { from, to, label, weight } = form.elements;
  if (from.value === to.value) throw new Error('A connection joins two different concepts.');
  await model.connect(from.value, to.value, label.value.trim(), Number(weight.value));
  label.value = '';
});

$('#save-checkpoint').addEventListener('click', () => model.saveCheckpoint().catch((error) => notify(error.message)));

onSubmit('#selection form[data-kind="concepts"]', (form) => model.renameConcept(selected.id, form.elements.name.value.trim()));
onSubmit('#selection form[data-kind="connections"]', (form) =>
  model.editConnection(selected.id, form.elements.label.value.trim(), Number(form.elements.weight.value)));

for (const button of document.querySelectorAll('#selection [data-action="delete"]')) {
  button.addEventListener('click', () => {
    const { kind, id } = selected;
    select(null);
    const done = kind === 'concepts' ? model.deleteConcept(id) : model.deleteConnection(id);
    done.catch((error) => notify(error.message));
  });
}

/** Selects an item and fills its editor. */
function select(kind, id) {
  selected = kind ? { kind, id } : null;
  const item = kind ? model.item(kind, id) : null;
  for (const form of document.querySelectorAll('#selection form')) form.hidden = !item || form.dataset.kind !== kind;
  $('#selection .none').hidden = Boolean(item);
  if (kind === 'concepts' && item) {
    $('#selection form[data-kind="concepts"]').elements.name.value = item.name;
  } else if (kind === 'connections' && item) {
    const form = $('#selection form[data-kind="connections"]');
    form.elements.label.value = item.label;
    form.elements.weight.value = item.weight;
    form.querySelector('.ends').textContent = ends(item);
  }
  scheduleRender();
}

// ---- showing it ---------------------------------------------------------------

let renderScheduled = false;
function scheduleRender() {
  if (renderScheduled) return;
  renderScheduled = true;
  setTimeout(() => {
    renderScheduled = false;
    render();
  }, 0);
}

function render() {
  const concepts = model.view('concepts');
  const connections = model.view('connections');
  const checkpoints = model.view('checkpoints');
  if (selected && !model.item(selected.kind, selected.id)) select(null);

  renderMap($('#map'), { concepts, connections, selected, onSelect: select });
  $('#concept-list').replaceChildren(...concepts.map((c) => listItem('concepts', c, c.name)));
  $('#connection-list').replaceChildren(...connections.map((c) => listItem('connections', c, `${ends(c)}: ${c.label} (${c.weight})`)));
  $('#checkpoint-list').replaceChildren(...checkpoints.map((c) => h('li', { class: stateClass(c) },
    `${c.name}: ${c.concepts?.length ?? 0} concepts, ${c.connections?.length ?? 0} connections`, tag(c))));

  const live = concepts.filter((c) => !c.$deleting);
  for (const name of ['from', 'to']) {
    const chooser = $('#connect-form').elements[name];
    const chosen = chooser.value;
    chooser.replaceChildren(...live.map((c) => h('option', { value: c.id }, c.name)));
    if (live.some((c) => c.id === chosen)) chooser.value = chosen;
  }
  const { from, to } = $('#connect-form').elements;
  if (from.value === to.value && live.length > 1) to.value = live.find((c) => c.id !== from.value).id;
  $('#connect-form button').disabled = live.length < 2;

  controls.render(live, connections.filter((c) => !c.$deleting), ends);
  inspector.render([...model.entries.values()]);
  renderBadge();
}

function renderBadge() {
  badge.render(model.status, { browserOnline: navigator.onLine, serverReachable: model.reachable });
}

function listItem(kind, item, text) {
  const current = selected && selected.kind === kind && selected.id === item.id;
  return h('li', { class: [stateClass(item), item.$deleting ? 'deleting' : ''].join(' ').trim() },
    h('button', { type: 'button', class: 'item', 'aria-pressed': String(Boolean(current)), onclick: () => select(kind, item.id) }, text),
    tag(item));
}

/** The queue state of an item, as a small tag. */
function tag(item) {
  if (!item.$state) return null;
  const state = item.$state.replace('_', ' ');
  return h('span', { class: `tag ${stateClass(item)}` }, item.$deleting ? `deleting, ${state}` : state);
}

function nameOf(conceptId) {
  return model.item('concepts', conceptId)?.name ?? conceptId;
}

function ends(connection) {
  return `${nameOf(connection.from)} → ${nameOf(connection.to)}`;
}

/** Names the item an entry changes, for the conflict dialog. */
function describe(entry) {
  const [, , kind, id] = pathOf(entry.url).split('/');
  const item = model.item(kind, decodeURIComponent(id ?? ''));
  if (kind === 'concepts') return `concept ${item?.name ?? id}`;
  if (kind === 'connections') return `connection ${item ? ends(item) : id}`;
  return `${entry.kind ?? 'item'} ${id}`;
}

// ---- start ----------------------------------------------------------------

// While the server cannot be reached, look again now and then; when it is
// back, drain at once instead of waiting for the worker's backoff.
setInterval(async () => {
  if (model.reachable) return;
  if (await model.refresh()) outbox.flush().catch((error) => notify(`flush: ${error.message}`));
}, 5000);

render();
model.syncEntries();
model.refresh();
controls.start().catch((error) => notify(`The control strip cannot reach the server's control port: ${error.message}`));
