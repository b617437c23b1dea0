/** The CIMD fetcher and resolver built from the token service's configuration (the service and the CLI). */
import type { RedisClient } from '@uspl/redis'
import type { Config } from '../../config.ts'
import { SafeFetcher, type FetcherOptions } from './fetch.ts'
import { CimdResolver } from './resolver.ts'

/** Test seams: the fetcher's CA and resolver (production uses Node's CA store and DNS). */
export type CimdFetchOverrides = Pick<FetcherOptions, 'ca' | 'resolver'>

type CimdConfig = Pick<Config, 'CIMD_ALLOW_PRIVATE_HOSTS' | 'CIMD_MAX_DOCUMENT_BYTES' | 'CIMD_FETCH_TIMEOUT_MS' | 'CIMD_CACHE_MIN_S' | 'CIMD_CACHE_MAX_S' | 'CIMD_HOST_FETCHES_PER_MINUTE'>

export function createCimdResolver (redis: RedisClient, config: CimdConfig, overrides: CimdFetchOverrides = {}): CimdResolver {
  const fetcher = new SafeFetcher({
    allowPrivateHosts: config.CIMD_ALLOW_PRIVATE_HOSTS.split(','),
    maxBytes: config.CIMD_MAX_DOCUMENT_BYTES,
    timeoutMs: config.CIMD_FETCH_TIMEOUT_MS,
    ...overrides
  })
  return new CimdResolver(redis, fetcher, {
    cacheMinS: config.CIMD_CACHE_MIN_S,
    cacheMaxS: Math.max(config.CIMD_CACHE_MIN_S, config.CIMD_CACHE_MAX_S),
    hostFetchesPerWindow: config.CIMD_HOST_FETCHES_PER_MINUTE,
    hostWindowS: 60
  })
}
