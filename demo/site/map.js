// Draws the map as SVG: concepts on an ellipse, connections as arrows with
// their label and weight. Queued items are dashed, items in trouble red.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 380;

function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  element.append(...children);
  return element;
}

/** A CSS class for an item's queue state: `queued`, `conflict`, `failed`, … */
export function stateClass(item) {
  if (!item.$state) return 'settled';
  if (item.$state === 'conflict' || item.$state === 'failed' || item.$state === 'blocked') return item.$state;
  return 'queued';
}

function arrowLook(item) {
  const state = stateClass(item);
  return state === 'settled' || state === 'queued' ? state : 'trouble';
}

/** Replaces the drawing in `svg`; `onSelect(kind, id)` is called on a click. */
export function renderMap(svg, { concepts, connections, selected, onSelect }) {
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  // One arrowhead per look, as a marker cannot take its line's colour.
  const defs = s('defs', {}, ...['settled', 'queued', 'trouble'].map((look) =>
    s('marker', { id: `arrow-${look}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 11, markerHeight: 11, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: `arrowhead ${look}` }))));
  const children = [defs];
  if (concepts.length === 0) {
    children.push(s('text', { x: WIDTH / 2, y: HEIGHT / 2, class: 'empty' }, 'No concepts yet: add one below.'));
  }

  const position = new Map();
  const count = concepts.length;
  concepts.forEach((concept, index) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * index) / Math.max(count, 1);
    const radius = count === 1 ? 0 : 1;
    position.set(concept.id, {
      x: WIDTH / 2 + radius * (WIDTH / 2 - 110) * Math.cos(angle),
      y: HEIGHT / 2 + radius * (HEIGHT / 2 - 50) * Math.sin(angle),
      width: 24 + 7.5 * String(concept.name ?? '').length,
    });
  });

  const isSelected = (kind, id) => selected && selected.kind === kind && selected.id === id;
  for (const connection of connections) {
    const from = position.get(connection.from);
    const to = position.get(connection.to);
    if (!from || !to) continue;
    const [x1, y1] = edgePoint(from, to);
    const [x2, y2] = edgePoint(to, from);
    const classes = ['connection', stateClass(connection)];
    if (connection.$deleting) classes.push('deleting');
    if (isSelected('connections', connection.id)) classes.push('selected');
    const weight = Number(connection.weight) || 1;
    const caption = `${connection.label} · ${weight}`;
    children.push(s('g', {
      class: classes.join(' '),
      'data-id': connection.id,
      onclick: () => onSelect('connections', connection.id),
    },
    s('line', { x1, y1, x2, y2, 'stroke-width': 1 + weight, 'marker-end': `url(#arrow-${arrowLook(connection)})` }),
    s('rect', { x: (x1 + x2) / 2 - 4 - 3.2 * caption.length, y: (y1 + y2) / 2 - 10, width: 8 + 6.4 * caption.length, height: 18, rx: 4, class: 'caption-box' }),
    s('text', { x: (x1 + x2) / 2, y: (y1 + y2) / 2 + 3, class: 'caption' }, caption)));
  }

  for (const concept of concepts) {
    const { x, y, width } = position.get(concept.id);
    const classes = ['concept', stateClass(concept)];
    if (concept.$deleting) classes.push('deleting');
    if (isSelected('concepts', concept.id)) classes.push('selected');
    children.push(s('g', {
      class: classes.join(' '),
      'data-id': concept.id,
      onclick: () => onSelect('concepts', concept.id),
    },
    s('rect', { x: x - width / 2, y: y - 18, width, height: 36, rx: 18 }),
    s('text', { x, y: y + 5 }, concept.name ?? '')));
  }
  svg.replaceChildren(...children);
}

/** Where the line from `a`'s centre towards `b` leaves `a`'s box. */
function edgePoint(a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const k = Math.min(1, Math.abs(a.width / 2 / dx), Math.abs(18 / dy));
  return [a.x + dx * k, a.y + dy * k];
}
