// The workspace API over HTTP (inject) on real Redis: resources and pagination, the error shapes
// (401 with its challenge, 403 for roles and operator keys, 404 for what the caller cannot see, 400 naming
// the field, 429 with Retry-After), personal keys' lifecycle, and the OpenAPI document.
import t from 'tap'
import { hashSecret, keys } from '@uspl/core'
import { setup, bearer } from './helper.ts'

t.test('resources: workspaces with the role, recordings in cursor pages, links', async (t) => {
  const f = await setup(t)
  const owner = await f.member('olivia', 'owner')
  const member = await f.member('mia', 'member')
  for (let i = 0; i < 5; i++) await f.repo.createRecording(f.ws.id, { title: `rec ${i}`, durationSeconds: 10 + i }, owner.user.id)

  const ws = await f.app.inject({ url: '/v1/workspaces', headers: bearer(member.key) })
  t.equal(ws.statusCode, 200)
  t.same(ws.json(), { items: [{ id: f.ws.id, name: 'Acme', role: 'member' }] })
  t.match(ws.headers['ratelimit-limit'], /^\d+$/, 'RateLimit-Limit sent')
  t.match(ws.headers['ratelimit-remaining'], /^\d+$/)
  t.match(ws.headers['ratelimit-reset'], /^\d+$/)

  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res = await f.app.inject({ url: `/v1/workspaces/${f.ws.id}/recordings`, query: { limit: '2', ...(cursor ? { cursor } : {}) }, headers: bearer(member.key) })
    t.equal(res.statusCode, 200)
    const body = res.json() as { items: Array<{ id: string, workspace_id: string, duration_seconds: number }>, next_cursor: string | null }
    seen.push(...body.items.map((x) => x.id))
    cursor = body.next_cursor
    pages++
  } while (cursor)
  t.equal(pages, 3, 'five recordings in pages of two')
  t.equal(new Set(seen).size, 5)

  const rec = seen[0]
  const one = await f.app.inject({ url: `/v1/workspaces/${f.ws.id}/recordings/${rec}`, headers: bearer(member.key) })
  t.equal(one.statusCode, 200)
  t.match(one.json(), { id: rec, workspace_id: f.ws.id, title: /^rec \d$/, created_by: owner.user.id })

  const created = await f.app.inject({ method: 'POST', url: `/v1/workspaces/${f.ws.id}/recordings/${rec}/links`, headers: bearer(member.key), payload: { title: 'for the team', access: 'public' } })
  t.equal(created.statusCode, 201)
  const link = created.json() as { id: string, created_by: string, access: string, expires_at: null }
  t.equal(link.created_by, member.user.id, 'the key acts as its user')
  t.equal(link.access, 'public')
  t.equal(link.expires_at, null)

  const listed = await f.app.inject({ url: `/v1/workspaces/${f.ws.id}/recordings/${rec}/links`, headers: bearer(owner.key) })
  t.same((listed.json() as { items: Array<{ id: string }> }).items.map((x) => x.id), [link.id])

  const patched = await f.app.inject({ method: 'PATCH', url: `/v1/workspaces/${f.ws.id}/links/${link.id}`, headers: bearer(owner.key), payload: { title: 'renamed', expires_at: '2031-01-01T00:00:00Z' } })
  t.equal(patched.statusCode, 200)
  t.match(patched.json(), { title: 'renamed', expires_at: '2031-01-01T00:00:00Z' })
  t.equal((await f.app.inject({ url: `/v1/workspaces/${f.ws.id}/links/${link.id}`, headers: bearer(member.key) })).json().title, 'renamed')

  const del = await f.app.inject({ method: 'DELETE', url: `/v1/workspaces/${f.ws.id}/links/${link.id}`, headers: bearer(member.key) })
  t.same(del.json(), { id: link.id, deleted: true }, 'its creator deletes it')
  t.equal((await f.app.inject({ url: `/v1/workspaces/${f.ws.id}/links/${link.id}`, headers: bearer(member.key) })).statusCode, 404)
})

