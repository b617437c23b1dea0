// EarlyRead: the read a route starts as its request arrives is the one its handler gets, made once; a
// request that never asks for it leaves no unhandled rejection; without a start the handler reads itself.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { EarlyRead } from '../src/auth.ts'

const request = (): FastifyRequest => ({}) as FastifyRequest

t.test('the started read is the one the handler gets, made once per request', async (t) => {
  const calls: FastifyRequest[] = []
  const early = new EarlyRead(async (req) => { calls.push(req); return calls.length })
  const [a, b] = [request(), request()]
  early.start(a)
  early.start(b)
  t.equal(await early.result(a), 1)
  t.equal(await early.result(b), 2)
  t.equal(await early.result(a), 1, 'asking twice reuses the read')
  t.same(calls, [a, b])
})

t.test('without a start, result reads then', async (t) => {
  let n = 0
  const early = new EarlyRead(async () => ++n)
  t.equal(await early.result(request()), 1)
  t.equal(n, 1)
})

t.test('a failed read nobody asks for is dropped; one that is asked for rejects', async (t) => {
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  const early = new EarlyRead(async () => { throw new Error('redis down') })
  early.start(request()) // a request refused before its handler ran
  const asked = request()
  early.start(asked)
  await t.rejects(early.result(asked), /redis down/)
  // unhandled rejections are reported after the microtask queue drains
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.same(unhandled, [])
})
