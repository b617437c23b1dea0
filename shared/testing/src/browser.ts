/**
 * What a browser does in the OAuth flow, over plain HTTP: a cookie jar, manual redirects, forms, and a
 * driver that signs in and answers the consent page. Used by the token service's tests and the
 * end-to-end proof; the Connected Apps page itself is tested in a real Chromium.
 */

/** A cookie jar and `fetch` with manual redirects: what a browser does, one hop at a time. */
export class Browser {
  readonly cookies = new Map<string, string>()

  async request (url: string, init: { method?: string, form?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = {}
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    let body: string | undefined
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(init.form).toString()
    }
    const res = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' })
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attrs.some((a) => /^\s*max-age=0/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a))
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return res
  }
}

/** The value of a hidden input in a page. */
export function hiddenField (html: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`).exec(html)
  if (!m) throw new Error(`no hidden field ${name} in page`)
  return m[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
}

export function location (res: Response, base: string): string {
  const loc = res.headers.get('location')
  if (!loc) throw new Error(`expected a redirect, got ${res.status}`)
  return new URL(loc, base).toString()
}

/**
 * Drives /authorize the way a person in a browser does: follows redirects on the issuer, signs in when
 * asked, answers the consent page. Returns the URL the browser is finally sent to (the client's redirect).
 */
export async function authorizeInBrowser (browser: Browser, authorizationUrl: string, opts: { issuer: string, email: string, password: string, decision?: 'allow' | 'deny' }): Promise<URL> {
  let url = authorizationUrl
  for (let hop = 0; hop < 10; hop++) {
    if (!url.startsWith(opts.issuer + '/')) return new URL(url)
    const res = await browser.request(url)
    if (res.status === 303 || res.status === 302) {
      url = location(res, url)
      continue
    }
    const html = await res.text()
    if (res.status !== 200) throw new Error(`page ${url} answered ${res.status}: ${html.slice(0, 300)}`)
    const path = new URL(url).pathname
    if (path === '/signin') {
      const form: Record<string, string> = { csrf: hiddenField(html, 'csrf'), email: opts.email, password: opts.password }
      if (html.includes('name="return_to"')) form.return_to = hiddenField(html, 'return_to')
      const posted = await browser.request(`${opts.issuer}/signin`, { form })
      if (posted.status !== 303) throw new Error(`sign-in answered ${posted.status}`)
      url = location(posted, url)
      continue
    }
    if (path === '/consent') {
      const posted = await browser.request(`${opts.issuer}/consent`, { form: { request: hiddenField(html, 'request'), csrf: hiddenField(html, 'csrf'), decision: opts.decision ?? 'allow' } })
      if (posted.status !== 303) throw new Error(`consent answered ${posted.status}: ${(await posted.text()).slice(0, 300)}`)
      url = location(posted, url)
      continue
    }
    throw new Error(`unexpected page ${url}`)
  }
  throw new Error('too many redirects')
}
