// Dynamic client registration (RFC 7591) and client configuration (RFC 7592): what is accepted, each
// refusal with its error and a description naming the URI, the rate limit, and deletion revoking grants.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { testRedis, testEnv, type TestRedis } from '@uspl/testing'
import { GrantStore, hashSecret } from '@uspl/core'
import { build } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'

async function app (t: Parameters<typeof testRedis>[0], env: Record<string, string> = {}): Promise<{ app: FastifyInstance, r: TestRedis }> {
  const r = await testRedis(t)
  const a = await build(loadConfig(testEnv(r, { REGISTRATION_URL: 'https://reg.example.com', ...env })), { redis: r.redis, logger: false })
  t.teardown(() => a.close())
  return { app: a, r }
}

async function register (a: FastifyInstance, payload: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown>, headers: Record<string, unknown> }> {
  const res = await a.inject({ method: 'POST', url: '/register', payload: payload as object, headers })
  return { status: res.statusCode, body: res.body ? res.json() : {}, headers: res.headers }
}

t.test('registers a public client and answers what it accepted', async (t) => {
  const { app: a, r } = await app(t)
  const res = await register(a, {
    client_name: 'Cursor',
    redirect_uris: ['cursor://anysphere.cursor-retrieval/oauth/user-x/callback', 'http://127.0.0.1/callback', 'http://localhost:6274/oauth/callback', 'http://[::1]:33418/', 'https://claude.ai/api/mcp/auth_callback'],
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'mcp:tools whatever',
    client_uri: 'https://cursor.com',
    unknown_field: 'ignored'
  })
  t.equal(res.status, 201)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.body
  t.match(body.client_id, /^cli_/)
  t.type(body.client_id_issued_at, 'number')
  t.equal(body.token_endpoint_auth_method, 'none', 'told none even when it asked for a secret method')
  t.same(body.grant_types, ['authorization_code', 'refresh_token'])
  t.same(body.response_types, ['code'])
  t.equal(body.client_name, 'Cursor')
  t.equal(body.scope, 'mcp:tools whatever', 'scope is not restricted at registration')
  t.equal(body.redirect_uris && (body.redirect_uris as string[]).length, 5)
  t.notOk('client_secret' in body, 'no secret')
  t.notOk('unknown_field' in body)
  t.match(body.registration_access_token, /^[A-Za-z0-9_-]{43}$/)
  t.equal(body.registration_client_uri, `https://reg.example.com/register/${String(body.client_id)}`)
  // stored hashed, with the idle expiry
  const stored = await r.redis.hgetall(`client:${String(body.client_id)}`)
  t.equal(stored.rat_hash, hashSecret(String(body.registration_access_token)))
  t.notOk(JSON.stringify(stored).includes(String(body.registration_access_token)))
  const ttl = await r.redis.ttl(`client:${String(body.client_id)}`)
  t.ok(ttl > 89 * 86400 && ttl <= 90 * 86400, 'expires after 90 idle days')
  // defaults
  const minimal = await register(a, { redirect_uris: ['https://app.example/cb'] })
  t.equal(minimal.status, 201)
  t.same(minimal.body.grant_types, ['authorization_code', 'refresh_token'])
  t.equal(minimal.body.token_endpoint_auth_method, 'none')
})

