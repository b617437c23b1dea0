// Client ID Metadata Documents: real-shaped documents (Claude Code, VS Code, ChatGPT with private_key_jwt)
// served over https by a local server whose certificate a test CA signed; the MCP SDK's own client with an
// https client_id; and hostile documents, each refused for its own reason, never with a redirect.
import t from 'tap'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { testCa, documentServer, loopbackResolver, type DocumentServer } from '@uspl/testing/documents'
import { startStack, obtainCode, tokenRequest, pkce, Browser, authorizeInBrowser, decodeJwt, keysMatching, TestProvider, type Stack } from './helpers.ts'

const ca = testCa(t)
let docs: DocumentServer
let stack: Stack

const ALLOWED = 'claude.test,vscode.test,chatgpt.test,rebind.test'

t.before(async () => {
  docs = await documentServer(t, ca)
  stack = await startStack(t, { CIMD_ALLOW_PRIVATE_HOSTS: ALLOWED, CIMD_FETCH_TIMEOUT_MS: '800', CIMD_HOST_FETCHES_PER_MINUTE: '1000' }, { cimdFetch: { ca: ca.ca, resolver: loopbackResolver } })
})

const claudeUrl = (): string => `${docs.origin('claude.test')}/oauth/claude-code-client-metadata`
function claudeDocument (url = claudeUrl()): Record<string, unknown> {
  return {
    client_id: url,
    client_name: 'Claude Code',
    client_uri: 'https://claude.ai',
    redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    unknown_extension: { ignored: true }
  }
}

async function authorizePage (clientId: string, redirectUri: string): Promise<{ status: number, html: string, location: string | undefined }> {
  const { challenge } = pkce()
  const qs = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 's', resource: stack.resource })
  const res = await stack.token.inject({ method: 'GET', url: `/authorize?${qs.toString()}` })
  return { status: res.statusCode, html: res.body, location: res.headers.location as string | undefined }
}

t.test('Claude Code shape: a public client with loopback redirects goes through consent, tokens, refresh and revocation', async (t) => {
  const url = claudeUrl()
  docs.json('/oauth/claude-code-client-metadata', claudeDocument())
  // the consent page names the client and shows the verified host apart from the name
  const browser = new Browser()
  const { verifier, challenge } = pkce()
  const authUrl = new URL(`${stack.issuer}/authorize`)
  authUrl.search = new URLSearchParams({ response_type: 'code', client_id: url, redirect_uri: 'http://127.0.0.1:51234/callback', code_challenge: challenge, code_challenge_method: 'S256', state: 'c1', resource: stack.resource }).toString()
  const first = await browser.request(authUrl.toString())
  t.equal(first.status, 303, 'a valid document: on to consent')
  const callback = await authorizeInBrowser(browser, authUrl.toString(), { issuer: stack.issuer, email: stack.user.email, password: stack.password })
  t.equal(callback.origin + callback.pathname, 'http://127.0.0.1:51234/callback', 'any loopback port matches (RFC 8252 §7.3)')
  const code = callback.searchParams.get('code') as string
  const tokens = await tokenRequest(stack, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: 'http://127.0.0.1:51234/callback', client_id: url, resource: stack.resource })
  t.equal(tokens.status, 200, String(tokens.body.error_description ?? "tokens issued"))
  t.equal(decodeJwt(tokens.body.access_token as string).claims.client_id, url, 'the access token names the https client_id')
  const refreshed = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token as string, client_id: url })
  t.equal(refreshed.status, 200, 'refresh works')
  const revoke = await stack.token.inject({ method: 'POST', url: '/revoke', payload: { token: refreshed.body.refresh_token, client_id: url } })
  t.equal(revoke.statusCode, 200)
  t.equal((await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token as string, client_id: url })).body.error, 'invalid_grant', 'revoked')
  // recorded beside registered clients, fetched once (cached since)
  const record = await stack.token.tokenContext.clients.get(url)
  t.equal(record?.kind, 'metadata_document')
  t.equal(record?.metadata.client_name, 'Claude Code')
  t.notOk('unknown_extension' in (record?.metadata ?? {}), 'unknown fields are ignored')
  t.equal(docs.hits('/oauth/claude-code-client-metadata'), 1, 'one fetch, then the cache')
})

