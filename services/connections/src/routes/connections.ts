/**
 * GET  /v1/connections                    a user's own connected apps; operators filter by user and client
 * POST /v1/connections/:grantId/revoke    revoke one connection, confirmed by typing the app's name
 */
import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { ApiError } from '@uspl/errors'
import { typeableText, readConnection } from '@uspl/core'
import { principalOf, actorOf, EarlyRead } from '../auth.ts'
import { activeGrants, activeGrantsPage, toConnections, displayName } from '../connections.ts'
import {
  ConnectionList, ConnectionQuery, GrantParams, RevokeGrantBody, RevokeGrantResult, errors, userOrOperator
} from '../schemas.ts'

const notFound = (): ApiError => new ApiError('not_found', 'no such connection', 404)

export default async function connectionsRoutes (app: FastifyInstance): Promise<void> {
  // the grant the revoke names, with its client and open-session count, read alongside the caller's key:
  // the revocation's one round trip before its script, which sits on the path to every stream's end
  const grantView = new EarlyRead(async (request) => await readConnection(app.redis, app.redisPrefix, (request.params as Static<typeof GrantParams>).grantId))

  app.get<{ Querystring: Static<typeof ConnectionQuery> }>('/v1/connections', {
    config: { auth: 'either', failureLimit: {} },
    schema: {
      tags: ['connections'],
      summary: 'List connected apps',
      description: "A signed-in user sees their own active connections (filters are ignored); an operator sees everyone's, optionally filtered by user and client. Without filters an operator's list comes in pages of `limit` (newest first within each user): follow `next_cursor` until it is null.",
      security: userOrOperator,
      querystring: ConnectionQuery,
      response: { 200: ConnectionList, ...errors(400, 401, 403) }
    }
  }, async (request) => {
    const who = principalOf(request)
    const filter = who.type === 'user'
      ? { userId: who.userId }
      : { userId: request.query.user_id, clientId: request.query.client_id }
    if (!filter.userId && !filter.clientId) {
      // everyone: a page at a time, never every user's grants in one request
      const page = await activeGrantsPage(app, request.query.cursor, request.query.limit ?? 100)
      return { items: await toConnections(app, page.grants), next_cursor: page.nextCursor }
    }
    return { items: await toConnections(app, await activeGrants(app, filter)), next_cursor: null }
  })

  app.post<{ Params: Static<typeof GrantParams>, Body: Static<typeof RevokeGrantBody> }>('/v1/connections/:grantId/revoke', {
    config: { auth: 'either', failureLimit: {}, earlyRead: grantView },
    schema: {
      tags: ['connections'],
      summary: 'Revoke one connection',
      description: "Cuts the app off at once: its tokens stop working, its refresh tokens are deleted and its open MCP sessions close on every gateway replica. `confirm` must repeat the app's name (`client_name` in the list); a wrong name is 400 and revokes nothing. Revoking twice is harmless and reports the first revocation. Cookie sessions must send the `x-csrf-token` header.",
      security: userOrOperator,
      params: GrantParams,
      body: RevokeGrantBody,
      response: { 200: RevokeGrantResult, ...errors(400, 401, 403, 404) }
    }
  }, async (request) => {
    const who = principalOf(request)
    // 1. the grant, visible to this caller (another user's grant does not exist for a user), with its
    //    client and open-session count (read as the request arrived)
    const view = await grantView.result(request)
    if (!view || (who.type === 'user' && view.grant.userId !== who.userId)) throw notFound()
    const { grant, client, openSessions: sessions } = view
    // 2. the confirmation names the app
    const name = displayName(client, grant.clientId)
    // (compared as typed: a name stored before registration refused invisible characters is still typeable)
    if (typeableText(request.body.confirm) !== typeableText(name)) {
      throw new ApiError('confirmation_mismatch', "confirm must be the application's name exactly as listed", 400)
    }
    // 3. revoke (already revoked: report the first revocation)
    const result = await app.connectionsContext.revoker.revokeGrant(grant.id, {
      path: who.type === 'user' ? 'connections_user' : 'connections_operator',
      actor: actorOf(who)
    })
    if (result.status === 'not_found' || result.revokedAt === null) throw notFound()
    const already = result.status !== 'revoked'
    if (!already) request.log.info({ grantId: grant.id, eventId: result.eventId, path: result.event?.path }, 'connection revoked')
    return {
      grant_id: grant.id,
      status: already ? 'already_revoked' : 'revoked',
      revoked_at: new Date(result.revokedAt).toISOString(),
      sessions_closed: already ? 0 : sessions,
      event_id: result.eventId
    }
  })
}
