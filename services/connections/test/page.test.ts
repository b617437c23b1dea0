// The Connected Apps page in a real browser (Debian's chromium through playwright-core): the list, the
// actions menu by keyboard, the typed confirmation, the row going away and the grant revoked in Redis, and
// a phone-sized screen without horizontal scrolling. The browser reaches nothing but this app.
import t from 'tap'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { freePort } from '@uspl/testing'
import { SESSION_COOKIE, keys } from '@uspl/core'
import { setup, type Fixture, type Teardown } from './helper.ts'

const CHROMIUM = '/usr/bin/chromium'

async function start (t: Teardown): Promise<{ f: Fixture, base: string, browser: Browser }> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const f = await setup(t, { CONNECTIONS_URL: base })
  await f.app.listen({ port, host: '127.0.0.1' })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
  t.teardown(() => browser.close())
  return { f, base, browser }
}

/** A context signed in as the user, that can reach only `base` (other requests are aborted). */
async function signedIn (browser: Browser, base: string, sid: string, viewport = { width: 1024, height: 768 }): Promise<{ context: BrowserContext, page: Page, cspErrors: string[] }> {
  const context = await browser.newContext({ viewport })
  await context.route('**/*', (route) => route.request().url().startsWith(base + '/') ? route.continue() : route.abort())
  await context.addCookies([{ name: SESSION_COOKIE, value: sid, url: base, httpOnly: true, sameSite: 'Lax' }])
  const page = await context.newPage()
  const cspErrors: string[] = []
  page.on('console', (msg) => { if (/Content Security Policy/i.test(msg.text())) cspErrors.push(msg.text()) })
  page.on('pageerror', (err) => { cspErrors.push(`page error: ${err.message}`) })
  return { context, page, cspErrors }
}

