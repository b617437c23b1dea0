// The REST API: who may call what (users, operators, nobody), the confirmation, CSRF and Origin, and what a
// revocation leaves in Redis (denylist, refresh tokens gone, the event in the stream).
import t from 'tap'
import { keys, parseEvent, type RevocationEvent } from '@uspl/core'
import { setup, browser, bearer, ORIGIN } from './helper.ts'
import { loadConfig } from '../src/config.ts'

async function streamEvents (f: Awaited<ReturnType<typeof setup>>): Promise<RevocationEvent[]> {
  const entries = await f.r.redis.xrange(keys.revocationStream(), '-', '+') as Array<[string, string[]]>
  return entries.map(([id, fields]) => parseEvent(id, fields[1]))
}

t.test('authentication matrix', async (t) => {
  const f = await setup(t)
  const ann = await f.user('Ann')
  const claude = await f.client('Claude')
  const grant = await f.grant(ann, claude)
  const s = await f.signIn(ann)
  const key = await f.operatorKey()

  t.test('no credentials: 401 with the JSON error shape', async (t) => {
    for (const [method, url] of [['GET', '/v1/connections'], ['POST', `/v1/connections/${grant.id}/revoke`], ['GET', '/v1/clients'], ['GET', '/v1/audit'], ['POST', `/v1/clients/${claude.clientId}/revoke`], ['POST', `/v1/users/${ann.id}/revoke`]] as const) {
      const res = await f.app.inject({ method, url, payload: method === 'POST' ? { confirm: 'Claude' } : undefined })
      t.equal(res.statusCode, 401, `${method} ${url}`)
      t.equal(res.json().error.code, 'unauthenticated')
      t.type(res.json().error.message, 'string')
    }
  })

  t.test('a bad, malformed or revoked API key: 401, and never falls back to the cookie', async (t) => {
    for (const authorization of ['Bearer uspl_notarealkey', 'Bearer notakey', 'Basic dXNlcjpwYXNz', 'Bearer']) {
      const res = await f.app.inject({ url: '/v1/connections', headers: { authorization, cookie: s.cookie } })
      t.equal(res.statusCode, 401, authorization)
      t.match(res.headers['www-authenticate'], /^Bearer /)
    }
  })

  t.test('a user cannot call operator endpoints', async (t) => {
    for (const [method, url] of [['GET', '/v1/clients'], ['GET', '/v1/audit'], ['POST', `/v1/clients/${claude.clientId}/revoke`], ['POST', `/v1/clients/${claude.clientId}/enable`], ['POST', `/v1/users/${ann.id}/revoke`]] as const) {
      const res = await f.app.inject({ method, url, headers: browser(s) })
      t.equal(res.statusCode, 403, `${method} ${url}`)
      t.equal(res.json().error.code, 'forbidden')
    }
    t.equal((await f.app.inject({ url: '/v1/connections', headers: { cookie: s.cookie } })).statusCode, 200, 'but lists their own')
  })

  t.test('an operator key never works as a user', async (t) => {
    const res = await f.app.inject({ url: '/connections', headers: bearer(key) })
    t.equal(res.statusCode, 403, 'the page is for users only')
    t.equal((await f.app.inject({ url: '/v1/clients', headers: bearer(key) })).statusCode, 200, 'operator endpoints work')
  })

  t.test('a destroyed session is signed out', async (t) => {
    const gone = await f.signIn(ann)
    const { BrowserSessionStore } = await import('@uspl/core')
    await new BrowserSessionStore(f.r.redis, 60).destroy(gone.sid)
    t.equal((await f.app.inject({ url: '/v1/connections', headers: { cookie: gone.cookie } })).statusCode, 401)
  })

  t.test('the page sends an unauthenticated browser to sign in and back', async (t) => {
    const res = await f.app.inject({ url: '/connections' })
    t.equal(res.statusCode, 302)
    t.equal(res.headers.location, `http://issuer.test/signin?return_to=${encodeURIComponent('http://connections.test/connections')}`)
  })
})