t.test('401: missing, malformed, unknown, revoked, expired, disabled user; each with WWW-Authenticate: Bearer', async (t) => {
  const f = await setup(t)
  const alice = await f.member('alice', 'member')
  const expect401 = async (headers: Record<string, string>, what: string, error?: string): Promise<void> => {
    const res = await f.app.inject({ url: '/v1/workspaces', headers })
    t.equal(res.statusCode, 401, what)
    t.equal(res.json().error.code, 'unauthenticated', `${what}: code`)
    t.type(res.json().error.message, 'string')
    const challenge = String(res.headers['www-authenticate'])
    t.match(challenge, /^Bearer realm="uspl-api"/, `${what}: challenge`)
    if (error) t.match(challenge, `error="${error}"`)
    else t.notMatch(challenge, /error=/, `${what}: no error code without credentials (RFC 6750 §3.1)`)
  }
  await expect401({}, 'no header')
  await expect401({ authorization: 'Basic dXNlcjpwdw==' }, 'not Bearer', 'invalid_request')
  await expect401(bearer('uspl_not-a-key'), 'unknown key', 'invalid_token')
  await expect401(bearer('sk_live_123'), 'not a uspl key', 'invalid_token')

  const expiring = await f.keys.create('short', { userId: alice.user.id, expiresAt: Date.now() + 60_000 })
  t.equal((await f.app.inject({ url: '/v1/workspaces', headers: bearer(expiring.key) })).statusCode, 200)
  await f.r.redis.hset(keys.apiKey(hashSecret(expiring.key)), 'expires_at', String(Date.now() - 1))
  await expect401(bearer(expiring.key), 'expired key', 'invalid_token')

  t.equal((await f.app.inject({ url: '/v1/workspaces', headers: bearer(alice.key) })).statusCode, 200)
  t.ok(await f.keys.revoke(alice.keyId))
  await expect401(bearer(alice.key), 'revoked key', 'invalid_token')

  const bob = await f.member('bob', 'member')
  t.equal((await f.app.inject({ url: '/v1/workspaces', headers: bearer(bob.key) })).statusCode, 200)
  await f.accounts.setDisabled(bob.user.id, true)
  await expect401(bearer(bob.key), 'disabled user', 'invalid_token')
  await f.accounts.setDisabled(bob.user.id, false)
  t.equal((await f.app.inject({ url: '/v1/workspaces', headers: bearer(bob.key) })).statusCode, 200, 'enabled again')
})

t.test('403: an operator key, and a role refusal with a sentence', async (t) => {
  const f = await setup(t)
  const { key: operatorKey } = await f.keys.create('ops')
  const op = await f.app.inject({ url: '/v1/workspaces', headers: bearer(operatorKey) })
  t.equal(op.statusCode, 403)
  t.equal(op.json().error.code, 'operator_key')
  t.match(op.json().error.message, /operator key.*personal key/)

  const owner = await f.member('olivia', 'owner')
  const member = await f.member('mia', 'member')
  const rec = await f.repo.createRecording(f.ws.id, { title: 'Board meeting', durationSeconds: 60 }, owner.user.id)
  const refused = await f.app.inject({ method: 'DELETE', url: `/v1/workspaces/${f.ws.id}/recordings/${rec.id}`, headers: bearer(member.key) })
  t.equal(refused.statusCode, 403)
  t.same(refused.json(), { error: { code: 'forbidden', message: 'You cannot delete "Board meeting": deleting a recording needs the owner or admin role in this workspace, or being its creator (your role: member).' } })
  t.ok(await f.repo.getRecording(f.ws.id, rec.id), 'still there')

  // a role change applies to the next request
  await f.accounts.setRole(f.ws.id, member.user.id, 'admin')
  t.equal((await f.app.inject({ method: 'DELETE', url: `/v1/workspaces/${f.ws.id}/recordings/${rec.id}`, headers: bearer(member.key) })).statusCode, 200)
})

