// /authorize, sign-in and consent: what is refused, where errors go (an error page when the client or its
// redirect URI cannot be trusted, the redirect URI with state and iss otherwise), and the page protections.
import t from 'tap'
import { startStack, registerClient, pkce, signIn, Browser, hiddenField, location, keysMatching, obtainCode, type Stack } from './helpers.ts'

function authorizeUrl (stack: Stack, params: Record<string, string | undefined>): string {
  const { challenge } = pkce()
  const defaults: Record<string, string> = { response_type: 'code', redirect_uri: 'http://127.0.0.1:9999/callback', code_challenge: challenge, code_challenge_method: 'S256', state: 'xyz', scope: 'mcp:tools' }
  const merged = { ...defaults, ...params }
  const search = new URLSearchParams()
  for (const [k, v] of Object.entries(merged)) if (v !== undefined) search.set(k, v)
  return `/authorize?${search.toString()}`
}

t.test('unknown client or unregistered redirect URI: an error page, never a redirect', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const cases = [
    { name: 'unknown client', url: authorizeUrl(stack, { client_id: 'cli_doesnotexist' }) },
    { name: 'missing client', url: authorizeUrl(stack, { client_id: undefined }) },
    { name: 'unregistered redirect URI', url: authorizeUrl(stack, { client_id: client.client_id, redirect_uri: 'https://evil.example/cb' }) },
    { name: 'other loopback path', url: authorizeUrl(stack, { client_id: client.client_id, redirect_uri: 'http://127.0.0.1:9999/other' }) },
    { name: 'other loopback host', url: authorizeUrl(stack, { client_id: client.client_id, redirect_uri: 'http://localhost:9999/callback' }) },
    // even a bad request from such a source must not redirect
    { name: 'unregistered redirect URI with bad PKCE', url: authorizeUrl(stack, { client_id: client.client_id, redirect_uri: 'https://evil.example/cb', code_challenge: undefined }) }
  ]
  for (const c of cases) {
    const res = await stack.token.inject(c.url)
    t.equal(res.statusCode, 400, `${c.name}: 400`)
    t.notOk(res.headers.location, `${c.name}: no redirect`)
    t.match(res.headers['content-type'], /text\/html/, `${c.name}: an error page`)
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/)
    t.equal(res.headers['x-frame-options'], 'DENY')
  }
  t.same(await keysMatching(stack.r, 'areq:*'), [], 'nothing pending')
})

t.test('a disabled client gets an error page', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  await stack.token.tokenContext.clients.setDisabled(client.client_id, true)
  const res = await stack.token.inject(authorizeUrl(stack, { client_id: client.client_id }))
  t.equal(res.statusCode, 403)
  t.notOk(res.headers.location)
  t.match(res.body, /operator disabled/)
})

const PROTOCOL_ERRORS: Array<{ name: string, params: Record<string, string | undefined>, error: string }> = [
    { name: 'missing PKCE', params: { code_challenge: undefined, code_challenge_method: undefined }, error: 'invalid_request' },
    { name: 'plain PKCE', params: { code_challenge_method: 'plain' }, error: 'invalid_request' },
    { name: 'PKCE method missing (defaults to plain)', params: { code_challenge_method: undefined }, error: 'invalid_request' },
    { name: 'malformed challenge', params: { code_challenge: 'short' }, error: 'invalid_request' },
    { name: 'implicit flow', params: { response_type: 'token' }, error: 'unsupported_response_type' },
  { name: 'other resource', params: { resource: 'https://elsewhere.example/mcp' }, error: 'invalid_target' }
]

t.test('no redirect before sign-in: a stranger without cookies is never bounced to a registered URI', async (t) => {
  const stack = await startStack(t)
  // the phishing setup: open registration with the attacker's landing page
  const client = await registerClient(stack, { redirect_uris: ['https://evil.example/landing'] })
  for (const c of PROTOCOL_ERRORS) {
    const res = await fetch(stack.issuer + authorizeUrl(stack, { client_id: client.client_id, redirect_uri: 'https://evil.example/landing', ...c.params }), { redirect: 'manual' })
    t.equal(res.status, 400, `${c.name}: 400`)
    t.equal(res.headers.get('location'), null, `${c.name}: no redirect`)
    t.match(res.headers.get('content-type'), /text\/html/, `${c.name}: an error page`)
    t.match(await res.text(), c.error, `${c.name}: the page names the error`)
  }
  t.same(await keysMatching(stack.r, 'areq:*'), [], 'nothing pending')
})

