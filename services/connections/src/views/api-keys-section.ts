/**
 * The "Personal API keys" section of the account page (next to Connected Apps): the user's keys (name,
 * created, last used, expiry), a form that creates one (name, optional expiry) and shows it once with a
 * copy button, and a revoke dialog confirmed by typing the key's name. Server-rendered; its script
 * (src/browser/api-keys.ts, part of the page's script) calls /v1/api-keys with the session's CSRF token.
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
