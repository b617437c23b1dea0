/**
 * The baseline for the workspace API's authenticated read: the same Fastify base app (logger, request ids,
 * Redis plugin, health), the same route shape, response schema and serializer, and the same repository
 * read, with no authentication, no rate limit and no role read. What the API adds on top of this (the
 * personal key's record, its user, the per-address and per-key counts, the membership) is what the
 * benchmark prices.
 *
 * Env: PORT, HOST, REDIS_URL, REDIS_PREFIX.
 */
import { baseFastify } from '@uspl/server'
import { loadConfig, baseSchema } from '@uspl/config'
import { RedisWorkspaceRepository } from '@uspl/core'
import { Recording, RecordingParams, recordingBody } from '../../services/api/src/schemas.ts'

const config = loadConfig(baseSchema(0))
const app = baseFastify('bench-bare-rest', config)
app.addSchema(Recording)
await app.after()
const repo = new RedisWorkspaceRepository(app.redis)
app.get<{ Params: { workspaceId: string, recordingId: string } }>('/v1/workspaces/:workspaceId/recordings/:recordingId', {
  config: { public: true },
  schema: { params: RecordingParams, response: { 200: { $ref: 'Recording' } } }
}, async (request, reply) => {
  const recording = await repo.getRecording(request.params.workspaceId, request.params.recordingId)
  if (!recording) return reply.code(404).send({ error: { code: 'not_found', message: 'no such recording' } })
  return recordingBody(recording)
})
await app.listen({ port: config.PORT, host: config.HOST })
process.once('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
