/**
 * The revocation follow-up worker: the durable work the Revoker queues after a revocation has already taken
 * effect (denylist, refresh tokens, stream, channel). One BullMQ job per event, keyed `rev-<event id>`:
 *
 *   1. audit: the record of who revoked what, when and through which path; SET NX and ZADD in one MULTI, so
 *      a retried or re-queued job never writes it twice;
 *   2. cleanup: drops session-index entries of revoked grants whose MCP session is gone or whose replica is dead, and gives the index
 *      an expiry (the gateway closes the sessions themselves);
 *   3. webhooks: a signed JSON notification to each configured URL. Deliveries run side by side; each
 *      success is recorded per event and URL, so a retry (BullMQ backoff) re-sends only the failed ones. A
 *      failing webhook never blocks a revocation, which has long been answered;
 *   4. Shared Signals (with `ssf`, see ssf-delivery.ts): a signed CAEP session-revoked SET per stream,
 *      pushed or queued for poll, beside the webhooks and retried the same way, exactly once per stream.
 *
 * The sweeper closes the gap left when queueing failed (the Revoker logs and moves on): at start and every
 * `sweepIntervalMs` it walks the stream from its cursor and re-queues each event that has no audit record.
 */
import { createHmac } from 'node:crypto'
import { Worker, type Job, type Queue } from 'bullmq'
import { bullConnection, type RedisClient } from '@uspl/redis'
import type { ChainableCommander } from 'ioredis'
import { keys, BULL_QUEUE, bullPrefix } from './keys.ts'
import { hashSecret, constantTimeEqual } from './crypto.ts'
import { parseEvent, compareStreamIds, followupJobOptions, type RevocationEvent } from './revocation.ts'
import { createFollowupQueue, closeQueue, settle } from './revocation-queue.ts'
import { deliverSecurityEvents, type SsfDeliveryResult, type SsfTransmitter } from './ssf-delivery.ts'
import { RedisSessionIndex } from './session-index.ts'

export const SIGNATURE_HEADER = 'x-uspl-signature'
export const EVENT_ID_HEADER = 'x-uspl-event-id'

export interface Webhook {
  url: string
  secret: string
}

type LogFn = (obj: object, msg: string) => void
export interface WorkerLog { info: LogFn, warn: LogFn, error: LogFn }

export interface RevocationWorkerOptions {
  redisUrl: string
  prefix: string
  /** the service's prefixed client: audit, stream and cleanup */
  redis: RedisClient
  webhooks: Webhook[]
  log: WorkerLog
  /** outbound HTTP (tests may pass their own); defaults to the global fetch */
  fetch?: typeof fetch
  /** how often the sweeper runs; 0 runs it only at start */
  sweepIntervalMs?: number
  /** events younger than this are left to the Revoker's own job (default 10 s) */
  sweepGraceMs?: number
  /** how long audit records are kept (default 365 days): each record expires, and the index is trimmed */
  auditRetentionS?: number
  concurrency?: number
  webhookTimeoutMs?: number
  /** how long an emptied session index of a revoked grant survives for replicas replaying (default 1 h) */
  sessionIndexTtlS?: number
  /** how long per-webhook delivery state is kept (default 30 days, the failed-job retention) */
  deliveryStateTtlS?: number
  /** the Shared Signals transmitter: with it, each event is also delivered as a SET to every stream */
  ssf?: SsfTransmitter
}

/** What one job did, returned as the BullMQ job result. */
export interface FollowupResult {
  audit: 'written' | 'existing'
  webhooks: { delivered: number, skipped: number }
  sessionIndexEntriesDropped: number
  /** present when the worker transmits Shared Signals */
  securityEvents?: SsfDeliveryResult
}

/** The audit record stored at keys.auditEntry(event id). */
export interface AuditRecord {
  event_id: string
  /** epoch ms of the revocation */
  at: number
  recorded_at: number
  /** 'api_key' for the creation and revocation of API keys (api-keys.ts), which share this trail */
  scope: RevocationEvent['scope'] | 'api_key'
  target: string
  grant_ids: string[]
  client_id: string | null
  user_id: string | null
  jti: string | null
  path: RevocationEvent['path'] | 'api_key_create' | 'api_key_revoke'
  actor: RevocationEvent['actor']
}

