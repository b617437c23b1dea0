/**
 * The "Personal API keys" section of the account page (next to Connected Apps): the user's keys (name,
 * created, last used, expiry), a form that creates one (name, optional expiry) and shows it once with a
 * copy button, and a revoke dialog confirmed by typing the key's name. Server-rendered; its script runs
 * under the page's CSP nonce and calls /v1/api-keys with the session's CSRF token.
 */
import type { Static } from '@sinclair/typebox'
import type { ApiKeyList } from '../schemas.ts'
import { escapeHtml } from './connections-page.ts'

type KeyInfo = Static<typeof ApiKeyList>['items'][number]

const dateFormat = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' })
const day = (iso: string | null, none: string): string => iso === null ? none : `<time datetime="${escapeHtml(iso)}">${dateFormat.format(new Date(iso))}</time>`

function keyRow (k: KeyInfo): string {
  const name = escapeHtml(k.name)
  const expired = k.expires_at !== null && Date.parse(k.expires_at) <= Date.now()
  return `<li class="key" data-key-id="${escapeHtml(k.id)}" data-name="${name}">
  <div class="info">
    <h3 class="name">${name}</h3>
    <p class="meta"><span class="label">Created</span> ${day(k.created_at, '')} · <span class="label">Last used</span> ${day(k.last_used_at, 'never')} · <span class="label">${expired ? 'Expired' : 'Expires'}</span> ${day(k.expires_at, 'never')}</p>
  </div>
  <button type="button" class="secondary revoke-key" aria-label="Revoke ${name}">Revoke</button>
</li>`
}

export function apiKeysSection (keys: KeyInfo[]): string {
  return `<section id="api-keys" aria-labelledby="keys-title">
  <h2 id="keys-title" class="section-title">Personal API keys</h2>
  <p class="lead">A key lets a script use the workspace API as you, with your roles. Keep it secret: anyone holding it can act as you until you revoke it.</p>
  <p id="keys-status" class="status" aria-live="polite"></p>
  <form id="key-form" class="key-form" novalidate>
    <label for="key-name">Key name</label>
    <input id="key-name" name="name" type="text" maxlength="100" autocomplete="off" required placeholder="e.g. nightly export">
    <label for="key-expiry">Expires (optional)</label>
    <input id="key-expiry" name="expires" type="date">
    <button type="submit" id="create-key" class="primary">Create key</button>
    <p id="key-error" class="error" role="alert" hidden></p>
  </form>
  <div id="new-key" class="new-key" hidden>
    <label for="new-key-value">Your new key <strong id="new-key-name"></strong>. Copy it now: it will not be shown again.</label>
    <div class="copy-row">
      <input id="new-key-value" type="text" readonly spellcheck="false">
      <button type="button" id="copy-key" class="secondary">Copy</button>
    </div>
  </div>
  <ul id="keys" class="keys" aria-labelledby="keys-title"${keys.length === 0 ? ' hidden' : ''}>
${keys.map(keyRow).join('\n')}
  </ul>
  <p id="keys-empty" class="empty"${keys.length === 0 ? '' : ' hidden'}>You have no API keys.</p>
</section>
<dialog id="key-dialog" aria-labelledby="key-dialog-title">
  <form id="key-revoke-form" method="dialog" novalidate>
    <h2 id="key-dialog-title">Revoke the key <span class="key-target"></span>?</h2>
    <p>Scripts using it stop working at once.</p>
    <label for="key-confirm">Type <strong class="key-target"></strong> to confirm</label>
    <input id="key-confirm" type="text" autocomplete="off" autocapitalize="off" spellcheck="false" required>
    <p id="key-revoke-error" class="error" role="alert" hidden></p>
    <div class="buttons">
      <button type="button" id="key-cancel" class="secondary">Cancel</button>
      <button type="submit" id="key-confirm-button" class="danger-solid" disabled>Revoke key</button>
    </div>
  </form>
</dialog>`
}

export const API_KEYS_CSS = `
#api-keys{margin-top:2.5rem}
.section-title{font-size:1.3rem;margin:0 0 .25rem}
.key-form{display:grid;grid-template-columns:1fr;gap:.35rem;background:#fff;border:1px solid #dde1e6;border-radius:12px;padding:.9rem;margin-bottom:.75rem}
.key-form input,.copy-row input{width:100%;font:inherit;padding:.55rem .65rem;border:1px solid #9aa2ad;border-radius:8px}
.key-form .primary{justify-self:start;margin-top:.5rem;min-height:44px;padding:.5rem 1rem;border-radius:8px;background:#2f6fde;border:1px solid #2f6fde;color:#fff;font-weight:600}
.new-key{background:#eefaf3;border:1px solid #9ed6b5;border-radius:12px;padding:.9rem;margin-bottom:.75rem;overflow-wrap:anywhere}
.copy-row{display:flex;gap:.5rem;margin-top:.35rem}
.copy-row input{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;min-width:0}
.copy-row button,.revoke-key{min-height:44px;padding:.5rem 1rem;border-radius:8px;flex:none}
.keys{list-style:none;margin:0;padding:0;display:grid;gap:.75rem}
.key{display:flex;gap:.75rem;align-items:center;background:#fff;border:1px solid #dde1e6;border-radius:12px;padding:.9rem}
.key h3{font-size:1rem;margin:0;overflow-wrap:anywhere}
`

