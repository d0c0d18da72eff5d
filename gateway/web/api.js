/*
 * api.js: the gateway's JSON API, the only module that talks to it (besides the file
 * transfers in upload.js and the export download in pages/account.js).
 *   EP        every API path the app calls, in one table (paths with an id are functions).
 *   api()     fetch with JSON in and out; error answers become ApiError.
 *   CSRF      every state-changing call carries Content-Type: application/json, which the
 *             gateway requires and a cross-site form cannot send; cookies stay same-origin.
 *   qs()      a query string from an object, leaving out empty values.
 * Imports nothing: every other module may import it. A 403 consent_required is handed to the
 * handler set with onConsentRequired() (app.js opens the consent prompt).
 */

let consentRequiredHandler = () => {};

/* Sets what a 403 consent_required answer triggers, besides rejecting with the ApiError. */
export function onConsentRequired(handler) {
  consentRequiredHandler = handler;
}

/* Every API path the app calls. Paths with an id are functions. */
export const EP = {
  site: '/api/site',
  me: '/api/me',
  register: '/api/auth/register',
  login: '/api/auth/login',
  logout: '/api/auth/logout',
  verifyEmail: '/api/auth/verify',
  resendVerification: '/api/auth/verify/resend',
  forgotPassword: '/api/auth/password/forgot',
  resetPassword: '/api/auth/password/reset',
  acceptInvitation: '/api/auth/invitation/accept',
  myInvitations: '/api/me/invitations',
  acceptRoleInvitation: (id) => '/api/me/invitations/' + encodeURIComponent(id) + '/accept',
  declineRoleInvitation: (id) => '/api/me/invitations/' + encodeURIComponent(id) + '/decline',
  confirmEmail: '/api/auth/email/confirm',
  confirmErasure: '/api/auth/erasure/confirm',
  profile: '/api/me',
  changePassword: '/api/me/password',
  changeEmail: '/api/me/email',
  exportData: '/api/me/export',
  requestErasure: '/api/me/erasure',
  consent: '/api/consent',
  acceptConsent: '/api/consent/accept',
  withdrawConsent: '/api/consent/withdraw',
  privacy: '/api/privacy',
  users: '/api/admin/users',
  user: (id) => '/api/admin/users/' + encodeURIComponent(id),
  userRole: (id, role) => '/api/admin/users/' + encodeURIComponent(id) + '/roles/' + encodeURIComponent(role),
  deactivate: (id) => '/api/admin/users/' + encodeURIComponent(id) + '/deactivate',
  reactivate: (id) => '/api/admin/users/' + encodeURIComponent(id) + '/reactivate',
  eraseUser: (id) => '/api/admin/users/' + encodeURIComponent(id) + '/erase',
  activity: '/api/admin/activity',
  publishConsent: '/api/admin/consent',
  consentStats: '/api/admin/consent',
  setPrivacy: '/api/admin/privacy',
  mailTemplates: '/api/admin/mail-templates',
  mailTemplate: (key) => '/api/admin/mail-templates/' + encodeURIComponent(key),
  devMail: '/api/admin/dev-mail',
};

/* An error answer from the gateway ({"error":{"code","message","field","requestId"}}), a
 * network failure (status 0) or an answer that is not the JSON we expect. */
export class ApiError extends Error {
  constructor(status, code, message, field, requestId, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || '';
    this.requestId = requestId || '';
    this.retryAfter = retryAfter || 0;
  }
}

/* Calls the gateway's JSON API on the same origin. Resolves to the parsed body (null when the
 * answer has none); rejects with an ApiError. A 403 consent_required also opens the consent
 * prompt. Every state-changing call carries Content-Type: application/json, which the gateway
 * requires (a cross-site form cannot send it). */
export async function api(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body === undefined ? {} : body);
  }

  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }

  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (res.ok) {
    if (data === undefined) {
      throw new ApiError(res.status, 'bad_response', 'The server sent an answer this page cannot read.');
    }
    return data;
  }
  const e = data && typeof data === 'object' && data.error ? data.error : {};
  const retryAfter = Number(res.headers.get('Retry-After')) || 0;
  let message = typeof e.message === 'string' && e.message ? e.message : fallbackMessage(res.status);
  if (res.status === 429 && retryAfter) message = tooManyMessage(message, retryAfter);
  const err = new ApiError(res.status, e.code || 'http_' + res.status, message, e.field, e.requestId, retryAfter);
  if (err.status === 403 && err.code === 'consent_required') {
    consentRequiredHandler();
  }
  throw err;
}

function tooManyMessage(message, seconds) {
  if (/\d/.test(message)) return message; /* the service already says how long */
  const wait = seconds >= 90 ? Math.ceil(seconds / 60) + ' minutes' : seconds + ' seconds';
  return message.replace(/[.\s]*$/, '') + '. Please wait ' + wait + ' before trying again.';
}

export function fallbackMessage(status) {
  if (status === 401) return 'Please log in to continue.';
  if (status === 403) return 'You do not have permission to do that.';
  if (status === 404) return 'Not found.';
  if (status === 413) return 'That is too large to send.';
  if (status === 429) return 'Too many attempts';
  if (status === 503 || status === 504) return 'The service is busy or unavailable. Please try again in a moment.';
  return 'Something went wrong (HTTP ' + status + '). Please try again.';
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== undefined && v !== null && v !== false) u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}
