// The operator API for trusted enterprise issuers (operator keys only), and managed grants as Connected
// Apps shows them: marked with their issuer in the API and on the page, revocable per issuer.
import t from 'tap'
import { EnterpriseIssuerStore, GrantStore, nowSeconds, enterpriseIssuerId } from '@uspl/core'
import { TestIdp } from '@uspl/testing/enterprise-idp'
import { once } from 'node:events'
import { setup as baseSetup, bearer, type Fixture } from './helper.ts'

/** The app's own Redis client connects after build: wait for its 'ready' event before the first request. */
async function setup (t: Parameters<typeof baseSetup>[0]): Promise<Fixture> {
  const f = await baseSetup(t)
  if (f.app.redis.status !== 'ready') await once(f.app.redis, 'ready')
  return f
}

t.test('operators add, list, replace and remove issuers; users cannot', async (t) => {
  const f = await setup(t)
  const key = await f.operatorKey()
  const idp = new TestIdp('https://idp.acme.example')
  const put = await f.app.inject({ method: 'PUT', url: '/v1/enterprise-issuers', headers: bearer(key), payload: { issuer: idp.issuer, name: 'Acme Okta', jwks: idp.jwks, domains: ['acme.example'] } })
  t.equal(put.statusCode, 200, put.body)
  t.same(put.json().inline_jwks_kids, [idp.kid])
  t.equal(put.json().id, enterpriseIssuerId(idp.issuer))
  const replaced = await f.app.inject({ method: 'PUT', url: '/v1/enterprise-issuers', headers: bearer(key), payload: { issuer: idp.issuer, jwks_uri: 'https://idp.acme.example/keys', domains: ['acme.example', 'acme.co'], subject: 'sub' } })
  t.equal(replaced.statusCode, 200, replaced.body)
  t.equal(replaced.json().created_at, put.json().created_at, 'replacing keeps its creation time')
  const list = await f.app.inject({ url: '/v1/enterprise-issuers', headers: bearer(key) })
  t.same(list.json().items.map((i: { jwks_uri: string, domains: string[], subject: string }) => [i.jwks_uri, i.domains, i.subject]), [['https://idp.acme.example/keys', ['acme.example', 'acme.co'], 'sub']])

  const bad = await f.app.inject({ method: 'PUT', url: '/v1/enterprise-issuers', headers: bearer(key), payload: { issuer: 'https://x.example', domains: ['x.example'] } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().error.code, 'invalid_request')
  t.match(bad.json().error.message, /exactly one of jwks_uri and jwks/)
  const secret = await f.app.inject({ method: 'PUT', url: '/v1/enterprise-issuers', headers: bearer(key), payload: { issuer: 'https://x.example', domains: ['x.example'], jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } } })
  t.equal(secret.statusCode, 400)

  const user = await f.user('Ann')
  const session = await f.signIn(user)
  const asUser = await f.app.inject({ url: '/v1/enterprise-issuers', headers: { cookie: session.cookie } })
  t.equal(asUser.statusCode, 403)
  t.equal((await f.app.inject({ url: '/v1/enterprise-issuers' })).statusCode, 401)

  const del = await f.app.inject({ method: 'DELETE', url: `/v1/enterprise-issuers/${enterpriseIssuerId(idp.issuer)}`, headers: bearer(key) })
  t.equal(del.statusCode, 204)
  t.equal((await f.app.inject({ method: 'DELETE', url: `/v1/enterprise-issuers/${enterpriseIssuerId(idp.issuer)}`, headers: bearer(key) })).statusCode, 404)
})