t.test('protocol errors of a signed-in user go back to the redirect URI with state and iss', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const browser = await signIn(stack)
  for (const c of PROTOCOL_ERRORS) {
    const res = await browser.request(stack.issuer + authorizeUrl(stack, { client_id: client.client_id, ...c.params }))
    t.equal(res.status, 303, `${c.name}: redirects`)
    const loc = new URL(res.headers.get('location') as string)
    t.equal(loc.origin + loc.pathname, 'http://127.0.0.1:9999/callback', `${c.name}: to the registered URI`)
    t.equal(loc.searchParams.get('error'), c.error, `${c.name}: ${c.error}`)
    t.ok(loc.searchParams.get('error_description'))
    t.equal(loc.searchParams.get('state'), 'xyz', `${c.name}: state`)
    t.equal(loc.searchParams.get('iss'), stack.issuer, `${c.name}: iss`)
    t.notOk(loc.searchParams.get('code'))
  }
  t.same(await keysMatching(stack.r, 'code:*'), [], 'no code issued')
})

t.test('loopback redirect URIs match on any port; unknown scopes are dropped; resource defaults to the gateway', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const res = await stack.token.inject(authorizeUrl(stack, { client_id: client.client_id, redirect_uri: 'http://127.0.0.1:41234/callback', scope: 'openid mcp:tools offline_access' }))
  t.equal(res.statusCode, 303)
  t.match(res.headers.location, /^\/consent\?request=/)
  const { callback } = await obtainCode(stack, client.client_id, { redirectUri: 'http://127.0.0.1:41234/callback', scope: 'openid profile' })
  t.equal(callback.port, '41234', 'returned to the port the client asked for')
  const [codeKey] = await keysMatching(stack.r, 'code:*')
  t.ok(codeKey, 'a code was stored')
  const stored = await stack.r.redis.hgetall(codeKey)
  const ttl = await stack.r.redis.ttl(codeKey)
  t.ok(ttl > 0 && ttl <= 60, 'codes live 60 s')
  t.equal(codeKey, `code:${(await import('@uspl/core')).hashSecret(callback.searchParams.get('code') ?? '')}`, 'stored under the hash of the code')
  t.equal(stored.scope, 'mcp:tools', 'unknown scopes dropped, default scope used')
  t.equal(stored.resource, stack.resource)
  t.notOk(Object.values(stored).includes(callback.searchParams.get('code') ?? ''), 'the code itself is not stored, only its hash')
})

