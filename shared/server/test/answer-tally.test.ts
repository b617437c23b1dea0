import t from 'tap'
import { Registry } from 'prom-client'
import { AnswerCounter, AnswerTally, type AnswerLabels } from '../src/answer-tally.ts'

t.test('a drain hands over only what was counted since the last one', async (t) => {
  const tally = new AnswerTally()
  const drained = (): Array<[AnswerLabels, number]> => {
    const out: Array<[AnswerLabels, number]> = []
    tally.drain((labels, n) => out.push([labels, n]))
    return out
  }
  t.same(drained(), [], 'nothing counted, nothing handed over')
  tally.count('GET', '/v1/workspaces', 200)
  tally.count('GET', '/v1/workspaces', 200)
  tally.count('GET', '/v1/workspaces', 401)
  tally.count('POST', '/v1/workspaces', 200)
  t.same(drained(), [
    [{ method: 'GET', route: '/v1/workspaces', status: '200' }, 2],
    [{ method: 'GET', route: '/v1/workspaces', status: '401' }, 1],
    [{ method: 'POST', route: '/v1/workspaces', status: '200' }, 1]
  ])
  t.same(drained(), [], 'a second drain with nothing new hands over nothing')
  tally.count('GET', '/v1/workspaces', 401)
  t.same(drained(), [[{ method: 'GET', route: '/v1/workspaces', status: '401' }, 1]], 'only the new answer')
})

t.test('the counter shows every answer once, whenever it is scraped', async (t) => {
  const registry = new Registry()
  const answers = new AnswerCounter('test_http_requests_total', registry)
  t.notMatch(await registry.metrics(), /test_http_requests_total\{/, 'no series before an answer')
  answers.count('GET', '/v1/things/:id', 200)
  answers.count('GET', '/v1/things/:id', 200)
  answers.count('GET', '/v1/things/:id', 404)
  const first = await registry.metrics()
  t.match(first, /test_http_requests_total\{method="GET",route="\/v1\/things\/:id",status="200"\} 2\n/)
  t.match(first, /test_http_requests_total\{method="GET",route="\/v1\/things\/:id",status="404"\} 1\n/)
  answers.count('GET', '/v1/things/:id', 200)
  const second = await registry.metrics()
  t.match(second, /status="200"\} 3\n/, 'the new answer is added')
  t.match(second, /status="404"\} 1\n/, 'nothing is added twice')
  t.match(await registry.metrics(), /status="200"\} 3\n/, 'a scrape with nothing new changes nothing')
})
