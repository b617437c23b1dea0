/**
 * The revocation follow-up worker of this service (audit records, signed webhooks, cleanup, the sweeper),
 * started from its configuration: in the worker's own process (worker-app.ts, what npm start, compose and
 * k8s run) or, unless WORKER_ENABLED=false, inside the API process (context.ts). Jobs are keyed by event
 * id, so several workers never do one event's work twice.
 */
import type { FastifyInstance } from 'fastify'
import { startRevocationWorker, type RevocationWorker, type RevocationWorkerOptions } from '@uspl/core'
import { securityEventTransmitter } from './ssf-transmitter.ts'
import { webhookUrls, type Config } from './config.ts'

/** The follow-up worker's options from this service's config. */
export function workerOptions (app: FastifyInstance, config: Config): RevocationWorkerOptions {
  return {
    redisUrl: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    redis: app.redis,
    webhooks: webhookUrls(config).map((url) => ({ url, secret: config.WEBHOOK_SECRET })),
    log: app.log,
    sweepIntervalMs: config.SWEEP_INTERVAL_MS,
    auditRetentionS: config.AUDIT_RETENTION_DAYS * 86400,
    ssf: securityEventTransmitter(app, config)
  }
}

/** Starts the follow-up worker on the app's Redis client; the caller closes it before that client closes. */
export function startFollowupWorker (app: FastifyInstance, config: Config): RevocationWorker {
  return startRevocationWorker(workerOptions(app, config))
}