t.test('consent page: who asks, where it returns, what it may do, with the localhost warning and CSRF token', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack, { client_name: 'Cursor <script>' })
  const browser = new Browser()
  let res = await browser.request(stack.issuer + authorizeUrl(stack, { client_id: client.client_id }))
  const consentUrl = location(res, stack.issuer)
  res = await browser.request(consentUrl)
  t.equal(res.status, 303, 'not signed in: sent to sign in')
  const signinUrl = location(res, stack.issuer)
  t.equal(new URL(signinUrl).searchParams.get('return_to'), new URL(consentUrl).pathname + new URL(consentUrl).search)
  res = await browser.request(signinUrl)
  const signin = await res.text()
  t.match(signin, /<label for="email">/, 'labelled inputs')
  t.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/)
  res = await browser.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(signin, 'csrf'), return_to: hiddenField(signin, 'return_to'), email: stack.user.email, password: stack.password } })
  t.equal(res.status, 303)
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('uspl_session='))
  t.match(cookie, /HttpOnly/i)
  t.match(cookie, /SameSite=Lax/i)
  t.match(cookie, /Path=\//)
  t.notMatch(cookie, /Secure/i, 'not Secure over http')
  t.equal(location(res, stack.issuer), consentUrl, 'back to consent')
  res = await browser.request(consentUrl)
  const page = await res.text()
  t.equal(res.status, 200)
  t.match(page, 'Cursor &lt;script&gt;', 'client name shown, escaped')
  t.notMatch(page, '<script>')
  t.match(page, '127.0.0.1:9999', 'redirect host shown')
  t.match(page, 'mcp:tools')
  t.match(page, /Use the tools of this MCP server on your behalf/)
  t.match(page, /runs on your own computer/, 'localhost warning')
  t.match(page, />Allow</)
  t.match(page, />Deny</)
  t.equal(res.headers.get('x-frame-options'), 'DENY')
  t.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/)
  t.equal(res.headers.get('access-control-allow-origin'), null, 'no CORS on pages')
  const nonce = /style-src 'nonce-([^']+)'/.exec(res.headers.get('content-security-policy') ?? '')?.[1]
  t.ok(nonce && page.includes(`<style nonce="${nonce}">`), 'the inline stylesheet carries the CSP nonce')
  t.notMatch(page, / style=|<script|<link|src="http/, 'self-contained: no style attributes, scripts or external assets')
  const csrf = hiddenField(page, 'csrf')
  const request = hiddenField(page, 'request')

  // CSRF missing, then wrong: refused, nothing issued, the request still pending
  for (const form of [{ request, decision: 'allow' }, { request, decision: 'allow', csrf: csrf.slice(0, -2) + 'xx' }] as Array<Record<string, string>>) {
    const refused = await browser.request(`${stack.issuer}/consent`, { form })
    t.equal(refused.status, 403, 'CSRF refused')
    t.equal(refused.headers.get('location'), null)
  }
  // the token of another session does not pass either
  const other = new Browser()
  const otherSignin = await (await other.request(`${stack.issuer}/signin`)).text()
  await other.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(otherSignin, 'csrf'), email: stack.user.email, password: stack.password } })
  t.equal((await other.request(`${stack.issuer}/consent`, { form: { request, decision: 'allow', csrf } })).status, 403, 'CSRF token bound to its session')
  t.same(await keysMatching(stack.r, 'code:*'), [], 'no code issued')
  t.same(await keysMatching(stack.r, 'grant:*'), [], 'no grant created')

  // deny: access_denied with state and iss; the request is consumed
  res = await browser.request(`${stack.issuer}/consent`, { form: { request, csrf, decision: 'deny' } })
  t.equal(res.status, 303)
  const denied = new URL(location(res, stack.issuer))
  t.equal(denied.searchParams.get('error'), 'access_denied')
  t.equal(denied.searchParams.get('state'), 'xyz')
  t.equal(denied.searchParams.get('iss'), stack.issuer)
  t.equal((await browser.request(`${stack.issuer}/consent`, { form: { request, csrf, decision: 'allow' } })).status, 400, 'a decision is taken once')
  t.same(await keysMatching(stack.r, 'code:*'), [], 'no code after deny')
})

t.test('sign-in return_to: paths and the connections origin only (no open redirect)', async (t) => {
  const stack = await startStack(t, { CONNECTIONS_URL: 'http://127.0.0.1:4999' })
  const cases = [
    { returnTo: 'https://evil.example/steal', expect: '/signin' },
    { returnTo: '//evil.example/steal', expect: '/signin' },
    { returnTo: '/\\evil.example', expect: '/signin' },
    { returnTo: 'http://127.0.0.1:4999/connections', expect: 'http://127.0.0.1:4999/connections' },
    { returnTo: '/consent?request=abc', expect: '/consent?request=abc' }
  ]
  for (const c of cases) {
    const browser = new Browser()
    const page = await (await browser.request(`${stack.issuer}/signin?return_to=${encodeURIComponent(c.returnTo)}`)).text()
    const form: Record<string, string> = { csrf: hiddenField(page, 'csrf'), email: stack.user.email, password: stack.password, return_to: c.returnTo }
    const res = await browser.request(`${stack.issuer}/signin`, { form })
    t.equal(res.status, 303)
    t.equal(res.headers.get('location'), c.expect, `${c.returnTo} → ${c.expect}`)
  }
})

t.test('sign-in without the form token is refused; sign-out ends the session', async (t) => {
  const stack = await startStack(t)
  const browser = new Browser()
  const res = await browser.request(`${stack.issuer}/signin`, { form: { email: stack.user.email, password: stack.password } })
  t.equal(res.status, 403)
  t.equal(browser.cookies.has('uspl_session'), false, 'no session')
  const page = await (await browser.request(`${stack.issuer}/signin`)).text()
  await browser.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(page, 'csrf'), email: stack.user.email, password: stack.password } })
  t.ok(browser.cookies.has('uspl_session'))
  const signedIn = await (await browser.request(`${stack.issuer}/signin`)).text()
  t.match(signedIn, 'ada@example.test')
  t.equal((await browser.request(`${stack.issuer}/logout`, { form: { csrf: 'wrong' } })).status, 403, 'sign-out needs the CSRF token')
  const out = await browser.request(`${stack.issuer}/logout`, { form: { csrf: hiddenField(signedIn, 'csrf') } })
  t.equal(out.status, 303)
  t.equal(browser.cookies.has('uspl_session'), false, 'cookie cleared')
  t.same(await keysMatching(stack.r, 'bsess:*'), [], 'session deleted')
})

