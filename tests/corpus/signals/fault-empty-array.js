// expect: fault empty
flux('empty', () => ({ update: () => [] }));