t.test('404: another workspace\'s ids look exactly like ids that do not exist', async (t) => {
  const f = await setup(t)
  const mia = await f.member('mia', 'member')
  const other = await f.accounts.createWorkspace('Other')
  const secret = await f.repo.createRecording(other.id, { title: 'secret', durationSeconds: 1 }, 'usr_x')
  const secretLink = await f.repo.createRecordingLink(other.id, { recordingId: secret.id, title: 'secret link' }, 'usr_x')
  const mine = await f.repo.createRecording(f.ws.id, { title: 'mine', durationSeconds: 1 }, mia.user.id)

  const cases: Array<[string, string, string]> = [
    ['GET', `/v1/workspaces/${other.id}/recordings`, `/v1/workspaces/ws_nope/recordings`],
    ['GET', `/v1/workspaces/${other.id}/recordings/${secret.id}`, `/v1/workspaces/ws_nope/recordings/${secret.id}`],
    ['GET', `/v1/workspaces/${f.ws.id}/recordings/${secret.id}`, `/v1/workspaces/${f.ws.id}/recordings/rec_nope`],
    ['DELETE', `/v1/workspaces/${f.ws.id}/recordings/${secret.id}`, `/v1/workspaces/${f.ws.id}/recordings/rec_nope`],
    ['GET', `/v1/workspaces/${f.ws.id}/links/${secretLink.id}`, `/v1/workspaces/${f.ws.id}/links/lnk_nope`],
    ['PATCH', `/v1/workspaces/${f.ws.id}/links/${secretLink.id}`, `/v1/workspaces/${f.ws.id}/links/lnk_nope`],
    ['DELETE', `/v1/workspaces/${f.ws.id}/links/${secretLink.id}`, `/v1/workspaces/${f.ws.id}/links/lnk_nope`],
    ['GET', `/v1/workspaces/${f.ws.id}/recordings/${secret.id}/links`, `/v1/workspaces/${f.ws.id}/recordings/rec_nope/links`],
    ['POST', `/v1/workspaces/${f.ws.id}/recordings/${secret.id}/links`, `/v1/workspaces/${f.ws.id}/recordings/rec_nope/links`]
  ]
  const normalize = (s: string): string => s.replace(/(ws|rec|lnk)_[A-Za-z0-9_-]+/g, '$1_ID')
  for (const [method, theirs, nobodys] of cases) {
    const payload = method === 'POST' || method === 'PATCH' ? { title: 'x' } : undefined
    const a = await f.app.inject({ method: method as 'GET', url: theirs, headers: bearer(mia.key), payload })
    const b = await f.app.inject({ method: method as 'GET', url: nobodys, headers: bearer(mia.key), payload })
    t.equal(a.statusCode, 404, `${method} ${normalize(theirs)}`)
    t.equal(a.json().error.code, 'not_found')
    t.equal(normalize(a.json().error.message), normalize(b.json().error.message), 'same answer as a missing id')
  }
  t.ok(await f.repo.getRecording(other.id, secret.id), 'nothing of theirs changed')
  t.ok(await f.repo.getRecordingLink(other.id, secretLink.id))
  t.equal((await f.app.inject({ url: `/v1/workspaces/${f.ws.id}/recordings/${mine.id}`, headers: bearer(mia.key) })).statusCode, 200)
  const route = await f.app.inject({ url: '/v1/nothing', headers: bearer(mia.key) })
  t.equal(route.statusCode, 404)
  t.equal(route.json().error.code, 'not_found')
})

t.test('400 names the field', async (t) => {
  const f = await setup(t)
  const mia = await f.member('mia', 'member')
  const rec = await f.repo.createRecording(f.ws.id, { title: 'r', durationSeconds: 1 }, mia.user.id)
  const link = await f.repo.createRecordingLink(f.ws.id, { recordingId: rec.id, title: 'l' }, mia.user.id)
  const bad = async (method: string, url: string, payload: unknown, field: RegExp): Promise<void> => {
    const res = await f.app.inject({ method: method as 'GET', url, headers: bearer(mia.key), payload: payload as object })
    t.equal(res.statusCode, 400, `${method} ${url} ${JSON.stringify(payload)}`)
    t.equal(res.json().error.code, 'invalid_request')
    t.match(res.json().error.message, field)
  }
  const base = `/v1/workspaces/${f.ws.id}`
  await bad('POST', `${base}/recordings/${rec.id}/links`, {}, /title/)
  await bad('POST', `${base}/recordings/${rec.id}/links`, { title: 'x', access: 'everyone' }, /access/)
  await bad('POST', `${base}/recordings/${rec.id}/links`, { title: 'x', expires_at: 'tomorrow' }, /expires_at/)
  await bad('PATCH', `${base}/links/${link.id}`, {}, /fewer than 1 properties|properties/)
  await bad('GET', `${base}/recordings?limit=1000`, undefined, /limit/)
  await bad('GET', `${base}/recordings?cursor=bm9wZQ`, undefined, /cursor/)
})

t.test('429 per key and per address, with Retry-After and RateLimit-* headers, counted in Redis', async (t) => {
  const f = await setup(t, { API_RATE_LIMIT_PER_KEY: '3', API_RATE_LIMIT_PER_ADDRESS: '5', API_RATE_LIMIT_WINDOW_S: '60' })
  const a = await f.member('a', 'member')
  const b = await f.member('b', 'member')
  for (let i = 0; i < 3; i++) {
    const res = await f.app.inject({ url: '/v1/workspaces', headers: bearer(a.key) })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['ratelimit-remaining'], String(2 - i), 'the tighter (per-key) count')
  }
  const limited = await f.app.inject({ url: '/v1/workspaces', headers: bearer(a.key) })
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().error.code, 'rate_limited')
  t.match(limited.json().error.message, /this API key/)
  t.match(limited.headers['retry-after'], /^\d+$/)
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60)
  t.equal(limited.headers['ratelimit-remaining'], '0')

  t.equal((await f.app.inject({ url: '/v1/workspaces', headers: bearer(b.key) })).statusCode, 200, 'another key from the same address still passes')
  const byAddress = await f.app.inject({ url: '/v1/workspaces', headers: bearer(b.key) })
  t.equal(byAddress.statusCode, 429, 'the address reached its 5')
  t.match(byAddress.json().error.message, /this address/)
  const anonymous = await f.app.inject({ url: '/v1/workspaces' })
  t.equal(anonymous.statusCode, 429, 'the address limit applies before the key is looked at')
  t.ok((await f.r.redis.keys(`${f.r.prefix}ratelimit:api:*`)).length >= 2, 'the counts live in Redis under the prefix')
  t.equal((await f.app.inject({ url: '/health/live' })).statusCode, 200, 'health is not limited')
})

