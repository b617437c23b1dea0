import t from 'tap'
import { AnswerTally, type AnswerLabels } from '../src/answer-tally.ts'

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
