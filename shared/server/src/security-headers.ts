/**
 * One set of security headers on every response of every service (added in `baseFastify`): no MIME
 * sniffing, no referrer, never framed (`X-Frame-Options` and CSP `frame-ancestors 'none'`), and a CSP
 * that loads nothing for responses that are not pages. A page sets its own full CSP (with its nonce) and
 * keeps it; an HTML response without one (Swagger UI) still gets `frame-ancestors 'none'`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'

export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin'
} as const

export const NON_PAGE_CSP = "default-src 'none'; frame-ancestors 'none'"
export const PAGE_MIN_CSP = "frame-ancestors 'none'"

export async function securityHeaders (_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.headers(SECURITY_HEADERS)
  if (!reply.hasHeader('content-security-policy')) {
    const type = reply.getHeader('content-type')
    reply.header('content-security-policy', typeof type === 'string' && type.startsWith('text/html') ? PAGE_MIN_CSP : NON_PAGE_CSP)
  }
}
