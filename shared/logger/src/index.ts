/**
 * pino options shared by every service: JSON lines with the service name and request ids, secrets
 * redacted, human-readable output only when asked for (LOG_PRETTY, set by the start script on a terminal).
 */
import type { LoggerOptions } from 'pino'

/** Query parameters whose values never reach a log line. */
const SECRET_PARAMS = new Set(['code', 'access_token', 'refresh_token', 'token', 'id_token', 'code_verifier', 'password', 'registration_access_token', 'state', 'csrf', 'api_key'])

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  'body.code',
  '*.body.code',
  'query.code',
  '*.code_verifier',
  '*.registration_access_token',
  '*.apiKey',
  '*.secret',
  // an enterprise issuer's poll credential (the record, or an error carrying it)
  'pollAuthorization',
  '*.pollAuthorization',
  '*.issuer.pollAuthorization',
  '*.poll_authorization',
  'password',
  'token',
  'access_token',
  'refresh_token',
  'code_verifier'
]

/** A request URL with the values of secret-bearing query parameters replaced. */
export function redactUrl (url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const params = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    const name = decodeURIComponentSafe(eq === -1 ? pair : pair.slice(0, eq)).toLowerCase()
    return SECRET_PARAMS.has(name) && eq !== -1 ? `${pair.slice(0, eq)}=[Redacted]` : pair
  })
  return `${url.slice(0, q)}?${params.join('&')}`
}

function decodeURIComponentSafe (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}

export interface LoggerConfig {
  LOG_LEVEL: string
  LOG_PRETTY: boolean
}

export function loggerOptions (service: string, config: LoggerConfig): LoggerOptions {
  const options: LoggerOptions = {
    level: config.LOG_LEVEL,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    serializers: {
      req (req: { method: string, url: string, hostname?: string, ip?: string, id?: string }) {
        return { method: req.method, url: redactUrl(req.url), hostname: req.hostname, remoteAddress: req.ip }
      }
    }
  }
  if (config.LOG_PRETTY) {
    options.transport = { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service', messageFormat: `[${service}] {msg}` } }
  }
  return options
}
