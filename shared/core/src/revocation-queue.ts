/**
 * The BullMQ queue that carries each revocation's durable follow-up (audit record, signed webhooks,
 * cleanup). Jobs are keyed by the revocation event id (see followupJobOptions), so a retry never does the
 * work twice. BullMQ manages its own connections and prefix; ours is `<REDIS_PREFIX>bull`.
 */
import { Queue } from 'bullmq'
import { bullConnection } from '@uspl/redis'
import { BULL_QUEUE, bullPrefix } from './keys.ts'

export function createFollowupQueue (redisUrl: string, prefix: string): Queue {
  return new Queue(BULL_QUEUE, { connection: bullConnection(redisUrl) as never, prefix: bullPrefix(prefix) })
}

/**
 * Closes a follow-up queue. BullMQ reports a connection that is still initialising when the queue closes
 * as an 'error' event nobody listens to any more (an uncaught exception), so this waits (briefly) for the
 * connection first; an app that closes right after it started then shuts down cleanly.
 */
export async function closeFollowupQueue (queue: Queue, waitMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    queue.waitUntilReady().catch(() => undefined),
    new Promise((resolve) => { timer = setTimeout(resolve, waitMs) })
  ])
  clearTimeout(timer)
  await queue.close()
}