t.test('repeated wrong passwords are throttled per account and per address', async (t) => {
  const stack = await startStack(t, { SIGNIN_MAX_FAILURES_PER_ACCOUNT: '3', SIGNIN_MAX_FAILURES_PER_ADDRESS: '5' })
  const browser = new Browser()
  const attempt = async (email: string, password: string): Promise<Response> => {
    const page = await (await browser.request(`${stack.issuer}/signin`)).text()
    return browser.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(page, 'csrf'), email, password } })
  }
  for (let i = 0; i < 3; i++) t.equal((await attempt(stack.user.email, 'wrong-password')).status, 401, `failure ${i + 1}: 401`)
  const throttled = await attempt(stack.user.email, stack.password)
  t.equal(throttled.status, 429, 'the right password is not even checked while throttled')
  t.ok(Number(throttled.headers.get('retry-after')) > 0, 'Retry-After')
  t.match(await throttled.text(), /Too many failed attempts/)
  t.equal(browser.cookies.has('uspl_session'), false)
  // per address: other accounts from the same address
  t.equal((await attempt('nobody1@example.test', 'x-wrong-pass')).status, 401)
  t.equal((await attempt('nobody2@example.test', 'x-wrong-pass')).status, 401)
  t.equal((await attempt('nobody3@example.test', 'x-wrong-pass')).status, 429, 'address limit reached')
  const ttl = await stack.r.redis.ttl('signin:fail:ip:127.0.0.1')
  t.ok(ttl > 0 && ttl <= 900, 'counters expire with their window')
})

t.test('concurrent wrong passwords cannot outrun the sign-in throttle (each attempt is counted before the password is checked)', async (t) => {
  const stack = await startStack(t, { SIGNIN_MAX_FAILURES_PER_ACCOUNT: '3', SIGNIN_MAX_FAILURES_PER_ADDRESS: '1000' })
  const page = await stack.token.inject('/signin')
  const cookie = (page.headers['set-cookie'] as string).split(';')[0]
  const csrf = hiddenField(page.body, 'csrf')
  const attempt = (password: string) => stack.token.inject({ method: 'POST', url: '/signin', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ csrf, email: stack.user.email, password }).toString() })
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(`wrong-password-${i}`)))
  const checked = results.filter((r) => r.statusCode === 401).length
  const throttled = results.filter((r) => r.statusCode === 429).length
  t.equal(checked, 3, 'only as many passwords are checked as the per-account limit allows')
  t.equal(throttled, 17, 'the rest are throttled without a password check')
  t.equal((await attempt(stack.password)).statusCode, 429, 'still throttled afterwards')
})

t.test('a successful sign-in does not use up the address allowance', async (t) => {
  const stack = await startStack(t, { SIGNIN_MAX_FAILURES_PER_ACCOUNT: '3', SIGNIN_MAX_FAILURES_PER_ADDRESS: '2' })
  for (let i = 0; i < 4; i++) {
    const browser = new Browser()
    const page = await (await browser.request(`${stack.issuer}/signin`)).text()
    const res = await browser.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(page, 'csrf'), email: stack.user.email, password: stack.password } })
    t.equal(res.status, 303, `sign-in ${i + 1} succeeds`)
  }
})