export function auditRecord (event: RevocationEvent, recordedAt = Date.now()): AuditRecord {
  return {
    event_id: event.id,
    at: event.at,
    recorded_at: recordedAt,
    scope: event.scope,
    target: event.target,
    grant_ids: event.grantIds,
    client_id: event.clientId,
    user_id: event.userId,
    jti: event.jti,
    path: event.path,
    actor: event.actor
  }
}

/** The JSON body of a webhook notification. */
export function webhookPayload (event: RevocationEvent): Record<string, unknown> {
  return {
    type: 'revocation',
    id: event.id,
    occurred_at: new Date(event.at).toISOString(),
    scope: event.scope,
    target: event.target,
    grant_ids: event.grantIds,
    client_id: event.clientId,
    user_id: event.userId,
    path: event.path,
    actor: event.actor
  }
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` */
export function signWebhook (secret: string, body: string, timestampS = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestampS}.${body}`).digest('hex')
  return `t=${timestampS},v1=${mac}`
}

/** For receivers (and tests): true when `header` signs `body` with `secret` within `toleranceS` of now. */
export function verifyWebhookSignature (header: string | undefined, body: string, secret: string, toleranceS = 300, nowS = Math.floor(Date.now() / 1000)): boolean {
  if (!header) return false
  const parts = new Map(header.split(',').map((p) => {
    const i = p.indexOf('=')
    return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const
  }))
  const t = Number(parts.get('t'))
  const v1 = parts.get('v1')
  if (!Number.isInteger(t) || !v1 || Math.abs(nowS - t) > toleranceS) return false
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')
  return constantTimeEqual(expected, v1)
}

export class RevocationWorker extends Worker<RevocationEvent, FollowupResult> {
  private readonly queue: Queue
  private timer: NodeJS.Timeout | null = null
  private sweeping: Promise<number> | null = null
  private readonly followup: RevocationWorkerOptions

  constructor (opts: RevocationWorkerOptions) {
    super(BULL_QUEUE, async (job) => runFollowup(opts, job), {
      connection: bullConnection(opts.redisUrl) as never,
      prefix: bullPrefix(opts.prefix),
      concurrency: opts.concurrency ?? 4
    })
    this.followup = opts
    this.queue = createFollowupQueue(opts.redisUrl, opts.prefix)
    this.queue.on('error', (err) => opts.log.warn({ err }, 'revocation follow-up queue connection error'))
    this.on('error', (err) => opts.log.warn({ err }, 'revocation worker error'))
    this.on('failed', (job, err) => {
      opts.log.warn({ err, eventId: job?.data.id, attempt: job?.attemptsMade }, 'revocation follow-up failed; retrying with backoff')
    })
  }

  /**
   * Starts the periodic sweep, after one pass as soon as Redis is ready: the client has no offline queue, so
   * a pass started while it still connects (at every process start) would fail with "Stream isn't writeable".
   */
  startSweeper (): void {
    const run = (): void => {
      this.sweep().catch((err: unknown) => this.followup.log.warn({ err }, 'revocation sweep failed'))
    }
    if (this.followup.redis.status === 'ready') run()
    else this.followup.redis.once('ready', run)
    const every = this.followup.sweepIntervalMs ?? 60000
    if (every > 0) {
      this.timer = setInterval(run, every)
      this.timer.unref()
    }
  }

  /**
   * Re-queues every stream event after the cursor that has no audit record, and advances the cursor over
   * the leading run of audited events. Returns how many events it re-queued. One pass at a time.
   */
  sweep (): Promise<number> {
    this.sweeping ??= this.sweepOnce().finally(() => { this.sweeping = null })
    return this.sweeping
  }

