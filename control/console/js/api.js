// The API as the console calls it: same origin, the session cookie, and the header that
// tells the controller the call comes from the page (a cross-site form cannot set it).
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { 'X-Damselfly-Console': '1', Accept: 'application/json' },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 401) {
    // The session ended (idle, too old, the controller restarted): back to the login page.
    window.location.assign('/ui/');
    throw new ApiError(401, 'session expired');
  }
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!r.ok) {
    const msg = (data && (data.error || data.message)) || text || r.statusText;
    throw new ApiError(r.status, `${method} ${path}: ${r.status} ${msg}`);
  }
  return data;
}

export const get = (path) => call('GET', path);

// What a view could not show this round (the store down, a route missing): the page still
// renders, and app.js shows these in #error. A 401 is never soft.
export const warnings = [];
export async function getSoft(path, fallback) {
  try {
    return await get(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    warnings.push(err.message);
    return fallback;
  }
}
export const post = (path, body) => call('POST', path, body);

// Path segments from the API or the hash: encoded, never pasted raw into a URL.
export const seg = (s) => encodeURIComponent(s);
