// expect: ok 1
// today: error * FIXME native-tier instrumentation rewrites setters wrongly (issue 10, jit)
let v = 0;
const o = { set level(x) { v = x; } };
o.level = 0.1;
flux('set', () => ({ update: () => v }));
