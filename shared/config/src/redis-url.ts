/**
 * One REDIS_URL names any Redis deployment:
 *   redis://[user:pass@]host:port[/db]            standalone
 *   rediss://...                                   standalone over TLS
 *   redis+sentinel://[user:pass@]h1:26379,h2:26379/masterName[/db]   (rediss+sentinel for TLS)
 *   redis+cluster://[user:pass@]h1:6379,h2:6379   (rediss+cluster for TLS)
 */
export interface RedisTarget {
  mode: 'standalone' | 'sentinel' | 'cluster'
  tls: boolean
  hosts: Array<{ host: string, port: number }>
  username?: string
  password?: string
  db: number
  masterName?: string
}

const SCHEMES: Record<string, { mode: RedisTarget['mode'], tls: boolean }> = {
  'redis:': { mode: 'standalone', tls: false },
  'rediss:': { mode: 'standalone', tls: true },
  'redis+sentinel:': { mode: 'sentinel', tls: false },
  'rediss+sentinel:': { mode: 'sentinel', tls: true },
  'redis+cluster:': { mode: 'cluster', tls: false },
  'rediss+cluster:': { mode: 'cluster', tls: true }
}

export function parseRedisUrl (url: string): RedisTarget {
  const m = /^([a-z+]+:)\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]*)(\/[^?#]*)?$/.exec(url)
  if (!m) throw new Error('is not a Redis URL (expected redis://host:port, rediss://, redis+sentinel:// or redis+cluster://)')
  const [, scheme, user, pass, hostList, path = ''] = m
  const kind = SCHEMES[scheme]
  if (!kind) throw new Error(`has unknown scheme ${scheme} (expected one of ${Object.keys(SCHEMES).join(', ')})`)
  if (!hostList) throw new Error('has no host')
  const hosts = hostList.split(',').map((hp) => {
    const hm = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(hp)
    if (!hm) throw new Error(`has a malformed host "${hp}"`)
    const port = hm[2] ? Number(hm[2]) : (kind.mode === 'sentinel' ? 26379 : 6379)
    if (port < 1 || port > 65535) throw new Error(`has an out-of-range port ${port}`)
    return { host: hm[1].replace(/^\[|\]$/g, ''), port }
  })
  if (kind.mode === 'standalone' && hosts.length !== 1) throw new Error('names several hosts; use redis+sentinel:// or redis+cluster://')
  const segments = path.split('/').filter(Boolean)
  let masterName: string | undefined
  if (kind.mode === 'sentinel') {
    masterName = segments.shift()
    if (!masterName) throw new Error('needs the master name as its path (redis+sentinel://host:26379/mymaster)')
  }
  let db = 0
  if (segments.length > 0) {
    if (kind.mode === 'cluster') throw new Error('cannot select a database in cluster mode')
    if (segments.length > 1 || !/^\d{1,2}$/.test(segments[0])) throw new Error(`has a malformed database "${segments.join('/')}"`)
    db = Number(segments[0])
  }
  return {
    mode: kind.mode,
    tls: kind.tls,
    hosts,
    username: user ? decodeURIComponent(user) : undefined,
    password: pass !== undefined ? decodeURIComponent(pass) : undefined,
    db,
    masterName
  }
}
