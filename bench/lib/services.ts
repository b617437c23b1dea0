/** How the benchmarks start each real service (its own process, its real server entry). */
import { join } from 'node:path'
import { ProcessGroup, ServerProcess, serviceEntry, ROOT, type StartOptions } from './proc.ts'
import type { RunContext } from './types.ts'

/** The gateway's public resource URL (the tokens' `aud`); replicas share it, as behind one ingress. */
export const RESOURCE = 'http://localhost:3000/mcp'
export const BARE_ENTRY = join(ROOT, 'bench', 'servers', 'bare-mcp.ts')
export const BARE_STATELESS_ENTRY = join(ROOT, 'bench', 'servers', 'bare-stateless.ts')

function base (ctx: RunContext): Record<string, string> {
  return { REDIS_URL: ctx.redisUrl, REDIS_PREFIX: ctx.prefix }
}

export function gatewayOptions (ctx: RunContext, issuerUrl: string, opts: { name?: string, exposeGc?: boolean, env?: Record<string, string> } = {}): StartOptions {
  return {
    name: opts.name ?? 'gateway',
    entry: serviceEntry('gateway'),
    exposeGc: opts.exposeGc,
    env: { ...base(ctx), ISSUER_URL: issuerUrl, GATEWAY_RESOURCE_URL: RESOURCE, ...opts.env }
  }
}

/**
 * The token service. Its per-address request cap (RATE_LIMIT_MAX, 6000 a minute) is raised: the load
 * generator is one address standing in for many clients, and the benchmarks price the endpoint, not the cap
 * (the failed-credential limit stays as configured; the benchmarks present only valid credentials).
 */
export function tokenOptions (ctx: RunContext, opts: { name?: string, issuerUrl?: string, env?: Record<string, string> } = {}): StartOptions {
  return {
    name: opts.name ?? 'token',
    entry: serviceEntry('token'),
    env: { ...base(ctx), ISSUER_URL: opts.issuerUrl ?? 'http://localhost:3001', GATEWAY_RESOURCE_URL: RESOURCE, RATE_LIMIT_MAX: '100000000', ...opts.env }
  }
}

export function registrationOptions (ctx: RunContext, opts: { env?: Record<string, string> } = {}): StartOptions {
  return { name: 'registration', entry: serviceEntry('registration'), env: { ...base(ctx), ...opts.env } }
}

/** The connections API as production runs it: the follow-up worker is its own process (workerOptions). */
export function connectionsOptions (ctx: RunContext, opts: { env?: Record<string, string> } = {}): StartOptions {
  return { name: 'connections', entry: serviceEntry('connections'), env: { ...base(ctx), WORKER_ENABLED: 'false', ...opts.env } }
}

/** The revocation follow-up worker (audit, webhooks, cleanup), in its own process as in npm start, compose and k8s. */
export function workerOptions (ctx: RunContext, opts: { env?: Record<string, string> } = {}): StartOptions {
  return { name: 'connections-worker', entry: serviceEntry('connections-worker'), env: { ...base(ctx), ...opts.env } }
}

export function bareOptions (ctx: RunContext, env: Record<string, string> = {}): StartOptions {
  return { name: 'bare-mcp', entry: BARE_ENTRY, env: { ...base(ctx), ...env } }
}

export function bareStatelessOptions (ctx: RunContext, env: Record<string, string> = {}): StartOptions {
  return { name: 'bare-stateless', entry: BARE_STATELESS_ENTRY, env: { ...base(ctx), ...env } }
}

export { ProcessGroup, ServerProcess }
