// expect: ok 1
const k = 'lvl';
const o = { [k]() { return 0.1; } };
flux('cm', () => ({ update: () => o.lvl() }));