t.test('a signed-in user revokes an app with the keyboard', async (t) => {
  const { f, base, browser } = await start(t)
  const [ann, bob] = [await f.user('Ann'), await f.user('Bob')]
  const claude = await f.client('Claude', { logo_uri: 'https://logo.example/claude.png' })
  const cursor = await f.client('Cursor')
  const annClaude = await f.grant(ann, claude, { refreshTokens: 1 })
  const annCursor = await f.grant(ann, cursor)
  const bobCursor = await f.grant(bob, cursor)
  const s = await f.signIn(ann)
  const { page, cspErrors } = await signedIn(browser, base, s.sid)

  const res = await page.goto(`${base}/connections`)
  t.equal(res?.status(), 200)
  t.match(res?.headers()['content-security-policy'], /frame-ancestors 'none'/)
  const rows = page.locator('li.app')
  t.equal(await rows.count(), 2, "Ann's two apps, not Bob's")
  t.same(await page.locator('li.app .name').allTextContents(), ['Cursor', 'Claude'], 'newest first')
  t.match(await rows.nth(1).textContent(), /recordings:read[\s\S]*Authorized/)
  t.equal(await page.locator(`[data-grant-id="${bobCursor.id}"]`).count(), 0)
  t.equal(await rows.nth(0).locator('.initial').textContent(), 'C', 'an app without a logo shows its initial')
  await rows.nth(1).locator('.logo img.broken').waitFor({ state: 'attached' })
  t.ok(await rows.nth(1).locator('.initial').isVisible(), 'a logo that cannot load falls back to the initial')

  // the menu button, by keyboard
  const button = page.getByRole('button', { name: 'Actions for Claude' })
  t.equal(await button.getAttribute('aria-haspopup'), 'menu')
  t.equal(await button.getAttribute('aria-expanded'), 'false')
  await button.focus()
  await page.keyboard.press('Enter')
  t.equal(await button.getAttribute('aria-expanded'), 'true', 'Enter opens the menu')
  const item = page.getByRole('menuitem', { name: 'Revoke access' })
  t.ok(await item.isVisible())
  t.ok(await item.evaluate((el) => el === document.activeElement), 'focus on the first item')
  await page.keyboard.press('Escape')
  t.equal(await button.getAttribute('aria-expanded'), 'false', 'Escape closes it')
  t.ok(await button.evaluate((el) => el === document.activeElement), 'and gives focus back to the button')
  await page.keyboard.press(' ')
  t.equal(await button.getAttribute('aria-expanded'), 'true', 'Space opens it')
  await page.keyboard.press('Escape')
  await page.keyboard.press('ArrowDown')
  t.equal(await button.getAttribute('aria-expanded'), 'true', 'ArrowDown opens it')
  await page.keyboard.press('ArrowUp')
  t.ok(await item.evaluate((el) => el === document.activeElement), 'arrow keys move within the menu')
  await page.keyboard.press('Enter')

  // the dialog: a wrong name keeps the button disabled
  const dialog = page.getByRole('dialog')
  await dialog.waitFor({ state: 'visible' })
  t.match(await dialog.textContent(), /Revoke access for Claude\?/)
  const input = page.getByLabel('Type Claude to confirm')
  t.ok(await input.evaluate((el) => el === document.activeElement), 'focus in the confirmation field')
  const confirm = dialog.getByRole('button', { name: 'Revoke access' })
  await page.keyboard.type('claude')
  t.ok(await confirm.isDisabled(), 'wrong case: disabled')
  await input.fill('Claud')
  t.ok(await confirm.isDisabled(), 'a prefix: disabled')
  await page.keyboard.press('Enter')
  t.ok(await dialog.isVisible(), 'Enter with a wrong name does nothing')
  t.equal(await f.r.redis.hexists(keys.grant(annClaude.id), 'revoked_at'), 0, 'nothing revoked')
  await input.fill('')
  await page.keyboard.type('Claude')
  t.ok(await confirm.isEnabled(), 'the exact name enables it')
  await page.keyboard.press('Enter')

  await page.locator(`[data-grant-id="${annClaude.id}"]`).waitFor({ state: 'detached' })
  t.equal(await rows.count(), 1, 'the row is gone')
  t.match(await page.getByRole('status').textContent(), /Claude no longer has access/)
  t.notOk(await dialog.isVisible(), 'the dialog closed')
  t.ok(await f.r.redis.hget(keys.grant(annClaude.id), 'revoked_at'), 'the grant is revoked in Redis')
  t.ok(await f.r.redis.get(keys.denyGrant(annClaude.id)), 'and denied')
  t.equal(await f.r.redis.exists(keys.refreshToken(`rthash-${annClaude.id}-0`)), 0, 'its refresh token deleted')
  t.equal(await f.r.redis.hexists(keys.grant(annCursor.id), 'revoked_at'), 0, 'the other app is untouched')
  const [[, fields]] = await f.r.redis.xrange(keys.revocationStream(), '-', '+') as Array<[string, string[]]>
  t.match(JSON.parse(fields[1]), { path: 'connections_user', actorType: 'user', actorId: ann.id })

  // the last app, by mouse; then the empty state
  await page.getByRole('button', { name: 'Actions for Cursor' }).click()
  await page.getByRole('menuitem', { name: 'Revoke access' }).click()
  await page.getByLabel('Type Cursor to confirm').fill('Cursor')
  await dialog.getByRole('button', { name: 'Revoke access' }).click()
  await page.locator(`[data-grant-id="${annCursor.id}"]`).waitFor({ state: 'detached' })
  t.ok(await page.getByText('No apps are connected to your account.').isVisible(), 'the empty state')
  t.ok(await f.r.redis.hget(keys.grant(annCursor.id), 'revoked_at'))
  t.equal(await f.r.redis.hexists(keys.grant(bobCursor.id), 'revoked_at'), 0, "Bob's grant of the same app stays")
  t.same(cspErrors, [], 'no CSP violations or script errors')
})

