/** Recordings of a workspace: list (cursor pages), read, delete (owner, admin or creator). */
import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { callerOf } from '../auth.ts'
import { Deleted, PageQuery, RecordingPage, RecordingParams, WorkspaceParams, errors, recordingBody } from '../schemas.ts'

export default async function recordingRoutes (app: FastifyInstance): Promise<void> {
  app.get<{ Params: Static<typeof WorkspaceParams>, Querystring: PageQuery }>('/v1/workspaces/:workspaceId/recordings', {
    config: { personalKey: true },
    schema: {
      tags: ['recordings'],
      summary: 'List recordings',
      description: 'Newest first, one page at a time: pass `next_cursor` back as `cursor`.',
      params: WorkspaceParams,
      querystring: PageQuery,
      response: { 200: RecordingPage, ...errors(400, 401, 403, 404, 429) }
    }
  }, async (request) => {
    const page = await app.workspaces.listRecordings(callerOf(request).userId, request.params.workspaceId, request.query)
    return { items: page.items.map(recordingBody), next_cursor: page.nextCursor }
  })

  app.get<{ Params: Static<typeof RecordingParams> }>('/v1/workspaces/:workspaceId/recordings/:recordingId', {
    config: { personalKey: true },
    schema: {
      tags: ['recordings'],
      summary: 'Get a recording',
      params: RecordingParams,
      response: { 200: { $ref: 'Recording' }, ...errors(401, 403, 404, 429) }
    }
  }, async (request) => {
    const { workspaceId, recordingId } = request.params
    return recordingBody(await app.workspaces.getRecording(callerOf(request).userId, workspaceId, recordingId))
  })

  app.delete<{ Params: Static<typeof RecordingParams> }>('/v1/workspaces/:workspaceId/recordings/:recordingId', {
    config: { personalKey: true },
    schema: {
      tags: ['recordings'],
      summary: 'Delete a recording and its links',
      description: 'Allowed for the workspace\'s owners and admins, and for the recording\'s creator.',
      params: RecordingParams,
      response: { 200: Deleted, ...errors(401, 403, 404, 429) }
    }
  }, async (request) => {
    const { workspaceId, recordingId } = request.params
    const recording = await app.workspaces.deleteRecording(callerOf(request).userId, workspaceId, recordingId)
    return { id: recording.id, deleted: true as const }
  })
}
