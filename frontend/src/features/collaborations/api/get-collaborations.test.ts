import { afterEach, describe, expect, it, vi } from 'vitest';

import { getCollaborations, MAX_COLLABORATION_PAGES } from './get-collaborations';

function respond(body: unknown) {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
}

const collab = (id: string) => ({ id, title: id });

afterEach(() => vi.unstubAllGlobals());

describe('getCollaborations', () => {
  it('follows next while the server has more, and lists each collaboration once', async () => {
    const fetchMock = vi
      .fn()
      .mockResolvedValueOnce(respond({ collaborations: [collab('col_3'), collab('col_2')], hasMore: true, next: 'c1~col_2' }))
      .mockResolvedValueOnce(respond({ collaborations: [collab('col_2'), collab('col_1')], hasMore: false, next: null }));
    vi.stubGlobal('fetch', fetchMock);
    const list = await getCollaborations();
    expect(list.map((c) => c.id)).toEqual(['col_3', 'col_2', 'col_1']);
    expect(fetchMock.mock.calls.map((call) => call[0])).toEqual(['/api/collaborations', '/api/collaborations?after=c1%7Ecol_2']);
  });

  it('reads one page from a server that does not page, and stops after the last page it allows', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => respond({ collaborations: [collab('col_1')] })));
    expect((await getCollaborations()).map((c) => c.id)).toEqual(['col_1']);
    let n = 0;
    const endless = vi.fn(async () => respond({ collaborations: [collab(`col_${(n += 1)}`)], hasMore: true, next: `p${n}` }));
    vi.stubGlobal('fetch', endless);
    expect(await getCollaborations()).toHaveLength(MAX_COLLABORATION_PAGES);
    expect(endless).toHaveBeenCalledTimes(MAX_COLLABORATION_PAGES);
  });
});
