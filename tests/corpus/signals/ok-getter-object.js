// expect: ok 1
// today: error * FIXME native-tier instrumentation rewrites getters wrongly (issue 10, jit)
flux('g', () => {
  const o = { get amp() { return 0.1; } };
  return { update: () => o.amp };
});
