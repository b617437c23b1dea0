/**
 * Sign-in (email and password, argon2id) and sign-out. The sign-in form is protected against login CSRF by
 * a double-submit token (a cookie scoped to /signin and a hidden field); repeated failures are throttled
 * per account and per address. Success starts a new browser session (never reusing an id from before
 * sign-in) in Redis, so the connections service can read it, and returns to `return_to` when it is safe.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { constantTimeEqual, nowSeconds, randomToken } from '@uspl/core'
import { HttpError, errorHeaders } from '@uspl/errors'
import { signinPage, signedInPage, errorPage, type SigninPurpose } from '../lib/html.ts'
import { safeReturnTo } from '../lib/oauth.ts'

const SIGNIN_CSRF_COOKIE = 'uspl_signin_csrf'

interface SigninBody { email?: unknown, password?: unknown, csrf?: unknown, return_to?: unknown }

export default async function signin (app: FastifyInstance): Promise<void> {
  const { accounts, sessions, throttle, authRequests, clients, config } = app.tokenContext
  const allowedOrigins = [new URL(config.ISSUER_URL).origin, new URL(config.CONNECTIONS_URL).origin]
  const secure = config.ISSUER_URL.startsWith('https:')

  function formToken (request: FastifyRequest, reply: FastifyReply): string {
    const existing = request.cookies[SIGNIN_CSRF_COOKIE]
    if (existing && /^[A-Za-z0-9_-]{32}$/.test(existing)) return existing
    const token = randomToken(24)
    reply.setCookie(SIGNIN_CSRF_COOKIE, token, { httpOnly: true, sameSite: 'lax', secure, path: '/signin', maxAge: 3600 })
    return token
  }

  function checkFormToken (request: FastifyRequest, body: SigninBody): boolean {
    const cookie = request.cookies[SIGNIN_CSRF_COOKIE]
    return typeof body.csrf === 'string' && typeof cookie === 'string' && constantTimeEqual(body.csrf, cookie)
  }

  const options = { config: { public: true, cors: false as const } }

  /** The application whose pending authorization request the sign-in returns to, if any. */
  async function purposeOf (returnTo: string | null): Promise<SigninPurpose> {
    const id = returnTo?.startsWith('/consent?') ? new URLSearchParams(returnTo.slice('/consent?'.length)).get('request') : null
    const pending = id ? await authRequests.get(id) : null
    if (!pending) return null
    const client = await clients.get(pending.clientId)
    return { app: client?.metadata.client_name ?? null }
  }

  app.get('/signin', options, async (request, reply) => {
    const returnTo = safeReturnTo((request.query as Record<string, unknown>).return_to, allowedOrigins)
    const session = await app.tokenContext.session(request)
    if (session && returnTo) return reply.redirect(returnTo, 303)
    if (session) {
      const user = await accounts.getUser(session.userId)
      if (user) return signedInPage(reply, { email: user.email, csrf: session.csrf })
    }
    return signinPage(reply, { returnTo, csrf: formToken(request, reply), purpose: await purposeOf(returnTo) })
  })

  app.post('/signin', options, async (request, reply) => {
    const body = (request.body ?? {}) as SigninBody
    const returnTo = safeReturnTo(body.return_to, allowedOrigins)
    // step: the form came from our page
    if (!checkFormToken(request, body)) {
      return signinPage(reply, { returnTo, csrf: formToken(request, reply), error: 'This sign-in form expired. Please try again.', status: 403 })
    }
    // step: read the credentials
    const email = typeof body.email === 'string' ? body.email.trim().slice(0, 254) : ''
    const password = typeof body.password === 'string' && body.password.length <= 1024 ? body.password : ''
    const csrf = formToken(request, reply)
    if (!email || !password) return signinPage(reply, { returnTo, csrf, email, error: 'Enter your email and password.', status: 400, purpose: await purposeOf(returnTo) })
    // step: slow down repeated failures (the attempt is counted before the password is checked)
    const wait = await throttle.reserve(email, request.ip)
    if (wait > 0) {
      // the page is the answer; the refusal's headers are the catalogue's
      const message = `Too many failed attempts. Try again in ${Math.ceil(wait / 60)} minute(s).`
      reply.headers(errorHeaders(new HttpError(429, 'too_many_attempts', message, { retryAfterS: wait })))
      return signinPage(reply, { returnTo, csrf, email, error: message, status: 429 })
    }
    // step: check the password
    const user = await accounts.verifyPassword(email, password)
    if (!user) {
      return signinPage(reply, { returnTo, csrf, email, error: 'The email or password is incorrect.', status: 401, purpose: await purposeOf(returnTo) })
    }
    // step: start a fresh session
    await throttle.recordSuccess(email, request.ip)
    const previous = await app.tokenContext.session(request)
    if (previous) await sessions.destroy(previous.sid)
    const { sid } = await sessions.create(user.id, nowSeconds())
    app.tokenContext.setSessionCookie(reply, sid)
    request.log.info({ userId: user.id }, 'signed in')
    return reply.redirect(returnTo ?? '/signin', 303)
  })

  app.post('/logout', options, async (request, reply) => {
    const body = (request.body ?? {}) as SigninBody
    const session = await app.tokenContext.session(request)
    if (session) {
      if (typeof body.csrf !== 'string' || !constantTimeEqual(body.csrf, session.csrf)) return errorPage(reply, 403, 'Sign-out refused', 'This sign-out form expired. Reload the page and try again.')
      await sessions.destroy(session.sid)
    }
    app.tokenContext.clearSessionCookie(reply)
    return reply.redirect(safeReturnTo(body.return_to, allowedOrigins) ?? '/signin', 303)
  })
}