t.test('the consent page shows the document host on its own; a name cannot hide it', async (t) => {
  const url = `${docs.origin('claude.test')}/impostor.json`
  docs.json('/impostor.json', { ...claudeDocument(url), client_name: 'Visual Studio Code\u202e\u200b     \u2066moc.tfosorcim\u2069' })
  const browser = new Browser()
  const { challenge } = pkce()
  const authUrl = `${stack.issuer}/authorize?${new URLSearchParams({ response_type: 'code', client_id: url, redirect_uri: 'http://localhost:4000/callback', code_challenge: challenge, code_challenge_method: 'S256', resource: stack.resource }).toString()}`
  // sign in, then read the consent page
  const signin = await browser.request(`${stack.issuer}/signin`)
  const csrf = /name="csrf" value="([^"]+)"/.exec(await signin.text())?.[1] as string
  await browser.request(`${stack.issuer}/signin`, { form: { csrf, email: stack.user.email, password: stack.password } })
  const res = await browser.request(authUrl)
  const consent = await browser.request(new URL(res.headers.get('location') as string, stack.issuer).toString())
  const html = await consent.text()
  t.equal(consent.status, 200)
  t.match(html, `<strong dir="ltr" class="host"><bdi>claude.test:${docs.port}</bdi></strong>`, 'the verified host, isolated, apart from the name')
  t.notMatch(html, /[\u202a-\u202e\u2066\u2067\u200b]/, 'no bidi or zero-width controls from the name reach the page')
  t.match(html, '<title>Allow \u2068Visual Studio Code moc.tfosorcim\u2069?</title>', 'the only isolates are the page\'s own, around the name in the title')
  t.match(html, 'Visual Studio Code moc.tfosorcim', 'the padding collapsed')
  t.match(html, 'This application runs on your own computer', 'the localhost warning')
})

t.test('VS Code shape: an https redirect and a fixed loopback port', async (t) => {
  const url = `${docs.origin('vscode.test')}/oauth/client-metadata.json`
  docs.json('/oauth/client-metadata.json', {
    client_id: url,
    client_name: 'Visual Studio Code',
    client_uri: 'https://code.visualstudio.com',
    logo_uri: 'https://code.visualstudio.com/assets/favicon.ico',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1:33418/', 'https://vscode.dev/redirect'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none'
  })
  const { code, verifier } = await obtainCode(stack, url, { redirectUri: 'https://vscode.dev/redirect' })
  const res = await tokenRequest(stack, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: 'https://vscode.dev/redirect', client_id: url })
  t.equal(res.status, 200, String(res.body.error_description ?? "tokens issued"))
})

// ChatGPT authenticates with private_key_jwt: its document publishes keys, inline or at a jwks_uri
function chatgpt (path: string, keys: { jwks?: unknown, jwks_uri?: string }): string {
  const url = `${docs.origin('chatgpt.test')}${path}`
  docs.json(path, { client_id: url, client_name: 'ChatGPT', redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'private_key_jwt', scope: 'mcp:tools', ...keys })
  return url
}

function assertion (key: string, alg: 'ES256' | 'RS256', clientId: string, claims: Record<string, unknown> = {}, kid = 'k1'): string {
  const now = Math.floor(Date.now() / 1000)
  const sign = createSigner({ key, algorithm: alg, kid, noTimestamp: true })
  return sign({ iss: clientId, sub: clientId, aud: `${stack.issuer}/token`, iat: now, exp: now + 60, jti: randomUUID(), ...claims })
}

