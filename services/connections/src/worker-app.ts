/**
 * The revocation follow-up worker (audit records, signed webhooks, cleanup, the sweeper) as an app of its
 * own, run by src/worker.ts in its own process (npm start, compose and k8s do so, and run the API replicas
 * with WORKER_ENABLED=false), because its jobs would otherwise compete with the revoke path for the API's
 * event loop.
 *
 * It reads the connections service's configuration (the same variables; WORKER_ENABLED is ignored) and
 * listens only for health, on PORT (default 3013): /health/live, and /health/ready, which also fails while
 * the worker is not running. SIGTERM lets the job in hand finish, then closes the worker and Redis.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { baseFastify, type AppOptions } from '@uspl/server'
import type { RevocationWorker } from '@uspl/core'
import { loadConfig, type Config } from './config.ts'
import { startFollowupWorker } from './followup-worker.ts'

export const WORKER_PORT = 3013

async function followupWorker (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  let worker: RevocationWorker | null = null
  app.readiness.set('worker', () => worker?.isRunning() === true ? null : 'the follow-up worker is not running')
  app.addHook('onReady', async () => { worker = startFollowupWorker(app, opts.config) })
  // preClose: before the Redis plugin closes the client the worker writes with
  app.addHook('preClose', async () => { await worker?.close() })
}

/** The worker process's app: the base app (Redis, health) and the worker, started when the app is ready. */
export async function buildWorker (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = baseFastify('connections-worker', config, options)
  app.register(fp(followupWorker, { name: 'uspl-followup-worker', dependencies: ['uspl-redis'] }), { config })
  return app
}

/** The connections configuration, with the worker's own default port. */
export function loadWorkerConfig (env: Record<string, string | undefined> = process.env): Config {
  return loadConfig({ PORT: String(WORKER_PORT), ...env })
}