t.test('pages are served over https with a Secure cookie', async (t) => {
  const { testRedis, testEnv } = await import('@uspl/testing')
  const { build } = await import('../src/app.ts')
  const { loadConfig } = await import('../src/config.ts')
  const { AccountStore } = await import('@uspl/core')
  const r = await testRedis(t)
  const app = await build(loadConfig(testEnv(r, { ISSUER_URL: 'https://auth.example.com' })), { redis: r.redis, logger: false })
  t.teardown(() => app.close())
  await new AccountStore(r.redis).createUser({ email: 'sec@example.test', name: 'S', password: 'correct-horse' })
  const page = await app.inject('/signin')
  const csrfCookie = (page.headers['set-cookie'] as string).split(';')[0]
  t.match(page.headers['set-cookie'], /Secure/)
  const res = await app.inject({ method: 'POST', url: '/signin', headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ csrf: hiddenField(page.body, 'csrf'), email: 'sec@example.test', password: 'correct-horse' }).toString() })
  t.equal(res.statusCode, 303)
  const cookies = ([] as string[]).concat(res.headers['set-cookie'] as string | string[])
  t.match(cookies.find((c) => c.startsWith('uspl_session=')), /Secure/)
})

t.test('a private-use scheme redirect (cursor://) works end to end, without the localhost warning', async (t) => {
  const stack = await startStack(t)
  const redirectUri = 'cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback'
  const client = await registerClient(stack, { client_name: 'Cursor', redirect_uris: [redirectUri] })
  const browser = new Browser()
  const signin = await (await browser.request(`${stack.issuer}/signin`)).text()
  await browser.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(signin, 'csrf'), email: stack.user.email, password: stack.password } })
  const res = await browser.request(stack.issuer + authorizeUrl(stack, { client_id: client.client_id, redirect_uri: redirectUri }))
  const page = await (await browser.request(location(res, stack.issuer))).text()
  t.match(page, 'anysphere.cursor-retrieval', 'the redirect host is shown')
  t.notMatch(page, /runs on your own computer/, 'no localhost warning')
  const { callback } = await obtainCode(stack, client.client_id, { redirectUri, browser })
  t.equal(callback.protocol, 'cursor:')
  t.equal(callback.searchParams.get('iss'), stack.issuer)
  t.ok(callback.searchParams.get('code'))
})

t.test('consent page: a name with bidi controls (stored before registration refused them) is isolated', async (t) => {
  const stack = await startStack(t)
  const { client } = await stack.token.tokenContext.clients.create({ client_name: 'Evil \u202Etnuocca', redirect_uris: ['http://127.0.0.1:9999/callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] })
  const browser = await signIn(stack)
  let res = await browser.request(stack.issuer + authorizeUrl(stack, { client_id: client.clientId }))
  res = await browser.request(location(res, stack.issuer))
  const page = await res.text()
  t.equal(res.status, 200)
  // the controls are removed from the shown name (client-display.ts) and what is left is isolated too
  t.match(page, '<h1><span class="app"><bdi>Evil tnuocca</bdi></span> wants to access your account</h1>', 'the name cannot reverse the heading')
  t.match(page, '<title>Allow \u2068Evil tnuocca\u2069?</title>', 'nor the title')
  t.notMatch(page, /\u202E/, 'the override never reaches the page')
  t.match(page, 'bdi{unicode-bidi:isolate}')
})

t.test('the sign-in page names the product and the app that asked; consent links to Connected Apps', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack, { client_name: 'Cursor' })
  const browser = new Browser()
  let res = await browser.request(stack.issuer + authorizeUrl(stack, { client_id: client.client_id }))
  const consentUrl = location(res, stack.issuer)
  res = await browser.request(consentUrl)
  res = await browser.request(location(res, stack.issuer))
  const signin = await res.text()
  t.match(signin, '<title>Sign in to uspl</title>')
  t.match(signin, '<h1>Sign in to uspl</h1>')
  t.match(signin, '<bdi>Cursor</bdi> is asking to connect to your uspl account')
  const plain = await (await fetch(`${stack.issuer}/signin`)).text()
  t.match(plain, 'Sign in to continue.', 'without a pending request, no app is named')
  const wrong = await browser.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(signin, 'csrf'), return_to: hiddenField(signin, 'return_to'), email: stack.user.email, password: 'wrong' } })
  t.match(await wrong.text(), '<bdi>Cursor</bdi> is asking', 'a wrong password keeps saying which app asked')
  await browser.request(`${stack.issuer}/signin`, { form: { csrf: hiddenField(signin, 'csrf'), return_to: hiddenField(signin, 'return_to'), email: stack.user.email, password: stack.password } })
  const consent = await (await browser.request(consentUrl)).text()
  t.match(consent, '<a href="http://127.0.0.1:1/connections">Connected Apps</a>', 'consent links to Connected Apps')
})