t.test('users see only their own connections; operators see and filter everyone', async (t) => {
  const f = await setup(t)
  const [ann, bob] = [await f.user('Ann'), await f.user('Bob')]
  const [claude, cursor] = [await f.client('Claude', { logo_uri: 'https://claude.example/logo.png' }), await f.client(undefined)]
  const annClaude = await f.grant(ann, claude, { sessions: 2 })
  const annCursor = await f.grant(ann, cursor)
  const bobClaude = await f.grant(bob, claude)
  const key = await f.operatorKey()

  const mine = (await f.app.inject({ url: '/v1/connections?user_id=' + bob.id, headers: { cookie: (await f.signIn(ann)).cookie } })).json()
  t.same(mine.items.map((i: { grant_id: string }) => i.grant_id).sort(), [annClaude.id, annCursor.id].sort(), "Ann's own, whatever the filter says")
  const item = mine.items.find((i: { grant_id: string }) => i.grant_id === annClaude.id)
  t.match(item, {
    client_id: claude.clientId,
    client_name: 'Claude',
    logo_uri: 'https://claude.example/logo.png',
    redirect_host: 'app.example',
    scopes: ['recordings:read', 'links:write'],
    open_sessions: 2
  })
  t.ok(Date.parse(item.authorized_at) > 0 && Date.parse(item.last_used_at) > 0, 'ISO dates')
  const unnamed = mine.items.find((i: { grant_id: string }) => i.grant_id === annCursor.id)
  t.equal(unnamed.client_name, cursor.clientId, 'a client without a name is shown by its id')

  const all = (await f.app.inject({ url: '/v1/connections', headers: bearer(key) })).json()
  t.equal(all.items.length, 3, 'operators see everyone')
  const byUser = (await f.app.inject({ url: `/v1/connections?user_id=${bob.id}`, headers: bearer(key) })).json()
  t.same(byUser.items.map((i: { grant_id: string }) => i.grant_id), [bobClaude.id])
  const byClient = (await f.app.inject({ url: `/v1/connections?client_id=${claude.clientId}`, headers: bearer(key) })).json()
  t.same(byClient.items.map((i: { grant_id: string }) => i.grant_id).sort(), [annClaude.id, bobClaude.id].sort())
  const both = (await f.app.inject({ url: `/v1/connections?client_id=${cursor.clientId}&user_id=${ann.id}`, headers: bearer(key) })).json()
  t.same(both.items.map((i: { grant_id: string }) => i.grant_id), [annCursor.id])
  const bad = await f.app.inject({ url: '/v1/connections?user_id=a%20b', headers: bearer(key) })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().error.code, 'invalid_request', 'validation errors use the same shape')
})

t.test("a user revoking another user's grant gets 404 and revokes nothing", async (t) => {
  const f = await setup(t)
  const [ann, bob] = [await f.user('Ann'), await f.user('Bob')]
  const claude = await f.client('Claude')
  const bobs = await f.grant(bob, claude, { refreshTokens: 1 })
  const res = await f.app.inject({ method: 'POST', url: `/v1/connections/${bobs.id}/revoke`, headers: browser(await f.signIn(ann)), payload: { confirm: 'Claude' } })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error.code, 'not_found')
  const missing = await f.app.inject({ method: 'POST', url: '/v1/connections/grt_nope/revoke', headers: browser(await f.signIn(ann)), payload: { confirm: 'Claude' } })
  t.equal(missing.statusCode, 404, 'an unknown grant looks the same')
  t.equal(await f.r.redis.exists(keys.denyGrant(bobs.id)), 0)
  t.equal(await f.r.redis.scard(keys.grantRefreshTokens(bobs.id)), 1)
  t.equal(await f.r.redis.xlen(keys.revocationStream()), 0)
})

