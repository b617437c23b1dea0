/**
 * Fixtures for the enterprise end-to-end tests: the whole suite plus a local test IdP trusted as an
 * enterprise issuer for the person's email domain, a registered client, the ID-JAG exchange as a client
 * makes it, the MCP SDK client on a token, and a Shared Signals receiver on loopback that keeps what it is
 * pushed and verifies nothing itself (tests verify the SETs independently).
 */
import { EventEmitter } from 'node:events'
import Fastify from 'fastify'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { EnterpriseIssuerStore, emailDomain } from '@uspl/core'
import { TestIdp } from '@uspl/testing/enterprise-idp'
import { startSuite, type Suite, type Person } from './suite.ts'

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

export interface Enterprise { s: Suite, idp: TestIdp, person: Person, clientId: string }

export async function enterprise (t: Parameters<typeof startSuite>[0]): Promise<Enterprise> {
  const s = await startSuite(t)
  const person = await s.person('Eve')
  const idp = new TestIdp('https://idp.e2e.example', String(emailDomain(person.user.email)))
  await new EnterpriseIssuerStore(s.r.redis).put({ issuer: idp.issuer, name: 'E2E IdP', jwks: idp.jwks, domains: [idp.domain] })
  const reg = await fetch(`${s.registrationUrl}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_name: 'Managed Agent', redirect_uris: ['http://127.0.0.1:41999/callback'] }) })
  const { client_id: clientId } = await reg.json() as { client_id: string }
  return { s, idp, person, clientId }
}

/** The client's half of the flow: trade an ID-JAG from the IdP for an access token at our token endpoint. */
export async function exchange (e: Enterprise): Promise<{ access_token: string, refresh_token?: string }> {
  const assertion = e.idp.idJag(e.idp.idJagClaims({ audience: e.s.issuer, clientId: e.clientId, resource: e.s.resource, email: e.person.user.email }))
  const res = await fetch(`${e.s.issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: JWT_BEARER, assertion, client_id: e.clientId, resource: e.s.resource }) })
  if (res.status !== 200) throw new Error(`exchange failed: ${res.status} ${await res.text()}`)
  return await res.json() as { access_token: string }
}

export async function connect (t: { teardown: (fn: () => unknown) => void }, url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'managed-agent', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
  t.teardown(() => client.close())
  return client
}

export interface Pushed { set: string, authorization: string | undefined, contentType: string | undefined }

/** A push receiver (RFC 8935): answers `status` (202 by default) and emits 'set' for each SET it got. */
export class PushReceiver extends EventEmitter {
  received: Pushed[] = []
  status = 202
  url = ''

  async start (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
    const app = Fastify()
    app.addContentTypeParser('application/secevent+jwt', { parseAs: 'string' }, (_req, body, done) => done(null, body))
    app.post('/events', async (request, reply) => {
      const pushed = { set: String(request.body), authorization: request.headers.authorization, contentType: request.headers['content-type'] }
      if (this.status >= 200 && this.status < 300) this.received.push(pushed)
      this.emit('set', pushed)
      return reply.code(this.status).send(this.status === 400 ? { err: 'invalid_audience', description: 'not for us' } : undefined)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    const address = app.server.address()
    if (!address || typeof address === 'string') throw new Error('no address')
    this.url = `http://127.0.0.1:${address.port}/events`
    return this.url
  }

  next (): Promise<Pushed> {
    return new Promise((resolve) => this.once('set', resolve))
  }
}