export const API_KEYS_SCRIPT = `
(function () {
  'use strict';
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
  var list = document.getElementById('keys');
  var empty = document.getElementById('keys-empty');
  var status = document.getElementById('keys-status');
  var form = document.getElementById('key-form');
  var nameInput = document.getElementById('key-name');
  var expiryInput = document.getElementById('key-expiry');
  var createButton = document.getElementById('create-key');
  var formError = document.getElementById('key-error');
  var shown = document.getElementById('new-key');
  var shownValue = document.getElementById('new-key-value');
  var copyButton = document.getElementById('copy-key');
  var dialog = document.getElementById('key-dialog');
  var revokeForm = document.getElementById('key-revoke-form');
  var confirmInput = document.getElementById('key-confirm');
  var confirmButton = document.getElementById('key-confirm-button');
  var revokeError = document.getElementById('key-revoke-error');
  var current = null;

  function call (method, path, body) {
    return fetch(new URL(path, document.baseURI), {
      method: method,
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (b) { return { res: res, body: b }; });
    });
  }
  function message (r, fallback) {
    if (r.res.status === 401) return 'Your session has ended. Reload the page to sign in again.';
    return (r.body && r.body.error && r.body.error.message) || fallback;
  }
  function text (el, value) { el.textContent = value; }
  function esc (s) { var d = document.createElement('div'); d.textContent = s; return d.innerHTML; }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    formError.hidden = true;
    var name = nameInput.value.trim();
    if (!name) { text(formError, 'Give the key a name.'); formError.hidden = false; nameInput.focus(); return; }
    var body = { name: name };
    if (expiryInput.value) body.expires_at = new Date(expiryInput.value + 'T23:59:59Z').toISOString();
    createButton.disabled = true;
    call('POST', 'v1/api-keys', body).then(function (r) {
      createButton.disabled = false;
      if (!r.res.ok) { text(formError, message(r, 'Creating the key failed. Try again.')); formError.hidden = false; return; }
      text(document.getElementById('new-key-name'), r.body.name);
      shownValue.value = r.body.key;
      shown.hidden = false;
      shownValue.focus();
      shownValue.select();
      var li = document.createElement('li');
      li.className = 'key';
      li.setAttribute('data-key-id', r.body.id);
      li.setAttribute('data-name', r.body.name);
      li.innerHTML = '<div class="info"><h3 class="name">' + esc(r.body.name) + '</h3><p class="meta"><span class="label">Created</span> today · <span class="label">Last used</span> never · <span class="label">Expires</span> ' + (r.body.expires_at ? esc(r.body.expires_at.slice(0, 10)) : 'never') + '</p></div>' +
        '<button type="button" class="secondary revoke-key" aria-label="Revoke ' + esc(r.body.name) + '">Revoke</button>';
      list.appendChild(li);
      list.hidden = false;
      empty.hidden = true;
      form.reset();
      text(status, 'Created the key ' + r.body.name + '.');
    }, function () {
      createButton.disabled = false;
      text(formError, 'Could not reach the server. Check your connection and try again.');
      formError.hidden = false;
    });
  });

  copyButton.addEventListener('click', function () {
    shownValue.select();
    var done = function () { text(copyButton, 'Copied'); };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(shownValue.value).then(done, function () { document.execCommand('copy'); done(); });
    else { document.execCommand('copy'); done(); }
  });

  list.addEventListener('click', function (e) {
    var button = e.target.closest('.revoke-key');
    if (!button) return;
    var row = button.closest('.key');
    current = { row: row, id: row.getAttribute('data-key-id'), name: row.getAttribute('data-name'), opener: button };
    Array.prototype.forEach.call(dialog.querySelectorAll('.key-target'), function (el) { text(el, current.name); });
    confirmInput.value = '';
    revokeError.hidden = true;
    confirmButton.disabled = true;
    dialog.showModal();
    confirmInput.focus();
  });
  function matches () { return current !== null && confirmInput.value.trim() === current.name; }
  confirmInput.addEventListener('input', function () { confirmButton.disabled = !matches(); revokeError.hidden = true; });
  document.getElementById('key-cancel').addEventListener('click', function () { dialog.close('cancel'); });
  dialog.addEventListener('close', function () {
    if (current && document.body.contains(current.opener)) current.opener.focus();
  });
  revokeForm.addEventListener('submit', function (e) {
    e.preventDefault();
    if (!matches()) return;
    var target = current;
    confirmButton.disabled = true;
    call('POST', 'v1/api-keys/' + encodeURIComponent(target.id) + '/revoke', { confirm: confirmInput.value.trim() }).then(function (r) {
      if (r.res.ok || r.res.status === 404) {
        target.row.remove();
        current = null;
        dialog.close('revoked');
        text(status, 'The key ' + target.name + ' is revoked.');
        if (!list.querySelector('.key')) { list.hidden = true; empty.hidden = false; }
        document.getElementById('keys-title').focus();
        return;
      }
      confirmButton.disabled = !matches();
      text(revokeError, message(r, 'Revoking failed. Try again.'));
      revokeError.hidden = false;
    }, function () {
      confirmButton.disabled = !matches();
      text(revokeError, 'Could not reach the server. Check your connection and try again.');
      revokeError.hidden = false;
    });
  });
})();
`
