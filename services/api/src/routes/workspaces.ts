/** GET /v1/workspaces: the caller's workspaces, each with the caller's role. */
import type { FastifyInstance } from 'fastify'
import { callerOf } from '../auth.ts'
import { WorkspaceList, errors } from '../schemas.ts'

export default async function workspaceRoutes (app: FastifyInstance): Promise<void> {
  app.get('/v1/workspaces', {
    config: { personalKey: true },
    schema: {
      tags: ['workspaces'],
      summary: 'List your workspaces',
      description: 'The workspaces the key\'s user belongs to, with their role in each.',
      response: { 200: WorkspaceList, ...errors(401, 403, 429) }
    }
  }, async (request) => ({ items: await app.workspaces.listWorkspaces(callerOf(request).userId) }))
}