t.test('ChatGPT shape: private_key_jwt with an inline JWKS (ES256), assertions single-use and short', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const url = chatgpt('/oauth/client.json', { jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'ES256' }] } })
  const redirectUri = 'https://chatgpt.com/connector_platform_oauth_redirect'
  const exchange = async (extra: Record<string, string>): Promise<{ status: number, body: Record<string, unknown> }> => {
    const { code, verifier } = await obtainCode(stack, url, { redirectUri })
    return tokenRequest(stack, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, ...extra })
  }
  const type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
  const good = assertion(pem, 'ES256', url)
  const ok = await exchange({ client_assertion_type: type, client_assertion: good })
  t.equal(ok.status, 200, String(ok.body.error_description ?? "tokens issued"))
  const replay = await exchange({ client_assertion_type: type, client_assertion: good, client_id: url })
  t.same([replay.status, replay.body.error], [401, 'invalid_client'], 'a replayed assertion (same jti)')
  t.match(replay.body.error_description, /already used/)
  const none = await exchange({ client_id: url })
  t.same([none.status, none.body.error], [401, 'invalid_client'], 'no assertion: a private_key_jwt client cannot act as public')
  t.match((await exchange({ client_assertion_type: type, client_assertion: assertion(pem, 'ES256', url, { aud: 'https://elsewhere.example/token' }) })).body.error_description, /aud/, 'wrong audience')
  t.match((await exchange({ client_assertion_type: type, client_assertion: assertion(pem, 'ES256', url, { exp: Math.floor(Date.now() / 1000) + 3600 }) })).body.error_description, /expire within/, 'too long-lived')
  const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  t.match((await exchange({ client_assertion_type: type, client_assertion: assertion(stranger, 'ES256', url) })).body.error_description, /signature/, 'another key')
  const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: url, sub: url })).toString('base64url')}.`
  t.match((await exchange({ client_assertion_type: type, client_assertion: unsigned })).body.error_description, /alg must be/, 'alg none refused')
  t.same(await keysMatching(stack.r, 'cimd:jti:*').then((k) => k.length > 0), true, 'jti remembered in Redis')
  // the refresh grant authenticates the same way
  const refreshed = await tokenRequest(stack, { grant_type: 'refresh_token', refresh_token: ok.body.refresh_token as string, client_assertion_type: type, client_assertion: assertion(pem, 'ES256', url) })
  t.equal(refreshed.status, 200, 'refresh with a fresh assertion')
})

t.test('ChatGPT shape with a jwks_uri (RS256), fetched by the same safe fetcher', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  docs.json('/oauth/jwks.json', { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'r1', use: 'sig', alg: 'RS256' }] })
  const url = chatgpt('/oauth/client-jwks-uri.json', { jwks_uri: `${docs.origin('chatgpt.test')}/oauth/jwks.json` })
  const redirectUri = 'https://chatgpt.com/connector_platform_oauth_redirect'
  const { code, verifier } = await obtainCode(stack, url, { redirectUri })
  const res = await tokenRequest(stack, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: url, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'RS256', url, {}, 'r1') })
  t.equal(res.status, 200, String(res.body.error_description ?? "tokens issued"))
  t.equal(docs.hits('/oauth/jwks.json'), 1)
})

t.test('hostile documents: each refused for its own reason, on a page at /authorize and invalid_client at /token', async (t) => {
  const refusals: Array<[string, () => string, string, RegExp]> = [
    ['huge (announced)', () => { docs.route('/huge.json', (_q, s) => { s.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...claudeDocument(`${docs.origin('claude.test')}/huge.json`), pad: 'x'.repeat(6000) })) }); return `${docs.origin('claude.test')}/huge.json` }, 'http://127.0.0.1/callback', /larger than 5120 bytes/],
    ['huge (streamed, no length)', () => { docs.route('/stream.json', (_q, s) => { s.writeHead(200, { 'content-type': 'application/json' }); s.write('{"pad":"'); s.write('y'.repeat(4000)); s.write('y'.repeat(4000)); s.end('"}') }); return `${docs.origin('claude.test')}/stream.json` }, 'http://127.0.0.1/callback', /larger than 5120 bytes/],
    ['slow', () => { docs.route('/slow.json', (_q, s) => { s.writeHead(200, { 'content-type': 'application/json' }); s.write('{') }); return `${docs.origin('claude.test')}/slow.json` }, 'http://127.0.0.1/callback', /took longer than 800 ms/],
    ['redirecting', () => { docs.route('/moved.json', (_q, s) => { s.writeHead(302, { location: claudeUrl() }).end() }); return `${docs.origin('claude.test')}/moved.json` }, 'http://127.0.0.1/callback', /redirects are not followed/],
    ['private address', () => { docs.json('/private.json', claudeDocument(`${docs.origin('evil.test')}/private.json`)); return `${docs.origin('evil.test')}/private.json` }, 'http://127.0.0.1/callback', /loopback, private/],
    ['mismatched client_id', () => { docs.json('/mismatch.json', claudeDocument(claudeUrl())); return `${docs.origin('claude.test')}/mismatch.json` }, 'http://127.0.0.1/callback', /client_id is not exactly the URL/],
    ['secret-requesting', () => { const u = `${docs.origin('claude.test')}/secret.json`; docs.json('/secret.json', { ...claudeDocument(u), token_endpoint_auth_method: 'client_secret_basic' }); return u }, 'http://127.0.0.1/callback', /asks for a client secret/],
    ['no client_name', () => { const u = `${docs.origin('claude.test')}/noname.json`; docs.json('/noname.json', { ...claudeDocument(u), client_name: undefined }); return u }, 'http://127.0.0.1/callback', /client_name is required/],
    ['not JSON', () => { docs.route('/html.json', (_q, s) => { s.writeHead(200, { 'content-type': 'text/html' }).end('<html>') }); return `${docs.origin('claude.test')}/html.json` }, 'http://127.0.0.1/callback', /not served as application\/json/],
    ['plain http', () => 'http://claude.test/oauth/client.json', 'http://127.0.0.1/callback', /is not an https URL/],
    ['no path', () => `${docs.origin('claude.test')}/`, 'http://127.0.0.1/callback', /has no path/],
    ['unknown host', () => 'https://nowhere.test/client.json', 'http://127.0.0.1/callback', /does not resolve/]
  ]
  for (const [name, setup, redirectUri, reason] of refusals) {
    const clientId = setup()
    const page = await authorizePage(clientId, redirectUri)
    t.equal(page.location, undefined, `${name}: never a redirect`)
    t.ok(page.status >= 400, `${name}: an error status`)
    t.match(page.html, 'Application could not be verified', `${name}: the error page`)
    t.match(page.html.replace(/&#39;/g, "'"), reason, `${name}: its own reason`)
    const token = await tokenRequest(stack, { grant_type: 'authorization_code', code: 'x', code_verifier: 'v'.repeat(43), client_id: clientId })
    t.same([token.status, token.body.error], [401, 'invalid_client'], `${name}: invalid_client at /token`)
  }
  // an unlisted redirect URI on a valid document is the registered-client refusal, also without a redirect
  docs.json('/oauth/claude-code-client-metadata', claudeDocument())
  const unlisted = await authorizePage(claudeUrl(), 'https://attacker.example/callback')
  t.equal(unlisted.location, undefined)
  t.match(unlisted.html, 'Redirect URI not registered')
})

t.test('DNS rebinding: the address connected to is checked, not only the first answer', async (t) => {
  let lookups = 0
  const rebinding = async (hostname: string): Promise<Array<{ address: string, family: number }>> => {
    lookups++
    return [{ address: lookups === 1 ? '93.184.216.34' : '127.0.0.1', family: 4 }]
  }
  const { SafeFetcher } = await import('../src/lib/cimd/fetch.ts')
  const fetcher = new SafeFetcher({ ca: ca.ca, resolver: rebinding })
  docs.json('/rebind.json', claudeDocument(`${docs.origin('rebind.test')}/rebind.json`))
  await t.rejects(fetcher.fetchJson(`${docs.origin('rebind.test')}/rebind.json`), { problem: 'host_not_allowed' } as never)
  t.equal(lookups, 2, 'resolved again for the connection')
  t.equal(docs.hits('/rebind.json'), 0, 'nothing reached the private address')
  // an IP literal, and IPv6 spellings of private IPv4 addresses
  await t.rejects(new SafeFetcher({ ca: ca.ca }).fetchJson(`https://127.0.0.1:${docs.port}/rebind.json`), { problem: 'host_not_allowed' } as never)
  await t.rejects(new SafeFetcher({ ca: ca.ca }).fetchJson(`https://[::ffff:127.0.0.1]:${docs.port}/rebind.json`), { problem: 'host_not_allowed' } as never)
  // the cloud metadata address stays refused even for an allowed host
  const metadata = new SafeFetcher({ ca: ca.ca, allowPrivateHosts: ['meta.test'], resolver: async () => [{ address: '169.254.169.254', family: 4 }] })
  await t.rejects(metadata.fetchJson('https://meta.test/latest/meta-data'), { problem: 'host_not_allowed', message: /cloud metadata/ } as never)
})

