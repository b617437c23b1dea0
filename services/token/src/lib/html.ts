/**
 * The token service's pages: self-contained HTML (inline CSS under a per-response nonce, no external
 * assets), accessible (labels, visible focus, landmarks, error summaries announced), mobile friendly.
 * Every page forbids framing (`frame-ancestors 'none'`, X-Frame-Options) and caching.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyReply } from 'fastify'

/** The product's name on its pages. */
export const PRODUCT_NAME = 'uspl'

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)
}

/** An untrusted string in running text: escaped and bidi-isolated, so it cannot reorder the text around it. */
export function untrusted (value: string): string {
  return `<bdi>${escapeHtml(value)}</bdi>`
}

/** The same for plain text (the page title): between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE. */
function isolatedText (value: string): string {
  return `\u2068${value}\u2069`
}

const CSS = `
*,*::before,*::after{box-sizing:border-box}
html{color-scheme:light dark}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;padding:1rem;
 font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1b1d21}
main{width:100%;max-width:26rem;background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06);padding:2rem 1.5rem}
h1{font-size:1.35rem;margin:0 0 .75rem;line-height:1.3}
p{margin:.5rem 0}
.muted{color:#5b616e;font-size:.925rem}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=email],input[type=password]{width:100%;padding:.65rem .75rem;font:inherit;border:1px solid #b9bec8;border-radius:8px;background:#fff;color:inherit}
button{font:inherit;font-weight:600;padding:.7rem 1rem;border-radius:8px;border:1px solid transparent;cursor:pointer;width:100%}
.primary{background:#2456d3;color:#fff}
.primary:hover{background:#1c46ad}
.secondary{background:transparent;color:#1b1d21;border-color:#b9bec8}
.actions{display:flex;gap:.75rem;margin-top:1.5rem;flex-wrap:wrap}
.actions form{flex:1 1 8rem;margin:0}
:focus-visible{outline:3px solid #f2a900;outline-offset:2px}
.error{background:#fdecec;color:#8a1c1c;border:1px solid #f3b7b7;border-radius:8px;padding:.75rem;margin:1rem 0}
.warning{background:#fff6e0;color:#6b4a00;border:1px solid #f0d48a;border-radius:8px;padding:.75rem;margin:1rem 0}
.scope{border:1px solid #dfe2e8;border-radius:8px;padding:.75rem;margin:1rem 0}
.scope code{font-weight:600}
bdi{unicode-bidi:isolate}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em;word-break:break-all}
.app{font-weight:700}
.verified-host{margin:.25rem 0 .75rem}.host{font-size:1.1rem;unicode-bidi:isolate}
.subhead{font-size:1rem;margin:1rem 0 0}
@media (prefers-color-scheme: dark){
 body{background:#121316;color:#e8eaed}
 main{background:#1d1f24;box-shadow:none;border:1px solid #2c2f36}
 .muted{color:#a6acb8}
 input[type=email],input[type=password]{background:#121316;border-color:#4a4f59}
 .secondary{color:#e8eaed;border-color:#4a4f59}
 .scope{border-color:#33363e}
 .error{background:#3a1717;color:#ffd2d2;border-color:#6b2a2a}
 .warning{background:#3a2e10;color:#ffe7a8;border-color:#6b5420}
}
`

export function sendPage (reply: FastifyReply, title: string, body: string, status = 200): FastifyReply {
  const nonce = randomBytes(16).toString('base64')
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'`)
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .send(html)
}

export function errorPage (reply: FastifyReply, status: number, title: string, message: string): FastifyReply {
  return sendPage(reply, title, `<h1>${escapeHtml(title)}</h1>
<div class="error" role="alert"><p>${escapeHtml(message)}</p></div>
<p class="muted">You can close this window and try connecting again from your application.</p>`, status)
}

/** Why the user is signing in: an application asked (by its name, or unnamed), or nothing named. */
export type SigninPurpose = { app: string | null } | null

