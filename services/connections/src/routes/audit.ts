/**
 * Operators: GET /v1/audit, the revocation trail (who revoked what, when, through which path), newest
 * first. Written by the follow-up worker (keys.audit() sorted by time, one record per event). Pages are
 * cut by event id: `cursor` is the last event of the previous page, so new revocations never shift a page.
 */
import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { ApiError } from '@uspl/errors'
import { keys, type AuditRecord } from '@uspl/core'
import { AuditPage, AuditQuery, errors, operatorOnly } from '../schemas.ts'

export default async function auditRoutes (app: FastifyInstance): Promise<void> {
  app.get<{ Querystring: Static<typeof AuditQuery> }>('/v1/audit', {
    config: { auth: 'operator', failureLimit: {} },
    schema: {
      tags: ['operators'],
      summary: 'Read the revocation audit trail',
      security: operatorOnly,
      querystring: AuditQuery,
      response: { 200: AuditPage, ...errors(400, 401, 403) }
    }
  }, async (request) => {
    const { limit, cursor } = request.query
    let start = 0
    if (cursor !== undefined) {
      const rank = await app.redis.zrevrank(keys.audit(), cursor)
      if (rank === null) throw new ApiError('invalid_cursor', 'the cursor names no audit entry', 400)
      start = rank + 1
    }
    const ids = await app.redis.zrevrange(keys.audit(), start, start + limit)
    const more = ids.length > limit
    const page = ids.slice(0, limit)
    const bodies = page.length > 0 ? await app.redis.mget(...page.map((id) => keys.auditEntry(id))) : []
    const items = bodies.flatMap((b) => {
      if (b === null) return []
      const r = JSON.parse(b) as AuditRecord
      return [{
        event_id: r.event_id,
        at: new Date(r.at).toISOString(),
        actor: r.actor,
        path: r.path,
        scope: r.scope,
        target: r.target,
        grant_ids: r.grant_ids,
        client_id: r.client_id,
        user_id: r.user_id
      }]
    })
    return { items, next_cursor: more ? page[page.length - 1] : null }
  })
}
