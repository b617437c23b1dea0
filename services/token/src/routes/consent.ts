/**
 * The consent page: who is asking (client name, where it returns to, a warning for localhost-only
 * clients), what it may do (each scope in a plain sentence), Allow or Deny. The form carries the browser
 * session's CSRF token; the pending request is consumed by the decision, so it is taken once. Allow
 * records the grant (reusing the user's active grant for this client) and issues a code; Deny returns
 * `access_denied`. Both carry `state` and `iss`.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { constantTimeEqual, isLoopbackHost, type Client } from '@uspl/core'
import { consentPage, errorPage } from '../lib/html.ts'
import { authorizationResponseUrl, SCOPE_DESCRIPTIONS } from '../lib/oauth.ts'
import { documentHost, safeDisplayName } from '../lib/client-display.ts'

interface ConsentBody { request?: unknown, csrf?: unknown, decision?: unknown }

function hostOf (uri: string): string {
  const url = new URL(uri)
  return url.host || url.protocol.replace(/:$/, '')
}

function localhostOnly (client: Client): boolean {
  return client.metadata.redirect_uris.every((u) => {
    const url = new URL(u)
    return url.protocol === 'http:' && isLoopbackHost(url.hostname)
  })
}

export default async function consent (app: FastifyInstance): Promise<void> {
  const { authRequests, clients, resolveClient, grants, codes, accounts, config } = app.tokenContext
  const options = { config: { public: true, cors: false as const } }

  const expired = (reply: FastifyReply): FastifyReply =>
    errorPage(reply, 400, 'This request expired', 'The authorization request is no longer valid (it expired or was already answered). Start connecting again from your application.')

  async function usableClient (clientId: string): Promise<Client | null> {
    // a metadata document that can no longer be used (changed, gone) makes the client unavailable
    const client = await resolveClient.find(clientId).catch((err: Error) => { if (err.name === 'CimdError') return null; throw err })
    return client && client.disabledAt === null ? client : null
  }

  app.get('/consent', options, async (request, reply) => {
    const id = (request.query as Record<string, unknown>).request
    // step: the pending request
    const pending = typeof id === 'string' ? await authRequests.get(id) : null
    if (!pending || typeof id !== 'string') return expired(reply)
    // step: a signed-in user, or sign in first and come back
    const session = await app.tokenContext.session(request)
    const user = session ? await accounts.getUser(session.userId) : null
    if (!session || !user) return reply.redirect(`/signin?return_to=${encodeURIComponent(`/consent?request=${id}`)}`, 303)
    // step: the client is still allowed
    const client = await usableClient(pending.clientId)
    if (!client) return errorPage(reply, 403, 'Application unavailable', 'This application was removed or disabled by an operator.')
    // step: show what it asks
    return consentPage(reply, {
      requestId: id,
      csrf: session.csrf,
      clientName: safeDisplayName(client.metadata.client_name),
      clientId: client.clientId,
      clientHost: documentHost(client),
      redirectHost: hostOf(pending.redirectUri),
      scopes: pending.scope.split(' ').map((name) => ({ name, description: SCOPE_DESCRIPTIONS[name] ?? name })),
      localhostOnly: localhostOnly(client),
      userEmail: user.email,
      connectionsUrl: `${config.CONNECTIONS_URL.replace(/\/+$/, '')}/connections`
    })
  })

  app.post('/consent', options, async (request, reply) => {
    const body = (request.body ?? {}) as ConsentBody
    // the answer carries a code or a decision: never cached
    reply.header('cache-control', 'no-store')
    // step: a signed-in user
    const session = await app.tokenContext.session(request)
    if (!session) return errorPage(reply, 403, 'Not signed in', 'Your session ended before you decided. Start connecting again from your application.')
    // step: the form came from our page, in this session
    if (typeof body.csrf !== 'string' || !constantTimeEqual(body.csrf, session.csrf)) {
      return errorPage(reply, 403, 'Request refused', 'This form did not come from this sign-in session (CSRF check failed). Start connecting again from your application.')
    }
    // step: take the pending request (once)
    const pending = typeof body.request === 'string' ? await authRequests.take(body.request) : null
    if (!pending) return expired(reply)
    // step: the client is still allowed
    const client = await usableClient(pending.clientId)
    if (!client) return errorPage(reply, 403, 'Application unavailable', 'This application was removed or disabled by an operator.')
    // step: the decision
    if (body.decision !== 'allow') {
      request.log.info({ clientId: client.clientId, userId: session.userId }, 'authorization denied')
      return reply.redirect(authorizationResponseUrl(pending.redirectUri, { error: 'access_denied', error_description: 'the user denied the request', state: pending.state, iss: config.ISSUER_URL }), 303)
    }
    // step: record the grant and issue the code
    const grant = await grants.ensure({ userId: session.userId, clientId: client.clientId, scope: pending.scope, resource: pending.resource, authTime: session.authTime, ttlS: config.REFRESH_TOKEN_TTL_S })
    const code = await codes.issue({
      clientId: client.clientId,
      redirectUri: pending.redirectUri,
      codeChallenge: pending.codeChallenge,
      resource: pending.resource,
      scope: pending.scope,
      userId: session.userId,
      authTime: session.authTime,
      grantId: grant.id
    })
    await clients.touch(client.clientId)
    request.log.info({ clientId: client.clientId, userId: session.userId, grantId: grant.id }, 'authorization granted')
    return reply.redirect(authorizationResponseUrl(pending.redirectUri, { code, state: pending.state, iss: config.ISSUER_URL }), 303)
  })
}
