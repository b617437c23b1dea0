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