t.test('an issuer\'s poll endpoint: poll_url shown, poll_authorization write-only', async (t) => {
  const f = await setup(t)
  const key = await f.operatorKey()
  const idp = new TestIdp('https://idp.poll.example')
  const secret = 'Bearer api-poll-secret-5678'
  const put = await f.app.inject({ method: 'PUT', url: '/v1/enterprise-issuers', headers: bearer(key), payload: { issuer: idp.issuer, jwks: idp.jwks, domains: ['poll.example'], poll_url: 'https://idp.poll.example/ssf/poll', poll_authorization: secret } })
  t.equal(put.statusCode, 200, put.body)
  t.match(put.json(), { poll_url: 'https://idp.poll.example/ssf/poll', poll_authorization_set: true })
  t.notMatch(put.body, secret, 'the PUT answer does not carry the value')
  const list = await f.app.inject({ url: '/v1/enterprise-issuers', headers: bearer(key) })
  t.equal(list.statusCode, 200)
  t.match(list.json().items[0], { poll_url: 'https://idp.poll.example/ssf/poll', poll_authorization_set: true })
  t.notMatch(list.body, secret, 'nor does the GET')
  t.notOk('poll_authorization' in list.json().items[0])
  t.equal((await new EnterpriseIssuerStore(f.r.redis).get(idp.issuer))?.pollAuthorization, secret, 'the token service\'s poller reads it from the record')

  const plain = await f.app.inject({ method: 'PUT', url: '/v1/enterprise-issuers', headers: bearer(key), payload: { issuer: idp.issuer, jwks: idp.jwks, domains: ['poll.example'], poll_url: 'http://idp.poll.example/ssf/poll' } })
  t.equal(plain.statusCode, 400)
  t.match(plain.json().error.message, /poll_url must be an https URL/)
  const none = await f.app.inject({ method: 'PUT', url: '/v1/enterprise-issuers', headers: bearer(key), payload: { issuer: idp.issuer, jwks: idp.jwks, domains: ['poll.example'] } })
  t.match(none.json(), { poll_url: null, poll_authorization_set: false }, 'replacing without them: push only')
})

t.test('managed grants are marked in Connected Apps and revoke per issuer', async (t) => {
  const f = await setup(t)
  const key = await f.operatorKey()
  const idp = new TestIdp('https://idp.acme.example')
  const put = await f.app.inject({ method: 'PUT', url: '/v1/enterprise-issuers', headers: bearer(key), payload: { issuer: idp.issuer, name: 'Acme Okta', jwks: idp.jwks, domains: ['example.test'] } })
  t.equal(put.statusCode, 200, put.body)
  const user = await f.user('Bo')
  const own = await f.grant(user, await f.client('Own App'))
  const managedClient = await f.client('Managed App')
  const managed = await new GrantStore(f.r.redis, f.r.prefix).ensure({ userId: user.id, clientId: managedClient.clientId, scope: 'mcp:tools', resource: 'http://localhost:3000/mcp', authTime: nowSeconds(), ttlS: 3600, managedBy: enterpriseIssuerId(idp.issuer) })

  const api = await f.app.inject({ url: `/v1/connections?user_id=${user.id}`, headers: bearer(key) })
  t.equal(api.statusCode, 200, api.body)
  const byId = new Map(api.json().items.map((c: { grant_id: string }) => [c.grant_id, c]))
  t.same((byId.get(managed.id) as { managed_by: unknown }).managed_by, { issuer_id: enterpriseIssuerId(idp.issuer), issuer: idp.issuer, name: 'Acme Okta' })
  t.equal((byId.get(own.id) as { managed_by: unknown }).managed_by, null)

  const session = await f.signIn(user)
  const page = await f.app.inject({ url: '/connections', headers: { cookie: session.cookie } })
  t.match(page.body, /Managed by<\/span> Acme Okta/)

  const revoke = await f.app.inject({ method: 'POST', url: `/v1/enterprise-issuers/${enterpriseIssuerId(idp.issuer)}/revoke`, headers: bearer(key) })
  t.equal(revoke.statusCode, 200, revoke.body)
  t.equal(revoke.json().revoked_grants, 1)
  const grants = new GrantStore(f.r.redis, f.r.prefix)
  t.not((await grants.get(managed.id))?.revokedAt, null, 'the managed grant is revoked')
  t.equal((await grants.get(own.id))?.revokedAt, null, "the user's own consent is untouched")
})