t.test('the page fits a 375×667 phone screen', async (t) => {
  const { f, base, browser } = await start(t)
  const ann = await f.user('Ann')
  await f.grant(ann, await f.client('A remarkably long application name that keeps going and going', { logo_uri: 'https://logo.example/a.png' }))
  await f.grant(ann, await f.client('Claude', { redirect_uris: ['https://a-very-long-subdomain-name.for-a-redirect-host.example/oauth/callback'] }))
  const s = await f.signIn(ann)
  const { page, cspErrors } = await signedIn(browser, base, s.sid, { width: 375, height: 667 })
  await page.goto(`${base}/connections`)
  const overflow = (): Promise<{ scroll: number, client: number }> => page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }))
  let o = await overflow()
  t.ok(o.scroll <= o.client, `no horizontal scroll (${o.scroll} <= ${o.client})`)

  await page.getByRole('button', { name: 'Actions for Claude' }).click()
  o = await overflow()
  t.ok(o.scroll <= o.client, 'not with the menu open either')
  const menu = await page.getByRole('menu').boundingBox()
  t.ok(menu && menu.x >= 0 && menu.x + menu.width <= 375, 'the menu is on screen')
  await page.getByRole('menuitem', { name: 'Revoke access' }).click()
  const dialog = await page.getByRole('dialog').boundingBox()
  t.ok(dialog && dialog.x >= 0 && dialog.x + dialog.width <= 375, 'the dialog is on screen')
  const target = await page.locator('#confirm-button').boundingBox()
  t.ok(target && target.height >= 44, 'touch-sized buttons')
  t.same(cspErrors, [])
})

t.test('personal API keys on the account page: create (shown once, copyable), list, revoke by typing the name', async (t) => {
  const { f, base, browser } = await start(t)
  const ann = await f.user('Ann')
  const bob = await f.user('Bob')
  const bobs = await f.app.connectionsContext.apiKeys.create('bob-ci', { userId: bob.id })
  const s = await f.signIn(ann)
  const { context, page, cspErrors } = await signedIn(browser, base, s.sid)
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
  await page.goto(`${base}/connections`)
  t.ok(await page.getByText('You have no API keys.').isVisible(), 'none yet')
  t.equal(await page.locator(`[data-key-id="${bobs.apiKey.id}"]`).count(), 0, "Bob's key is not Ann's")

  // create: a name and an expiry; the key is shown once
  await page.getByLabel('Key name').fill('nightly export')
  await page.getByLabel('Expires (optional)').fill('2031-06-30')
  await page.getByRole('button', { name: 'Create key' }).click()
  const shown = page.locator('#new-key-value')
  await shown.waitFor({ state: 'visible' })
  const key = await shown.inputValue()
  t.match(key, /^uspl_[A-Za-z0-9_-]{43}$/, 'the key, shown')
  const check = await f.app.connectionsContext.apiKeys.authenticate(key)
  t.match(check, { ok: true, key: { kind: 'personal', userId: ann.id, name: 'nightly export', expiresAt: Date.parse('2031-06-30T23:59:59Z') } }, 'a personal key of Ann with the expiry')
  await page.getByRole('button', { name: 'Copy' }).click()
  await page.getByRole('button', { name: 'Copied' }).waitFor()
  t.equal(await page.evaluate(() => navigator.clipboard.readText()), key, 'copied to the clipboard')
  t.equal(await page.locator('li.key').count(), 1, 'listed')

  // after a reload: listed with its dates, never the key itself
  await page.reload()
  const row = page.locator('li.key')
  t.equal(await row.count(), 1)
  // the check above used the key once, so it has a last-used date
  t.match(await row.textContent(), /nightly export[\s\S]*Created \w{3} \d+, \d{4} · Last used \w{3} \d+, \d{4} · Expires Jun 30, 2031/)
  t.notOk((await page.content()).includes(key), 'the key is never shown again')

  // revoke: a wrong name keeps the button disabled, the exact name revokes
  await page.getByRole('button', { name: 'Revoke nightly export' }).click()
  const dialog = page.getByRole('dialog')
  await dialog.waitFor({ state: 'visible' })
  const confirm = dialog.getByRole('button', { name: 'Revoke key' })
  await page.getByLabel('Type nightly export to confirm').fill('nightly')
  t.ok(await confirm.isDisabled(), 'a prefix: disabled')
  await page.getByLabel('Type nightly export to confirm').fill('nightly export')
  await confirm.click()
  await row.waitFor({ state: 'detached' })
  t.ok(await page.getByText('You have no API keys.').isVisible(), 'the empty state again')
  t.match(await page.locator('#keys-status').textContent(), /nightly export is revoked/)
  t.match(await f.app.connectionsContext.apiKeys.authenticate(key), { ok: false, reason: 'unknown' }, 'the key no longer works')
  t.match(await f.app.connectionsContext.apiKeys.authenticate(bobs.key), { ok: true }, "Bob's key is untouched")
  t.same(cspErrors, [], 'no CSP violations or script errors')
})

