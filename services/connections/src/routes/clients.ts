/**
 * Operators:
 * GET  /v1/clients                    clients (registered and metadata-document), with how many active grants each holds
 * POST /v1/clients/:clientId/revoke   revoke every user's grant of the client and disable it
 * POST /v1/clients/:clientId/enable   let a disabled client be authorized again (revoked grants stay revoked)
 */
import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { ApiError } from '@uspl/errors'
import { keys } from '@uspl/core'
import { principalOf, actorOf } from '../auth.ts'
import { activeGrants, documentHost, openSessions } from '../connections.ts'
import { bulkResult } from './bulk.ts'
import { ClientList, ClientParams, ClientRevokeResult, EnableResult, errors, operatorOnly } from '../schemas.ts'

const iso = (s: number): string => new Date(s * 1000).toISOString()

export default async function clientRoutes (app: FastifyInstance): Promise<void> {
  app.get('/v1/clients', {
    config: { auth: 'operator', failureLimit: {} },
    schema: { tags: ['operators'], summary: 'List registered clients', security: operatorOnly, response: { 200: ClientList, ...errors(401, 403) } }
  }, async () => {
    const clients = await app.connectionsContext.clients.list()
    const items = await Promise.all(clients.map(async (c) => ({
      client_id: c.clientId,
      kind: c.kind,
      host: documentHost(c, c.clientId),
      duplicate_of: c.duplicateOf,
      client_name: c.metadata.client_name ?? null,
      logo_uri: c.metadata.logo_uri ?? null,
      redirect_uris: c.metadata.redirect_uris,
      issued_at: iso(c.issuedAt),
      last_used_at: iso(c.lastUsedAt),
      disabled_at: c.disabledAt === null ? null : iso(c.disabledAt),
      active_grants: (await activeGrants(app, { clientId: c.clientId })).length
    })))
    return { items: items.sort((a, b) => a.issued_at.localeCompare(b.issued_at)) }
  })

  app.post<{ Params: Static<typeof ClientParams> }>('/v1/clients/:clientId/revoke', {
    config: { auth: 'operator', failureLimit: {} },
    schema: {
      tags: ['operators'],
      summary: "Revoke every grant of a client and disable it",
      description: "Every user's connection to this client is cut at once and the client can get no new authorization until enabled again. Other clients are untouched.",
      security: operatorOnly,
      params: ClientParams,
      response: { 200: ClientRevokeResult, ...errors(401, 403, 404) }
    }
  }, async (request) => {
    const who = principalOf(request)
    const { clientId } = request.params
    const [client, indexed] = await Promise.all([app.connectionsContext.clients.get(clientId), app.redis.scard(keys.clientGrants(clientId))])
    if (!client && indexed === 0) throw new ApiError('not_found', 'no such client', 404)
    const active = await activeGrants(app, { clientId })
    const sessions = (await openSessions(app, active.map((g) => g.id))).reduce((a, b) => a + b, 0)
    const result = await app.connectionsContext.revoker.revokeClient(clientId, {
      path: 'client_disable',
      actor: actorOf(who),
      disable: true
    })
    return { client_id: clientId, disabled: client !== null, ...bulkResult(result, sessions) }
  })

  app.post<{ Params: Static<typeof ClientParams> }>('/v1/clients/:clientId/enable', {
    config: { auth: 'operator', failureLimit: {} },
    schema: {
      tags: ['operators'],
      summary: 'Enable a disabled client',
      description: 'The client may ask users for consent again. Grants revoked while it was disabled stay revoked.',
      security: operatorOnly,
      params: ClientParams,
      response: { 200: EnableResult, ...errors(401, 403, 404) }
    }
  }, async (request) => {
    const { clientId } = request.params
    if (!await app.connectionsContext.clients.get(clientId)) throw new ApiError('not_found', 'no such client', 404)
    await app.connectionsContext.clients.setDisabled(clientId, false)
    request.log.info({ clientId, by: actorOf(principalOf(request)) }, 'client enabled')
    return { client_id: clientId, disabled: false }
  })
}
