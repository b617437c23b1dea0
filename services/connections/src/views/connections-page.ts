/**
 * The Connected Apps page: server-rendered, self-contained (inline CSS and script under a per-response CSP
 * nonce, no external assets except the apps' own https logos). Its script (src/browser/, bundled by
 * page-script.ts) adds the actions menu (WAI-ARIA menu button: Enter, Space, arrow keys, Home, End,
 * Escape), the confirmation dialog (type the app's name) and the call to the API with the session's CSRF
 * token; the row goes away when the revocation succeeds.
 */
import type { Connection } from '../schemas.ts'
import { apiKeysSection, API_KEYS_CSS } from './api-keys-section.ts'

export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)
}

const dateFormat = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' })

function initial (name: string): string {
  const ch = [...name.trim()][0] ?? '?'
  return ch.toUpperCase()
}

function colour (name: string): number {
  let h = 0
  for (const c of name) h = (h * 31 + c.codePointAt(0)!) % 6
  return h
}

function logo (c: Connection): string {
  const letter = `<span class="initial c${colour(c.client_name)}" aria-hidden="true">${escapeHtml(initial(c.client_name))}</span>`
  if (c.logo_uri && /^https:\/\//i.test(c.logo_uri)) {
    return `<span class="logo"><img src="${escapeHtml(c.logo_uri)}" alt="" width="40" height="40" referrerpolicy="no-referrer" loading="lazy">${letter}</span>`
  }
  return `<span class="logo no-img">${letter}</span>`
}

function row (c: Connection, i: number): string {
  const name = escapeHtml(c.client_name)
  const scopes = c.scopes.length > 0 ? c.scopes.map((s) => `<code>${escapeHtml(s)}</code>`).join(' ') : '<span class="muted">no scopes</span>'
  return `<li class="app" data-grant-id="${escapeHtml(c.grant_id)}" data-name="${name}">
  ${logo(c)}
  <div class="info">
    <h2 class="name"><bdi>${name}</bdi></h2>
    ${c.client_host ?? c.redirect_host ? `<p class="host"><bdi>${escapeHtml((c.client_host ?? c.redirect_host) as string)}</bdi></p>` : ''}
    <p class="meta"><span class="label">Access:</span> ${scopes}</p>
    ${c.managed_by ? `<p class="meta managed"><span class="label">Managed by</span> ${escapeHtml(c.managed_by.name)} (your organization)</p>` : ''}
    <p class="meta"><span class="label">Authorized</span> <time datetime="${escapeHtml(c.authorized_at)}">${dateFormat.format(new Date(c.authorized_at))}</time> · <span class="label">Last used</span> <time datetime="${escapeHtml(c.last_used_at)}">${dateFormat.format(new Date(c.last_used_at))}</time></p>
    <p class="meta"><span class="label">Client ID</span> <code class="client-id"><bdi>${escapeHtml(c.client_id)}</bdi></code></p>
  </div>
  <div class="actions">
    <button type="button" class="menu-button" id="menu-button-${i}" aria-haspopup="menu" aria-expanded="false" aria-controls="menu-${i}" aria-label="Actions for ${name}">
      <span aria-hidden="true">&#x22EF;</span>
    </button>
    <ul class="menu" id="menu-${i}" role="menu" aria-labelledby="menu-button-${i}" hidden>
      <li role="none"><button type="button" role="menuitem" tabindex="-1" class="danger" data-action="revoke">Revoke access</button></li>
    </ul>
  </div>
</li>`
}

export interface PageInput {
  nonce: string
  /** the page's script (page-script.ts), inlined under the nonce */
  script: string
  csrf: string
  connections: Connection[]
  /** the user's personal API keys (the section after the apps) */
  apiKeys: Parameters<typeof apiKeysSection>[0]
  /** who is signed in, and where signing out goes (the token service's /logout, back to this page) */
  user: { email: string, name: string }
  logoutUrl: string
  returnTo: string
}

export function connectionsPage ({ nonce, script, csrf, connections, apiKeys, user, logoutUrl, returnTo }: PageInput): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${escapeHtml(csrf)}">
<meta name="referrer" content="no-referrer">
<title>Connected apps</title>
<style nonce="${nonce}">${CSS}${API_KEYS_CSS}</style>
</head>
<body>
<header class="account">
  <p>Signed in as <strong><bdi>${escapeHtml(user.name || user.email)}</bdi></strong>${user.name ? ` <span class="muted">(<bdi>${escapeHtml(user.email)}</bdi>)</span>` : ''}</p>
  <form method="post" action="${escapeHtml(logoutUrl)}"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><input type="hidden" name="return_to" value="${escapeHtml(returnTo)}"><button type="submit" class="secondary signout">Sign out</button></form>
</header>
<main>
  <h1 id="title" tabindex="-1">Connected apps</h1>
  <p class="lead">These apps can use your account. Revoking access signs an app out everywhere at once; to reconnect it has to ask for your permission again.</p>
  <p id="status" class="status" role="status" aria-live="polite"></p>
  <ul id="apps" class="apps" aria-labelledby="title"${connections.length === 0 ? ' hidden' : ''}>
${connections.map(row).join('\n')}
  </ul>
  <p id="empty" class="empty"${connections.length === 0 ? '' : ' hidden'}>No apps are connected to your account.</p>
  ${apiKeysSection(apiKeys)}