t.test('a name with bidi controls (stored before registration refused them) cannot reorder the page, and stays typeable', async (t) => {
  const { f, base, browser } = await start(t)
  const ann = await f.user('Ann')
  // U+202E reverses everything after it to the end of the paragraph unless the name is isolated
  const evil = await f.client('Evil\u202E\u200B')
  const grant = await f.grant(ann, evil)
  const s = await f.signIn(ann)
  const { page, cspErrors } = await signedIn(browser, base, s.sid)
  await page.goto(`${base}/connections`)
  await page.getByRole('button', { name: /^Actions for Evil/ }).click()
  await page.getByRole('menuitem', { name: 'Revoke access' }).click()
  const dialog = page.getByRole('dialog')
  await dialog.waitFor({ state: 'visible' })
  // where the text after the name is drawn: to the right of the name, in reading order
  const layout = await page.evaluate(() => {
    const desc = document.getElementById('revoke-desc') as HTMLElement
    const name = desc.querySelector('bdi') as HTMLElement
    const after = name.nextSibling as Text
    const range = document.createRange()
    const start = after.data.indexOf('will')
    range.setStart(after, start)
    range.setEnd(after, start + 4)
    const word = range.getBoundingClientRect()
    range.setStart(after, start + 5)
    range.setEnd(after, start + 9)
    const next = range.getBoundingClientRect()
    return { isolate: getComputedStyle(name).unicodeBidi, nameRight: name.getBoundingClientRect().right, willLeft: word.left, loseLeft: next.left }
  })
  t.equal(layout.isolate, 'isolate', 'the name is bidi-isolated')
  t.ok(layout.willLeft >= layout.nameRight - 1, `the words after it follow it (${layout.willLeft} >= ${layout.nameRight})`)
  t.ok(layout.loseLeft > layout.willLeft, 'and read left to right, not reversed')
  t.ok(await page.locator('li.app .name bdi').count() === 1, 'the list isolates the name too')
  // a person types what they see: "Evil"
  await page.getByLabel(/^Type Evil/).fill('Evil')
  await dialog.getByRole('button', { name: 'Revoke access' }).click()
  await page.locator(`[data-grant-id="${grant.id}"]`).waitFor({ state: 'detached' })
  t.ok(await f.r.redis.hget(keys.grant(grant.id), 'revoked_at'), 'revoked with the typeable name')
  t.equal(await page.locator('#status bdi').textContent(), 'Evil\u202E\u200B', 'the status line isolates it as well')
  t.same(cspErrors, [], 'no CSP violations or script errors')
})

t.test('who is signed in, a sign-out, and two apps with the same name told apart', async (t) => {
  const { f, base, browser } = await start(t)
  const ann = await f.user('Ann')
  const first = await f.client('Claude')
  const second = await f.client('Claude')
  await f.grant(ann, first)
  await f.grant(ann, second)
  const s = await f.signIn(ann)
  const { page, cspErrors } = await signedIn(browser, base, s.sid)
  const res = await page.goto(`${base}/connections`)
  t.match(res?.headers()['content-security-policy'], /form-action 'self' http:\/\/issuer\.test/, 'the sign-out form may post to the issuer')
  t.match(await page.locator('header.account').textContent(), `Signed in as Ann (${ann.email})`)
  const signOut = page.getByRole('button', { name: 'Sign out' })
  t.ok(await signOut.isVisible())
  const form = signOut.locator('xpath=ancestor::form')
  t.equal(await form.getAttribute('action'), 'http://issuer.test/logout')
  t.equal(await form.getAttribute('method'), 'post')
  t.equal(await form.locator('input[name="csrf"]').getAttribute('value'), s.csrf, 'with the session CSRF token the token service checks')
  t.equal(await form.locator('input[name="return_to"]').getAttribute('value'), `${base}/connections`)
  const ids = await page.locator('li.app .client-id').allTextContents()
  t.same(ids.sort(), [first.clientId, second.clientId].sort(), 'each Claude shows its client id')
  const meta = await page.locator('li.app').first().textContent()
  t.match(meta, /Authorized[\s\S]*Last used/, 'when it was authorized and last used')
  t.same(cspErrors, [], 'no CSP violations or script errors')
})
