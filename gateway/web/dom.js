/*
 * dom.js: building the page. h() makes elements (all text through text nodes, never
 * innerHTML; no inline styles, which the CSP forbids); renderSafeHtml() shows the API's
 * Markdown-as-HTML through an allow-list; linkify(), formatDate(); and the blocks every page is
 * made of: pageHeader(), section(), messageBox(). Imports nothing.
 */

/* h('a', { href: '/x', class: 'btn' }, 'text', child...): attributes are set with
 * setAttribute (never "style": the CSP forbids inline styles), "on<event>" keys add listeners,
 * and strings become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'style') throw new Error('inline styles are not allowed; use a class');
    if (key === 'class') el.className = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function setText(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

/* Plain text with its http(s) URLs as links: text nodes and anchors only. */
export function linkify(text) {
  const out = [];
  const re = /\bhttps?:\/\/[^\s<>"']+/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    let url = m[0];
    /* Sentence punctuation after a URL is not part of it. */
    const trail = /[.,;:!?)\]]+$/.exec(url);
    if (trail) url = url.slice(0, -trail[0].length);
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    out.push(h('a', { href: url, class: 'mail-link', rel: 'noopener noreferrer' }, url));
    last = m.index + url.length;
    re.lastIndex = last;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

/* The API's HTML (libcmark, safe mode) into `container`. cmark writes well-formed markup, so it
 * is parsed as XML: inert (XML elements have no event handlers, nothing runs or loads) and then
 * rebuilt node by node from an allow-list of elements and attributes, so even a changed server
 * could not bring script, styles or handlers in. Markup that does not parse is shown as text. */
const SAFE_TAGS = new Set(['p', 'br', 'hr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'em',
  'strong', 'code', 'pre', 'blockquote', 'a', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'del', 'sup', 'sub']);

export function renderSafeHtml(container, html) {
  const source = String(html || '');
  const doc = new DOMParser().parseFromString('<root>' + source + '</root>', 'application/xml');
  if (doc.getElementsByTagName('parsererror').length || !doc.documentElement) {
    container.replaceChildren(...source.replace(/<[^>]*>/g, ' ').split(/\n{2,}/)
      .map((t) => t.trim()).filter(Boolean).map((t) => h('p', null, t)));
    return;
  }
  const copy = (node) => {
    if (node.nodeType === Node.TEXT_NODE || node.nodeType === Node.CDATA_SECTION_NODE) {
      return document.createTextNode(node.nodeValue);
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return null;
    const kids = [...node.childNodes].map(copy).flat().filter(Boolean);
    const tag = String(node.localName).toLowerCase();
    if (!SAFE_TAGS.has(tag)) return kids.length ? kids : null;
    /* The page's own title is an h2: the document's headings go below it. */
    const heading = /^h([1-6])$/.exec(tag);
    const el = document.createElement(heading ? 'h' + Math.min(6, Number(heading[1]) + 2) : tag);
    if (tag === 'a') {
      const href = node.getAttribute('href') || '';
      if (/^(https?:|mailto:|\/(?![/\\])|#)/i.test(href)) el.setAttribute('href', href);
      if (/^https?:/i.test(href)) el.setAttribute('rel', 'noopener noreferrer');
    }
    if (tag === 'ol' && /^\d+$/.test(node.getAttribute('start') || '')) {
      el.setAttribute('start', node.getAttribute('start'));
    }
    el.append(...kids);
    return el;
  };
  container.replaceChildren(...[...doc.documentElement.childNodes].map(copy).flat().filter(Boolean));
}

export function formatDate(ms, withTime) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n <= 0) return '';
  try {
    const opts = withTime ? { dateStyle: 'medium', timeStyle: 'short' } : { dateStyle: 'long' };
    return new Intl.DateTimeFormat(undefined, opts).format(new Date(n));
  } catch {
    return new Date(n).toISOString();
  }
}

export function pageHeader(title, lead, id) {
  return h('div', { class: 'page-header' },
    h('h2', { class: 'page-title', tabindex: '-1', id: id || false }, title),
    lead ? h('p', { class: 'lead' }, lead) : null);
}

export function section(id, title, ...content) {
  return h('section', { class: 'section', 'aria-labelledby': id + '-title', id },
    h('h3', { id: id + '-title' }, title), content);
}

/* A message box in a page: role=alert for errors, role=status for the rest; `quiet` leaves the
 * role out, for a box placed inside a region that already is a live region. */
export function messageBox(kind, text, extra, quiet) {
  return h('div', { class: 'message message-' + kind, role: quiet ? false : kind === 'error' ? 'alert' : 'status' },
    h('p', null, text), extra || null);
}
