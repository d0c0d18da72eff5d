/*
 * pager.js: a list that pages with Previous/Next over the API's keyset cursors.
 */

import { h, messageBox } from './dom.js';

/*
 * pager({ load, renderItems }) -> { el, reload }: keyset paging with Previous/Next.
 *   load(cursor) resolves to { items, page: { nextCursor, total } }.
 */
export function pager({ id, load, renderItems, label }) {
  let cursors = ['']; /* cursors[i] loads page i */
  let offsets = [0]; /* offsets[i]: how many items come before page i */
  let index = 0;
  let seq = 0;
  const body = h('div', { class: 'pager-body', id: id + '-body' });
  const info = h('p', { class: 'pager-info muted', role: 'status', id: id + '-info' });
  const prev = h('button', { type: 'button', class: 'btn btn-secondary btn-small', id: id + '-prev' }, '← Previous');
  const next = h('button', { type: 'button', class: 'btn btn-secondary btn-small', id: id + '-next' }, 'Next →');
  const nav = h('nav', { class: 'pager', 'aria-label': label + ' pages' }, prev, info, next);
  const el = h('div', { class: 'pager-wrap' }, body, nav);

  async function show() {
    const mine = ++seq;
    el.setAttribute('aria-busy', 'true');
    prev.disabled = true;
    next.disabled = true;
    try {
      const r = await load(cursors[index]);
      if (mine !== seq) return;
      const items = r.items || [];
      body.replaceChildren(renderItems(items));
      const nextCursor = r.page && r.page.nextCursor ? r.page.nextCursor : '';
      cursors = cursors.slice(0, index + 1);
      offsets = offsets.slice(0, index + 1);
      if (nextCursor) {
        cursors.push(nextCursor);
        offsets.push(offsets[index] + items.length);
      }
      prev.disabled = index === 0;
      next.disabled = !nextCursor;
      const total = r.page && Number(r.page.total) ? Number(r.page.total) : 0;
      const first = offsets[index] + 1;
      info.textContent = 'Page ' + (index + 1) +
        (items.length ? ' · ' + first + '–' + (offsets[index] + items.length) + (total ? ' of ' + total : '') : ' · nothing found');
    } catch (err) {
      if (mine !== seq) return;
      body.replaceChildren(messageBox('error', err.message));
      info.textContent = '';
      prev.disabled = index === 0;
    } finally {
      if (mine === seq) el.removeAttribute('aria-busy');
    }
  }
  prev.addEventListener('click', () => { if (index > 0) { index--; show(); } });
  next.addEventListener('click', () => { if (cursors[index + 1]) { index++; show(); } });
  return {
    el,
    reload() {
      cursors = [''];
      offsets = [0];
      index = 0;
      return show();
    },
  };
}