t.test('last used is written at most once a minute per key', async (t) => {
  const f = await setup(t)
  const mia = await f.member('mia', 'member')
  t.equal((await f.keys.get(mia.keyId))?.lastUsedAt, null)
  for (let i = 0; i < 3; i++) t.equal((await f.app.inject({ url: '/v1/workspaces', headers: bearer(mia.key) })).statusCode, 200)
  const first = (await f.keys.get(mia.keyId))?.lastUsedAt
  t.type(first, 'number')
  await f.r.redis.hset(keys.apiKey(hashSecret(mia.key)), 'last_used_at', '1')
  await f.app.inject({ url: '/v1/workspaces', headers: bearer(mia.key) })
  t.equal((await f.keys.get(mia.keyId))?.lastUsedAt, 1, 'not rewritten within the minute')
  await f.r.redis.del(keys.apiKeyUsed(mia.keyId))
  await f.app.inject({ url: '/v1/workspaces', headers: bearer(mia.key) })
  t.ok(((await f.keys.get(mia.keyId))?.lastUsedAt ?? 0) > 1, 'written again once the minute is over')
})

t.test('OpenAPI 3 at /docs/json from the route schemas', async (t) => {
  const f = await setup(t)
  const res = await f.app.inject({ url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json() as { openapi: string, servers: Array<{ url: string }>, paths: Record<string, Record<string, { responses: Record<string, unknown> }>>, components: { securitySchemes: Record<string, unknown> } }
  t.match(doc.openapi, /^3\./)
  t.same(doc.servers, [{ url: 'http://api.test' }])
  t.same(Object.keys(doc.paths).sort(), [
    '/v1/workspaces',
    '/v1/workspaces/{workspaceId}/links/{linkId}',
    '/v1/workspaces/{workspaceId}/recordings',
    '/v1/workspaces/{workspaceId}/recordings/{recordingId}',
    '/v1/workspaces/{workspaceId}/recordings/{recordingId}/links'
  ])
  t.same(Object.keys(doc.paths['/v1/workspaces/{workspaceId}/links/{linkId}']).sort(), ['delete', 'get', 'patch'])
  t.ok(doc.paths['/v1/workspaces/{workspaceId}/recordings/{recordingId}'].delete.responses['403'])
  t.ok(doc.components.securitySchemes.personalKey)
  t.equal((await f.app.inject({ url: '/docs' })).statusCode < 400, true, 'the UI answers')
})

t.test('metrics: answers counted by method, route pattern and status; refusals by code', async (t) => {
  const f = await setup(t)
  const member = await f.member('mia', 'member')
  for (let i = 0; i < 3; i++) t.equal((await f.app.inject({ url: '/v1/workspaces', headers: bearer(member.key) })).statusCode, 200)
  t.equal((await f.app.inject({ url: `/v1/workspaces/${f.ws.id}/recordings/rec_nope`, headers: bearer(member.key) })).statusCode, 404)
  t.equal((await f.app.inject({ url: '/v1/workspaces' })).statusCode, 401)
  const text = (await f.app.inject({ url: '/metrics' })).body
  t.match(text, /api_http_requests_total\{method="GET",route="\/v1\/workspaces",status="200"\} 3\n/, 'three 200s on the route')
  t.match(text, /api_http_requests_total\{method="GET",route="\/v1\/workspaces\/:workspaceId\/recordings\/:recordingId",status="404"\} 1\n/, 'by pattern, never by id')
  t.match(text, /api_http_requests_total\{method="GET",route="\/v1\/workspaces",status="401"\} 1\n/)
  t.match(text, /api_auth_refusals_total\{code="unauthenticated"\} 1\n/)
  t.notMatch(text, /rec_nope/, 'no id in a label')
  // counted per request in a tally and moved into the counter at each scrape: a second scrape adds nothing
  // twice, and what was answered in between shows up
  t.equal((await f.app.inject({ url: '/v1/workspaces', headers: bearer(member.key) })).statusCode, 200)
  const again = (await f.app.inject({ url: '/metrics' })).body
  t.match(again, /api_http_requests_total\{method="GET",route="\/v1\/workspaces",status="200"\} 4\n/, 'the fourth 200, counted once')
  t.match(again, /api_http_requests_total\{method="GET",route="\/v1\/workspaces",status="401"\} 1\n/, 'unchanged counts stay')
  t.match(again, /api_http_requests_total\{method="GET",route="\/metrics",status="200"\} 1\n/, 'the first scrape itself')
})
