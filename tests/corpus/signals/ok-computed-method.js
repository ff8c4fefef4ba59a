// expect: ok 1
// today: error * FIXME native-tier instrumentation rewrites computed method keys wrongly (issue 10, jit)
const k = 'lvl';
const o = { [k]() { return 0.1; } };
flux('cm', () => ({ update: () => o.lvl() }));