t.test('the grant a revoke names is read as the request arrives, and judged only once the caller is known', async (t) => {
  const f = await setup(t)
  const ann = await f.user('Ann')
  const grant = await f.grant(ann, await f.client('Claude'), { refreshTokens: 1 })
  const url = `/v1/connections/${grant.id}/revoke`
  // refused callers, whatever the read found: no credential, a wrong key, another scheme
  for (const headers of [{}, bearer('uspl_notarealkey'), { authorization: 'Basic dXNlcjpwYXNz' }]) {
    const res = await f.app.inject({ method: 'POST', url, headers, payload: { confirm: 'Claude' } })
    t.equal(res.statusCode, 401, JSON.stringify(headers))
  }
  const bad = await f.app.inject({ method: 'POST', url: '/v1/connections/grt%20x%3B/revoke', headers: bearer(await f.operatorKey()), payload: { confirm: 'Claude' } })
  t.equal(bad.statusCode, 400, 'a grant id that cannot exist is refused by the schema (its early read found nothing)')
  t.equal(await f.r.redis.hexists(keys.grant(grant.id), 'revoked_at'), 0, 'nothing revoked')
  t.equal(await f.r.redis.scard(keys.grantRefreshTokens(grant.id)), 1)
  t.equal(await f.r.redis.xlen(keys.revocationStream()), 0)
  // the read races the key check; an operator's revoke then finds the grant as it was read
  const ok = await f.app.inject({ method: 'POST', url, headers: bearer(await f.operatorKey()), payload: { confirm: 'Claude' } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().status, 'revoked')
})

t.test('a wrong confirmation is 400 and revokes nothing', async (t) => {
  const f = await setup(t)
  const ann = await f.user('Ann')
  const grant = await f.grant(ann, await f.client('Claude'), { refreshTokens: 2 })
  const s = await f.signIn(ann)
  for (const confirm of ['claude', 'Claud', 'Cursor']) {
    const res = await f.app.inject({ method: 'POST', url: `/v1/connections/${grant.id}/revoke`, headers: browser(s), payload: { confirm } })
    t.equal(res.statusCode, 400, confirm)
    t.equal(res.json().error.code, 'confirmation_mismatch')
  }
  t.equal((await f.app.inject({ method: 'POST', url: `/v1/connections/${grant.id}/revoke`, headers: browser(s), payload: {} })).statusCode, 400, 'missing confirm')
  t.equal(await f.r.redis.exists(keys.denyGrant(grant.id)), 0)
  t.equal(await f.r.redis.scard(keys.grantRefreshTokens(grant.id)), 2)
  t.equal(await f.r.redis.hexists(keys.grant(grant.id), 'revoked_at'), 0)
  t.equal(await f.r.redis.xlen(keys.revocationStream()), 0)
})

t.test('cookie sessions need the CSRF token and a same-origin request to change anything', async (t) => {
  const f = await setup(t)
  const ann = await f.user('Ann')
  const grant = await f.grant(ann, await f.client('Claude'))
  const s = await f.signIn(ann)
  const url = `/v1/connections/${grant.id}/revoke`
  const cases: Array<[string, Record<string, string>, string]> = [
    ['no CSRF token', { cookie: s.cookie, origin: ORIGIN }, 'csrf_failed'],
    ['a wrong CSRF token', { cookie: s.cookie, origin: ORIGIN, 'x-csrf-token': s.csrf.slice(1) + 'x' }, 'csrf_failed'],
    ['a foreign Origin', { ...browser(s), origin: 'https://evil.example' }, 'bad_origin'],
    ['a cross-site fetch without Origin', { cookie: s.cookie, 'x-csrf-token': s.csrf, 'sec-fetch-site': 'cross-site' }, 'bad_origin']
  ]
  for (const [what, headers, code] of cases) {
    const res = await f.app.inject({ method: 'POST', url, headers, payload: { confirm: 'Claude' } })
    t.equal(res.statusCode, 403, what)
    t.equal(res.json().error.code, code, what)
  }
  t.equal(await f.r.redis.exists(keys.denyGrant(grant.id)), 0, 'nothing revoked')
  const ok = await f.app.inject({ method: 'POST', url, headers: browser(s), payload: { confirm: 'Claude' } })
  t.equal(ok.statusCode, 200, 'with both it works')
})

t.test('revoking writes the denylist, deletes refresh tokens, records the event; twice reports the first', async (t) => {
  const f = await setup(t)
  const ann = await f.user('Ann')
  const claude = await f.client('Claude')
  const other = await f.client('Cursor')
  const grant = await f.grant(ann, claude, { refreshTokens: 2, sessions: 3 })
  const kept = await f.grant(ann, other, { refreshTokens: 1 })
  const s = await f.signIn(ann)
  const before = Date.now()
  const res = await f.app.inject({ method: 'POST', url: `/v1/connections/${grant.id}/revoke`, headers: browser(s), payload: { confirm: ' Claude ' } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.match(body, { grant_id: grant.id, status: 'revoked', sessions_closed: 3 })
  t.ok(Date.parse(body.revoked_at) >= before - 1000, 'revoked_at')

  t.ok(await f.r.redis.get(keys.denyGrant(grant.id)), 'denylist entry')
  t.ok(await f.r.redis.ttl(keys.denyGrant(grant.id)) > 0, 'which expires')
  t.equal(await f.r.redis.exists(keys.grantRefreshTokens(grant.id)), 0, 'refresh token set gone')
  t.equal(await f.r.redis.exists(keys.refreshToken(`rthash-${grant.id}-0`), keys.refreshToken(`rthash-${grant.id}-1`)), 0, 'refresh tokens gone')
  t.equal(await f.r.redis.exists(keys.refreshToken(`rthash-${kept.id}-0`)), 1, "the other app's refresh token stays")
  t.equal(await f.r.redis.exists(keys.denyGrant(kept.id)), 0, 'the other app is not denied')
  const events = await streamEvents(f)
  t.equal(events.length, 1)
  t.match(events[0], { id: body.event_id, scope: 'grant', target: grant.id, grantIds: [grant.id], clientId: claude.clientId, userId: ann.id, path: 'connections_user', actor: { type: 'user', id: ann.id } })

  const list = (await f.app.inject({ url: '/v1/connections', headers: { cookie: s.cookie } })).json()
  t.same(list.items.map((i: { grant_id: string }) => i.grant_id), [kept.id], 'gone from the list')

  const again = await f.app.inject({ method: 'POST', url: `/v1/connections/${grant.id}/revoke`, headers: bearer(await f.operatorKey()), payload: { confirm: 'Claude' } })
  t.equal(again.statusCode, 200)
  t.same(again.json(), { grant_id: grant.id, status: 'already_revoked', revoked_at: body.revoked_at, sessions_closed: 0, event_id: body.event_id }, 'reports the first revocation')
  t.equal((await streamEvents(f)).length, 1, 'no second event')
})

t.test('an operator revoking a grant is recorded as the operator', async (t) => {
  const f = await setup(t)
  const ann = await f.user('Ann')
  const grant = await f.grant(ann, await f.client('Claude'))
  const key = await f.operatorKey()
  const res = await f.app.inject({ method: 'POST', url: `/v1/connections/${grant.id}/revoke`, headers: bearer(key), payload: { confirm: 'Claude' } })
  t.equal(res.statusCode, 200)
  const [event] = await streamEvents(f)
  t.equal(event.path, 'connections_operator')
  t.equal(event.actor.type, 'operator')
})

t.test("operator client-wide revoke cuts every user's grant of that client and nothing else; enable lets it back", async (t) => {
  const f = await setup(t)
  const [ann, bob] = [await f.user('Ann'), await f.user('Bob')]
  const [claude, cursor] = [await f.client('Claude'), await f.client('Cursor')]
  const annClaude = await f.grant(ann, claude, { refreshTokens: 1, sessions: 1 })
  const bobClaude = await f.grant(bob, claude, { refreshTokens: 1, sessions: 2 })
  const annCursor = await f.grant(ann, cursor, { refreshTokens: 1, sessions: 1 })
  const key = await f.operatorKey()

  const res = await f.app.inject({ method: 'POST', url: `/v1/clients/${claude.clientId}/revoke`, headers: bearer(key) })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { client_id: claude.clientId, status: 'revoked', grants_revoked: 2, sessions_closed: 3, disabled: true })
  for (const g of [annClaude, bobClaude]) {
    t.ok(await f.r.redis.get(keys.denyGrant(g.id)), `${g.id} denied`)
    t.equal(await f.r.redis.exists(keys.refreshToken(`rthash-${g.id}-0`)), 0)
  }
  t.ok(await f.r.redis.get(keys.denyClient(claude.clientId)), 'client denylist entry')
  t.ok(await f.r.redis.hget(keys.client(claude.clientId), 'disabled_at'), 'client disabled')
  t.equal(await f.r.redis.exists(keys.denyGrant(annCursor.id)), 0, 'the other client is untouched')
  t.equal(await f.r.redis.exists(keys.refreshToken(`rthash-${annCursor.id}-0`)), 1)
  t.equal(await f.r.redis.exists(keys.denyClient(cursor.clientId)), 0)
  const [event] = await streamEvents(f)
  t.match(event, { scope: 'client', target: claude.clientId, path: 'client_disable', actor: { type: 'operator' } })
  t.same(event.grantIds.sort(), [annClaude.id, bobClaude.id].sort())

  const clients = (await f.app.inject({ url: '/v1/clients', headers: bearer(key) })).json().items
  t.match(clients.find((c: { client_id: string }) => c.client_id === claude.clientId), { active_grants: 0, disabled_at: String })
  t.match(clients.find((c: { client_id: string }) => c.client_id === cursor.clientId), { active_grants: 1, disabled_at: null })

  const twice = await f.app.inject({ method: 'POST', url: `/v1/clients/${claude.clientId}/revoke`, headers: bearer(key) })
  t.match(twice.json(), { status: 'noop', grants_revoked: 0 }, 'again: nothing left to revoke')

  const enabled = await f.app.inject({ method: 'POST', url: `/v1/clients/${claude.clientId}/enable`, headers: bearer(key) })
  t.same(enabled.json(), { client_id: claude.clientId, disabled: false })
  t.equal(await f.r.redis.hexists(keys.client(claude.clientId), 'disabled_at'), 0)
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/clients/cli_nope/revoke', headers: bearer(key) })).statusCode, 404)
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/clients/cli_nope/enable', headers: bearer(key) })).statusCode, 404)
})

t.test("operator user-wide revoke cuts every grant of that user and no one else's", async (t) => {
  const f = await setup(t)
  const [ann, bob] = [await f.user('Ann'), await f.user('Bob')]
  const [claude, cursor] = [await f.client('Claude'), await f.client('Cursor')]
  const annClaude = await f.grant(ann, claude, { sessions: 1 })
  const annCursor = await f.grant(ann, cursor, { sessions: 1 })
  const bobClaude = await f.grant(bob, claude)
  const key = await f.operatorKey()
  const res = await f.app.inject({ method: 'POST', url: `/v1/users/${ann.id}/revoke`, headers: bearer(key) })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { user_id: ann.id, status: 'revoked', grants_revoked: 2, sessions_closed: 2 })
  t.ok(await f.r.redis.get(keys.denyGrant(annClaude.id)))
  t.ok(await f.r.redis.get(keys.denyGrant(annCursor.id)))
  t.equal(await f.r.redis.exists(keys.denyGrant(bobClaude.id)), 0, "Bob's grant stays")
  t.equal(await f.r.redis.exists(keys.denyClient(claude.clientId)), 0, 'no client-wide entry')
  const [event] = await streamEvents(f)
  t.match(event, { scope: 'user', target: ann.id, path: 'user_revoke', actor: { type: 'operator' } })
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/users/usr_nobody/revoke', headers: bearer(key) })).statusCode, 404)
})

t.test('the API is documented as OpenAPI at /docs', async (t) => {
  const f = await setup(t)
  const res = await f.app.inject('/docs/json')
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.1.0')
  for (const path of ['/v1/connections', '/v1/connections/{grantId}/revoke', '/v1/clients', '/v1/clients/{clientId}/revoke', '/v1/clients/{clientId}/enable', '/v1/users/{userId}/revoke', '/v1/audit']) {
    t.ok(doc.paths[path], path)
  }
  t.notOk(doc.paths['/connections'], 'the page is not an API')
  t.ok(doc.components.securitySchemes.operatorKey)
  t.equal((await f.app.inject('/docs')).statusCode < 400, true, 'the UI answers')
})

t.test('unknown routes answer in the same error shape', async (t) => {
  const f = await setup(t)
  const res = await f.app.inject('/v1/nothing-here')
  t.equal(res.statusCode, 404)
  t.equal(res.json().error.code, 'not_found')
})

t.test('config: webhooks need a secret', async (t) => {
  t.throws(() => loadConfig({ WEBHOOK_URLS: 'https://hooks.example/a' }), /WEBHOOK_SECRET/)
  t.throws(() => loadConfig({ WEBHOOK_URLS: 'not a url' }), /WEBHOOK_URLS/)
  t.same(loadConfig({ WEBHOOK_URLS: 'https://a.example/x, https://b.example/y', WEBHOOK_SECRET: 'x'.repeat(16) }).WEBHOOK_URLS, 'https://a.example/x, https://b.example/y')
})

t.test('API keys through the connections API: users their own, operators everyone\'s; personal keys are not operator keys; audited', async (t) => {
  const f = await setup(t)
  const [ann, bob] = [await f.user('Ann'), await f.user('Bob')]
  const s = await f.signIn(ann)
  const op = await f.operatorKey()

  const created = await f.app.inject({ method: 'POST', url: '/v1/api-keys', headers: browser(s), payload: { name: 'ci', expires_at: '2031-01-01T00:00:00Z' } })
  t.equal(created.statusCode, 201)
  const key = created.json() as { id: string, key: string, kind: string, user_id: string, expires_at: string }
  t.match(key, { kind: 'personal', user_id: ann.id, expires_at: '2031-01-01T00:00:00.000Z', key: /^uspl_/ })
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/api-keys', headers: browser(s), payload: { name: ' ' } })).statusCode, 400, 'a blank name')
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(op), payload: { name: 'x' } })).statusCode, 403, 'operators do not create personal keys here')
  t.equal((await f.app.inject({ method: 'POST', url: '/v1/api-keys', headers: { cookie: s.cookie }, payload: { name: 'x' } })).statusCode, 403, 'CSRF token required')

  const personal = await f.app.inject({ url: '/v1/connections', headers: bearer(key.key) })
  t.equal(personal.statusCode, 403, 'a personal key is not an operator key')
  t.equal(personal.json().error.code, 'personal_key')

  const bobs = await f.app.connectionsContext.apiKeys.create('bob-ci', { userId: bob.id })
  const mine = await f.app.inject({ url: '/v1/api-keys', headers: { cookie: s.cookie } })
  t.same((mine.json() as { items: Array<{ id: string }> }).items.map((k) => k.id), [key.id], 'a user sees their own keys')
  t.notMatch(mine.body, /uspl_/, 'never the keys themselves')
  const all = await f.app.inject({ url: '/v1/api-keys', headers: bearer(op) })
  t.same((all.json() as { items: Array<{ id: string }> }).items.map((k) => k.id).sort(), [key.id, bobs.apiKey.id, (all.json() as { items: Array<{ id: string, kind: string }> }).items.find((k) => k.kind === 'operator')!.id].sort(), 'an operator sees every key')
  t.same((await f.app.inject({ url: `/v1/api-keys?user_id=${bob.id}`, headers: bearer(op) })).json().items.map((k: { id: string }) => k.id), [bobs.apiKey.id])

  t.equal((await f.app.inject({ method: 'POST', url: `/v1/api-keys/${bobs.apiKey.id}/revoke`, headers: browser(s), payload: { confirm: 'bob-ci' } })).statusCode, 404, "another user's key does not exist for Ann")
  t.equal((await f.app.inject({ method: 'POST', url: `/v1/api-keys/${key.id}/revoke`, headers: browser(s), payload: { confirm: 'c' } })).json().error.code, 'confirmation_mismatch')
  t.same((await f.app.inject({ method: 'POST', url: `/v1/api-keys/${key.id}/revoke`, headers: browser(s), payload: { confirm: 'ci' } })).json(), { id: key.id, status: 'revoked' })
  t.match(await f.app.connectionsContext.apiKeys.authenticate(key.key), { ok: false })
  t.equal((await f.app.inject({ method: 'POST', url: `/v1/api-keys/${bobs.apiKey.id}/revoke`, headers: bearer(op), payload: {} })).statusCode, 200, 'an operator revokes anyone\'s')
  t.match(await f.app.connectionsContext.apiKeys.authenticate(bobs.key), { ok: false })

  const audit = (await f.app.inject({ url: '/v1/audit?limit=200', headers: bearer(op) })).json() as { items: Array<{ path: string, target: string, actor: { type: string } }> }
  t.ok(audit.items.some((i) => i.path === 'api_key_create' && i.target === key.id), 'creation audited')
  t.ok(audit.items.some((i) => i.path === 'api_key_revoke' && i.target === key.id && i.actor.type === 'user'), 'revocation by the user audited')
  t.ok(audit.items.some((i) => i.path === 'api_key_revoke' && i.target === bobs.apiKey.id && i.actor.type === 'operator'), 'revocation by an operator audited')
  const page1 = (await f.app.inject({ url: '/v1/audit?limit=1', headers: bearer(op) })).json() as { next_cursor: string }
  t.equal((await f.app.inject({ url: `/v1/audit?limit=1&cursor=${page1.next_cursor}`, headers: bearer(op) })).statusCode, 200, 'an API key event id is a cursor too')
})