t.test('refusals: each bad redirect URI with invalid_redirect_uri naming it and why', async (t) => {
  const { app: a, r } = await app(t)
  const cases: Array<[unknown, RegExp]> = [
    [['http://example.com/cb'], /"http:\/\/example\.com\/cb" uses plain http off loopback/],
    [['http://192.168.1.10:8080/cb'], /plain http off loopback/],
    [['https://app.example/cb#frag'], /"https:\/\/app\.example\/cb#frag" contains a fragment/],
    [['https://*.example.com/cb'], /contains a wildcard/],
    [['javascript:alert(1)'], /"javascript:alert\(1\)" uses the javascript scheme/],
    [['data:text/html,hi'], /uses the data scheme/],
    [['file:///etc/passwd'], /uses the file scheme/],
    [['not a uri'], /"not a uri" contains whitespace/],
    [['relative/path'], /"relative\/path" is not a valid absolute URI/],
    [['https://user:pw@app.example/cb'], /contains user credentials/],
    [['https://app.example/' + 'a'.repeat(2100)], /is longer than 2000 characters/],
    [['https://ok.example/cb', 'http://evil.example/cb'], /"http:\/\/evil\.example\/cb"/],
    [[42], /is not a non-empty string/],
    [[], /redirect_uris is empty/],
    ['https://app.example/cb', /must be an array/],
    [undefined, /redirect_uris is required/]
  ]
  for (const [uris, description] of cases) {
    const res = await register(a, uris === undefined ? { client_name: 'x' } : { redirect_uris: uris })
    t.equal(res.status, 400, `${JSON.stringify(uris)?.slice(0, 60)}: 400`)
    t.equal(res.body.error, 'invalid_redirect_uri')
    t.match(res.body.error_description, description)
  }
  t.same(await r.redis.smembers('clients'), [], 'nothing registered')
})

t.test('names that cannot spoof: bidi, invisible and control characters are refused in every shown string', async (t) => {
  const { app: a, r } = await app(t)
  const ok = { redirect_uris: ['https://app.example/cb'] }
  const spoofs: Array<[string, string]> = [
    ['right-to-left override', 'Evil \u202Etnuocca'],
    ['right-to-left isolate', 'Evil \u2067x'],
    ['left-to-right mark', 'Claude\u200E'],
    ['arabic letter mark', 'Claude\u061C'],
    ['zero-width space', 'Cla\u200Bude'],
    ['zero-width joiner', 'Cla\u200Dude'],
    ['word joiner', 'Cla\u2060ude'],
    ['byte order mark', '\uFEFFClaude'],
    ['soft hyphen', 'Cla\u00ADude'],
    ['tag character', 'Claude\u{E0041}'],
    ['hangul filler', 'Claude\u3164'],
    ['NUL', 'Claude\u0000'],
    ['newline', 'Claude\nAllow'],
    ['tab', 'Claude\tx'],
    ['C1 control', 'Claude\u0085'],
    ['line separator', 'Claude\u2028x']
  ]
  for (const [what, name] of spoofs) {
    const res = await register(a, { ...ok, client_name: name })
    t.equal(res.status, 400, `client_name with a ${what}: 400`)
    t.equal(res.body.error, 'invalid_client_metadata', `${what}: invalid_client_metadata`)
    t.match(res.body.error_description, /^client_name contains U\+[0-9A-F]{4,5} /, `${what}: names the code point`)
  }
  for (const field of ['software_id', 'software_version', 'scope']) {
    const res = await register(a, { ...ok, [field]: 'x\u202Ey' })
    t.equal(res.body.error, 'invalid_client_metadata', `${field} refused too`)
  }
  const contacts = await register(a, { ...ok, contacts: ['ops@example.com', 'a\u200Bb@example.com'] })
  t.equal(contacts.body.error, 'invalid_client_metadata', 'a contact too')
  t.same(await r.raw.keys(`${r.prefix}client:*`), [], 'nothing registered')
  // what real clients send still passes: accents, CJK, emoji, right-to-left script without controls
  for (const name of ['Café Présence', 'クロード', 'Claude 🤖', 'تطبيق', 'VS Code — Insiders']) {
    const res = await register(a, { ...ok, client_name: name })
    t.equal(res.status, 201, `${name}: registered`)
    t.equal(res.body.client_name, name)
  }
})

