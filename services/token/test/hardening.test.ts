// Issue 12, as an attacker sends it: raw HTTP to the listening service, no cookies, forged credentials.
// Each test is named after the hole it pins.
import t from 'tap'
import { startStack, registerClient, obtainTokens, decodeJwt, keysMatching } from './helpers.ts'
import { keys, hashSecret } from '@uspl/core'
import { openSuccessor } from '../src/lib/refresh-tokens.ts'
import { loadConfig } from '../src/config.ts'

const loadDefault = (): ReturnType<typeof loadConfig> => loadConfig({})

function basic (id: string, secret = 'guessed-secret'): string {
  return 'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')
}

async function post (url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() })
}

t.test('invalid_client after HTTP Basic carries WWW-Authenticate: Basic at /token and /revoke (RFC 6749 §5.2)', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  const cases: Array<{ name: string, path: string, form: Record<string, string>, authorization: string }> = [
    { name: '/token, unknown client', path: '/token', form: { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) }, authorization: basic('cli_forged') },
    { name: '/token, malformed Basic', path: '/token', form: { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) }, authorization: 'Basic ' + Buffer.from('%E0%A4%A:x').toString('base64') },
    { name: '/revoke, malformed Basic', path: '/revoke', form: { token: 'x'.repeat(43) }, authorization: 'Basic ' + Buffer.from('%zz:x').toString('base64') }
  ]
  for (const c of cases) {
    const res = await post(stack.issuer + c.path, c.form, { authorization: c.authorization })
    t.equal(res.status, 401, `${c.name}: 401`)
    t.equal((await res.json()).error, 'invalid_client', `${c.name}: invalid_client`)
    t.match(res.headers.get('www-authenticate'), /^Basic realm="[^"]+"/, `${c.name}: Basic challenge`)
  }
  // a known client over Basic is not challenged; the same refusal without Basic is not either
  const known = await post(`${stack.issuer}/token`, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) }, { authorization: basic(client.client_id) })
  t.equal(known.status, 400, 'known client: the grant is what is refused')
  t.equal(known.headers.get('www-authenticate'), null)
  const noBasic = await post(`${stack.issuer}/token`, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43), client_id: 'cli_forged' })
  t.equal(noBasic.status, 401)
  t.equal(noBasic.headers.get('www-authenticate'), null, 'no Basic used: no Basic challenge')
})

t.test('no rate limit on guessed credentials: 60 failures per address in 5 minutes, then 429 with Retry-After (defaults)', async (t) => {
  const stack = await startStack(t)
  const client = await registerClient(stack)
  t.equal(stack.config.RATE_LIMIT_FAILURES_MAX, 60, 'default: 60 failures')
  t.equal(stack.config.RATE_LIMIT_FAILURES_WINDOW_S, 300, 'in 5 minutes')
  const guess = (i: number): Promise<Response> => post(`${stack.issuer}/token`, { grant_type: 'authorization_code', code: `guessed-code-${i}`, code_verifier: 'v'.repeat(43), client_id: client.client_id, redirect_uri: 'http://127.0.0.1:9999/callback' })
  for (let i = 0; i < 60; i++) {
    const res = await guess(i)
    if (res.status !== 400) t.fail(`guess ${i} answered ${res.status}`)
    await res.arrayBuffer()
  }
  const limited = await guess(60)
  t.equal(limited.status, 429, 'the 61st guess is refused without being checked')
  t.same(await limited.json(), { error: 'temporarily_unavailable', error_description: `too many failed attempts; retry in ${limited.headers.get('retry-after')} seconds` })
  const retry = Number(limited.headers.get('retry-after'))
  t.ok(retry > 0 && retry <= 300, `Retry-After ${retry}`)
  t.equal(limited.headers.get('ratelimit-limit'), '60')
  t.equal(limited.headers.get('ratelimit-remaining'), '0')
  // the other doors of the same service count on the same address
  const introspect = await post(`${stack.issuer}/introspect`, { token: 'x' }, { authorization: 'Bearer uspl_guessed' })
  t.equal(introspect.status, 429, '/introspect too')
})

