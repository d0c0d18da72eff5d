/*
 * session.js: who is signed in. `state` is the app's one shared object (the site, the user,
 * whether consent is owed, the flash for the next page); refreshMe() asks GET /api/me and
 * setUser() records the answer, applies the person's theme and tells the listeners added with
 * onUserChange() (app.js redraws the header then). Imports only api.js.
 */

import { api, ApiError, EP } from './api.js';

export const state = {
  site: { name: 'EasyJournal' },
  user: null, /* the signed-in user (GET /api/me), or null */
  consentRequired: false, /* the user owes consent to a newer consent text */
  devMail: null, /* null: not asked yet; true/false: the dev mail API answers (admins only) */
  flash: null, /* { text, kind } shown once after the next navigation */
};

export const ROLES = ['author', 'reviewer', 'editor', 'admin'];
export const THEMES = [
  ['light', 'Light'],
  ['dark', 'Dark'],
  ['journal', 'Journal'],
  ['modern', 'Modern'],
  ['elegant', 'Elegant'],
  ['high-contrast', 'High contrast'],
];

const userListeners = [];

/* Calls `fn` after every setUser (sign-in, sign-out, a changed profile or role). */
export function onUserChange(fn) {
  userListeners.push(fn);
}

/* The signed-in user, or null when nobody is (401). Other failures are rethrown. Keeps
 * state.user, state.consentRequired and the theme in step with the answer. */
export async function refreshMe() {
  let data;
  try {
    data = await api('GET', EP.me);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setUser(null, false);
      return null;
    }
    throw err;
  }
  const user = data && data.user ? data.user : null;
  setUser(user, Boolean(data && data.consentRequired));
  return user;
}

export function setUser(user, consentRequired) {
  const before = state.user ? state.user.id + '|' + rolesOf(state.user).join(',') : '';
  state.user = user;
  state.consentRequired = Boolean(user) && consentRequired;
  const after = user ? user.id + '|' + rolesOf(user).join(',') : '';
  if (before !== after) state.devMail = null;
  applyTheme(user ? user.theme : '');
  for (const fn of userListeners) fn();
}

export function rolesOf(user) {
  return user && Array.isArray(user.roles) ? user.roles : [];
}

export function hasRole(role) {
  return rolesOf(state.user).includes(role);
}

/* The theme preference as data-theme on <html>; none = follow the system (prefers-color-scheme). */
function applyTheme(theme) {
  const root = document.documentElement;
  if (THEMES.some(([value]) => value === theme)) root.dataset.theme = theme;
  else delete root.dataset.theme;
}
