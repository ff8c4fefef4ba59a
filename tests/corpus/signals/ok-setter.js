// expect: ok 1
let v = 0;
const o = { set level(x) { v = x; } };
o.level = 0.1;
flux('set', () => ({ update: () => v }));