  private async sweepOnce (): Promise<number> {
    const { redis } = this.followup
    const graceMs = this.followup.sweepGraceMs ?? 10000
    let cursor = (await redis.get(keys.auditSweepCursor())) ?? '0-0'
    let advancing = true
    let requeued = 0
    for (;;) {
      const entries = await redis.xrange(keys.revocationStream(), `(${cursor}`, '+', 'COUNT', 200) as Array<[string, string[]]>
      if (entries.length === 0) break
      const pipeline = redis.pipeline()
      for (const [id] of entries) pipeline.exists(keys.auditEntry(id))
      const audited = ((await pipeline.exec()) ?? []).map(([err, n]) => { if (err) throw err; return n === 1 })
      let newCursor: string | null = null
      for (const [i, [id, fields]] of entries.entries()) {
        if (audited[i]) {
          if (advancing) newCursor = id
          continue
        }
        if (Date.now() - Number(id.split('-')[0]) < graceMs) { advancing = false; continue }
        advancing = false
        const body = fields[fields.indexOf('event') + 1]
        let event: RevocationEvent
        try {
          event = parseEvent(id, body)
        } catch (err) {
          this.followup.log.error({ err, eventId: id }, 'malformed revocation event in the stream; skipped')
          continue
        }
        if (await this.requeue(event)) requeued++
      }
      if (newCursor !== null) await this.advanceCursor(newCursor)
      cursor = entries[entries.length - 1][0]
    }
    if (requeued > 0) this.followup.log.info({ requeued }, 'revocation sweep re-queued events without an audit record')
    return requeued
  }

  private async requeue (event: RevocationEvent): Promise<boolean> {
    const options = followupJobOptions(event.id)
    const job = await this.queue.getJob(options.jobId)
    if (job) {
      const state = await job.getState()
      if (state === 'failed') { await job.retry('failed'); return true }
      if (state !== 'completed' && state !== 'unknown') return false // waiting, delayed or active: it will run
      await job.remove()
    }
    await this.queue.add('revocation', event, options)
    return true
  }

  private async advanceCursor (id: string): Promise<void> {
    const current = await this.followup.redis.get(keys.auditSweepCursor())
    if (current === null || compareStreamIds(id, current) > 0) await this.followup.redis.set(keys.auditSweepCursor(), id)
  }

  override async close (force?: boolean): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.sweeping?.catch(() => {})
    await settle(this)
    await super.close(force)
    await closeQueue(this.queue)
  }
}

/** One job: Shared Signals from the start; audit and cleanup together, then webhooks (deliveries can fail for outside reasons). */
async function runFollowup (opts: RevocationWorkerOptions, job: Job<RevocationEvent>): Promise<FollowupResult> {
  const event = job.data
  // Shared Signals go out at once, beside the bookkeeping below (receivers are waiting on them); settled
  // here so that a failure of the steps below never leaves it unobserved
  const securityEvents = opts.ssf ? settled(deliverSecurityEvents(opts.redis, opts.ssf, event, opts.fetch)) : null
  // the audit record and the cleanup are independent: sent together, one round trip for both (a failure
  // of either retries the job, and both are idempotent)
  const [audit, sessionIndexEntriesDropped] = await Promise.all([writeAudit(opts.redis, event, opts.auditRetentionS), cleanup(opts, event)])
  // one failing delivery never holds the other back; either failing retries the job (each resends only
  // what was not accepted)
  const [webhooks, ssf] = await Promise.all([settled(deliverWebhooks(opts, event)), securityEvents])
  if (!webhooks.ok) throw webhooks.err
  if (ssf && !ssf.ok) throw ssf.err
  return { audit, webhooks: webhooks.value, sessionIndexEntriesDropped, ...(ssf ? { securityEvents: ssf.value } : {}) }
}

type Settled<T> = { ok: true, value: T } | { ok: false, err: unknown }
function settled<T> (p: Promise<T>): Promise<Settled<T>> {
  return p.then((value) => ({ ok: true as const, value }), (err: unknown) => ({ ok: false as const, err }))
}

export const AUDIT_RETENTION_S = 365 * 86400

