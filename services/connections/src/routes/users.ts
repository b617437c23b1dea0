/** Operators: POST /v1/users/:userId/revoke revokes every connection of one user. */
import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { ApiError } from '@uspl/errors'
import { keys } from '@uspl/core'
import { principalOf, actorOf } from '../auth.ts'
import { activeGrants, openSessions } from '../connections.ts'
import { bulkResult } from './bulk.ts'
import { UserParams, UserRevokeResult, errors, operatorOnly } from '../schemas.ts'

export default async function userRoutes (app: FastifyInstance): Promise<void> {
  app.post<{ Params: Static<typeof UserParams> }>('/v1/users/:userId/revoke', {
    config: { auth: 'operator', failureLimit: {} },
    schema: {
      tags: ['operators'],
      summary: 'Revoke every connection of a user',
      description: "Cuts every client off this user's account at once. The user can still sign in and authorize apps again.",
      security: operatorOnly,
      params: UserParams,
      response: { 200: UserRevokeResult, ...errors(401, 403, 404) }
    }
  }, async (request) => {
    const who = principalOf(request)
    const { userId } = request.params
    const [user, indexed] = await Promise.all([app.connectionsContext.accounts.getUser(userId), app.redis.scard(keys.userGrants(userId))])
    if (!user && indexed === 0) throw new ApiError('not_found', 'no such user', 404)
    const active = await activeGrants(app, { userId })
    const sessions = (await openSessions(app, active.map((g) => g.id))).reduce((a, b) => a + b, 0)
    const result = await app.connectionsContext.revoker.revokeUser(userId, {
      path: 'user_revoke',
      actor: actorOf(who)
    })
    return { user_id: userId, ...bulkResult(result, sessions) }
  })
}