t.test('failures count per client across addresses, and /revoke counts unknown tokens though it answers 200', async (t) => {
  const stack = await startStack(t, { RATE_LIMIT_FAILURES_MAX: '4' })
  const victim = await registerClient(stack)
  const other = await registerClient(stack)
  const form = (clientId: string): string => new URLSearchParams({ token: `guessed-${Math.random()}`, client_id: clientId }).toString()
  // a distributed guesser: four addresses, one client
  for (let i = 0; i < 4; i++) {
    const res = await stack.token.inject({ method: 'POST', url: '/revoke', remoteAddress: `198.51.100.${i + 1}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form(victim.client_id) })
    t.equal(res.statusCode, 200, `unknown token ${i}: 200 (RFC 7009 §2.2)`)
  }
  const fifth = await stack.token.inject({ method: 'POST', url: '/revoke', remoteAddress: '198.51.100.99', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form(victim.client_id) })
  t.equal(fifth.statusCode, 429, 'a fresh address naming the same client is refused')
  t.ok(Number(fifth.headers['retry-after']) > 0)
  const basicToo = await stack.token.inject({ method: 'POST', url: '/revoke', remoteAddress: '198.51.100.98', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(victim.client_id) }, payload: 'token=guess' })
  t.equal(basicToo.statusCode, 429, 'naming it through Basic too')
  const unrelated = await stack.token.inject({ method: 'POST', url: '/revoke', remoteAddress: '198.51.100.99', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: form(other.client_id) })
  t.equal(unrelated.statusCode, 200, 'another client from that address is not limited')
})

t.test('the failure counts are shared by replicas (two token apps, one Redis)', async (t) => {
  const stack = await startStack(t, { RATE_LIMIT_FAILURES_MAX: '6' })
  const client = await registerClient(stack)
  const { build } = await import('../src/app.ts')
  const second = await build(stack.config, { redis: stack.r.redis, logger: false })
  t.teardown(() => second.close())
  const replicas = [stack.token, second]
  for (let i = 0; i < 6; i++) {
    const res = await replicas[i % 2].inject({ method: 'POST', url: '/token', remoteAddress: '203.0.113.7', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: `guess-${i}`, client_id: client.client_id }).toString() })
    t.equal(res.statusCode, 400, `guess ${i} on replica ${i % 2}: invalid_grant`)
  }
  for (const [i, app] of replicas.entries()) {
    const res = await app.inject({ method: 'POST', url: '/token', remoteAddress: '203.0.113.7', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'guess-x', client_id: client.client_id }).toString() })
    t.equal(res.statusCode, 429, `replica ${i} refuses the 7th`)
  }
})

t.test('every request to a limited door carries RateLimit-* headers; a flood from one address gets 429', async (t) => {
  const stack = await startStack(t, { RATE_LIMIT_MAX: '3' })
  t.equal(loadDefault().RATE_LIMIT_MAX, 6000, 'the default cap is high (a company NAT)')
  const statuses: number[] = []
  let last: Response | undefined
  for (let i = 0; i < 4; i++) {
    last = await post(`${stack.issuer}/token`, { grant_type: 'password' })
    statuses.push(last.status)
    if (i === 0) {
      t.equal(last.headers.get('ratelimit-limit'), '3')
      t.equal(last.headers.get('ratelimit-remaining'), '2')
      t.ok(Number(last.headers.get('ratelimit-reset')) > 0)
    }
    await last.arrayBuffer()
  }
  t.same(statuses, [400, 400, 400, 429])
  t.ok(Number(last?.headers.get('retry-after')) > 0, 'Retry-After on 429')
  t.equal((await fetch(`${stack.issuer}/.well-known/jwks.json`)).status, 200, 'documents are not limited')
})

t.test('a rotated refresh token presented twice inside the grace window yields one chain, not two', async (t) => {
  const stack = await startStack(t, { REFRESH_REUSE_GRACE_S: '30' })
  const client = await registerClient(stack)
  const tokens = await obtainTokens(stack, client.client_id)
  const refresh = (token: string): Promise<Response> => post(`${stack.issuer}/token`, { grant_type: 'refresh_token', refresh_token: token, client_id: client.client_id })
  // the thief races the client with the same stolen token
  const answers = await Promise.all([0, 1, 2, 3, 4].map(async () => { const r = await refresh(tokens.refresh_token); return { status: r.status, body: await r.json() as Record<string, string> } }))
  t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200], 'every concurrent retry is answered')
  const successors = new Set(answers.map((a) => a.body.refresh_token))
  t.equal(successors.size, 1, 'all of them get the same successor')
  const [successor] = successors
  t.not(successor, tokens.refresh_token)
  const grantId = String(decodeJwt(answers[0].body.access_token).claims.grant_id)
  t.same((await stack.r.redis.smembers(keys.grantRefreshTokens(grantId))).filter((m) => !m.endsWith(':next')).length, 2, 'the grant holds the rotated token and one successor')
  // the successor is kept only sealed for the holder of the old token
  const sealed = await stack.r.redis.get(keys.refreshTokenSuccessor(hashSecret(tokens.refresh_token)))
  t.ok(sealed && !sealed.includes(successor) && !Buffer.from(sealed, 'base64url').toString('latin1').includes(successor), 'not stored in the clear')
  t.equal(openSuccessor('x'.repeat(43), sealed ?? ''), null, 'another token cannot open it')
  t.equal(openSuccessor(tokens.refresh_token, sealed ?? ''), successor)
  const ttl = await stack.r.redis.pttl(keys.refreshTokenSuccessor(hashSecret(tokens.refresh_token)))
  t.ok(ttl > 0 && ttl <= 35000, 'and only for the grace window')
  // the chain goes on from the one successor
  const next = await refresh(successor)
  t.equal(next.status, 200)
  t.same(await keysMatching(stack.r, 'dl:*'), [], 'nothing revoked')
})

t.test('after the grace window a retry of the rotated token revokes the grant, successor and all', async (t) => {
  const stack = await startStack(t, { REFRESH_REUSE_GRACE_S: '1' })
  const client = await registerClient(stack)
  const tokens = await obtainTokens(stack, client.client_id)
  const refresh = (token: string): Promise<Response> => post(`${stack.issuer}/token`, { grant_type: 'refresh_token', refresh_token: token, client_id: client.client_id })
  const first = await (await refresh(tokens.refresh_token)).json() as Record<string, string>
  // the window is decided by the rotation time: move it back past the window instead of waiting
  await stack.r.redis.hset(keys.refreshToken(hashSecret(tokens.refresh_token)), 'rotated_at', String(Date.now() - 2000))
  const late = await refresh(tokens.refresh_token)
  t.equal(late.status, 400)
  t.equal((await late.json()).error, 'invalid_grant')
  t.equal((await refresh(first.refresh_token)).status, 400, 'the successor died with the grant')
})

t.test("RFC 7009 for another client's token: unauthorized_client, nothing revoked, the owner's tokens keep working", async (t) => {
  const stack = await startStack(t)
  const victim = await registerClient(stack)
  const attacker = await registerClient(stack)
  const tokens = await obtainTokens(stack, victim.client_id)
  for (const [hint, token] of [['refresh_token', tokens.refresh_token], ['access_token', tokens.access_token]] as const) {
    for (const how of ['body', 'basic'] as const) {
      const res = how === 'body'
        ? await post(`${stack.issuer}/revoke`, { token, token_type_hint: hint, client_id: attacker.client_id })
        : await post(`${stack.issuer}/revoke`, { token, token_type_hint: hint }, { authorization: basic(attacker.client_id) })
      t.equal(res.status, 400, `${hint} via ${how}: refused`)
      t.same(await res.json(), { error: 'unauthorized_client', error_description: 'the token was not issued to this client; nothing was revoked' })
    }
  }
  t.same(await keysMatching(stack.r, 'dl:*'), [], 'nothing revoked')
  const refreshed = await post(`${stack.issuer}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: victim.client_id })
  t.equal(refreshed.status, 200, "the owner's refresh token still works")
  // the owner revokes its own token as before
  const own = await post(`${stack.issuer}/revoke`, { token: tokens.access_token, client_id: victim.client_id })
  t.equal(own.status, 200)
})
