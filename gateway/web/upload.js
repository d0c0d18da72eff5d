/*
 * upload.js: the file upload widget (a file picker and a drop zone, a progress bar with bytes
 * and percent, clear errors for a refused type or size). It streams the file as the raw body of
 * PUT /api/files?kind=&name= through XMLHttpRequest, whose upload progress events drive the bar;
 * the gateway forwards the body to the files service in chunks, which decides the type from the
 * content and answers 201 with the stored file's description.
 *
 *   uploadWidget({ kind: 'manuscript', label: 'Manuscript', onUploaded(info) { ... } })
 *
 * returns the widget's element. Forms that need a file (submissions, revisions, reviews) embed
 * one and keep the id it hands to onUploaded. No inline styles (the CSP forbids them): the bar
 * is a <progress> element with role=progressbar and aria-valuenow kept current.
 */

/* What each kind takes, for the hint and the picker (the service decides for real). */
export const KINDS = {
  manuscript: {
    accept: '.pdf,.doc,.docx,.odt,.rtf,.txt,.tex,.zip,application/pdf',
    hint: 'PDF, Word (.doc, .docx), OpenDocument (.odt), RTF, plain text, TeX or a LaTeX .zip',
    maxBytes: 64 * 1024 * 1024,
  },
  image: {
    accept: '.png,.jpg,.jpeg,.webp,image/png,image/jpeg,image/webp',
    hint: 'PNG, JPEG or WebP (SVG is not accepted)',
    maxBytes: 10 * 1024 * 1024,
  },
  attachment: {
    accept: '',
    hint: 'A document or an image',
    maxBytes: 64 * 1024 * 1024,
  },
};

let seq = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2).toLowerCase(), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/* 1536 -> "1.5 KiB" (binary units, the way the limits are set). */
export function formatBytes(n) {
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[u];
}

/* The sentence for a refused upload. */
function errorText(status, body, limit) {
  const message = body && body.error && body.error.message ? body.error.message : '';
  if (status === 415) return 'This type of file is not accepted here' + (message ? ': ' + message : '.');
  if (status === 413) return 'The file is too large' + (limit ? ' (the limit is ' + formatBytes(limit) + ')' : '') + '.';
  if (status === 401) return 'Your session has ended: log in again, then upload the file.';
  if (status === 0) return 'The upload was interrupted. Check your connection and try again.';
  return message || 'The upload failed (' + status + '). Please try again.';
}

export function uploadWidget({ kind = 'manuscript', label = 'File', onUploaded } = {}) {
  const spec = KINDS[kind] || KINDS.attachment;
  const id = 'upload-' + ++seq;
  let xhr = null;

  const input = el('input', {
    type: 'file', id: id + '-input', class: 'upload-input', name: 'file',
    accept: spec.accept || null, 'aria-describedby': id + '-hint',
  });
  const progress = el('progress', {
    class: 'upload-bar', max: '100', value: '0', role: 'progressbar',
    'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', 'aria-labelledby': id + '-status',
  });
  const status = el('p', { class: 'upload-status', id: id + '-status', 'aria-live': 'polite' });
  const cancel = el('button', { type: 'button', class: 'btn btn-secondary btn-small upload-cancel' }, 'Cancel');
  const progressBox = el('div', { class: 'upload-progress', hidden: true }, progress, status, cancel);
  const error = el('p', { class: 'upload-error', role: 'alert', hidden: true });
  const done = el('p', { class: 'upload-done', hidden: true });
  const zone = el('div', { class: 'upload-zone', 'data-state': 'idle' },
    el('p', { class: 'upload-zone-text' }, 'Drag and drop a file here, or choose one:'),
    el('label', { for: id + '-input', class: 'upload-label' }, label),
    input,
    el('p', { class: 'field-hint', id: id + '-hint' }, spec.hint + '; up to ' + formatBytes(spec.maxBytes) + '.'));
  const root = el('div', { class: 'upload', 'data-kind': kind }, zone, progressBox, error, done);

  function setProgress(sent, total) {
    const pct = total > 0 ? Math.min(100, Math.floor((sent * 100) / total)) : 100;
    progress.value = pct;
    progress.setAttribute('aria-valuenow', String(pct));
    progress.setAttribute('aria-valuetext', pct + ' percent');
    status.textContent = formatBytes(sent) + ' of ' + formatBytes(total) + ' (' + pct + ' %)';
  }

  function showError(text) {
    error.textContent = text;
    error.hidden = false;
    zone.setAttribute('data-state', 'error');
  }

  function reset() {
    error.hidden = true;
    done.hidden = true;
    done.replaceChildren();
    zone.setAttribute('data-state', 'idle');
  }

  function start(file) {
    reset();
    if (!file) return;
    if (file.size > spec.maxBytes) {
      showError('The file is too large: ' + formatBytes(file.size) + ', the limit is ' + formatBytes(spec.maxBytes) + '.');
      return;
    }
    const q = new URLSearchParams({ kind, name: file.name });
    xhr = new XMLHttpRequest();
    xhr.open('PUT', '/api/files?' + q.toString());
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (e) => setProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      progressBox.hidden = true;
      input.disabled = false;
      if (xhr.status === 201 && body) {
        setProgress(file.size, file.size);
        zone.setAttribute('data-state', 'done');
        done.replaceChildren('Uploaded ',
          el('a', { href: '/api/files/' + encodeURIComponent(body.id), class: 'upload-link', download: body.name || file.name }, body.name || file.name),
          ' (' + formatBytes(Number(body.size)) + ', ' + body.contentType + ').');
        done.hidden = false;
        root.setAttribute('data-file-id', body.id);
        if (onUploaded) onUploaded(body);
      } else {
        showError(errorText(xhr.status, body, spec.maxBytes));
      }
      xhr = null;
    });
    xhr.addEventListener('error', () => {
      progressBox.hidden = true;
      input.disabled = false;
      showError(errorText(0));
      xhr = null;
    });
    xhr.addEventListener('abort', () => {
      progressBox.hidden = true;
      input.disabled = false;
      status.textContent = 'Upload cancelled.';
      xhr = null;
    });
    setProgress(0, file.size);
    progressBox.hidden = false;
    input.disabled = true;
    zone.setAttribute('data-state', 'uploading');
    xhr.send(file);
  }

  input.addEventListener('change', () => start(input.files && input.files[0]));
  cancel.addEventListener('click', () => {
    if (xhr) xhr.abort();
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.setAttribute('data-state', 'over');
  });
  zone.addEventListener('dragleave', () => zone.setAttribute('data-state', 'idle'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    const files = e.dataTransfer && e.dataTransfer.files;
    if (!files || files.length === 0) return;
    if (files.length > 1) {
      showError('Drop one file at a time.');
      return;
    }
    start(files[0]);
  });
  return root;
}
