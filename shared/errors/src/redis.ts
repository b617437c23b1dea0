/**
 * Whether an error means Redis could not answer (every service then refuses with 503 and Retry-After: fail
 * closed). Classified by what the error carries, not by its wording where there is anything else:
 * - the socket's errno code (`err.code`);
 * - ioredis's error class (MaxRetriesPerRequestError: the offline queue gave up);
 * - a Redis reply error's kind: the first word of a RESP error is its code (CLUSTERDOWN, LOADING…);
 * - ioredis's client-side errors, which carry no code: compared whole with the texts ioredis defines
 *   (built/utils CONNECTION_CLOSED_ERROR_MSG, Command.js, Redis.js, cluster/index.js).
 */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT'])
const REPLY_KINDS = new Set(['CLUSTERDOWN', 'LOADING', 'MASTERDOWN', 'READONLY'])
const IOREDIS_CLIENT_ERRORS = new Set([
  'Connection is closed.',
  'Command timed out',
  'Stream isn\'t writeable and enableOfflineQueue options is false',
  'Cluster isn\'t ready and enableOfflineQueue options is false'
])

export function isRedisUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return true
  if (err.name === 'MaxRetriesPerRequestError') return true
  if (err.name === 'ReplyError') return REPLY_KINDS.has(err.message.split(' ', 1)[0])
  return IOREDIS_CLIENT_ERRORS.has(err.message)
}
