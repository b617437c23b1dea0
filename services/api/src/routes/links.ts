/** Recording links: list and create under a recording; read, update (any member), delete (owner, admin or creator). */
import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { callerOf } from '../auth.ts'
import { CreateLink, Deleted, LinkPage, LinkParams, PageQuery, RecordingParams, UpdateLink, errors, linkBody } from '../schemas.ts'

export default async function linkRoutes (app: FastifyInstance): Promise<void> {
  app.get<{ Params: Static<typeof RecordingParams>, Querystring: PageQuery }>('/v1/workspaces/:workspaceId/recordings/:recordingId/links', {
    config: { personalKey: true },
    schema: {
      tags: ['links'],
      summary: 'List a recording\'s links',
      description: 'Newest first, one page at a time: pass `next_cursor` back as `cursor`.',
      params: RecordingParams,
      querystring: PageQuery,
      response: { 200: LinkPage, ...errors(400, 401, 403, 404, 429) }
    }
  }, async (request) => {
    const { workspaceId, recordingId } = request.params
    const page = await app.workspaces.listLinks(callerOf(request).userId, workspaceId, { ...request.query, recordingId })
    return { items: page.items.map(linkBody), next_cursor: page.nextCursor }
  })

  app.post<{ Params: Static<typeof RecordingParams>, Body: Static<typeof CreateLink> }>('/v1/workspaces/:workspaceId/recordings/:recordingId/links', {
    config: { personalKey: true },
    schema: {
      tags: ['links'],
      summary: 'Create a link to a recording',
      description: 'Any member may create links.',
      params: RecordingParams,
      body: CreateLink,
      response: { 201: { $ref: 'Link' }, ...errors(400, 401, 403, 404, 429) }
    }
  }, async (request, reply) => {
    const { workspaceId, recordingId } = request.params
    const { title, access, expires_at: expiresAt } = request.body
    const link = await app.workspaces.createLink(callerOf(request).userId, workspaceId, { recordingId, title: title.trim(), access, expiresAt: expiresAt ?? null })
    reply.code(201)
    return linkBody(link)
  })

  app.get<{ Params: Static<typeof LinkParams> }>('/v1/workspaces/:workspaceId/links/:linkId', {
    config: { personalKey: true },
    schema: {
      tags: ['links'],
      summary: 'Get a link',
      params: LinkParams,
      response: { 200: { $ref: 'Link' }, ...errors(401, 403, 404, 429) }
    }
  }, async (request) => {
    const { workspaceId, linkId } = request.params
    return linkBody(await app.workspaces.getLink(callerOf(request).userId, workspaceId, linkId))
  })

  app.patch<{ Params: Static<typeof LinkParams>, Body: Static<typeof UpdateLink> }>('/v1/workspaces/:workspaceId/links/:linkId', {
    config: { personalKey: true },
    schema: {
      tags: ['links'],
      summary: 'Update a link',
      description: 'Changes its title, access or expiry (`expires_at: null` removes it); fields left out stay. Any member may update links.',
      params: LinkParams,
      body: UpdateLink,
      response: { 200: { $ref: 'Link' }, ...errors(400, 401, 403, 404, 429) }
    }
  }, async (request) => {
    const { workspaceId, linkId } = request.params
    const { title, access, expires_at: expiresAt } = request.body
    return linkBody(await app.workspaces.updateLink(callerOf(request).userId, workspaceId, linkId, { title: title?.trim(), access, expiresAt }))
  })

  app.delete<{ Params: Static<typeof LinkParams> }>('/v1/workspaces/:workspaceId/links/:linkId', {
    config: { personalKey: true },
    schema: {
      tags: ['links'],
      summary: 'Delete a link',
      description: 'Allowed for the workspace\'s owners and admins, and for the link\'s creator.',
      params: LinkParams,
      response: { 200: Deleted, ...errors(401, 403, 404, 429) }
    }
  }, async (request) => {
    const { workspaceId, linkId } = request.params
    const link = await app.workspaces.deleteLink(callerOf(request).userId, workspaceId, linkId)
    return { id: link.id, deleted: true as const }
  })
}
