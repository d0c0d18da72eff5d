/*
 * forms.js: formView(), a labelled, accessible form that checks what the browser can know and
 * shows an ApiError next to the field it names; and the field definitions several pages share
 * (orcidField, plainOrcid).
 */

import { ApiError } from './api.js';
import { h } from './dom.js';

export function normaliseField(name) {
  const last = String(name || '').split('.').pop();
  return last.replace(/[_-]/g, '').toLowerCase();
}

/*
 * formView({ id, fields, submitLabel, busyLabel, onSubmit, extra, className }) -> <form>
 *   fields: [{ name, label, type, autocomplete, required, minLength, maxLength, hint, value,
 *              options: [[value, text]] (select), rows (textarea), aliases: [api field names],
 *              labelNodes (checkbox label with links) }]
 *   type: text, email, password, url, date, textarea, select, checkbox.
 *   onSubmit(values) may throw an ApiError: its message is shown next to the field it names
 *   (aria-invalid + aria-describedby) or, without a known field, in the form's alert region.
 *   A string it returns is shown in the form's status region (role=status). `secondary` is a
 *   node placed after the submit button; `submitClass` replaces btn-primary (e.g. btn-danger).
 */
export function formView({ id, fields, submitLabel, busyLabel, onSubmit, extra, className, secondary, submitClass }) {
  const alert = h('div', { class: 'form-alert', role: 'alert', id: id + '-alert' });
  const status = h('div', { class: 'form-status', role: 'status', id: id + '-status' });
  const inputs = new Map();
  const errors = new Map();

  const rows = fields.map((f) => {
    const inputId = id + '-' + f.name;
    const errorId = inputId + '-error';
    const hintId = f.hint ? inputId + '-hint' : null;
    const type = f.type || 'text';
    let input;
    const common = {
      id: inputId,
      name: f.name,
      required: f.required !== false && type !== 'checkbox' ? true : (type === 'checkbox' && f.required === true),
      'aria-describedby': hintId || false,
    };
    if (type === 'textarea') {
      input = h('textarea', { ...common, rows: f.rows || 4, maxlength: f.maxLength || false, spellcheck: 'true' });
      input.value = f.value || '';
    } else if (type === 'select') {
      input = h('select', common, (f.options || []).map(([v, t]) => h('option', { value: v }, t)));
      input.value = f.value || '';
    } else if (type === 'checkbox') {
      input = h('input', { ...common, type: 'checkbox' });
      input.checked = Boolean(f.value);
    } else {
      input = h('input', {
        ...common,
        type,
        autocomplete: f.autocomplete || 'off',
        minlength: f.minLength || false,
        maxlength: f.maxLength || false,
        inputmode: f.inputmode || false,
        placeholder: f.placeholder || false,
        spellcheck: type === 'email' || type === 'password' || f.name === 'orcid' ? 'false' : false,
        autocapitalize: type === 'email' ? 'none' : false,
      });
      if (f.value !== undefined && f.value !== null) input.value = String(f.value);
    }
    const error = h('p', { class: 'field-error', id: errorId, hidden: true });
    inputs.set(f.name, { input, hintId, errorId, field: f });
    errors.set(f.name, error);
    if (type === 'checkbox') {
      return h('div', { class: 'field field-check' },
        h('div', { class: 'check-row' }, input, h('label', { for: inputId }, f.labelNodes || f.label)),
        f.hint ? h('p', { class: 'field-hint', id: hintId }, f.hint) : null,
        error);
    }
    return h('div', { class: 'field' },
      h('label', { for: inputId }, f.label, f.required === false && !f.noOptionalMark ? h('span', { class: 'optional' }, ' (optional)') : null),
      f.hint ? h('p', { class: 'field-hint', id: hintId }, f.hint) : null,
      input,
      error);
  });

  const button = h('button', { type: 'submit', class: 'btn ' + (submitClass || 'btn-primary') }, submitLabel);
  const form = h('form', { id, class: 'form' + (className ? ' ' + className : ''), novalidate: true },
    alert, status, rows, extra || null, h('div', { class: 'form-actions' }, button, secondary || null));

  function clearErrors() {
    alert.textContent = '';
    alert.classList.remove('is-visible');
    status.textContent = '';
    status.classList.remove('is-visible');
    for (const [name, { input, hintId }] of inputs) {
      input.removeAttribute('aria-invalid');
      if (hintId) input.setAttribute('aria-describedby', hintId);
      else input.removeAttribute('aria-describedby');
      const error = errors.get(name);
      error.textContent = '';
      error.hidden = true;
    }
  }

  function showFieldError(name, message) {
    const entry = inputs.get(name);
    const error = errors.get(name);
    error.textContent = message;
    error.hidden = false;
    entry.input.setAttribute('aria-invalid', 'true');
    entry.input.setAttribute('aria-describedby',
      entry.hintId ? entry.errorId + ' ' + entry.hintId : entry.errorId);
  }

  function showAlert(message, requestId) {
    alert.textContent = '';
    alert.append(h('p', null, message));
    if (requestId) alert.append(h('p', { class: 'request-id' }, 'Reference: ' + requestId));
    alert.classList.add('is-visible');
  }

  /* Checks only what the browser can know for sure; the service decides the rest. */
  function validate(values) {
    const problems = [];
    for (const [name, { field }] of inputs) {
      const v = values[name];
      const type = field.type || 'text';
      if (type === 'checkbox') {
        if (field.required === true && !v) problems.push([name, field.requiredMessage || 'Please tick this box to continue.']);
      } else if (field.required !== false && v.trim() === '') {
        problems.push([name, field.label + ' is required.']);
      } else if (type === 'email' && v !== '' && !/^[^\s@]+@[^\s@]+$/.test(v.trim())) {
        problems.push([name, 'Enter an e-mail address like name@example.org.']);
      } else if (field.minLength && v !== '' && v.length < field.minLength) {
        problems.push([name, field.label + ' must be at least ' + field.minLength + ' characters.']);
      } else if (field.match && v !== values[field.match]) {
        problems.push([name, field.matchMessage || 'The two entries do not match.']);
      } else if (field.pattern && v !== '' && !field.pattern.test(v)) {
        problems.push([name, field.patternMessage]);
      }
    }
    return problems;
  }

  function fieldFor(apiField) {
    const want = normaliseField(apiField);
    for (const [name, { field }] of inputs) {
      if (normaliseField(name) === want) return name;
      if ((field.aliases || []).some((a) => normaliseField(a) === want)) return name;
    }
    return undefined;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return;
    clearErrors();
    const values = {};
    for (const [name, { input, field }] of inputs) {
      if (field.type === 'checkbox') values[name] = input.checked;
      else values[name] = field.type === 'password' || field.type === 'textarea' ? input.value : input.value.trim();
    }
    const problems = validate(values);
    if (problems.length) {
      for (const [name, message] of problems) showFieldError(name, message);
      inputs.get(problems[0][0]).input.focus();
      return;
    }
    form.setAttribute('aria-busy', 'true');
    button.disabled = true;
    const label = button.textContent;
    if (busyLabel) button.textContent = busyLabel;
    try {
      const done = await onSubmit(values, form);
      if (typeof done === 'string' && done && document.contains(form)) {
        status.textContent = '';
        status.append(h('p', null, done));
        status.classList.add('is-visible');
      }
    } catch (err) {
      const known = err instanceof ApiError;
      const message = known ? err.message : 'Something went wrong. Please try again.';
      const target = known && err.field ? fieldFor(err.field) : undefined;
      if (known && err.code === 'consent_required') {
        showAlert('Please accept the updated privacy notice first.', '');
      } else if (target) {
        showFieldError(target, message);
        inputs.get(target).input.focus();
      } else {
        showAlert(message, known ? err.requestId : '');
        alert.setAttribute('tabindex', '-1');
        alert.focus();
      }
      if (!known) console.error(err);
    } finally {
      form.removeAttribute('aria-busy');
      button.disabled = false;
      button.textContent = label;
    }
  });

  form.inputs = inputs;
  return form;
}

const ORCID_HINT = 'Your 16-character ORCID iD, like 0000-0002-1825-0097 (the last character may be X).';
const ORCID_RE = /^(https?:\/\/orcid\.org\/)?\d{4}-\d{4}-\d{4}-\d{3}[\dX]$/i;

export function orcidField(value) {
  return {
    name: 'orcid', label: 'ORCID iD', required: false, hint: ORCID_HINT, value: value || '',
    placeholder: '0000-0000-0000-0000', maxLength: 40, autocomplete: 'off',
    pattern: ORCID_RE, patternMessage: 'Enter an ORCID iD in the form 0000-0000-0000-0000.',
  };
}

export function plainOrcid(v) {
  return String(v || '').replace(/^https?:\/\/orcid\.org\//i, '').toUpperCase();
}
