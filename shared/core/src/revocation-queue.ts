/**
 * The BullMQ queue that carries each revocation's durable follow-up (audit record, signed webhooks,
 * cleanup). Jobs are keyed by the revocation event id (see followupJobOptions), so a retry never does the
 * work twice. BullMQ manages its own connections and prefix; ours is `<REDIS_PREFIX>bull`. This is the
 * producer side: the follow-up worker (revocation-worker.ts) imports what it shares from here, never the
 * reverse.
 */
import { Queue } from 'bullmq'
import { bullConnection, type RedisClient } from '@uspl/redis'
import { BULL_QUEUE, bullPrefix } from './keys.ts'
import { Revoker } from './revocation.ts'

export function createFollowupQueue (redisUrl: string, prefix: string): Queue {
  return new Queue(BULL_QUEUE, { connection: bullConnection(redisUrl) as never, prefix: bullPrefix(prefix) })
}

/**
 * Waits (bounded) for a BullMQ queue or worker to finish connecting. Closing one whose connection is still
 * initializing lets that initialization's failure surface as an unhandled 'error' event after close has
 * removed every listener (BullMQ 5.x), which crashes the process; a service closed right after start hits it.
 */
export async function settle (x: { waitUntilReady: () => Promise<unknown> }, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    x.waitUntilReady().catch(() => {}),
    new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })
  ])
  clearTimeout(timer)
}

/** Closes a follow-up queue safely (see settle). */
export async function closeQueue (queue: Queue): Promise<void> {
  await settle(queue)
  await queue.close()
}

export interface RevocationPipeline {
  revoker: Revoker
  /** queues the follow-ups still pending, then closes the follow-up queue; call before the service's Redis client closes */
  close: () => Promise<void>
}

/**
 * What every service that revokes holds: the Revoker, wired to the follow-up queue. Queue connection
 * trouble is logged and never fails a revocation (the stream keeps the event; the worker's sweeper
 * re-queues it).
 */
export function createRevocationPipeline (opts: {
  redis: RedisClient
  redisUrl: string
  prefix: string
  accessTokenTtlS: number
  log: { warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
}): RevocationPipeline {
  const queue = createFollowupQueue(opts.redisUrl, opts.prefix)
  queue.on('error', (err) => opts.log.warn({ err }, 'revocation follow-up queue error'))
  const revoker = new Revoker({ redis: opts.redis, prefix: opts.prefix, accessTokenTtlS: opts.accessTokenTtlS, queue, log: opts.log })
  return {
    revoker,
    close: async () => {
      // the follow-ups of revocations already answered go out before the queue's connection does
      await revoker.settled()
      await closeQueue(queue)
    }
  }
}