t.test('cache: shared in Redis for what the headers allow (clamped), concurrent fetches coalesced, operator refresh', async (t) => {
  const url = `${docs.origin('claude.test')}/cached.json`
  docs.json('/cached.json', claudeDocument(url), { 'cache-control': 'max-age=5' })
  const results = await Promise.all(Array.from({ length: 5 }, async () => stack.token.tokenContext.cimd.resolve(url)))
  t.equal(docs.hits('/cached.json'), 1, 'five concurrent resolutions, one fetch')
  t.equal(results.filter((r) => r.fetched).length, 5, 'all shared the one fetch')
  const [key] = await keysMatching(stack.r, 'cimd:doc:*').then(async (ks) => {
    const ttls = await Promise.all(ks.map(async (k) => [k, await stack.r.redis.ttl(k)] as const))
    return ttls.filter(([, ttl]) => ttl > 250 && ttl <= 300).map(([k]) => k)
  })
  t.ok(key, 'max-age=5 is raised to the 300 s floor')
  docs.json('/long.json', claudeDocument(`${docs.origin('claude.test')}/long.json`), { 'cache-control': 'public, max-age=31536000' })
  await stack.token.tokenContext.cimd.resolve(`${docs.origin('claude.test')}/long.json`)
  const ttls = await Promise.all((await keysMatching(stack.r, 'cimd:doc:*')).map(async (k) => stack.r.redis.ttl(k)))
  t.ok(ttls.some((ttl) => ttl > 86000 && ttl <= 86400), 'a year is lowered to the 24 h ceiling')
  // a changed document takes effect on refresh
  docs.json('/cached.json', { ...claudeDocument(url), client_name: 'Claude Code (new)' })
  t.equal((await stack.token.tokenContext.cimd.resolve(url)).metadata.client_name, 'Claude Code', 'still the cached one')
  t.equal((await stack.token.tokenContext.cimd.refresh(url)).metadata.client_name, 'Claude Code (new)', 'refresh fetches at once')
})