export function signinPage (reply: FastifyReply, input: { returnTo: string | null, csrf: string, email?: string, error?: string, status?: number, purpose?: SigninPurpose }): FastifyReply {
  const error = input.error ? `<div class="error" role="alert" id="signin-error">${escapeHtml(input.error)}</div>` : ''
  const described = input.error ? ' aria-describedby="signin-error"' : ''
  const purpose = input.purpose
    ? `<p>${input.purpose.app ? untrusted(input.purpose.app) : 'An application'} is asking to connect to your ${PRODUCT_NAME} account. Sign in to review what it asks for.</p>`
    : '<p class="muted">Sign in to continue.</p>'
  return sendPage(reply, `Sign in to ${PRODUCT_NAME}`, `<h1>Sign in to ${PRODUCT_NAME}</h1>
${purpose}
${error}
<form method="post" action="/signin" novalidate>
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
${input.returnTo ? `<input type="hidden" name="return_to" value="${escapeHtml(input.returnTo)}">` : ''}
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus value="${escapeHtml(input.email ?? '')}"${described}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${described}>
<div class="actions"><button class="primary" type="submit">Sign in</button></div>
</form>`, input.status ?? 200)
}

export function signedInPage (reply: FastifyReply, input: { email: string, csrf: string }): FastifyReply {
  return sendPage(reply, 'Signed in', `<h1>You are signed in</h1>
<p>Signed in as <strong>${escapeHtml(input.email)}</strong>.</p>
<form method="post" action="/logout">
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<div class="actions"><button class="secondary" type="submit">Sign out</button></div>
</form>`)
}

export interface ConsentView {
  requestId: string
  csrf: string
  clientName: string | null
  clientId: string
  /** a metadata-document client: the host its document was fetched from (shown apart from the name) */
  clientHost?: string | null
  redirectHost: string
  scopes: Array<{ name: string, description: string }>
  localhostOnly: boolean
  userEmail: string
  /** the Connected Apps page, where the user can disconnect it later */
  connectionsUrl: string
}

export function consentPage (reply: FastifyReply, v: ConsentView): FastifyReply {
  const name = v.clientName ? untrusted(v.clientName) : 'An unnamed application'
  const scopes = v.scopes.map((s) => `<div class="scope"><code>${escapeHtml(s.name)}</code><p>${escapeHtml(s.description)}</p></div>`).join('\n')
  const warning = v.localhostOnly
    ? `<div class="warning" role="note"><strong>This application runs on your own computer.</strong> It sends you back to <code>${untrusted(v.redirectHost)}</code>. Allow it only if you started this connection yourself.</div>`
    : ''
  const hidden = `<input type="hidden" name="request" value="${escapeHtml(v.requestId)}"><input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">`
  return sendPage(reply, `Allow ${v.clientName ? isolatedText(v.clientName) : 'this application'}?`, `<h1><span class="app">${name}</span> wants to access your account</h1>
${v.clientHost ? `<p class="verified-host">Identified by <strong dir="ltr" class="host">${untrusted(v.clientHost)}</strong> (its published client metadata)</p>` : ''}
<p class="muted">Signed in as ${untrusted(v.userEmail)}. After you decide, you return to <code>${untrusted(v.redirectHost)}</code>.</p>
${warning}
<h2 class="muted subhead">It will be able to:</h2>
${scopes}
<p class="muted">Client ID <code>${untrusted(v.clientId)}</code>. You can disconnect it at any time from <a href="${escapeHtml(v.connectionsUrl)}">Connected Apps</a>.</p>
<div class="actions">
<form method="post" action="/consent">${hidden}<input type="hidden" name="decision" value="deny"><button class="secondary" type="submit">Deny</button></form>
<form method="post" action="/consent">${hidden}<input type="hidden" name="decision" value="allow"><button class="primary" type="submit">Allow</button></form>
</div>`)
}