</main>
<dialog id="revoke-dialog" aria-labelledby="revoke-title" aria-describedby="revoke-desc">
  <form id="revoke-form" method="dialog" novalidate>
    <h2 id="revoke-title">Revoke access for <bdi class="target-name"></bdi>?</h2>
    <p id="revoke-desc"><bdi class="target-name"></bdi> will lose access at once: its open sessions close and it can no longer use your account until you authorize it again.</p>
    <label for="confirm-input">Type <strong><bdi class="target-name"></bdi></strong> to confirm</label>
    <input id="confirm-input" name="confirm" type="text" autocomplete="off" autocapitalize="off" spellcheck="false" required>
    <p id="revoke-error" class="error" role="alert" hidden></p>
    <div class="buttons">
      <button type="button" id="cancel-button" class="secondary">Cancel</button>
      <button type="submit" id="confirm-button" class="danger-solid" disabled>Revoke access</button>
    </div>
  </form>
</dialog>
<script nonce="${nonce}">${script}</script>
</body>
</html>`
}

const CSS = `
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f6f7f9}
main{max-width:44rem;margin:0 auto;padding:1.5rem 1rem 3rem}
h1{font-size:1.6rem;margin:0 0 .25rem}
h1:focus{outline:none}
.lead{color:#4a5260;margin:0 0 1rem}
.status{min-height:1.5em;margin:0 0 .5rem;color:#0b6b3a;font-weight:500}
.apps{list-style:none;margin:0;padding:0;display:grid;gap:.75rem}
.app{position:relative;display:flex;gap:.75rem;align-items:flex-start;background:#fff;border:1px solid #dde1e6;border-radius:12px;padding:.9rem}
.logo{position:relative;flex:none;width:40px;height:40px}
.logo img{display:block;width:40px;height:40px;border-radius:8px;object-fit:cover;background:#fff;position:relative;z-index:1}
.logo img.broken{display:none}
.initial{display:flex;align-items:center;justify-content:center;width:40px;height:40px;border-radius:8px;font-weight:700;font-size:1.2rem;color:#fff;position:absolute;inset:0}
.c0{background:#3563c9}.c1{background:#0f7b5f}.c2{background:#8a3fb8}.c3{background:#b5481a}.c4{background:#1f6f8b}.c5{background:#5b5f66}
.info{flex:1;min-width:0}
.name{font-size:1.05rem;margin:0;overflow-wrap:anywhere}
.host{margin:0;color:#5c6470;font-size:.9rem;overflow-wrap:anywhere}
.meta{margin:.25rem 0 0;font-size:.9rem;color:#333a44;overflow-wrap:anywhere}
.label{color:#5c6470}
.account{max-width:44rem;margin:0 auto;padding:.75rem 1rem 0;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between;font-size:.95rem}
.account p{margin:0;overflow-wrap:anywhere}
.account form{margin:0}
.signout{min-height:44px;padding:.4rem .9rem;border-radius:8px}
bdi{unicode-bidi:isolate}
code{font:.85rem ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef0f3;border-radius:4px;padding:0 .3rem;overflow-wrap:anywhere}
.muted{color:#5c6470}
.actions{flex:none;position:relative}
button{font:inherit;cursor:pointer}
.menu-button{width:44px;height:44px;border-radius:8px;border:1px solid #c9ced6;background:#fff;font-size:1.3rem;line-height:1;color:#1b1f24}
.menu-button:hover{background:#f0f2f5}
button:focus-visible,input:focus-visible{outline:3px solid #2f6fde;outline-offset:2px}
.menu{position:absolute;right:0;top:calc(100% + 4px);z-index:5;list-style:none;margin:0;padding:.25rem;min-width:11rem;background:#fff;border:1px solid #c9ced6;border-radius:10px;box-shadow:0 8px 24px rgba(0,0,0,.12)}
.menu [role=menuitem]{display:block;width:100%;text-align:left;padding:.6rem .75rem;border:0;border-radius:6px;background:none}
.menu [role=menuitem]:hover,.menu [role=menuitem]:focus{background:#fdecec;outline:none}
.danger{color:#b42318;font-weight:600}
.empty{background:#fff;border:1px dashed #c9ced6;border-radius:12px;padding:1.5rem;text-align:center;color:#4a5260}
dialog{width:min(28rem,calc(100vw - 2rem));max-width:100%;border:0;border-radius:14px;padding:1.25rem;box-shadow:0 20px 50px rgba(0,0,0,.3)}
dialog::backdrop{background:rgba(15,20,30,.5)}
dialog h2{font-size:1.15rem;margin:0 0 .5rem;overflow-wrap:anywhere}
dialog p{margin:0 0 .75rem;color:#333a44;overflow-wrap:anywhere}
dialog label{display:block;margin-bottom:.35rem;overflow-wrap:anywhere}
dialog input{width:100%;font:inherit;padding:.55rem .65rem;border:1px solid #9aa2ad;border-radius:8px}
.error{color:#b42318;margin:.5rem 0 0}
.buttons{display:flex;flex-wrap:wrap;justify-content:flex-end;gap:.5rem;margin-top:1rem}
.buttons button{min-height:44px;padding:.5rem 1rem;border-radius:8px}
.secondary{background:#fff;border:1px solid #c9ced6;color:#1b1f24}
.danger-solid{background:#b42318;border:1px solid #b42318;color:#fff;font-weight:600}
.danger-solid:disabled{background:#e8b4ae;border-color:#e8b4ae;cursor:not-allowed}
@media (max-width:400px){main{padding:1rem .75rem 2rem}.app{padding:.75rem}}
`