t.test('refusals: invalid_client_metadata for the other fields', async (t) => {
  const { app: a } = await app(t)
  const ok = { redirect_uris: ['https://app.example/cb'] }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ grant_types: ['authorization_code', 'client_credentials'] }, /grant_types client_credentials not supported/],
    [{ grant_types: ['implicit'] }, /implicit/],
    [{ response_types: ['token'] }, /response_types must be \["code"\]/],
    [{ token_endpoint_auth_method: 'tls_client_auth' }, /token_endpoint_auth_method tls_client_auth is not supported/],
    [{ client_name: 'x'.repeat(201) }, /client_name is longer than 200/],
    [{ client_name: 12 }, /client_name must be a string/],
    [{ client_uri: 'javascript:alert(1)' }, /client_uri .* must be an http or https URL/],
    [{ logo_uri: 'not a url' }, /logo_uri .* is not a valid URL/],
    [{ scope: 's'.repeat(1001) }, /scope is longer than 1000/],
    [{ contacts: 'me@example.com' }, /contacts must be an array/]
  ]
  for (const [extra, description] of cases) {
    const res = await register(a, { ...ok, ...extra })
    t.equal(res.status, 400, `${Object.keys(extra)[0]}: 400`)
    t.equal(res.body.error, 'invalid_client_metadata')
    t.match(res.body.error_description, description)
  }
  const notObject = await a.inject({ method: 'POST', url: '/register', payload: '[1,2]', headers: { 'content-type': 'application/json' } })
  t.equal(notObject.json().error, 'invalid_client_metadata')
  const badJson = await a.inject({ method: 'POST', url: '/register', payload: '{nope', headers: { 'content-type': 'application/json' } })
  t.equal(badJson.statusCode, 400)
  t.ok(badJson.json().error)
  const huge = await a.inject({ method: 'POST', url: '/register', payload: JSON.stringify({ ...ok, client_name: 'x', pad: 'x'.repeat(20 * 1024) }), headers: { 'content-type': 'application/json' } })
  t.equal(huge.statusCode, 413, 'body size limit')
})