/**
 * Adds an audit record to a transaction: the record (once: SET NX, with its expiry) and its place in the
 * trail's index. Revocation follow-ups and API key changes (api-keys.ts) both write through it.
 */
export function appendAudit<T extends ChainableCommander> (tx: T, record: AuditRecord, retentionS = AUDIT_RETENTION_S): T {
  tx.set(keys.auditEntry(record.event_id), JSON.stringify(record), 'EX', retentionS, 'NX')
    .zadd(keys.audit(), record.at, record.event_id)
    // the index forgets what the records themselves have forgotten
    .zremrangebyscore(keys.audit(), '-inf', `(${Date.now() - retentionS * 1000}`)
  return tx
}

export async function writeAudit (redis: RedisClient, event: RevocationEvent, retentionS = AUDIT_RETENTION_S): Promise<'written' | 'existing'> {
  const results = await appendAudit(redis.multi(), auditRecord(event), retentionS).exec()
  if (!results) throw new Error('audit transaction aborted')
  for (const [err] of results) if (err) throw err
  return results[0][1] === 'OK' ? 'written' : 'existing'
}

const RETIRE_BATCH = 100

async function cleanup (opts: RevocationWorkerOptions, event: RevocationEvent): Promise<number> {
  const { redis } = opts
  const index = new RedisSessionIndex(redis, opts.prefix)
  // a token-scope event names a grant that stays alive: only revoked grants are cleaned up (retireGrant
  // checks, in the same script); an event's grants are retired RETIRE_BATCH at a time, each batch in one
  // round trip
  let dropped = 0
  for (let i = 0; i < event.grantIds.length; i += RETIRE_BATCH) {
    const batch = await Promise.all(event.grantIds.slice(i, i + RETIRE_BATCH).map((gid) => index.retireGrant(gid, opts.sessionIndexTtlS ?? 3600)))
    for (const n of batch) dropped += n ?? 0
  }
  return dropped
}

async function deliverWebhooks (opts: RevocationWorkerOptions, event: RevocationEvent): Promise<FollowupResult['webhooks']> {
  if (opts.webhooks.length === 0) return { delivered: 0, skipped: 0 }
  const { redis } = opts
  const stateKey = keys.auditWebhookDeliveries(event.id)
  const done = await redis.hgetall(stateKey)
  const pending = opts.webhooks.filter((w) => !done[hashSecret(w.url)])
  const body = JSON.stringify(webhookPayload(event))
  const doFetch = opts.fetch ?? fetch
  const outcomes = await Promise.allSettled(pending.map(async (w) => {
    const res = await doFetch(w.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'uspl-revocation-webhook/1',
        [SIGNATURE_HEADER]: signWebhook(w.secret, body),
        [EVENT_ID_HEADER]: event.id
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.webhookTimeoutMs ?? 5000)
    })
    await res.body?.cancel().catch(() => {})
    if (res.status < 200 || res.status >= 300) throw new Error(`webhook answered ${res.status}`)
    await redis.multi()
      .hset(stateKey, hashSecret(w.url), String(Date.now()))
      .expire(stateKey, opts.deliveryStateTtlS ?? 30 * 86400)
      .exec()
  }))
  const failed = outcomes
    .map((o, i) => ({ o, url: pending[i].url }))
    .filter((x): x is { o: PromiseRejectedResult, url: string } => x.o.status === 'rejected')
  if (failed.length > 0) {
    const detail = failed.map((f) => `${new URL(f.url).host}: ${(f.o.reason as Error).message}`).join('; ')
    throw new Error(`${failed.length} of ${opts.webhooks.length} webhook deliveries failed (${detail})`)
  }
  return { delivered: pending.length, skipped: opts.webhooks.length - pending.length }
}

/** Starts the follow-up worker and its sweeper. Close it with `worker.close()`. */
export function startRevocationWorker (opts: RevocationWorkerOptions): RevocationWorker {
  const worker = new RevocationWorker(opts)
  worker.startSweeper()
  return worker
}
