// expect: fault empty
// today: ok 1 FIXME an empty array is accepted silently (issue 10 item 9)
flux('empty', () => ({ update: () => [] }));