t.test('RFC 7592: read and delete with the registration access token only', async (t) => {
  const { app: a, r } = await app(t)
  const created = (await register(a, { client_name: 'Deletable', redirect_uris: ['https://app.example/cb'] })).body
  const id = String(created.client_id)
  const token = String(created.registration_access_token)
  const other = (await register(a, { redirect_uris: ['https://other.example/cb'] })).body

  for (const auth of [undefined, 'Bearer wrong', `Bearer ${String(other.registration_access_token)}`, `Basic ${token}`]) {
    const read = await a.inject({ url: `/register/${id}`, headers: auth ? { authorization: auth } : {} })
    t.equal(read.statusCode, 401, `read with ${auth ?? 'nothing'}: 401`)
    t.equal(read.json().error, 'invalid_token')
    t.match(read.headers['www-authenticate'], /^Bearer error="invalid_token"/)
    const del = await a.inject({ method: 'DELETE', url: `/register/${id}`, headers: auth ? { authorization: auth } : {} })
    t.equal(del.statusCode, 401, `delete with ${auth ?? 'nothing'}: 401`)
  }
  t.equal((await a.inject({ url: '/register/cli_unknown', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'unknown client: same answer')

  const read = await a.inject({ url: `/register/${id}`, headers: { authorization: `Bearer ${token}` } })
  t.equal(read.statusCode, 200)
  t.equal(read.json().client_id, id)
  t.equal(read.json().client_name, 'Deletable')
  t.notOk(read.json().registration_access_token, 'the token is not shown again')

  // a grant with a refresh token, then delete: the grant is revoked, the client is gone
  const grants = new GrantStore(r.redis, r.prefix)
  const grant = await grants.ensure({ userId: 'usr_1', clientId: id, scope: 'mcp:tools', resource: 'http://localhost:3000/mcp', authTime: 1, ttlS: 3600 })
  await r.redis.multi().hset('rt:abc', { grant_id: grant.id }).sadd(`grant:${grant.id}:rts`, 'abc').exec()
  const del = await a.inject({ method: 'DELETE', url: `/register/${id}`, headers: { authorization: `Bearer ${token}` } })
  t.equal(del.statusCode, 204)
  t.ok(await r.redis.get(`dl:g:${grant.id}`), 'grant denylisted')
  t.ok(await r.redis.get(`dl:c:${id}`), 'client denylisted')
  t.equal(await r.redis.exists('rt:abc'), 0, 'refresh tokens deleted')
  t.ok((await grants.get(grant.id))?.revokedAt, 'grant revoked')
  t.equal(await r.redis.exists(`client:${id}`), 0, 'client removed')
  t.notOk((await r.redis.smembers('clients')).includes(id))
  const events = await r.redis.xrange('events:revocations', '-', '+')
  t.equal(events.length, 1)
  t.match(events[0][1][1], /"path":"client_delete"/)
  t.equal((await a.inject({ url: `/register/${id}`, headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'gone')
  t.equal((await a.inject({ url: `/register/${String(other.client_id)}`, headers: { authorization: `Bearer ${String(other.registration_access_token)}` } })).statusCode, 200, 'other clients untouched')
})

t.test('rate limit per address: 429 with Retry-After and a JSON error, shared through Redis', async (t) => {
  const { app: a, r } = await app(t, { REGISTRATION_RATE_LIMIT_MAX: '3', REGISTRATION_RATE_LIMIT_WINDOW_S: '60' })
  const second = await build(loadConfig(testEnv(r, { REGISTRATION_RATE_LIMIT_MAX: '3', REGISTRATION_RATE_LIMIT_WINDOW_S: '60' })), { redis: r.redis, logger: false })
  t.teardown(() => second.close())
  const ok = { redirect_uris: ['https://app.example/cb'] }
  t.equal((await register(a, ok)).status, 201)
  t.equal((await register(second, ok)).status, 201, 'another replica counts in the same Redis')
  t.equal((await register(a, ok)).status, 201)
  const limited = await register(second, ok)
  t.equal(limited.status, 429)
  t.equal(limited.body.error, 'temporarily_unavailable')
  t.match(limited.body.error_description, /too many requests from this address/)
  const retry = Number(limited.headers['retry-after'])
  t.ok(retry > 0 && retry <= 60, 'Retry-After in seconds')
  t.match(limited.headers['content-type'], /application\/json/)
  const other = await a.inject({ method: 'POST', url: '/register', payload: ok, remoteAddress: '10.1.2.3' })
  t.equal(other.statusCode, 201, 'another address is not limited')
  t.equal((await r.redis.smembers('clients')).length, 4, 'the limited request registered nothing')
})

t.test('CORS is open on /register', async (t) => {
  const { app: a } = await app(t)
  const pre = await a.inject({ method: 'OPTIONS', url: '/register', headers: { origin: 'https://inspector.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } })
  t.equal(pre.statusCode, 204)
  t.equal(pre.headers['access-control-allow-origin'], '*')
  const res = await a.inject({ method: 'POST', url: '/register', payload: { redirect_uris: ['https://app.example/cb'] }, headers: { origin: 'https://inspector.example' } })
  t.equal(res.headers['access-control-allow-origin'], '*')
  const refused = await a.inject({ method: 'POST', url: '/register', payload: { redirect_uris: [] }, headers: { origin: 'https://inspector.example' } })
  t.equal(refused.headers['access-control-allow-origin'], '*', 'errors readable by browsers too')
})

t.test('no rate limit on RFC 7592 read/delete: guessed registration tokens get 429 per address and per client', async (t) => {
  const { app: a } = await app(t, { RATE_LIMIT_FAILURES_MAX: '3' })
  const { body: victim } = await register(a, { redirect_uris: ['https://app.example/cb'] })
  const id = String(victim.client_id)
  for (let i = 0; i < 3; i++) {
    const res = await a.inject({ method: i % 2 === 0 ? 'GET' : 'DELETE', url: `/register/${id}`, remoteAddress: `198.51.100.${i + 1}`, headers: { authorization: `Bearer guessed-${i}` } })
    t.equal(res.statusCode, 401, `guess ${i}: 401`)
  }
  const res = await a.inject({ url: `/register/${id}`, remoteAddress: '198.51.100.50', headers: { authorization: `Bearer ${String(victim.registration_access_token)}` } })
  t.equal(res.statusCode, 429, 'the client is locked against a distributed guesser, even with its right token, until the window ends')
  t.equal(res.json().error, 'temporarily_unavailable')
  t.ok(Number(res.headers['retry-after']) > 0)
  t.equal(res.headers['ratelimit-remaining'], '0')
})