t.test('per-host budget on outbound fetches, counted in Redis', async (t) => {
  const { CimdResolver } = await import('../src/lib/cimd/resolver.ts')
  const { SafeFetcher } = await import('../src/lib/cimd/fetch.ts')
  const resolver = new CimdResolver(stack.r.redis, new SafeFetcher({ ca: ca.ca, resolver: loopbackResolver, allowPrivateHosts: ['localhost'] }), { cacheMinS: 300, cacheMaxS: 86400, hostFetchesPerWindow: 2, hostWindowS: 60 })
  // a host no other test fetches from, so its counter starts at zero
  for (const n of [1, 2]) {
    const u = `${docs.origin('localhost')}/budget-${n}.json`
    docs.json(`/budget-${n}.json`, claudeDocument(u))
    await resolver.resolve(u)
  }
  await t.rejects(resolver.resolve(`${docs.origin('localhost')}/budget-3.json`), { problem: 'rate_limited' } as never)
  t.equal(docs.hits('/budget-3.json'), 0, 'the third fetch never went out')
  // a flood of invented URLs on the host cannot lock out a real client whose fresh entry just expired
  const known = `${docs.origin('localhost')}/budget-1.json`
  const [fresh] = await keysMatching(stack.r, 'cimd:doc:*').then(async (ks) => (await Promise.all(ks.map(async (k) => [k, await stack.r.redis.get(k)] as const))).filter(([, v]) => v?.includes('budget-1.json')).map(([k]) => k))
  await stack.r.redis.del(fresh)
  t.equal((await resolver.resolve(known)).metadata.client_name, 'Claude Code', 'served from the stale copy while the budget is spent')
  t.equal(docs.hits('/budget-1.json'), 1, 'without a fetch')
})

t.test('a disabled metadata-document client is refused like a registered one', async (t) => {
  const url = `${docs.origin('claude.test')}/disabled.json`
  docs.json('/disabled.json', claudeDocument(url))
  await obtainCode(stack, url, { redirectUri: 'http://127.0.0.1:5000/callback' })
  await stack.token.tokenContext.revoker.revokeClient(url, { path: 'client_disable', actor: { type: 'operator', id: 'test' }, disable: true })
  const page = await authorizePage(url, 'http://127.0.0.1:5000/callback')
  t.equal(page.status, 403)
  t.match(page.html, 'Application disabled')
})


t.test('the MCP SDK client uses its https client_id (clientMetadataUrl) and never registers', async (t) => {
  const url = `${docs.origin('claude.test')}/sdk/client-metadata.json`
  docs.json('/sdk/client-metadata.json', { client_id: url, client_name: 'SDK CIMD Client', redirect_uris: ['http://127.0.0.1:53682/callback'], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' })
  const provider = new TestProvider({ issuer: stack.issuer, email: stack.user.email, password: stack.password }, url)
  t.equal(await auth(provider, { serverUrl: stack.resource }), 'REDIRECT')
  t.equal(provider.client?.client_id, url, 'the SDK chose its metadata URL as client_id (the server advertises CIMD)')
  const code = provider.lastCallback?.searchParams.get('code')
  if (!code) throw new Error('no code')
  t.equal(await auth(provider, { serverUrl: stack.resource, authorizationCode: code }), 'AUTHORIZED')
  t.equal(decodeJwt(provider.saved?.access_token as string).claims.client_id, url)
  t.equal(await stack.token.tokenContext.clients.list().then((l) => l.filter((c) => c.kind === 'registered').length), 0, 'no dynamic registration happened')
})
