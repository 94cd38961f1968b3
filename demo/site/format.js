// Small helpers shared by the page's modules.

/** Creates an element: `h('td', { class: 'x', onclick: f }, 'text', child)`. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

/** A time of day (`14:03:22`), or `fallback` without one. */
export function clock(ms, fallback = '—') {
  if (ms === null || ms === undefined) return fallback;
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** A JSON value as a short text for a table cell. */
export function show(value) {
  if (value === undefined) return '(none)';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** The path of a URL on this site. */
export function pathOf(url) {
  return new URL(url, location.href).pathname;
}
